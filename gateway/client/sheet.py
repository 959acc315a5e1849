"""The employer's spreadsheet: rows in (``.xlsx`` with openpyxl, or ``.csv``), results out.

The first row names the columns; names are matched case-insensitively, with spaces, dashes and
underscores alike, in English or Azerbaijani (``fin`` = ``FİN``, ``document_type`` =
``sənəd növü``). Only ``document_type`` and ``fin`` are required. An actual address is sent
only when one of its columns is filled (the manual's "actual address differs" tick); the
registration address comes from the population registry, never from the file.

The output has the input's columns as they were, then :data:`RESULT_COLUMNS`.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gateway.client.errors import InputError
from gateway.client.messages import text

#: Canonical column → accepted spellings (after :func:`_normalise`).
COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "ref": ("ref", "reference", "employee_id", "istinad", "tabel_no", "tabel_nomresi"),
    "document_type": ("document_type", "document", "sened_novu", "sənəd_növü", "sənəd"),
    "fin": ("fin",),
    "actual_region": ("actual_region", "faktiki_region"),
    "actual_city": ("actual_city", "actual_city_or_district", "faktiki_şəhər", "faktiki_rayon"),
    "actual_street": ("actual_street", "faktiki_küçə"),
    "actual_house": ("actual_house", "faktiki_ev"),
    "actual_apartment": ("actual_apartment", "faktiki_mənzil"),
    "actual_postal_code": ("actual_postal_code", "faktiki_poçt_indeksi", "faktiki_indeks"),
    "mobile_phone": ("mobile_phone", "mobile", "mobil_telefon", "mobil"),
    "landline_phone": ("landline_phone", "landline", "phone", "stasionar_telefon", "telefon"),
    "email": ("email", "e_mail", "e_poçt", "epoçt"),
}
REQUIRED: Final = ("document_type", "fin")
RESULT_COLUMNS: Final = ("ssn", "application_id", "status", "fault_code", "message")
SUPPORTED: Final = (".xlsx", ".csv")


@dataclass(frozen=True)
class SheetRow:
    """One data row: ``line`` is its row number in the spreadsheet (the header is line 1)."""

    line: int
    values: dict[str, str]  # canonical column → text ("" when empty)
    raw: tuple[str, ...]  # the row as read, for the output file

    def get(self, column: str) -> str:
        return self.values.get(column, "")


@dataclass(frozen=True)
class Sheet:
    path: Path
    header: tuple[str, ...]
    rows: tuple[SheetRow, ...]
    unknown_columns: tuple[str, ...]


def _normalise(name: str) -> str:
    # "FİN" casefolds to "fi̇n" (with a combining dot): drop combining marks' dots only there.
    folded = unicodedata.normalize("NFC", name.strip().casefold().replace("\u0307", ""))
    for ch in " -/.":
        folded = folded.replace(ch, "_")
    return folded


_ALIASES: Final = {_normalise(alias): column for column, aliases in COLUMNS.items()
                   for alias in aliases}


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel keeps house numbers and phones as floats
    return str(value).strip()


def read_sheet(path: Path) -> Sheet:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise InputError(text("file.unsupported", name=path.name))
    try:
        table = _read_xlsx(path) if suffix == ".xlsx" else _read_csv(path)
    except InputError:
        raise
    except Exception as exc:  # openpyxl and csv raise many kinds; the user needs one sentence
        raise InputError(text("file.unreadable", name=path.name, reason=exc)) from exc
    table = [row for row in table if any(cell for cell in row)] if table else []
    if not table:
        raise InputError(text("file.empty", name=path.name))
    header = tuple(table[0])
    mapping: dict[int, str] = {}
    unknown: list[str] = []
    for index, name in enumerate(header):
        column = _ALIASES.get(_normalise(name))
        if column is not None and column not in mapping.values():
            mapping[index] = column
        elif name:
            unknown.append(name)
    missing = [column for column in REQUIRED if column not in mapping.values()]
    if missing:
        raise InputError("\n".join(text("column.missing", column=c) for c in missing))
    rows = []
    for number, cells in enumerate(table[1:], start=2):
        padded = tuple(cells) + ("",) * (len(header) - len(cells))
        values = {column: padded[index] for index, column in mapping.items()}
        rows.append(SheetRow(line=number, values=values, raw=padded[: len(header)]))
    return Sheet(path=path, header=header, rows=tuple(rows), unknown_columns=tuple(unknown))


def _read_xlsx(path: Path) -> list[list[str]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        return [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()


def _read_csv(path: Path) -> list[list[str]]:
    data = path.read_text(encoding="utf-8-sig")
    first = data.split("\n", 1)[0]
    # Excel in Azerbaijani (and most European) locales writes ";" between columns.
    delimiter = max(",;\t", key=first.count)
    return [[cell.strip() for cell in row]
            for row in csv.reader(io.StringIO(data), delimiter=delimiter)]


def output_path_for(path: Path) -> Path:
    return path.with_name(f"{path.stem}.result{path.suffix.lower()}")


def write_results(path: Path, header: Sequence[str],
                  rows: Iterable[tuple[Sequence[str], Sequence[str]]]) -> None:
    """Write ``header`` + RESULT_COLUMNS, then each (input cells, result cells); atomically, so
    a kill while writing leaves the previous file."""
    columns = [*header, *RESULT_COLUMNS]
    temporary = path.with_name(path.name + ".part")
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(text("output.sheet_name"))
        sheet.append(columns)
        for cells, result in rows:
            sheet.append([*cells, *result])
        workbook.save(temporary)
    else:
        with temporary.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(columns)
            for cells, result in rows:
                writer.writerow([*cells, *result])
    temporary.replace(path)
