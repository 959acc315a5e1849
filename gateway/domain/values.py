"""Value objects of the domain: identifiers and small immutable records.

Validation here is the domain's own rule (lengths, alphabets); richer checks that need a library
(phone numbering plans, e-mail syntax) live in ``gateway.services.validation``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from gateway.domain.errors import ValidationFailed

_FIN_ALPHABET = "[A-HJ-NP-Z0-9]"  # Latin capitals and digits without I and O
_ID_CARD_FIN = re.compile(rf"^{_FIN_ALPHABET}{{7}}$")
_PERMIT_FIN = re.compile(rf"^{_FIN_ALPHABET}{{5,7}}$")
_VOEN = re.compile(r"^[0-9]{9}[12]$")


class DocumentType(StrEnum):
    """Identity document (şəxsiyyət vəsiqəsi, müvəqqəti / daimi yaşamaq icazəsi)."""

    ID_CARD = "ID_CARD"
    TEMPORARY_RESIDENCE_PERMIT = "TEMPORARY_RESIDENCE_PERMIT"
    PERMANENT_RESIDENCE_PERMIT = "PERMANENT_RESIDENCE_PERMIT"


@dataclass(frozen=True, slots=True)
class Fin:
    """Personal identification code (FİN, fərdi identifikasiya nömrəsi).

    7 characters on the ID card; 5, 6 or 7 on temporary and permanent residence permits.
    There is no published check digit, so only the alphabet and the length are checked.
    """

    value: str

    @classmethod
    def parse(cls, raw: str, document_type: DocumentType = DocumentType.ID_CARD) -> Fin:
        value = raw.strip().upper()
        pattern = _ID_CARD_FIN if document_type is DocumentType.ID_CARD else _PERMIT_FIN
        if not pattern.match(value):
            expected = "7" if document_type is DocumentType.ID_CARD else "5 to 7"
            raise ValidationFailed(
                f"FIN must be {expected} Latin capitals or digits without I and O "
                f"for {document_type.value}",
                code="Client.Validation.Fin",
                field="fin",
            )
        return cls(value)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Voen:
    """Taxpayer identification number (VÖEN): 10 digits, last 1 (legal entity) or 2 (natural
    person). The check-digit algorithm is not public, so it is not checked."""

    value: str

    @classmethod
    def parse(cls, raw: str) -> Voen:
        value = raw.strip()
        if not _VOEN.match(value):
            raise ValidationFailed(
                "VÖEN must be 10 digits ending in 1 or 2", code="Client.Validation.Voen",
                field="voen",
            )
        return cls(value)

    @property
    def is_legal_entity(self) -> bool:
        return self.value.endswith("1")

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Ssn:
    """Social insurance number (SSN, sosial sığorta nömrəsi): opaque, issued once per person."""

    value: str

    def __str__(self) -> str:
        return self.value


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"


@dataclass(frozen=True, slots=True)
class Address:
    """An address (ünvan): registration (qeydiyyat) or actual (faktiki)."""

    region: str
    city_or_district: str
    street: str
    house: str
    apartment: str | None = None
    postal_code: str | None = None

    def one_line(self) -> str:
        parts = [self.region, self.city_or_district, self.street, self.house]
        if self.apartment:
            parts.append(f"m. {self.apartment}")
        if self.postal_code:
            parts.append(self.postal_code)
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Contacts:
    """Contacts (əlaqə məlumatları); phone numbers in E.164 after validation."""

    mobile_phone: str | None = None
    landline_phone: str | None = None
    email: str | None = None

    def is_empty(self) -> bool:
        return not (self.mobile_phone or self.landline_phone or self.email)
