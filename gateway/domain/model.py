"""Entities of the domain, in plain Python.

Names follow the manual: an ``Insurer`` (sığortaedən) registers ``InsuredPerson``s
(sığortaolunan) through ``Application``s (ərizə); a seal holder grants ``Authority``
(səlahiyyət) to other people for an ``EService``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

from gateway.domain.values import Address, Contacts, DocumentType, Sex


class InsurerType(StrEnum):
    LEGAL_ENTITY = "LEGAL_ENTITY"
    INDIVIDUAL_ENTREPRENEUR = "INDIVIDUAL_ENTREPRENEUR"
    OTHER = "OTHER"


@dataclass(frozen=True, slots=True)
class LocalOffice:
    """Local DSMF office (yerli şöbə) where an insurer is registered."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class District:
    """A district (rayon) or city of a region in the address code list."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Region:
    """A top-level unit of an address (``Address.region``): a city of republican subordination
    (e.g. "Bakı şəhəri") or a district (e.g. "Quba rayonu"). ``closed``: ``cityOrDistrict``
    must be one of ``districts`` (e.g. Bakı's twelve rayons); otherwise it is a settlement
    given as text."""

    code: str
    name: str
    closed: bool
    districts: tuple[District, ...] = ()


@dataclass(frozen=True, slots=True)
class Insurer:
    """An employer (sığortaedən) as the Fund knows it; read-only through the service."""

    voen: str
    full_name: str
    insurer_type: InsurerType
    registration_number: str  # DSMF uçot nömrəsi
    responsible_person: str
    local_office: LocalOffice


@dataclass(frozen=True, slots=True)
class EService:
    code: str
    name: str


REGISTRATION_ESERVICE = "INSURED_REGISTRATION"


@dataclass(frozen=True, slots=True)
class IdentityDocument:
    document_type: DocumentType
    number: str
    issue_date: date
    issuer: str
    series: str | None = None
    expiry_date: date | None = None


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """A person as the population registry returns them."""

    fin: str
    surname: str
    name: str
    patronymic: str | None
    birth_date: date
    sex: Sex
    citizenship: str
    document: IdentityDocument
    registration_address: Address | None
    birth_place: str | None = None

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.surname, self.name, self.patronymic) if p)


@dataclass(frozen=True, slots=True)
class InsuredPerson:
    """A person with a personal account and SSN (fərdi hesab), keyed by FIN since 2026-07-01."""

    fin: str
    ssn: str
    ssn_date: date
    surname: str
    name: str
    patronymic: str | None
    registered_by_voen: str


class AuthorityType(StrEnum):
    E_SIGNATURE_CARD = "E_SIGNATURE_CARD"
    ASAN_IMZA = "ASAN_IMZA"


class AuthorityState(StrEnum):
    ACTIVE = "ACTIVE"
    FUTURE = "FUTURE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


@dataclass(frozen=True, slots=True)
class Authority:
    """A right granted by a seal holder to a person to act in an e-service for the insurer."""

    authority_id: str
    insurer_voen: str
    eservice_code: str
    authority_type: AuthorityType
    fin: str
    surname: str
    name: str
    patronymic: str | None
    granted_at: datetime
    granted_by_fin: str
    card_number: str | None = None
    asan_phone: str | None = None
    asan_user_id: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    revoked_at: datetime | None = None
    revoked_by_fin: str | None = None
    revoke_reason: str | None = None
    # Bound when the holder first signs with the card: when, and until when their certificate
    # is valid ("authority ends when the person's e-signature certificate expires", §2.2).
    bound_at: datetime | None = None
    holder_not_after: datetime | None = None

    def state(self, today: date) -> AuthorityState:
        if self.revoked_at is not None:
            return AuthorityState.REVOKED
        if self.valid_from is not None and today < self.valid_from:
            return AuthorityState.FUTURE
        if self.valid_to is not None and today > self.valid_to:
            return AuthorityState.EXPIRED
        if self.holder_not_after is not None and today > self.holder_not_after.date():
            return AuthorityState.EXPIRED
        return AuthorityState.ACTIVE


@dataclass(frozen=True, slots=True)
class SealHolder:
    """A person known to hold the insurer's seal authority (möhür vurmaq səlahiyyəti) without
    their certificate at hand: learned when they signed with a seal-authority card, or listed in
    the insurer reference data. ``not_after``: until when (their certificate's expiry; absent
    for a reference-data entry, which holds until the data is reloaded without it)."""

    insurer_voen: str
    fin: str
    name: str
    source: str  # "SIGN_IN" or "REFERENCE"
    seen_at: datetime
    not_after: datetime | None = None


class ApplicationType(StrEnum):
    INITIAL_REGISTRATION = "INITIAL_REGISTRATION"  # İlkin uçot
    CORRECTION = "CORRECTION"  # Düzəliş


class ApplicationStatus(StrEnum):
    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"
    REGISTERED = "REGISTERED"
    REJECTED = "REJECTED"


class CertificateStatus(StrEnum):
    """Status of the social insurance certificate (SSŞ)."""

    NOT_ISSUED = "NOT_ISSUED"
    ISSUED = "ISSUED"
    ANNULLED = "ANNULLED"


class CredentialKind(StrEnum):
    CARD = "CARD"
    ASAN = "ASAN"
    SYSTEM = "SYSTEM"
    SESSION = "SESSION"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts in a request, as proven by the verified signature (or a mobile session)."""

    fin: str | None
    voen: str | None
    credential_kind: CredentialKind
    credential: str  # card number, Asan phone, system certificate fingerprint, session id
    seal_authority: bool
    name: str
    certificate_not_after: datetime | None = None
    system_name: str | None = None


@dataclass(frozen=True, slots=True)
class StatusChange:
    status: ApplicationStatus
    at: datetime
    actor_fin: str | None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Signatory:
    fin: str | None
    name: str
    credential: str


@dataclass(frozen=True, slots=True)
class Application:
    """An application (ərizə) of an insurer for one person."""

    application_id: str
    insurer_voen: str
    application_type: ApplicationType
    status: ApplicationStatus
    document_type: DocumentType
    fin: str
    created_at: datetime
    person: PersonRecord | None = None
    registration_address: Address | None = None
    actual_address_differs: bool = False
    actual_address: Address | None = None
    contacts: Contacts | None = None
    ssn: str | None = None
    ssn_date: date | None = None
    certificate_status: CertificateStatus = CertificateStatus.NOT_ISSUED
    draft_reason: str | None = None
    signed_by: Signatory | None = None
    history: tuple[StatusChange, ...] = field(default_factory=tuple)

    def with_status(
        self,
        status: ApplicationStatus,
        at: datetime,
        actor_fin: str | None,
        note: str | None = None,
    ) -> Application:
        change = StatusChange(status=status, at=at, actor_fin=actor_fin, note=note)
        return replace(self, status=status, history=(*self.history, change))
