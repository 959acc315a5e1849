"""Reference data: local DSMF offices, insurers, the e-service catalogue (and demo persons).

    load_reference_data(database.unit_of_work, "insurers.json")   # or a .csv of insurers
    load_demo_data(database)                                       # the bundled synthetic set

Files are validated completely before anything is written, and every problem names the file and
the line (``ReferenceDataInvalid``). Loading is an idempotent upsert in one transaction: run it
again after editing the file and the rows are updated, nothing is duplicated.

JSON: an object with any of the sections ``local_offices``, ``eservices``, ``insurers``,
``insured_persons`` (see ``persistence/data/insurers.json``). CSV (UTF-8, optional BOM, comma):
one insurer per row with the header ``voen,full_name,insurer_type,registration_number,
responsible_person,local_office_code``; the office must be in the database already (or in the
same load). ``insured_persons`` get their SSN through the normal ``issue()`` path.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from json import decoder as json_decoder
from json import scanner as json_scanner
from pathlib import Path
from typing import Any

from gateway.domain.errors import ValidationFailed
from gateway.domain.model import District, EService, Insurer, InsurerType, LocalOffice, Region
from gateway.domain.values import Fin, Voen
from gateway.services.ports import UnitOfWork
from persistence.db import Database
from persistence.errors import ReferenceDataInvalid

BUNDLED = Path(__file__).resolve().parent / "data" / "insurers.json"
#: The address code list: Azerbaijan's regions (cities of republican subordination, districts)
#: and, where an address names one, their districts (section ``regions``).
REGIONS = Path(__file__).resolve().parent / "data" / "regions.json"

CSV_COLUMNS = (
    "voen",
    "full_name",
    "insurer_type",
    "registration_number",
    "responsible_person",
    "local_office_code",
)
_OFFICE_CODE = re.compile(r"^[0-9]{4}$")
_ESERVICE_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")
_SECTIONS = ("local_offices", "eservices", "insurers", "insured_persons", "regions")
_PLACE_CODE = re.compile(r"^[A-Z][A-Z0-9-]{1,23}$")
# The C scanner ignores a custom parse_object; the pure-Python one honours it.
_PY_SCANNER: Callable[[Any], Any] = getattr(json_scanner, "py_make_scanner")  # noqa: B009
_JSON_OBJECT: Callable[..., tuple[dict[str, Any], int]] = getattr(json_decoder, "JSONObject")  # noqa: B009


@dataclass(frozen=True, slots=True)
class SeedPerson:
    fin: str
    surname: str
    name: str
    patronymic: str | None
    registered_by_voen: str
    ssn_date: date
    line: int | None = None


@dataclass(slots=True)
class ReferenceData:
    """A validated reference-data file (each item with the line it came from)."""

    source: str
    offices: list[tuple[LocalOffice, int | None]] = field(default_factory=list)
    eservices: list[tuple[EService, int | None]] = field(default_factory=list)
    insurers: list[tuple[Insurer, int | None]] = field(default_factory=list)
    insured_persons: list[SeedPerson] = field(default_factory=list)
    regions: list[tuple[Region, int | None]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


class _Item(dict[str, Any]):
    """A JSON object that remembers the line it started on."""

    line: int | None = None


def _json_with_lines(text: str) -> Any:
    """``json.loads`` whose objects carry ``.line`` (the pure-Python scanner allows the hook)."""

    def parse_object(s_and_end: tuple[str, int], *args: Any, **kwargs: Any) -> tuple[Any, int]:
        s, end = s_and_end
        obj, new_end = _JSON_OBJECT(s_and_end, *args, **kwargs)
        item = _Item(obj)
        item.line = s.count("\n", 0, end) + 1
        return item, new_end

    decoder = json.JSONDecoder()
    setattr(decoder, "parse_object", parse_object)  # noqa: B010 - untyped stdlib hook
    setattr(decoder, "scan_once", _PY_SCANNER(decoder))  # noqa: B010
    return decoder.decode(text)


def read_reference_file(path: str | Path) -> ReferenceData:
    """Parse and validate a JSON or CSV reference-data file (nothing is written)."""
    path = Path(path)
    source = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ReferenceDataInvalid(f"cannot read: {error}", source=source, line=None) from error
    if path.suffix.lower() == ".csv":
        return _from_csv(text, source)
    try:
        document = _json_with_lines(text)
    except json.JSONDecodeError as error:
        raise ReferenceDataInvalid(f"not valid JSON: {error.msg}", source=source,
                                   line=error.lineno) from error
    return _from_json(document, source)


def _from_json(document: Any, source: str) -> ReferenceData:
    if not isinstance(document, dict):
        raise ReferenceDataInvalid("expected a JSON object with sections", source=source, line=1)
    unknown = sorted(set(document) - set(_SECTIONS))
    if unknown:
        raise ReferenceDataInvalid(
            f"unknown section(s) {', '.join(unknown)}; expected {', '.join(_SECTIONS)}",
            source=source, line=getattr(document, "line", None),
        )
    data = ReferenceData(source=source)
    for item in _section(document, "local_offices", source):
        data.offices.append((_office(item, source), item.line))
    for item in _section(document, "eservices", source):
        data.eservices.append((_eservice(item, source), item.line))
    offices = {o.code: o for o, _ in data.offices}
    for item in _section(document, "insurers", source):
        data.insurers.append((_insurer(item, source, offices), item.line))
    for item in _section(document, "insured_persons", source):
        data.insured_persons.append(_person(item, source))
    for item in _section(document, "regions", source):
        data.regions.append((_region(item, source), item.line))
    _check_unique(data)
    return data


def _from_csv(text: str, source: str) -> ReferenceData:
    reader = csv.DictReader(text.splitlines())
    header = tuple(reader.fieldnames or ())
    if set(header) != set(CSV_COLUMNS):
        raise ReferenceDataInvalid(
            f"header must be {','.join(CSV_COLUMNS)} (got {','.join(header) or 'nothing'})",
            source=source, line=1,
        )
    data = ReferenceData(source=source)
    for row in reader:
        item = _Item({k: (v or "").strip() for k, v in row.items() if k is not None})
        item.line = reader.line_num
        if None in row:
            raise ReferenceDataInvalid("more fields than columns", source=source,
                                       line=item.line)
        data.insurers.append((_insurer(item, source, {}), item.line))
    _check_unique(data)
    return data


def _section(document: Mapping[str, Any], name: str, source: str) -> Iterable[_Item]:
    items = document.get(name, [])
    if not isinstance(items, list):
        raise ReferenceDataInvalid(f"section {name} must be a list", source=source,
                                   line=getattr(document, "line", None))
    for item in items:
        if not isinstance(item, _Item):
            raise ReferenceDataInvalid(f"section {name}: every entry must be an object",
                                       source=source, line=None)
        yield item


def _fields(item: _Item, source: str, required: tuple[str, ...],
            optional: tuple[str, ...] = ()) -> dict[str, Any]:
    unknown = sorted(set(item) - set(required) - set(optional))
    if unknown:
        raise ReferenceDataInvalid(f"unknown field(s) {', '.join(unknown)}", source=source,
                                   line=item.line)
    values: dict[str, Any] = {}
    for name in required:
        value = item.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ReferenceDataInvalid(f"{name} is missing or empty", source=source,
                                       line=item.line)
        values[name] = value.strip()
    for name in optional:
        value = item.get(name)
        if value is not None and not isinstance(value, str):
            raise ReferenceDataInvalid(f"{name} must be text", source=source, line=item.line)
        values[name] = value.strip() if isinstance(value, str) and value.strip() else None
    return values


def _office(item: _Item, source: str) -> LocalOffice:
    v = _fields(item, source, ("code", "name"))
    if not _OFFICE_CODE.match(v["code"]):
        raise ReferenceDataInvalid(f"office code {v['code']!r} must be 4 digits", source=source,
                                   line=item.line)
    return LocalOffice(code=v["code"], name=v["name"])


def _region(item: _Item, source: str) -> Region:
    districts = item.get("districts", [])
    if not isinstance(districts, list):
        raise ReferenceDataInvalid("districts must be a list", source=source, line=item.line)
    v = _fields(_strip(item, ("districts", "closed")), source, ("code", "name"))
    closed = item.get("closed", False)
    if not isinstance(closed, bool):
        raise ReferenceDataInvalid("closed must be true or false", source=source,
                                   line=item.line)
    parsed = []
    for district in districts:
        if not isinstance(district, _Item):
            raise ReferenceDataInvalid("every district must be an object", source=source,
                                       line=item.line)
        d = _fields(district, source, ("code", "name"))
        parsed.append(District(code=d["code"], name=d["name"]))
    for code in [v["code"], *(d.code for d in parsed)]:
        if not _PLACE_CODE.match(code):
            raise ReferenceDataInvalid(
                f"place code {code!r} must be upper-case letters, digits and -",
                source=source, line=item.line)
    if closed and not parsed:
        raise ReferenceDataInvalid("a closed region lists its districts", source=source,
                                   line=item.line)
    return Region(code=v["code"], name=v["name"], closed=closed, districts=tuple(parsed))


def _strip(item: _Item, names: tuple[str, ...]) -> _Item:
    """``item`` without ``names`` (checked separately), keeping its line."""
    rest = _Item({k: w for k, w in item.items() if k not in names})
    rest.line = item.line
    return rest


def _eservice(item: _Item, source: str) -> EService:
    v = _fields(item, source, ("code", "name"))
    if not _ESERVICE_CODE.match(v["code"]):
        raise ReferenceDataInvalid(
            f"e-service code {v['code']!r} must be upper-case letters, digits and _",
            source=source, line=item.line,
        )
    return EService(code=v["code"], name=v["name"])


def _insurer(item: _Item, source: str, offices: Mapping[str, LocalOffice]) -> Insurer:
    v = _fields(item, source, CSV_COLUMNS)
    try:
        voen = Voen.parse(v["voen"])
    except ValidationFailed as error:
        raise ReferenceDataInvalid(f"{error.message} (got {v['voen']!r})", source=source,
                                   line=item.line) from error
    try:
        insurer_type = InsurerType(v["insurer_type"])
    except ValueError as error:
        raise ReferenceDataInvalid(
            f"insurer_type {v['insurer_type']!r} is not one of "
            f"{', '.join(t.value for t in InsurerType)}", source=source, line=item.line,
        ) from error
    if insurer_type is InsurerType.LEGAL_ENTITY and not voen.is_legal_entity:
        raise ReferenceDataInvalid(f"VÖEN {voen} of a legal entity must end in 1",
                                   source=source, line=item.line)
    if insurer_type is InsurerType.INDIVIDUAL_ENTREPRENEUR and voen.is_legal_entity:
        raise ReferenceDataInvalid(f"VÖEN {voen} of an individual entrepreneur must end in 2",
                                   source=source, line=item.line)
    if len(v["registration_number"]) > 32 or len(v["full_name"]) > 300:
        raise ReferenceDataInvalid("registration_number or full_name too long", source=source,
                                   line=item.line)
    code = v["local_office_code"]
    # Offices not in this file are checked against the database when loading.
    office = offices.get(code, LocalOffice(code=code, name=""))
    return Insurer(
        voen=voen.value,
        full_name=v["full_name"],
        insurer_type=insurer_type,
        registration_number=v["registration_number"],
        responsible_person=v["responsible_person"],
        local_office=office,
    )


def _person(item: _Item, source: str) -> SeedPerson:
    v = _fields(item, source, ("fin", "surname", "name", "registered_by_voen", "ssn_date"),
                ("patronymic",))
    try:
        fin = Fin.parse(v["fin"]).value
        voen = Voen.parse(v["registered_by_voen"]).value
        ssn_date = date.fromisoformat(v["ssn_date"])
    except (ValidationFailed, ValueError) as error:
        raise ReferenceDataInvalid(str(error), source=source, line=item.line) from error
    return SeedPerson(fin=fin, surname=v["surname"], name=v["name"], patronymic=v["patronymic"],
                      registered_by_voen=voen, ssn_date=ssn_date, line=item.line)


def _check_unique(data: ReferenceData) -> None:
    def once(keys: Iterable[tuple[str, int | None]], what: str) -> None:
        seen: set[str] = set()
        for key, line in keys:
            if key in seen:
                raise ReferenceDataInvalid(f"duplicate {what} {key}", source=data.source,
                                           line=line)
            seen.add(key)

    once(((o.code, line) for o, line in data.offices), "office code")
    once(((e.code, line) for e, line in data.eservices), "e-service code")
    once(((i.voen, line) for i, line in data.insurers), "VÖEN")
    once(((i.registration_number, line) for i, line in data.insurers), "registration number")
    once(((p.fin, p.line) for p in data.insured_persons), "FIN")
    once(((r.code, line) for r, line in data.regions), "region code")
    once(((r.name, line) for r, line in data.regions), "region name")
    once(((d.code, line) for r, line in data.regions for d in r.districts), "district code")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_reference_data(
    uow_factory: Callable[[], UnitOfWork], path: str | Path | None = None
) -> int:
    """Validate ``path`` (default: the bundled synthetic set) and upsert it in one transaction.

    Returns the number of insurers in the file. Raises ``ReferenceDataInvalid`` naming the file
    and line of the first bad row; nothing is written then.
    """
    data = read_reference_file(path or BUNDLED)
    with uow_factory() as uow:
        for region, _ in data.regions:
            uow.insurers.upsert_region(region)
        for new_office, _ in data.offices:
            uow.insurers.upsert_office(new_office)
        for eservice, _ in data.eservices:
            uow.eservices.upsert(eservice)
        in_file = {o.code: o for o, _ in data.offices}
        for insurer, line in data.insurers:
            office: LocalOffice | None = in_file.get(insurer.local_office.code) or _office_in_db(
                uow, insurer.local_office.code
            )
            if office is None:
                raise ReferenceDataInvalid(
                    f"unknown local office code {insurer.local_office.code!r}",
                    source=data.source, line=line,
                )
            uow.insurers.upsert(
                Insurer(
                    voen=insurer.voen,
                    full_name=insurer.full_name,
                    insurer_type=insurer.insurer_type,
                    registration_number=insurer.registration_number,
                    responsible_person=insurer.responsible_person,
                    local_office=office,
                )
            )
        for person in data.insured_persons:
            if uow.insurers.get(person.registered_by_voen) is None:
                raise ReferenceDataInvalid(
                    f"unknown insurer VÖEN {person.registered_by_voen}",
                    source=data.source, line=person.line,
                )
            if uow.insured_persons.get(person.fin) is None:
                uow.insured_persons.issue(
                    fin=person.fin, surname=person.surname, name=person.name,
                    patronymic=person.patronymic, voen=person.registered_by_voen,
                    on=person.ssn_date,
                )
        uow.commit()
    return len(data.insurers)


def _office_in_db(uow: UnitOfWork, code: str) -> LocalOffice | None:
    get_office = getattr(uow.insurers, "get_office", None)
    if get_office is None:  # another UnitOfWork implementation: trust the foreign key
        return LocalOffice(code=code, name="")
    office: LocalOffice | None = get_office(code)
    return office


def load_demo_data(database: Database | Callable[[], UnitOfWork]) -> int:
    """The bundled synthetic offices, insurers, e-services and the demo insured person."""
    factory = database.unit_of_work if isinstance(database, Database) else database
    load_reference_data(factory, REGIONS)
    return load_reference_data(factory, BUNDLED)
