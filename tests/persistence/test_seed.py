"""Reference-data loading: the bundled set, idempotence, CSV, and bad rows with line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.domain.model import REGISTRATION_ESERVICE, InsurerType
from gateway.domain.ssn import SsnFormat
from persistence.db import Database
from persistence.errors import ReferenceDataInvalid
from persistence.seed import BUNDLED, load_demo_data, load_reference_data, read_reference_file

DEMO = {
    "1403567891": ("Xəzər Tikinti MMC", InsurerType.LEGAL_ENTITY, "Əliyev Rəşad Vaqif oğlu"),
    "1700345671": ("Gəncə Tekstil ASC", InsurerType.LEGAL_ENTITY, "İsmayılov Ömər Şükür oğlu"),
    "2004512342": ("Fərhad Nağıyev", InsurerType.INDIVIDUAL_ENTREPRENEUR,
                   "Nağıyev Fərhad Elman oğlu"),
}


def test_bundled_set(db: Database) -> None:
    assert load_demo_data(db) == 11
    assert load_demo_data(db) == 11  # idempotent
    with db.unit_of_work() as uow:
        for voen, (name, kind, responsible) in DEMO.items():
            insurer = uow.insurers.get(voen)
            assert insurer is not None
            assert (insurer.full_name, insurer.insurer_type, insurer.responsible_person) == (
                name, kind, responsible)
            assert insurer.registration_number.startswith("DSMF-")
            assert insurer.local_office.name.endswith("şöbəsi")
        services = uow.eservices.list()
        assert services[0].code == REGISTRATION_ESERVICE
        assert services[0].name == "Sığortaolunanın onlayn uçota alınması"
        assert 4 <= len(services) <= 5
        insured = uow.insured_persons.get("9QW3E5R")
        assert insured is not None
        assert (insured.surname, insured.name, insured.patronymic) == ("Rzayev", "Elçin",
                                                                       "Kamal oğlu")
        assert insured.registered_by_voen == "1700345671"
        assert SsnFormat().is_valid(insured.ssn)


def test_file_is_reloaded_as_an_upsert(db: Database, tmp_path: Path) -> None:
    load_demo_data(db)
    document = json.loads(BUNDLED.read_text(encoding="utf-8"))
    document["insurers"][0]["full_name"] = "Xəzər Tikinti və Layihə MMC"
    edited = tmp_path / "insurers.json"
    edited.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    load_reference_data(db.unit_of_work, edited)
    with db.unit_of_work() as uow:
        insurer = uow.insurers.get("1403567891")
        assert insurer is not None and insurer.full_name == "Xəzər Tikinti və Layihə MMC"


def test_csv_of_insurers(db: Database, tmp_path: Path) -> None:
    load_demo_data(db)
    path = tmp_path / "insurers.csv"
    path.write_text(
        "\ufeffvoen,full_name,insurer_type,registration_number,responsible_person,"
        "local_office_code\n"
        "1234567891,Naxçıvan Duz MMC,LEGAL_ENTITY,DSMF-0201-009999,Quliyev Ülvi Ağa oğlu,0201\n",
        encoding="utf-8",
    )
    assert load_reference_data(db.unit_of_work, path) == 1
    with db.unit_of_work() as uow:
        insurer = uow.insurers.get("1234567891")
        assert insurer is not None and insurer.local_office.name == "Sumqayıt şəhər şöbəsi"


HEADER = "voen,full_name,insurer_type,registration_number,responsible_person,local_office_code\n"
GOOD = "1234567891,Duz MMC,LEGAL_ENTITY,DSMF-0201-009999,Quliyev Ülvi,0201\n"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("123456789,Duz MMC,LEGAL_ENTITY,DSMF-1,Quliyev Ülvi,0201\n", "VÖEN"),
        ("1234567893,Duz MMC,LEGAL_ENTITY,DSMF-1,Quliyev Ülvi,0201\n", "VÖEN"),
        ("1234567892,Duz MMC,LEGAL_ENTITY,DSMF-1,Quliyev Ülvi,0201\n", "must end in 1"),
        ("1234567891,Duz MMC,COMPANY,DSMF-1,Quliyev Ülvi,0201\n", "insurer_type"),
        ("1234567881,,LEGAL_ENTITY,DSMF-2,Quliyev Ülvi,0201\n", "full_name"),
        ("1234567891,Eyni MMC,LEGAL_ENTITY,DSMF-3,Quliyev Ülvi,0201\n", "duplicate VÖEN"),
        ("1234567871,Duz MMC,LEGAL_ENTITY,DSMF-4,Quliyev Ülvi,0201,extra\n", "more fields"),
    ],
)
def test_bad_csv_row_names_its_line(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + GOOD + row, encoding="utf-8")
    with pytest.raises(ReferenceDataInvalid) as caught:
        read_reference_file(path)
    assert caught.value.line == 3
    assert message in caught.value.message
    assert caught.value.message.startswith("bad.csv line 3: ")
    assert caught.value.code == "Client.Validation.ReferenceData"


def test_unknown_office_is_refused_and_nothing_is_written(db: Database, tmp_path: Path) -> None:
    load_demo_data(db)
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + GOOD.replace("1234567891", "1234567861")
                    + GOOD.replace(",0201", ",0999").replace("-009999", "-009998"),
                    encoding="utf-8")
    with pytest.raises(ReferenceDataInvalid) as caught:
        load_reference_data(db.unit_of_work, path)
    assert caught.value.line == 3 and "0999" in caught.value.message
    with db.unit_of_work() as uow:
        assert uow.insurers.get("1234567861") is None  # the good row was rolled back too


def test_bad_json_entry_names_its_line(tmp_path: Path) -> None:
    document = json.loads(BUNDLED.read_text(encoding="utf-8"))
    document["insurers"][2]["voen"] = "12345"
    path = tmp_path / "insurers.json"
    text = json.dumps(document, ensure_ascii=False, indent=2)
    path.write_text(text, encoding="utf-8")
    expected_line = next(i for i, line in enumerate(text.splitlines(), 1) if '"12345"' in line)
    with pytest.raises(ReferenceDataInvalid) as caught:
        read_reference_file(path)
    # The entry's opening brace is the line before its first field.
    assert caught.value.line == expected_line - 1
    assert "VÖEN" in caught.value.message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"insurers": [}', "not valid JSON"),
        ('{"offices": []}', "unknown section"),
        ('{"local_offices": [{"code": "12", "name": "X"}]}', "4 digits"),
        ('{"local_offices": [{"code": "1234", "name": "X", "extra": 1}]}', "unknown field"),
        ('{"insured_persons": [{"fin": "IIIIIII", "surname": "A", "name": "B", '
         '"registered_by_voen": "1403567891", "ssn_date": "2025-01-01"}]}', "FIN"),
    ],
)
def test_bad_json_documents(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ReferenceDataInvalid) as caught:
        read_reference_file(path)
    assert message in caught.value.message
