"""The desk tool's offline checks: each rule gives its own Azerbaijani sentence from the
catalogue, and a good row becomes exactly the batch item the contract expects."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook

from gateway.client.errors import InputError
from gateway.client.messages import catalogue, fault_text, text
from gateway.client.rows import check_sheet
from gateway.client.sheet import SheetRow, read_sheet, write_results


def sheet_of(tmp_path: Path, body: str, name: str = "e.csv") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def problems(tmp_path: Path, header: str, *rows: str) -> list[list[str]]:
    checked = check_sheet(read_sheet(sheet_of(tmp_path, "\n".join([header, *rows]) + "\n")))
    return [c.problems for c in checked]


@pytest.mark.parametrize(("document", "fin", "message"), [
    ("ID_CARD", "", text("row.fin.required")),
    ("ID_CARD", "5GH3J7I", text("row.fin.characters", value="5GH3J7I")),
    ("ID_CARD", "5GH-3J7", text("row.fin.characters", value="5GH-3J7")),
    ("ID_CARD", "5GH3J7KK", text("row.fin.length_id_card", value="5GH3J7KK")),
    ("ID_CARD", "A1B2C", text("row.fin.length_id_card", value="A1B2C")),
    ("TEMPORARY_RESIDENCE_PERMIT", "A1B2", text("row.fin.length_permit", value="A1B2")),
    ("daimi yaşamaq icazəsi", "A1B2C3D4", text("row.fin.length_permit", value="A1B2C3D4")),
    ("", "5GH3J7K", text("row.document_type.required")),
    ("PASSPORT", "5GH3J7K", text("row.document_type.unknown", value="PASSPORT")),
])
def test_fin_rules_per_document_type(tmp_path: Path, document: str, fin: str,
                                     message: str) -> None:
    assert problems(tmp_path, "document_type,fin", f"{document},{fin}") == [[message]]


@pytest.mark.parametrize(("column", "value", "message"), [
    ("mobile_phone", "12345", text("row.mobile.invalid", value="12345")),
    ("mobile_phone", "+994124987654", text("row.mobile.not_mobile", value="+994124987654")),
    ("landline_phone", "+7 495 123 45 67", text("row.landline.invalid", value="+7 495 123 45 67")),
    ("email", "a@b", text("row.email.invalid", value="a@b")),
])
def test_contacts(tmp_path: Path, column: str, value: str, message: str) -> None:
    assert problems(tmp_path, f"document_type,fin,{column}",
                    f'ID_CARD,5GH3J7K,"{value}"') == [[message]]


def test_a_partial_actual_address_names_each_missing_part(tmp_path: Path) -> None:
    found = problems(tmp_path, "document_type,fin,actual_region,actual_street,actual_postal_code",
                     "ID_CARD,5GH3J7K,Bakı şəhəri,Nizami küçəsi,1000")
    assert found == [[
        text("row.address.required", field=text("field.actual_city")),
        text("row.address.required", field=text("field.actual_house")),
        text("row.postal_code.invalid", value="1000"),
    ]]


def test_duplicates_in_the_file_point_at_the_first_line(tmp_path: Path) -> None:
    found = problems(tmp_path, "ref,document_type,fin", "a,ID_CARD,5GH3J7K", "b,ID_CARD,5gh3j7k",
                     "a,ID_CARD,6TY2U8P")
    assert found == [[], [text("row.fin.duplicate", other=2)],
                     [text("row.ref.duplicate", other=2)]]


def test_a_good_row_becomes_the_contracts_batch_item(tmp_path: Path) -> None:
    path = sheet_of(tmp_path, (
        "Sənəd növü;FİN;Faktiki region;Faktiki şəhər;Faktiki küçə;Faktiki ev;Faktiki mənzil;"
        "Faktiki poçt indeksi;Mobil telefon;Telefon;E-poçt\n"
        "şəxsiyyət vəsiqəsi;6ty2u8p;Bakı şəhəri;Xətai rayonu;Babək prospekti;12;;az1025;"
        "050 123 45 67;(012) 498-76-54;Gulsen@Example.az\n"
    ))
    [row] = check_sheet(read_sheet(path))
    assert row.item == {
        "clientRef": "row-2", "documentType": "ID_CARD", "fin": "6TY2U8P",
        "actualAddressDiffers": True,
        "actualAddress": {"region": "Bakı şəhəri", "cityOrDistrict": "Xətai rayonu",
                          "street": "Babək prospekti", "house": "12", "postalCode": "AZ1025"},
        "contacts": {"mobilePhone": "+994501234567", "landlinePhone": "+994124987654",
                     "email": "Gulsen@example.az"},
    }


def test_xlsx_numbers_are_read_as_text(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["document_type", "fin", "mobile_phone", "actual_region", "actual_city",
                  "actual_street", "actual_house"])
    sheet.append(["ID_CARD", "5GH3J7K", 501234567, "Bakı", "Nəsimi", "Azadlıq", 27.0])
    path = tmp_path / "e.xlsx"
    book.save(path)
    [row] = check_sheet(read_sheet(path))
    assert row.ok, row.problems
    assert row.item is not None
    assert row.item["contacts"] == {"mobilePhone": "+994501234567"}
    assert row.item["actualAddress"]["house"] == "27"


def test_missing_required_columns_stop_before_any_row(tmp_path: Path) -> None:
    with pytest.raises(InputError) as refused:
        read_sheet(sheet_of(tmp_path, "fin,email\n5GH3J7K,a@b.az\n"))
    assert refused.value.message == text("column.missing", column="document_type")
    with pytest.raises(InputError) as unsupported:
        read_sheet(sheet_of(tmp_path, "x", name="e.ods"))
    assert unsupported.value.message == text("file.unsupported", name="e.ods")


def test_output_keeps_the_input_columns_and_adds_the_results(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    write_results(out, ("fin",), [(("5GH3J7K",), ("1000000000025", "app-1", "REGISTERED", "",
                                                   text("status.REGISTERED")))])
    assert out.read_text(encoding="utf-8-sig").splitlines() == [
        "fin,ssn,application_id,status,fault_code,message",
        f'5GH3J7K,1000000000025,app-1,REGISTERED,,"{text("status.REGISTERED")}"',
    ]
    assert SheetRow(2, {"fin": "x"}, ("x",)).get("email") == ""


def test_every_message_comes_from_the_catalogue() -> None:
    entries = catalogue()
    assert text("row.fin.required") == entries["row.fin.required"]
    assert text("no.such.message") == "no.such.message"
    # A fault code falls back to its parent, then to a sentence quoting the gateway.
    assert fault_text("Client.NotAuthorized.Whatever") == entries["fault.Client.NotAuthorized"]
    assert fault_text("Client.Odd.Thing", "why") == text("fault.generic", code="Client.Odd.Thing",
                                                         message="why")
