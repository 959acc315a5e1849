"""Offline checks of each spreadsheet row, before anything is signed or sent.

The rules are the contract's and the manual's, checked here so an HR accountant sees every
problem of the file at once, row by row, in Azerbaijani: the FIN's alphabet and its length per
document type (7 on an ID card, 5-7 on residence permits), Azerbaijani phone numbers
(phonenumbers: a mobile number must be a mobile one), e-mail syntax (email-validator, no DNS),
a complete actual address when one is given, the contract's length limits, and no FIN or
reference twice in one file. The gateway checks everything again; this only saves a round trip
and keeps a broken file from being half-sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import NumberParseException, PhoneNumberType

from gateway.client.messages import text
from gateway.client.sheet import Sheet, SheetRow

FIN_ALPHABET: Final = re.compile(r"[A-HJ-NP-Z0-9]+")
POSTAL_CODE: Final = re.compile(r"AZ ?[0-9]{4}")
REF: Final = re.compile(r"\S(?:.{0,62}\S)?")

DOCUMENT_TYPES: Final = {
    "id_card": "ID_CARD", "şəxsiyyət_vəsiqəsi": "ID_CARD", "sv": "ID_CARD",
    "temporary_residence_permit": "TEMPORARY_RESIDENCE_PERMIT",
    "müvəqqəti_yaşamaq_icazəsi": "TEMPORARY_RESIDENCE_PERMIT",
    "permanent_residence_permit": "PERMANENT_RESIDENCE_PERMIT",
    "daimi_yaşamaq_icazəsi": "PERMANENT_RESIDENCE_PERMIT",
}
FIN_LENGTHS: Final = {
    "ID_CARD": (7,),
    "TEMPORARY_RESIDENCE_PERMIT": (5, 6, 7),
    "PERMANENT_RESIDENCE_PERMIT": (5, 6, 7),
}
#: Address columns → (contract element, contract length limit, required when an address is given)
ADDRESS: Final = {
    "actual_region": ("region", 100, True),
    "actual_city": ("cityOrDistrict", 100, True),
    "actual_street": ("street", 200, True),
    "actual_house": ("house", 20, True),
    "actual_apartment": ("apartment", 20, False),
}
_MOBILE: Final = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


@dataclass
class CheckedRow:
    """A row after the checks: ``problems`` (Azerbaijani sentences) or a ready batch ``item``."""

    row: SheetRow
    fin: str
    client_ref: str
    problems: list[str] = field(default_factory=list)
    item: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def check_sheet(sheet: Sheet) -> list[CheckedRow]:
    checked = [check_row(row) for row in sheet.rows]
    first_fin: dict[str, int] = {}
    first_ref: dict[str, int] = {}
    for c in checked:
        if c.fin:
            if c.fin in first_fin:
                c.problems.append(text("row.fin.duplicate", other=first_fin[c.fin]))
            else:
                first_fin[c.fin] = c.row.line
        if c.client_ref in first_ref:
            c.problems.append(text("row.ref.duplicate", other=first_ref[c.client_ref]))
        else:
            first_ref[c.client_ref] = c.row.line
    for c in checked:
        if c.problems:
            c.item = None
    return checked


def _document_type(raw: str) -> str | None:
    key = raw.strip().casefold().replace(" ", "_").replace("-", "_")
    return DOCUMENT_TYPES.get(key) or (raw.strip().upper() if raw.strip().upper()
                                       in FIN_LENGTHS else None)


def check_row(row: SheetRow) -> CheckedRow:
    fin = row.get("fin").strip().upper()
    ref = row.get("ref").strip() or f"row-{row.line}"
    checked = CheckedRow(row=row, fin=fin, client_ref=ref)
    problems = checked.problems
    if not REF.fullmatch(ref):
        problems.append(text("row.ref.invalid", value=ref))

    raw_type = row.get("document_type")
    document_type = _document_type(raw_type) if raw_type.strip() else None
    if not raw_type.strip():
        problems.append(text("row.document_type.required"))
    elif document_type is None:
        problems.append(text("row.document_type.unknown", value=raw_type))

    if not fin:
        problems.append(text("row.fin.required"))
    elif not FIN_ALPHABET.fullmatch(fin):
        problems.append(text("row.fin.characters", value=fin))
    elif document_type is not None and len(fin) not in FIN_LENGTHS[document_type]:
        key = "row.fin.length_id_card" if document_type == "ID_CARD" else "row.fin.length_permit"
        problems.append(text(key, value=fin))

    address = _address(row, problems)
    contacts = _contacts(row, problems)
    if problems or document_type is None:
        return checked
    item: dict[str, Any] = {
        "clientRef": ref, "documentType": document_type, "fin": fin,
        "actualAddressDiffers": address is not None,
    }
    if address is not None:
        item["actualAddress"] = address
    if contacts:
        item["contacts"] = contacts
    checked.item = item
    return checked


def _address(row: SheetRow, problems: list[str]) -> dict[str, str] | None:
    values = {column: row.get(column).strip() for column in (*ADDRESS, "actual_postal_code")}
    if not any(values.values()):
        return None
    address: dict[str, str] = {}
    for column, (element, limit, required) in ADDRESS.items():
        value = values[column]
        if not value:
            if required:
                problems.append(text("row.address.required", field=text(f"field.{column}")))
            continue
        if len(value) > limit:
            problems.append(text("row.address.too_long", field=text(f"field.{column}"),
                                 length=len(value), limit=limit))
        address[element] = value
    postal = values["actual_postal_code"].upper()
    if postal:
        if POSTAL_CODE.fullmatch(postal):
            address["postalCode"] = postal
        else:
            problems.append(text("row.postal_code.invalid", value=values["actual_postal_code"]))
    return address


def _contacts(row: SheetRow, problems: list[str]) -> dict[str, str]:
    contacts: dict[str, str] = {}
    mobile = row.get("mobile_phone").strip()
    if mobile:
        number = _az_number(mobile)
        if number is None:
            problems.append(text("row.mobile.invalid", value=mobile))
        elif phonenumbers.number_type(number) not in _MOBILE:
            problems.append(text("row.mobile.not_mobile", value=mobile))
        else:
            contacts["mobilePhone"] = _e164(number)
    landline = row.get("landline_phone").strip()
    if landline:
        number = _az_number(landline)
        if number is None:
            problems.append(text("row.landline.invalid", value=landline))
        else:
            contacts["landlinePhone"] = _e164(number)
    email = row.get("email").strip()
    if email:
        try:
            # Syntax only: the check must not depend on the network.
            contacts["email"] = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError:
            problems.append(text("row.email.invalid", value=email))
    return contacts


def _az_number(raw: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(raw, "AZ")
    except NumberParseException:
        return None
    if number.country_code != 994 or not phonenumbers.is_valid_number(number):
        return None
    return number


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
