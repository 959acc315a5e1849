"""Ports: what the service layer needs from the outside world, as Protocols.

Adapters implement them: ``gateway.upstream`` (population registry, mobile-signature service
over zeep) and ``persistence`` (the unit of work over SQLAlchemy). Handlers see only these.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from types import TracebackType
from typing import Protocol

from gateway.domain.model import (
    Application,
    ApplicationStatus,
    ApplicationType,
    Authority,
    CertificateStatus,
    EService,
    InsuredPerson,
    Insurer,
    LocalOffice,
    PersonRecord,
    Region,
    SealHolder,
)
from gateway.domain.values import Address, Contacts, DocumentType


class PopulationRegistry(Protocol):
    """The state population registry (upstream, SOAP)."""

    def find_person(self, document_type: DocumentType, fin: str) -> PersonRecord:
        """Raises PersonNotFoundUpstream, DocumentInvalid, UpstreamUnavailable/Timeout/Fault."""
        ...

    def ping(self) -> None:
        """Raises an UpstreamError when the registry cannot be reached (for health)."""
        ...


class SortField(StrEnum):
    APPLICATION_DATE = "APPLICATION_DATE"
    SSN_DATE = "SSN_DATE"
    SURNAME = "SURNAME"
    FIN = "FIN"
    STATUS = "STATUS"


@dataclass(frozen=True, slots=True)
class ApplicationQuery:
    """The registry search (Reyestr → Axtarış): all ten filters of the manual's §3.3."""

    insurer_voen: str
    application_type: ApplicationType | None = None
    fin: str | None = None
    surname: str | None = None
    name: str | None = None
    patronymic: str | None = None
    ssn: str | None = None
    ssn_date_from: date | None = None
    ssn_date_to: date | None = None
    application_date_from: date | None = None
    application_date_to: date | None = None
    certificate_status: CertificateStatus | None = None
    status: ApplicationStatus | None = None
    page: int = 1
    page_size: int = 20
    sort_field: SortField = SortField.APPLICATION_DATE
    descending: bool = True


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    items: Sequence[Application] = field(default_factory=tuple)


class InsurerRepository(Protocol):
    def get(self, voen: str) -> Insurer | None: ...
    def upsert(self, insurer: Insurer) -> None: ...
    def upsert_office(self, office: LocalOffice) -> None: ...
    def list_offices(self) -> Sequence[LocalOffice]: ...
    def upsert_region(self, region: Region) -> None: ...
    def region_named(self, name: str) -> Region | None: ...
    def has_regions(self) -> bool: ...


class EServiceRepository(Protocol):
    def list(self) -> Sequence[EService]: ...
    def get(self, code: str) -> EService | None: ...
    def upsert(self, eservice: EService) -> None: ...


class AuthorityRepository(Protocol):
    def add(self, authority: Authority) -> None: ...
    def get(self, authority_id: str) -> Authority | None: ...
    def update(self, authority: Authority) -> None: ...
    def list_for_insurer(self, voen: str) -> Sequence[Authority]: ...
    def list_for_person(self, voen: str, fin: str) -> Sequence[Authority]: ...
    def list_for_holder(self, fin: str) -> Sequence[Authority]: ...
    def seal_holder(self, voen: str, fin: str) -> SealHolder | None: ...
    def record_seal_holder(self, holder: SealHolder) -> None: ...
    def forget_seal_holder(self, voen: str, fin: str) -> None: ...


class ApplicationRepository(Protocol):
    def add(self, application: Application) -> None:
        """Stores the application with its whole history."""
        ...

    def get(self, application_id: str) -> Application | None: ...

    def get_for_update(self, application_id: str) -> Application | None:
        """The current state, locked against other writers until the unit of work ends."""
        ...

    def update(self, application: Application) -> None:
        """Stores the new state; history entries not yet stored are appended (never rewritten)."""
        ...

    def delete(self, application_id: str) -> None: ...
    def search(self, query: ApplicationQuery) -> Page: ...

    def list_by_status(self, status: ApplicationStatus, limit: int) -> Sequence[Application]:
        """Oldest first; used by the worker that finishes SUBMITTED applications."""
        ...

    def find_open_for_person(self, voen: str, fin: str) -> Sequence[Application]: ...

    def latest_registered_for_person(self, fin: str) -> Application | None:
        """The newest REGISTERED application for the FIN, of any insurer."""
        ...


@dataclass(frozen=True, slots=True)
class OpenApplication:
    """An application of the insurer for the FIN that is still DRAFT or SUBMITTED."""

    application_id: str
    status: ApplicationStatus


@dataclass(frozen=True, slots=True)
class PersonStanding:
    """What a new application of an insurer for a FIN runs into: the person's SSN, if issued,
    and that insurer's open applications for the FIN, oldest first."""

    insured: InsuredPerson | None
    open_applications: tuple[OpenApplication, ...]


class InsuredPersonRepository(Protocol):
    def get(self, fin: str) -> InsuredPerson | None: ...

    def standing(self, voen: str, fin: str) -> PersonStanding:
        """The person's SSN and the insurer's open applications for the FIN, in one read
        (the checks before every new application: one round trip, not two)."""
        ...

    def issue(
        self, *, fin: str, surname: str, name: str, patronymic: str | None, voen: str, on: date,
        actual_address: Address | None = None, contacts: Contacts | None = None,
    ) -> InsuredPerson:
        """Allocates the next SSN and stores the person, exactly once per FIN, with the actual
        address and contacts of the application that registers them (written once, with the
        row; storing that application then leaves the row alone).

        Race-safe across processes: the FIN is unique in the database; a concurrent second issue
        for the same FIN raises ``Conflict`` with code ``Client.Conflict.SsnExists``.
        """
        ...


class UnitOfWork(Protocol):
    """One transaction; ``commit()`` makes everything durable at once, leaving rolls back."""

    insurers: InsurerRepository
    eservices: EServiceRepository
    authorities: AuthorityRepository
    applications: ApplicationRepository
    insured_persons: InsuredPersonRepository

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


# --- One request, one transaction: the request ledger (idempotency + message log) ----------------


@dataclass(frozen=True, slots=True)
class RequestClaim:
    """What the ledger records for a request that has a sender and an X-Road id: ``key`` names
    (sender, id); ``content_digest`` is the digest of what was signed, without the envelope's
    volatile parts (Timestamp, signature), so a re-signed retry of the same content matches."""

    key: str
    content_digest: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The ledger's record of an id: the content it was used for, and the final answer when the
    request changed state (reads store none: a retry simply runs again)."""

    content_digest: str
    response: bytes | None
    http_status: int | None


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its answer, for the message log (bytes exactly as on the wire)."""

    request: bytes | None
    response: bytes
    message_id: str | None
    correlation_id: str
    actor_fin: str | None
    voen: str | None
    operation: str | None


class RequestRecord(Protocol):
    """One request's transaction, as the endpoint finishes it."""

    @property
    def wrote(self) -> bool:
        """True when the handler committed business writes (held, not yet durable)."""
        ...

    def commit(
        self,
        exchange: Exchange,
        *,
        claim: RequestClaim | None = None,
        answer: tuple[bytes, int] | None = None,
        keep_writes: bool = True,
    ) -> StoredAnswer | None:
        """Makes the handler's writes (unless ``keep_writes`` is false), the claim with the
        answer, and the log entries durable in one commit. When another copy of the request
        committed its claim first, nothing of this one is kept and that copy's record is
        returned. Raises ``StorageError`` when the commit fails (then nothing is kept)."""
        ...


class RequestLedger(Protocol):
    def lookup(self, key: str) -> StoredAnswer | None:
        """The live record of (sender, id), if any."""
        ...

    def begin(self) -> AbstractContextManager[RequestRecord]:
        """The scope of one request's transaction; left without ``commit`` it rolls back."""
        ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...


# --- Mobile signature (Asan İmza), upstream over ETSI TS 102 204 ------------------------------


@dataclass(frozen=True, slots=True)
class MobileOutstanding:
    """The holder has not answered on the phone yet: ask again later."""


@dataclass(frozen=True, slots=True)
class MobileSigned:
    """The phone signed. ``signature`` is the raw RSA PKCS#1 v1.5 value over the DigestInfo of
    the SHA-256 hash that was sent (an XML-DSig rsa-sha256 SignatureValue when that hash is a
    SignedInfo's); ``certificate_der`` is the signer's certificate as the service returned it.
    Neither is checked yet: verify the signature and the certificate before trusting them."""

    signature: bytes
    certificate_der: bytes


@dataclass(frozen=True, slots=True)
class MobileRefused:
    """The transaction ended without a signature. ``reason`` is the ETSI TS 102 204 status name
    (USER_CANCEL, EXPIRED_TRANSACTION, PIN_BLOCKED, NO_CERT_FOUND, ...), ``etsi_code`` its
    number (401, 208, 402, 422, ...)."""

    reason: str
    etsi_code: int


MobileStatus = MobileOutstanding | MobileSigned | MobileRefused


class MobileSignatureService(Protocol):
    """The mobile-signature service (Asan İmza; upstream, SOAP, asynchronous client-server)."""

    def start(self, phone: str, user_id: str, digest: bytes, display_text: str) -> str:
        """Asks the holder of ``phone`` (E.164) / ``user_id`` to sign the 32-byte SHA-256
        ``digest``, showing ``display_text``; returns the service's transaction id.

        Raises MobileSignatureRefused (an UpstreamError with code ``Client.Mobile.<Reason>``,
        e.g. unknown user, no certificate) or UpstreamUnavailable/Timeout/Fault.
        """
        ...

    def status(self, transaction_id: str) -> MobileStatus:
        """Where the transaction is now; refusals are results, not errors. Raises an
        UpstreamError only when the service cannot tell."""
        ...
