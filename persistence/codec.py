"""JSON shapes of the domain's value objects, as stored in JSON columns.

Explicit field lists (not ``dataclasses.asdict``) so that a renamed domain field is a visible
change here, and stored documents stay readable by older and newer code.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from gateway.domain.model import IdentityDocument, PersonRecord
from gateway.domain.values import Address, Contacts, DocumentType, Sex

JsonDict = dict[str, Any]


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def address_to_json(address: Address | None) -> JsonDict | None:
    if address is None:
        return None
    return {
        "region": address.region,
        "city_or_district": address.city_or_district,
        "street": address.street,
        "house": address.house,
        "apartment": address.apartment,
        "postal_code": address.postal_code,
    }


def address_from_json(data: JsonDict | None) -> Address | None:
    if data is None:
        return None
    return Address(
        region=data["region"],
        city_or_district=data["city_or_district"],
        street=data["street"],
        house=data["house"],
        apartment=data.get("apartment"),
        postal_code=data.get("postal_code"),
    )


def contacts_to_json(contacts: Contacts | None) -> JsonDict | None:
    if contacts is None:
        return None
    return {
        "mobile_phone": contacts.mobile_phone,
        "landline_phone": contacts.landline_phone,
        "email": contacts.email,
    }


def contacts_from_json(data: JsonDict | None) -> Contacts | None:
    if data is None:
        return None
    return Contacts(
        mobile_phone=data.get("mobile_phone"),
        landline_phone=data.get("landline_phone"),
        email=data.get("email"),
    )


def person_to_json(person: PersonRecord | None) -> JsonDict | None:
    if person is None:
        return None
    doc = person.document
    return {
        "fin": person.fin,
        "surname": person.surname,
        "name": person.name,
        "patronymic": person.patronymic,
        "birth_date": _iso(person.birth_date),
        "sex": person.sex.value,
        "citizenship": person.citizenship,
        "birth_place": person.birth_place,
        "document": {
            "document_type": doc.document_type.value,
            "number": doc.number,
            "series": doc.series,
            "issue_date": _iso(doc.issue_date),
            "expiry_date": _iso(doc.expiry_date),
            "issuer": doc.issuer,
        },
        "registration_address": address_to_json(person.registration_address),
    }


def person_from_json(data: JsonDict | None) -> PersonRecord | None:
    if data is None:
        return None
    doc = data["document"]
    birth_date = _date(data["birth_date"])
    issue_date = _date(doc["issue_date"])
    assert birth_date is not None and issue_date is not None
    return PersonRecord(
        fin=data["fin"],
        surname=data["surname"],
        name=data["name"],
        patronymic=data.get("patronymic"),
        birth_date=birth_date,
        sex=Sex(data["sex"]),
        citizenship=data["citizenship"],
        birth_place=data.get("birth_place"),
        document=IdentityDocument(
            document_type=DocumentType(doc["document_type"]),
            number=doc["number"],
            series=doc.get("series"),
            issue_date=issue_date,
            expiry_date=_date(doc.get("expiry_date")),
            issuer=doc["issuer"],
        ),
        registration_address=address_from_json(data.get("registration_address")),
    )
