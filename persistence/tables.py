"""The schema, as SQLAlchemy 2 typed declarative classes (one class per table).

Repositories read through these classes (typed rows) and write with Core statements on their
tables (about twice as fast as the ORM unit of work for single-row inserts; see
``bench/bench_persistence.py``). Alembic's ``versions/`` (0001 and the later steps) create exactly
this schema; ``tests/persistence/test_migrations.py`` proves it with ``compare_metadata``.

Conventions:
* timestamps are stored in UTC (``UtcDateTime``: aware in, aware out, on both databases);
* enumerations are ``VARCHAR`` + a ``CHECK`` listing the domain enum's values (portable, and a
  new value is a one-line migration instead of an ``ALTER TYPE``);
* ``name_sort_key`` orders by name in the Azerbaijani alphabet (C < Ç, E < Ə, I < İ …) by plain
  code-point comparison (SQLite BINARY, PostgreSQL ``COLLATE "C"``), identically on both;
* ``*_folded`` columns hold ``gateway.domain.text.fold`` of the name beside them: the registry
  search matches a prefix of the folded value, which is correct for Azerbaijani İ/ı and uses a
  plain B-tree index (``text_pattern_ops`` on PostgreSQL so ``LIKE 'prefix%'`` can use it under
  any collation);
* append-only logs (status history, authority audit, message log) have surrogate integer keys
  that only grow.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from gateway.domain.mobile import MobileKind, MobileState
from gateway.domain.model import (
    ApplicationStatus,
    ApplicationType,
    AuthorityType,
    CertificateStatus,
    InsurerType,
)
from gateway.domain.values import DocumentType

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SSN serials on PostgreSQL; on SQLite the single-row ``ssn_counter`` table plays this role.
SSN_SEQUENCE_NAME = "ssn_serial_seq"


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC. Naive values are taken as UTC; reads are always aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        # SQLite has no time zone type: store the UTC wall time.
        return aware.replace(tzinfo=None) if dialect.name == "sqlite" else aware

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Integer autoincrement keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
AutoId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


def _one_of(column: str, values: type[StrEnum] | tuple[str, ...], name: str) -> CheckConstraint:
    allowed = tuple(v.value for v in values) if isinstance(values, type) else values
    listed = ", ".join(f"'{v}'" for v in allowed)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


class Direction(StrEnum):
    IN = "IN"
    OUT = "OUT"


class AuthorityEvent(StrEnum):
    GRANT = "GRANT"
    REVOKE = "REVOKE"
    CHANGE = "CHANGE"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


metadata = Base.metadata

ssn_sequence = Sequence(SSN_SEQUENCE_NAME, start=1, metadata=metadata)


class LocalOfficeRow(Base):
    """Local DSMF office (yerli şöbə)."""

    __tablename__ = "local_offices"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class RegionRow(Base):
    """The address code list: regions (cities of republican subordination and districts)."""

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    name_folded: Mapped[str] = mapped_column(String(100), unique=True)
    closed: Mapped[bool] = mapped_column(Boolean)


class DistrictRow(Base):
    """Districts (rayons) and cities of a region in the address code list."""

    __tablename__ = "districts"
    __table_args__ = (
        UniqueConstraint("region_code", "name_folded"),
    )

    code: Mapped[str] = mapped_column(String(24), primary_key=True)
    region_code: Mapped[str] = mapped_column(String(16), ForeignKey("regions.code"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    name_folded: Mapped[str] = mapped_column(String(100))


class InsurerRow(Base):
    """An insurer (sığortaedən)."""

    __tablename__ = "insurers"
    __table_args__ = (_one_of("insurer_type", InsurerType, "insurer_type"),)

    voen: Mapped[str] = mapped_column(String(10), primary_key=True)
    full_name: Mapped[str] = mapped_column(String(300))
    insurer_type: Mapped[str] = mapped_column(String(32))
    registration_number: Mapped[str] = mapped_column(String(32), unique=True)
    responsible_person: Mapped[str] = mapped_column(String(200))
    local_office_code: Mapped[str] = mapped_column(
        String(16), ForeignKey("local_offices.code"), index=True
    )


class EServiceRow(Base):
    """An e-service of the Fund for which authority can be granted."""

    __tablename__ = "eservices"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    position: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class InsuredPersonRow(Base):
    """A person with a personal account (fərdi hesab) and SSN; one row per FIN, ever.

    ``actual_address``/``contacts`` are the person's *current* values, kept up to date when an
    initial registration or a correction reaches REGISTERED (the corrections keep the old ones).
    """

    __tablename__ = "insured_persons"

    fin: Mapped[str] = mapped_column(String(7), primary_key=True)
    ssn: Mapped[str] = mapped_column(String(24), unique=True)
    ssn_date: Mapped[date] = mapped_column(Date)
    surname: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    patronymic: Mapped[str | None] = mapped_column(String(100))
    surname_folded: Mapped[str] = mapped_column(String(100))
    name_folded: Mapped[str] = mapped_column(String(100))
    patronymic_folded: Mapped[str | None] = mapped_column(String(100))
    registered_by_voen: Mapped[str] = mapped_column(
        String(10), ForeignKey("insurers.voen"), index=True
    )
    actual_address: Mapped[dict[str, Any] | None] = mapped_column(Json)
    contacts: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SsnCounterRow(Base):
    """Single-row SSN serial counter, used on SQLite only (PostgreSQL has ``ssn_serial_seq``).

    Updated inside the issuing transaction: SQLite serialises writers, so the increment is
    race-free across processes and rolled back with the transaction (no gaps)."""

    __tablename__ = "ssn_counter"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_serial: Mapped[int] = mapped_column(BigInteger)


class ApplicationRow(Base):
    """An application (ərizə) of an insurer for one person.

    The person's identity data are a JSON snapshot of what the population registry returned;
    names are also columns (and folded columns) because the registry is searched by them.
    A CORRECTION stores the new actual address and contacts in the ordinary columns and what
    they replaced in ``previous_values``.
    """

    __tablename__ = "applications"
    __table_args__ = (
        _one_of("application_type", ApplicationType, "application_type"),
        _one_of("status", ApplicationStatus, "status"),
        _one_of("document_type", DocumentType, "document_type"),
        _one_of("certificate_status", CertificateStatus, "certificate_status"),
        # The registry search: one index per filter, each led by the insurer (every search is
        # restricted to one), so a filter never walks a big insurer's rows. The default listing
        # (newest first, then id) reads ix_applications_insurer_created_id backwards: on SQLite
        # in exactly that order; on PostgreSQL the id tiebreaker is COLLATE "C", which no
        # index column can declare portably, so the planner finishes with an incremental sort
        # over equal timestamps (a handful of rows at most). Range filters (name prefixes, SSN
        # date) carry the sort keys too: their matches are sorted from the index alone, without
        # reading a table row per match (40x at thousands of matches).
        Index("ix_applications_insurer_created_id", "insurer_voen", "created_at",
              "application_id"),
        Index("ix_applications_insurer_fin", "insurer_voen", "fin", "created_at",
              "application_id"),
        Index(
            "ix_applications_insurer_surname",
            "insurer_voen",
            "surname_folded",
            "created_at",
            "application_id",
            postgresql_ops={"surname_folded": "text_pattern_ops"},
        ),
        Index(
            "ix_applications_insurer_name",
            "insurer_voen",
            "name_folded",
            "created_at",
            "application_id",
            postgresql_ops={"name_folded": "text_pattern_ops"},
        ),
        Index(
            "ix_applications_insurer_patronymic",
            "insurer_voen",
            "patronymic_folded",
            "created_at",
            "application_id",
            postgresql_ops={"patronymic_folded": "text_pattern_ops"},
        ),
        Index("ix_applications_insurer_ssn", "insurer_voen", "ssn", "created_at",
              "application_id"),
        Index("ix_applications_insurer_ssn_date", "insurer_voen", "ssn_date", "created_at",
              "application_id"),
        # Equality filters with the default order after them, so their first page is the
        # index's first entries however rare the value, and no planner statistics can make
        # SQLite prefer walking the insurer's rows in date order (it did for SSN at 1 M).
        Index("ix_applications_insurer_status_created", "insurer_voen", "status", "created_at",
              "application_id"),
        Index("ix_applications_insurer_certificate", "insurer_voen", "certificate_status",
              "created_at", "application_id"),
        Index("ix_applications_insurer_type", "insurer_voen", "application_type", "created_at",
              "application_id"),
        Index("ix_applications_status_created", "status", "created_at"),
        # The person's current data is the latest registered application for the FIN, whichever
        # insurer sent it (GetInsuredPerson, SubmitCorrection).
        Index("ix_applications_fin_status_created", "fin", "status", "created_at"),
    )

    application_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    insurer_voen: Mapped[str] = mapped_column(String(10), ForeignKey("insurers.voen"))
    application_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    document_type: Mapped[str] = mapped_column(String(32))
    fin: Mapped[str] = mapped_column(String(7))
    surname: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(100))
    patronymic: Mapped[str | None] = mapped_column(String(100))
    surname_folded: Mapped[str | None] = mapped_column(String(100))
    name_folded: Mapped[str | None] = mapped_column(String(100))
    patronymic_folded: Mapped[str | None] = mapped_column(String(100))
    # gateway.domain.text.collation_key of "surname name patronymic": Azerbaijani order.
    name_sort_key: Mapped[str | None] = mapped_column(String(320))
    person: Mapped[dict[str, Any] | None] = mapped_column(Json)
    registration_address: Mapped[dict[str, Any] | None] = mapped_column(Json)
    actual_address_differs: Mapped[bool] = mapped_column(Boolean)
    actual_address: Mapped[dict[str, Any] | None] = mapped_column(Json)
    mobile_phone: Mapped[str | None] = mapped_column(String(20))
    landline_phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    previous_values: Mapped[dict[str, Any] | None] = mapped_column(Json)
    ssn: Mapped[str | None] = mapped_column(String(24))
    ssn_date: Mapped[date | None] = mapped_column(Date)
    certificate_status: Mapped[str] = mapped_column(String(16))
    draft_reason: Mapped[str | None] = mapped_column(Text)
    signed_by_fin: Mapped[str | None] = mapped_column(String(7))
    signed_by_name: Mapped[str | None] = mapped_column(String(300))
    signed_by_credential: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer)


class StatusHistoryRow(Base):
    """Append-only: one row per status change of an application, ``seq`` 0, 1, 2, …"""

    __tablename__ = "application_status_history"
    __table_args__ = (
        UniqueConstraint("application_id", "seq", name="uq_application_status_history_seq"),
        _one_of("status", ApplicationStatus, "status"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("applications.application_id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_fin: Mapped[str | None] = mapped_column(String(7))
    note: Mapped[str | None] = mapped_column(Text)


class AuthorityRow(Base):
    """Authority (səlahiyyət) granted by a seal holder, with its grant/revoke audit columns."""

    __tablename__ = "authorities"
    __table_args__ = (
        _one_of("authority_type", AuthorityType, "authority_type"),
        Index("ix_authorities_insurer_fin", "insurer_voen", "fin"),
        # A card signature binds the holder's authorities of every insurer (by FIN).
        Index("ix_authorities_fin", "fin"),
    )

    authority_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    insurer_voen: Mapped[str] = mapped_column(String(10), ForeignKey("insurers.voen"))
    eservice_code: Mapped[str] = mapped_column(String(64), ForeignKey("eservices.code"))
    authority_type: Mapped[str] = mapped_column(String(32))
    fin: Mapped[str] = mapped_column(String(7))
    surname: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    patronymic: Mapped[str | None] = mapped_column(String(100))
    card_number: Mapped[str | None] = mapped_column(String(100))
    asan_phone: Mapped[str | None] = mapped_column(String(20))
    asan_user_id: Mapped[str | None] = mapped_column(String(64))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    granted_by_fin: Mapped[str] = mapped_column(String(7))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by_fin: Mapped[str | None] = mapped_column(String(7))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    bound_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    holder_not_after: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SealHolderRow(Base):
    """People known to hold an insurer's seal authority without their certificate at hand (the
    e-Gov portal acts for them with X-Road userId): learned from their seal-card sign-ins, or
    from the insurer reference data."""

    __tablename__ = "seal_holders"

    insurer_voen: Mapped[str] = mapped_column(
        String(10), ForeignKey("insurers.voen"), primary_key=True
    )
    fin: Mapped[str] = mapped_column(String(7), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(16))
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    not_after: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuthorityAuditRow(Base):
    """Append-only log of grant / revoke / change events on authorities."""

    __tablename__ = "authority_audit"
    __table_args__ = (_one_of("event", AuthorityEvent, "event"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    authority_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("authorities.authority_id"), index=True
    )
    insurer_voen: Mapped[str] = mapped_column(String(10))
    event: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_fin: Mapped[str | None] = mapped_column(String(7))
    detail: Mapped[dict[str, Any] | None] = mapped_column(Json)


class MobileTransactionRow(Base):
    """An Asan İmza transaction: sign-in (LOGIN) or signing of an application (SIGNING)."""

    __tablename__ = "mobile_transactions"
    __table_args__ = (
        _one_of("kind", MobileKind, "kind"),
        _one_of("state", MobileState, "state"),
        Index("ix_mobile_transactions_state_expires", "state", "expires_at"),
    )

    transaction_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str] = mapped_column(String(64))
    application_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("applications.application_id", ondelete="SET NULL")
    )
    voen: Mapped[str | None] = mapped_column(String(10))
    fin: Mapped[str | None] = mapped_column(String(7))
    state: Mapped[str] = mapped_column(String(16))
    verification_code: Mapped[str] = mapped_column(String(8))
    data_hash: Mapped[str] = mapped_column(String(128))
    pending: Mapped[bytes | None] = mapped_column(LargeBinary)
    upstream_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    certificate: Mapped[bytes | None] = mapped_column(LargeBinary)
    fault_code: Mapped[str | None] = mapped_column(String(64))
    fault_reason: Mapped[str | None] = mapped_column(Text)


class SessionRow(Base):
    """A signed-in session (after an Asan İmza login). Only the token's SHA-256 is stored."""

    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    fin: Mapped[str] = mapped_column(String(7))
    voen: Mapped[str | None] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(300))
    credential: Mapped[str] = mapped_column(String(200))
    seal_authority: Mapped[bool] = mapped_column(Boolean)
    role: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: The signer's certificate (PEM), re-checked against revocation while the session is used.
    certificate: Mapped[str | None] = mapped_column(Text)


class ReplayCacheRow(Base):
    """Message ids seen within their validity window (WS-Security replay protection)."""

    __tablename__ = "replay_cache"

    message_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class RequestLedgerRow(Base):
    """One row per (sender, X-Road id) within its lifetime: the digest of the signed content it
    was used for, and for a request that changed state its final signed answer and HTTP status
    (returned again to a retry of the same content). Written in the request's own transaction."""

    __tablename__ = "request_ledger"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_digest: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class WorkerLeaseRow(Base):
    """Who runs a background job now (e.g. finishing SUBMITTED applications), until when: one
    holder at a time across every process and host; a crashed holder's lease just runs out."""

    __tablename__ = "worker_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MessageLogRow(Base):
    """Every signed request and response exactly as received / sent, hash-chained.

    ``chain_hash = sha256(prev_chain_hash || sha256(payload) || canonical metadata)``; see
    ``persistence.message_log``.
    """

    __tablename__ = "message_log"
    __table_args__ = (_one_of("direction", Direction, "direction"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    direction: Mapped[str] = mapped_column(String(3))
    message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    correlation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    actor_fin: Mapped[str | None] = mapped_column(String(7))
    voen: Mapped[str | None] = mapped_column(String(10))
    operation: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    chain_hash: Mapped[str] = mapped_column(String(64), unique=True)
