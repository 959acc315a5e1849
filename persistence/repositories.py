"""Repositories: rows ⇄ the frozen domain dataclasses, one class per port of
``gateway.services.ports``.

Each repository works inside the session (one transaction) of its ``SqlUnitOfWork``; none commits.
Reads go through the typed declarative classes; writes are Core statements on their tables.
Every public method translates SQLAlchemy errors (``persistence.errors``).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Integer,
    Result,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    select,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.orm import Session

from gateway.domain.errors import Conflict, NotFound, ValidationFailed
from gateway.domain.model import (
    Application,
    ApplicationStatus,
    ApplicationType,
    Authority,
    AuthorityType,
    CertificateStatus,
    District,
    EService,
    InsuredPerson,
    Insurer,
    InsurerType,
    LocalOffice,
    Region,
    SealHolder,
    Signatory,
    StatusChange,
)
from gateway.domain.ssn import SsnFormat
from gateway.domain.text import collation_key, fold
from gateway.domain.values import Address, Contacts, DocumentType
from gateway.services.ports import (
    ApplicationQuery,
    OpenApplication,
    Page,
    PersonStanding,
    SortField,
)
from persistence import codec
from persistence.db import StorageOptions
from persistence.driver import prepared
from persistence.errors import (
    SSN_EXISTS,
    ConcurrentUpdate,
    HistoryRewritten,
    SsnSerialsExhausted,
    StorageError,
    translates,
)
from persistence.tables import (
    ApplicationRow,
    AuthorityAuditRow,
    AuthorityEvent,
    AuthorityRow,
    DistrictRow,
    EServiceRow,
    InsuredPersonRow,
    InsurerRow,
    LocalOfficeRow,
    RegionRow,
    SealHolderRow,
    SsnCounterRow,
    StatusHistoryRow,
    ssn_sequence,
)

MAX_PAGE_SIZE = 200
OPEN_STATUSES = (ApplicationStatus.DRAFT.value, ApplicationStatus.SUBMITTED.value)
_MAX_CODE_POINT = "\U0010ffff"  # sorts after every character (BINARY collation = code points)
_STATUS_RANK = {status.value: rank for rank, status in enumerate(ApplicationStatus)}


def _now() -> datetime:
    return datetime.now(UTC)


def _table(row_class: type[Any]) -> Table:
    table = row_class.__table__
    assert isinstance(table, Table)
    return table


def dialect_insert(session: Session, table: Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return pg_dialect.insert(table)
    return sqlite_dialect.insert(table)


def run(session: Session, statement: Any, values: dict[str, Any] | None = None, *,
        keys: Sequence[str] | None = None) -> list[Any]:
    """A request-path statement on the driver's cursor of the session's connection
    (``persistence.driver``): the rows it returns, or ``[]``."""
    conn = session.connection()
    return prepared(statement, conn.dialect, keys).run(conn, values)


def upsert(session: Session, table: Table, values: dict[str, Any], keys: Sequence[str]) -> None:
    """Insert, or update the non-key columns of the existing row (idempotent)."""
    stmt = dialect_insert(session, table)
    changes = {k: stmt.excluded[k] for k in values if k not in keys}
    session.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=changes), values)


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE / DELETE. (Not INSERT: psycopg reports -1 there unless asked
    to preserve it; ``INSERT … ON CONFLICT DO NOTHING RETURNING`` tells what was inserted.)"""
    return result.rowcount if isinstance(result, CursorResult) else 0


def _escape_like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --------------------------------------------------------------------------------------------
# Insurers, offices, e-services
# --------------------------------------------------------------------------------------------


class SqlInsurerRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    @translates
    def get(self, voen: str) -> Insurer | None:
        found = self._session.execute(
            select(InsurerRow, LocalOfficeRow)
            .join(LocalOfficeRow, LocalOfficeRow.code == InsurerRow.local_office_code)
            .where(InsurerRow.voen == voen)
        ).one_or_none()
        if found is None:
            return None
        insurer, office = found
        return Insurer(
            voen=insurer.voen,
            full_name=insurer.full_name,
            insurer_type=InsurerType(insurer.insurer_type),
            registration_number=insurer.registration_number,
            responsible_person=insurer.responsible_person,
            local_office=LocalOffice(code=office.code, name=office.name),
        )

    @translates
    def upsert(self, insurer: Insurer) -> None:
        """Stores the insurer and (upserts) its local office."""
        self.upsert_office(insurer.local_office)
        upsert(
            self._session,
            _table(InsurerRow),
            {
                "voen": insurer.voen,
                "full_name": insurer.full_name,
                "insurer_type": insurer.insurer_type.value,
                "registration_number": insurer.registration_number,
                "responsible_person": insurer.responsible_person,
                "local_office_code": insurer.local_office.code,
            },
            ["voen"],
        )

    @translates
    def upsert_office(self, office: LocalOffice) -> None:
        upsert(
            self._session,
            _table(LocalOfficeRow),
            {"code": office.code, "name": office.name},
            ["code"],
        )

    @translates
    def get_office(self, code: str) -> LocalOffice | None:
        row = self._session.get(LocalOfficeRow, code)
        return LocalOffice(code=row.code, name=row.name) if row is not None else None

    @translates
    def list_offices(self) -> Sequence[LocalOffice]:
        rows = self._session.scalars(select(LocalOfficeRow).order_by(LocalOfficeRow.code))
        return [LocalOffice(code=r.code, name=r.name) for r in rows]

    @translates
    def upsert_region(self, region: Region) -> None:
        """The region and exactly its districts (a district no longer listed is removed)."""
        upsert(self._session, _table(RegionRow), {
            "code": region.code, "name": region.name, "name_folded": fold(region.name),
            "closed": region.closed,
        }, ["code"])
        districts = _table(DistrictRow)
        self._session.execute(delete(districts).where(districts.c.region_code == region.code))
        for district in region.districts:
            self._session.execute(insert(districts), {
                "code": district.code, "region_code": region.code, "name": district.name,
                "name_folded": fold(district.name),
            })

    @translates
    def region_named(self, name: str) -> Region | None:
        """The region whose name matches ``name`` (case- and spacing-insensitive)."""
        row = self._session.scalar(
            select(RegionRow).where(RegionRow.name_folded == fold(" ".join(name.split())))
        )
        if row is None:
            return None
        districts = self._session.scalars(
            select(DistrictRow).where(DistrictRow.region_code == row.code)
            .order_by(DistrictRow.code)
        )
        return Region(code=row.code, name=row.name, closed=row.closed,
                      districts=tuple(District(code=d.code, name=d.name) for d in districts))

    @translates
    def has_regions(self) -> bool:
        return self._session.scalar(select(RegionRow.code).limit(1)) is not None


class SqlEServiceRepository:
    """The e-service catalogue, in catalogue order (``position``; new codes go last)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @translates
    def list(self) -> Sequence[EService]:
        rows = self._session.scalars(
            select(EServiceRow).order_by(EServiceRow.position, EServiceRow.code)
        )
        return [EService(code=r.code, name=r.name) for r in rows]

    @translates
    def get(self, code: str) -> EService | None:
        row = self._session.get(EServiceRow, code)
        return EService(code=row.code, name=row.name) if row is not None else None

    @translates
    def upsert(self, eservice: EService) -> None:
        table = _table(EServiceRow)
        changed = self._session.execute(
            update(table).where(table.c.code == eservice.code).values(name=eservice.name)
        )
        if rowcount(changed) == 0:
            position = self._session.scalar(select(func.coalesce(func.max(table.c.position), 0)))
            self._session.execute(
                insert(table).values(
                    code=eservice.code, name=eservice.name, position=int(position or 0) + 1
                )
            )


# --------------------------------------------------------------------------------------------
# Authorities
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthorityAuditEntry:
    """One grant / revoke / change event on an authority."""

    entry_id: int
    authority_id: str
    insurer_voen: str
    event: AuthorityEvent
    at: datetime
    actor_fin: str | None
    detail: dict[str, Any] | None


def _authority_values(a: Authority) -> dict[str, Any]:
    return {
        "authority_id": a.authority_id,
        "insurer_voen": a.insurer_voen,
        "eservice_code": a.eservice_code,
        "authority_type": a.authority_type.value,
        "fin": a.fin,
        "surname": a.surname,
        "name": a.name,
        "patronymic": a.patronymic,
        "card_number": a.card_number,
        "asan_phone": a.asan_phone,
        "asan_user_id": a.asan_user_id,
        "valid_from": a.valid_from,
        "valid_to": a.valid_to,
        "granted_at": a.granted_at,
        "granted_by_fin": a.granted_by_fin,
        "revoked_at": a.revoked_at,
        "revoked_by_fin": a.revoked_by_fin,
        "revoke_reason": a.revoke_reason,
        "bound_at": a.bound_at,
        "holder_not_after": a.holder_not_after,
    }


def _authority(row: Any) -> Authority:  # an AuthorityRow or a row of its table
    return Authority(
        authority_id=row.authority_id,
        insurer_voen=row.insurer_voen,
        eservice_code=row.eservice_code,
        authority_type=AuthorityType(row.authority_type),
        fin=row.fin,
        surname=row.surname,
        name=row.name,
        patronymic=row.patronymic,
        granted_at=row.granted_at,
        granted_by_fin=row.granted_by_fin,
        card_number=row.card_number,
        asan_phone=row.asan_phone,
        asan_user_id=row.asan_user_id,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        revoked_at=row.revoked_at,
        revoked_by_fin=row.revoked_by_fin,
        revoke_reason=row.revoke_reason,
        bound_at=row.bound_at,
        holder_not_after=row.holder_not_after,
    )


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


class SqlAuthorityRepository:
    """Authorities plus their append-only audit trail (``authority_audit``)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @translates
    def add(self, authority: Authority) -> None:
        values = _authority_values(authority)
        self._session.execute(insert(_table(AuthorityRow)), values)
        detail = {
            k: _jsonable(values[k])
            for k in (
                "eservice_code", "authority_type", "fin", "card_number", "asan_phone",
                "valid_from", "valid_to",
            )
        }
        self._audit(authority, AuthorityEvent.GRANT, authority.granted_at,
                    authority.granted_by_fin, detail)
        if authority.revoked_at is not None:
            self._audit(authority, AuthorityEvent.REVOKE, authority.revoked_at,
                        authority.revoked_by_fin, {"reason": authority.revoke_reason})

    @translates
    def get(self, authority_id: str) -> Authority | None:
        row = self._session.scalar(
            select(AuthorityRow)
            .where(AuthorityRow.authority_id == authority_id)
            .execution_options(populate_existing=True)
        )
        return _authority(row) if row is not None else None

    @translates
    def update(self, authority: Authority) -> None:
        """Stores the new state; a newly set ``revoked_at`` is audited as REVOKE, any other
        difference as CHANGE (with old and new values)."""
        before = self.get(authority.authority_id)
        if before is None:
            raise NotFound(
                f"no authority {authority.authority_id}", code="Client.NotFound.Authority"
            )
        old, new = _authority_values(before), _authority_values(authority)
        if old == new:
            return
        table = _table(AuthorityRow)
        self._session.execute(
            update(table).where(table.c.authority_id == authority.authority_id), new
        )
        if before.revoked_at is None and authority.revoked_at is not None:
            self._audit(authority, AuthorityEvent.REVOKE, authority.revoked_at,
                        authority.revoked_by_fin, {"reason": authority.revoke_reason})
        others = {
            k: {"old": _jsonable(old[k]), "new": _jsonable(new[k])}
            for k in new
            if old[k] != new[k] and k not in ("revoked_at", "revoked_by_fin", "revoke_reason")
        }
        if others:
            self._audit(authority, AuthorityEvent.CHANGE, _now(), None, others)

    @translates
    def list_for_insurer(self, voen: str) -> Sequence[Authority]:
        rows = self._session.scalars(
            select(AuthorityRow)
            .where(AuthorityRow.insurer_voen == voen)
            .order_by(AuthorityRow.granted_at, AuthorityRow.authority_id)
            .execution_options(populate_existing=True)
        )
        return [_authority(r) for r in rows]

    @translates
    def list_for_person(self, voen: str, fin: str) -> Sequence[Authority]:
        # Authorization reads this on every request of a signer without seal authority: a
        # statement on the driver's cursor (persistence.driver), not an ORM query (issue #10).
        return [_authority(r) for r in run(self._session, _authorities_of_person(),
                                           {"voen": voen, "fin": fin})]

    @translates
    def list_for_holder(self, fin: str) -> Sequence[Authority]:
        """The person's authorities from every insurer (to bind them to their card)."""
        rows = self._session.scalars(
            select(AuthorityRow)
            .where(AuthorityRow.fin == fin)
            .order_by(AuthorityRow.granted_at, AuthorityRow.authority_id)
            .execution_options(populate_existing=True)
        )
        return [_authority(r) for r in rows]

    @translates
    def seal_holder(self, voen: str, fin: str) -> SealHolder | None:
        # Read by the authorization of a trusted system's request (see list_for_person).
        rows = run(self._session, _seal_holder(), {"voen": voen, "fin": fin})
        if not rows:
            return None
        row = rows[0]
        return SealHolder(insurer_voen=row.insurer_voen, fin=row.fin, name=row.name,
                          source=row.source, seen_at=row.seen_at, not_after=row.not_after)

    @translates
    def record_seal_holder(self, holder: SealHolder) -> None:
        upsert(self._session, _table(SealHolderRow), {
            "insurer_voen": holder.insurer_voen, "fin": holder.fin, "name": holder.name,
            "source": holder.source, "seen_at": holder.seen_at, "not_after": holder.not_after,
        }, ("insurer_voen", "fin"))

    @translates
    def forget_seal_holder(self, voen: str, fin: str) -> None:
        table = _table(SealHolderRow)
        self._session.execute(
            delete(table).where(table.c.insurer_voen == voen, table.c.fin == fin)
        )

    @translates
    def audit_trail(self, authority_id: str) -> Sequence[AuthorityAuditEntry]:
        rows = self._session.scalars(
            select(AuthorityAuditRow)
            .where(AuthorityAuditRow.authority_id == authority_id)
            .order_by(AuthorityAuditRow.id)
        )
        return [
            AuthorityAuditEntry(
                entry_id=r.id,
                authority_id=r.authority_id,
                insurer_voen=r.insurer_voen,
                event=AuthorityEvent(r.event),
                at=r.at,
                actor_fin=r.actor_fin,
                detail=r.detail,
            )
            for r in rows
        ]

    def _audit(
        self,
        authority: Authority,
        event: AuthorityEvent,
        at: datetime,
        actor_fin: str | None,
        detail: dict[str, Any] | None,
    ) -> None:
        self._session.execute(
            insert(_table(AuthorityAuditRow)),
            {
                "authority_id": authority.authority_id,
                "insurer_voen": authority.insurer_voen,
                "event": event.value,
                "at": at,
                "actor_fin": actor_fin,
                "detail": detail,
            },
        )


# --------------------------------------------------------------------------------------------
# Applications
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CorrectionBaseline:
    """What a registered CORRECTION replaced: the person's previous actual address and contacts
    (``None`` where the person had none on record)."""

    actual_address: Address | None
    contacts: Contacts | None


def _effective_actual_address(app: Application) -> Address | None:
    if app.actual_address_differs and app.actual_address is not None:
        return app.actual_address
    return app.actual_address or app.registration_address


def _contacts_columns(contacts: Contacts | None) -> dict[str, Any]:
    return {
        "mobile_phone": contacts.mobile_phone if contacts else None,
        "landline_phone": contacts.landline_phone if contacts else None,
        "email": contacts.email if contacts else None,
    }


def _state_values(app: Application) -> dict[str, Any]:
    """The columns an update may change (everything but the key, owner and creation time)."""
    signed = app.signed_by
    return {
        "application_type": app.application_type.value,
        "status": app.status.value,
        "document_type": app.document_type.value,
        "fin": app.fin,
        "person": codec.person_to_json(app.person),
        "registration_address": codec.address_to_json(app.registration_address),
        "actual_address_differs": app.actual_address_differs,
        "actual_address": codec.address_to_json(app.actual_address),
        **_contacts_columns(app.contacts),
        "ssn": app.ssn,
        "ssn_date": app.ssn_date,
        "certificate_status": app.certificate_status.value,
        "draft_reason": app.draft_reason,
        "signed_by_fin": signed.fin if signed else None,
        "signed_by_name": signed.name if signed else None,
        "signed_by_credential": signed.credential if signed else None,
    }


# A history row's columns besides its application's id (``id`` is the database's).
HISTORY_COLUMNS = ("seq", "status", "at", "actor_fin", "note")


def _history_values(application_id: str, seq: int, change: StatusChange) -> dict[str, Any]:
    return {
        "application_id": application_id,
        "seq": seq,
        "status": change.status.value,
        "at": change.at,
        "actor_fin": change.actor_fin,
        "note": change.note,
    }


def _to_application(row: Any, history: Sequence[Any]) -> Application:
    contacts = None
    if row.mobile_phone or row.landline_phone or row.email:
        contacts = Contacts(
            mobile_phone=row.mobile_phone, landline_phone=row.landline_phone, email=row.email
        )
    signed_by = None
    if row.signed_by_name is not None:
        signed_by = Signatory(
            fin=row.signed_by_fin,
            name=row.signed_by_name,
            credential=row.signed_by_credential or "",
        )
    return Application(
        application_id=row.application_id,
        insurer_voen=row.insurer_voen,
        application_type=ApplicationType(row.application_type),
        status=ApplicationStatus(row.status),
        document_type=DocumentType(row.document_type),
        fin=row.fin,
        created_at=row.created_at,
        person=codec.person_from_json(row.person),
        registration_address=codec.address_from_json(row.registration_address),
        actual_address_differs=row.actual_address_differs,
        actual_address=codec.address_from_json(row.actual_address),
        contacts=contacts,
        ssn=row.ssn,
        ssn_date=row.ssn_date,
        certificate_status=CertificateStatus(row.certificate_status),
        draft_reason=row.draft_reason,
        signed_by=signed_by,
        history=tuple(
            StatusChange(
                status=ApplicationStatus(h.status), at=h.at, actor_fin=h.actor_fin, note=h.note
            )
            for h in history
        ),
    )


@dataclass(frozen=True, slots=True)
class _Seen:
    version: int
    status: str
    insurer_voen: str
    history_length: int


class SqlApplicationRepository:
    """Applications with their append-only status history.

    Optimistic locking: ``get``/``search``/``list_*`` remember the ``version`` they read;
    ``update`` writes only if the row still has that version (else ``ConcurrentUpdate``), so two
    workers finishing the same application cannot both win. ``update`` of an application not
    read in this unit of work locks nothing and uses the current version.

    Names: taken from ``application.person``; when an application has no person snapshot (a
    correction may carry only the new data), from the insured person with that FIN.
    """

    def __init__(self, session: Session, options: StorageOptions,
                 issued: dict[str, tuple[Any, Any]] | None = None) -> None:
        self._session = session
        self._options = options
        # Insured persons issued in this unit of work (shared with its insured-person
        # repository): what their row already holds need not be read and written again.
        self._issued = issued if issued is not None else {}
        # What this unit of work last read or wrote of each application: the optimistic lock's
        # expected version, and what update() would otherwise have to read again.
        self._seen: dict[str, _Seen] = {}

    # ----------------------------------------------------------------------------- writes

    @translates
    def add(self, application: Application) -> None:
        """Stores the application with its whole history."""
        now = _now()
        values = {
            "application_id": application.application_id,
            "insurer_voen": application.insurer_voen,
            "created_at": application.created_at,
            "updated_at": now,
            "version": 1,
            "previous_values": None,
            **_state_values(application),
            **self._names(application, required=True),
        }
        if application.status is ApplicationStatus.REGISTERED:
            values["previous_values"] = self._on_registered(application)
        if self._session.get_bind().dialect.name == "postgresql" and application.history:
            # The row and its history in one statement: one round trip, not two.
            statement = _insert_application_with_history(tuple(values),
                                                         len(application.history))
            for n, change in enumerate(application.history):
                for key, value in _history_values(application.application_id, n,
                                                  change).items():
                    values[f"{key}_{n}"] = value
            run(self._session, statement, values)
        else:
            run(self._session, _insert_application(), values, keys=tuple(values))
            self._append_history(application, 0)
        self._seen[application.application_id] = _Seen(
            1, application.status.value, application.insurer_voen, len(application.history)
        )

    @translates
    def update(self, application: Application) -> None:
        """Stores the new state; history entries not yet stored are appended."""
        app_id = application.application_id
        table = _table(ApplicationRow)
        current = self._seen.get(app_id) or self._read_seen(app_id)
        if current.insurer_voen != application.insurer_voen:
            raise ConcurrentUpdate(f"application {app_id} belongs to another insurer")
        expected, stored = current.version, current.history_length
        if len(application.history) < stored:
            raise HistoryRewritten(
                f"application {app_id}: {stored} history entries stored, "
                f"{len(application.history)} given; history is append-only"
            )
        values: dict[str, Any] = {
            **_state_values(application),
            **self._names(application, required=False),
            "updated_at": _now(),
            "version": expected + 1,
        }
        if (
            application.status is ApplicationStatus.REGISTERED
            and current.status != ApplicationStatus.REGISTERED.value
        ):
            values["previous_values"] = self._on_registered(application)
        result = self._session.execute(
            update(table).where(table.c.application_id == app_id, table.c.version == expected),
            values,
        )
        if rowcount(result) != 1:
            raise ConcurrentUpdate(
                f"application {app_id} was changed by another transaction; reload and retry"
            )
        self._append_history(application, stored)
        self._seen[app_id] = _Seen(
            expected + 1, application.status.value, application.insurer_voen,
            len(application.history),
        )

    @translates
    def delete(self, application_id: str) -> None:
        """Deletes the application and its history (drafts only, by the service's rule)."""
        table = _table(ApplicationRow)
        result = self._session.execute(
            delete(table).where(table.c.application_id == application_id)
        )
        if rowcount(result) == 0:
            raise NotFound(f"no application {application_id}", code="Client.NotFound.Application")
        self._seen.pop(application_id, None)

    # ----------------------------------------------------------------------------- reads

    @translates
    def get(self, application_id: str) -> Application | None:
        found = self._load(
            select(_table(ApplicationRow)).where(ApplicationRow.application_id == application_id)
        )
        return found[0] if found else None

    @translates
    def get_for_update(self, application_id: str) -> Application | None:
        """The current state, locked until the unit of work ends (``FOR UPDATE`` on
        PostgreSQL; SQLite's write transactions are exclusive anyway): a writer that decides
        from this state cannot be overtaken by another one."""
        found = self._load(
            select(_table(ApplicationRow))
            .where(ApplicationRow.application_id == application_id)
            .with_for_update()
        )
        return found[0] if found else None

    @translates
    def previous_values(self, application_id: str) -> CorrectionBaseline | None:
        """For a registered CORRECTION: the values it replaced; otherwise ``None``."""
        data = self._session.scalar(
            select(ApplicationRow.previous_values).where(
                ApplicationRow.application_id == application_id
            )
        )
        if data is None:
            return None
        return CorrectionBaseline(
            actual_address=codec.address_from_json(data.get("actual_address")),
            contacts=codec.contacts_from_json(data.get("contacts")),
        )

    @translates
    def list_by_status(self, status: ApplicationStatus, limit: int) -> Sequence[Application]:
        """Oldest first. On PostgreSQL the rows are locked (``FOR UPDATE SKIP LOCKED``) until
        the unit of work ends, so several workers share the queue without taking the same row;
        SQLite serialises writers anyway."""
        stmt = (
            select(_table(ApplicationRow))
            .where(ApplicationRow.status == status.value)
            .order_by(ApplicationRow.created_at, ApplicationRow.application_id)
            .limit(max(0, limit))
        )
        if self._session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return self._load(stmt)

    @translates
    def find_open_for_person(self, voen: str, fin: str) -> Sequence[Application]:
        """DRAFT and SUBMITTED applications of this insurer for this FIN, oldest first."""
        return self._loaded(run(self._session, _open_for_person(), {"voen": voen, "fin": fin}))

    @translates
    def latest_registered_for_person(self, fin: str) -> Application | None:
        """The newest REGISTERED application (initial or correction) for this FIN, of any
        insurer: it holds the person's current data."""
        found = self._load(
            select(_table(ApplicationRow))
            .where(
                ApplicationRow.fin == fin,
                ApplicationRow.status == ApplicationStatus.REGISTERED.value,
            )
            .order_by(ApplicationRow.created_at.desc(), ApplicationRow.application_id.desc())
            .limit(1)
        )
        return found[0] if found else None

    @translates
    def search(self, query: ApplicationQuery) -> Page:
        """The registry search (§3.3). Semantics:

        * always restricted to ``query.insurer_voen``: an insurer sees only its own applications;
        * FIN: exact (case-insensitive input); SSN: exact;
        * surname / name / patronymic: **prefix** match on the folded name
          (``gateway.domain.text.fold``: Azerbaijani-aware case folding), so "İSM" finds
          "İsmayılov" and "ismayılov", and "ƏLİYEV" finds "Əliyev";
        * date ranges inclusive at both ends; the application date is the creation time's date
          on the business calendar (``StorageOptions.business_tz``, Baku time by default);
        * type, certificate status and status: exact;
        * paging: ``page`` ≥ 1, 1 ≤ ``page_size`` ≤ 200;
        * ``total``: the number of matches, exact up to ``limit = max(search_count_limit,
          page × page_size)`` (``StorageOptions``, default 10 000); when there are more, it is
          ``limit + 1``, read "more than ``limit``". Either way a next page exists exactly when
          ``total > page × page_size``, and no page counts more than ``limit + 1`` rows (a
          count of all of a big insurer's applications on every page cost 30-40 ms at 1 M);
        * sorting by ``sort_field`` (NULLs last in either direction) then application id, so the
          order is total and pages never overlap. SURNAME sorts by surname, name, patronymic
          in the Azerbaijani alphabet (``collation_key``), the same on SQLite and PostgreSQL.
        """
        if query.page < 1:
            raise ValidationFailed("page must be ≥ 1", code="Client.Validation.Paging",
                                   field="page")
        if not 1 <= query.page_size <= MAX_PAGE_SIZE:
            raise ValidationFailed(
                f"page_size must be between 1 and {MAX_PAGE_SIZE}",
                code="Client.Validation.Paging",
                field="page_size",
            )
        conditions = self._conditions(query)
        offset = (query.page - 1) * query.page_size
        # Deferred join: choose the page's ids sorting only narrow columns, then load those
        # rows; sorting hundreds of whole rows (JSON and all) costs ten times more.
        page_ids = list(
            self._session.scalars(
                select(ApplicationRow.application_id)
                .where(*conditions)
                .order_by(*self._ordering(query.sort_field, query.descending))
                .limit(query.page_size)
                .offset(offset)
            )
        )
        if len(page_ids) < query.page_size and (page_ids or offset == 0):
            total = offset + len(page_ids)  # the last page: the count is known without a count
        else:
            total = self._count(conditions, max(self._options.search_count_limit,
                                                offset + query.page_size))
        if not page_ids:
            return Page(total=total, items=())
        loaded = {
            a.application_id: a
            for a in self._load(
                select(_table(ApplicationRow)).where(ApplicationRow.application_id.in_(page_ids))
            )
        }
        return Page(total=total, items=tuple(loaded[i] for i in page_ids))

    def _count(self, conditions: Sequence[ColumnElement[bool]], limit: int) -> int:
        """Matches, counted up to ``limit + 1`` (the index entries of at most that many rows)."""
        capped = (
            select(literal_column("1")).select_from(ApplicationRow).where(*conditions)
            .limit(limit + 1).subquery()
        )
        return int(self._session.scalar(select(func.count()).select_from(capped)) or 0)

    # ----------------------------------------------------------------------------- helpers

    def _conditions(self, q: ApplicationQuery) -> list[ColumnElement[bool]]:
        a = ApplicationRow
        conditions: list[ColumnElement[bool]] = [a.insurer_voen == q.insurer_voen]
        if q.application_type is not None:
            conditions.append(a.application_type == q.application_type.value)
        if q.fin:
            conditions.append(a.fin == q.fin.strip().upper())
        for column, raw in (
            (a.surname_folded, q.surname),
            (a.name_folded, q.name),
            (a.patronymic_folded, q.patronymic),
        ):
            if raw is not None and fold(raw):
                conditions.append(self._prefix(column, fold(raw)))
        if q.ssn:
            conditions.append(a.ssn == q.ssn.strip())
        if q.ssn_date_from is not None:
            conditions.append(a.ssn_date >= q.ssn_date_from)
        if q.ssn_date_to is not None:
            conditions.append(a.ssn_date <= q.ssn_date_to)
        if q.application_date_from is not None:
            conditions.append(a.created_at >= self._start_of(q.application_date_from))
        if q.application_date_to is not None:
            conditions.append(
                a.created_at < self._start_of(q.application_date_to + timedelta(days=1))
            )
        if q.certificate_status is not None:
            conditions.append(a.certificate_status == q.certificate_status.value)
        if q.status is not None:
            conditions.append(a.status == q.status.value)
        return conditions

    def _prefix(self, column: Any, prefix: str) -> ColumnElement[bool]:
        """``column`` starts with ``prefix``, in a form the (insurer, name) index can serve:
        ``LIKE 'prefix%'`` on PostgreSQL (``text_pattern_ops`` index); a code-point range on
        SQLite, whose LIKE is ASCII-case-insensitive and so never uses an index."""
        if self._session.get_bind().dialect.name == "postgresql":
            return cast(ColumnElement[bool], column.like(_escape_like(prefix) + "%", escape="\\"))
        return and_(column >= prefix, column < prefix + _MAX_CODE_POINT)

    def _start_of(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=self._options.business_tz).astimezone(UTC)

    def _ordering(self, sort: SortField, descending: bool) -> list[Any]:
        a = ApplicationRow
        # Code-point order for text on PostgreSQL too, whatever the database's locale: the
        # same order as SQLite, and the Azerbaijani alphabet for name_sort_key.
        binary = self._session.get_bind().dialect.name == "postgresql"

        def text_(column: Any) -> Any:
            return column.collate("C") if binary else column

        # (expression, nullable): NULLS LAST only where NULLs can be. On a NOT NULL column it
        # changes nothing but keeps PostgreSQL from reading an index in order (a B-tree read
        # backwards gives DESC NULLS FIRST), so the default listing would sort all the
        # insurer's rows.
        by_field: dict[SortField, tuple[Any, bool]] = {
            SortField.APPLICATION_DATE: (a.created_at, False),
            SortField.SSN_DATE: (a.ssn_date, True),
            SortField.SURNAME: (text_(a.name_sort_key), True),
            SortField.FIN: (text_(a.fin), False),
            # Lifecycle order, not alphabetical.
            SortField.STATUS: (case(_STATUS_RANK, value=a.status, else_=len(_STATUS_RANK)),
                               False),
        }
        ordering = []
        for column, nullable in (by_field[sort], (text_(a.application_id), False)):
            ordered = column.desc() if descending else column.asc()
            ordering.append(ordered.nulls_last() if nullable else ordered)
        return ordering

    def _load(self, stmt: Select[Any], params: dict[str, Any] | None = None,
              ) -> list[Application]:
        """Applications of a Core ``select`` of the applications table, with their history.

        Core rows, not ORM objects: nothing here is tracked by the session (the repository
        writes with explicit statements), so the ORM's identity map and unit of work would
        only cost time (issue #10)."""
        return self._loaded(list(self._session.execute(stmt, params)))

    def _loaded(self, rows: list[Any]) -> list[Application]:
        """``_load`` of rows already read."""
        if not rows:
            return []
        ids = [r.application_id for r in rows]
        history: dict[str, list[Any]] = {i: [] for i in ids}
        table = _table(StatusHistoryRow)
        for h in self._session.execute(
            select(table)
            .where(table.c.application_id.in_(ids))
            .order_by(table.c.application_id, table.c.seq)
        ):
            history[h.application_id].append(h)
        for r in rows:
            self._seen[r.application_id] = _Seen(
                r.version, r.status, r.insurer_voen, len(history[r.application_id])
            )
        return [_to_application(r, history[r.application_id]) for r in rows]

    def _read_seen(self, application_id: str) -> _Seen:
        table = _table(ApplicationRow)
        row = self._session.execute(
            select(table.c.version, table.c.status, table.c.insurer_voen).where(
                table.c.application_id == application_id
            )
        ).one_or_none()
        if row is None:
            raise NotFound(f"no application {application_id}", code="Client.NotFound.Application")
        count = self._session.scalar(
            select(func.count())
            .select_from(StatusHistoryRow)
            .where(StatusHistoryRow.application_id == application_id)
        )
        return _Seen(row.version, row.status, row.insurer_voen, int(count or 0))

    def _append_history(self, application: Application, already_stored: int) -> None:
        new = application.history[already_stored:]
        if new:
            rows = [_history_values(application.application_id, already_stored + i, change)
                    for i, change in enumerate(new)]
            conn = self._session.connection()
            statement = prepared(_insert_history(), conn.dialect, keys=tuple(rows[0]))
            if len(rows) == 1:
                statement.run(conn, rows[0])
            else:
                statement.run_many(conn, rows)

    def _names(self, app: Application, *, required: bool) -> dict[str, Any]:
        surname: str | None
        name: str | None
        patronymic: str | None
        if app.person is not None:
            surname, name, patronymic = app.person.surname, app.person.name, app.person.patronymic
        else:
            insured = self._session.get(InsuredPersonRow, app.fin)
            if insured is None:
                if not required:
                    return {}
                surname = name = patronymic = None
            else:
                surname, name, patronymic = insured.surname, insured.name, insured.patronymic
        return {
            "surname": surname,
            "name": name,
            "patronymic": patronymic,
            "surname_folded": fold(surname) if surname is not None else None,
            "name_folded": fold(name) if name is not None else None,
            "patronymic_folded": fold(patronymic) if patronymic is not None else None,
            "name_sort_key": collation_key(
                " ".join(p for p in (surname, name, patronymic) if p)
            ) if surname is not None else None,
        }

    def _on_registered(self, app: Application) -> dict[str, Any] | None:
        """Keeps the insured person's current actual address and contacts up to date and, for a
        CORRECTION, returns what it replaced (stored in ``previous_values``)."""
        address = codec.address_to_json(_effective_actual_address(app))
        contacts = codec.contacts_to_json(app.contacts)
        if app.application_type is not ApplicationType.CORRECTION and \
                self._issued.get(app.fin) == (address, contacts):
            return None  # issued with exactly these in this unit of work
        table = _table(InsuredPersonRow)
        current = self._session.execute(
            select(table.c.actual_address, table.c.contacts).where(table.c.fin == app.fin)
        ).one_or_none()
        if current is None:
            return None
        changes: dict[str, Any] = {}
        if address is not None:
            changes["actual_address"] = address
        if contacts is not None:
            changes["contacts"] = contacts
        if changes:
            self._session.execute(
                update(table).where(table.c.fin == app.fin).values(updated_at=_now(), **changes)
            )
        if app.application_type is ApplicationType.CORRECTION:
            return {"actual_address": current.actual_address, "contacts": current.contacts}
        return None


# --------------------------------------------------------------------------------------------
# Insured persons and SSN issuance
# --------------------------------------------------------------------------------------------


def _insured(row: Any) -> InsuredPerson:
    return InsuredPerson(
        fin=row.fin,
        ssn=row.ssn,
        ssn_date=row.ssn_date,
        surname=row.surname,
        name=row.name,
        patronymic=row.patronymic,
        registered_by_voen=row.registered_by_voen,
    )


class SqlInsuredPersonRepository:
    """Insured persons (one per FIN, ever) and the SSN allocator.

    Serials come from the ``ssn_serial_seq`` sequence on PostgreSQL, read and formatted by the
    insert itself (never blocks; a rolled-back issue leaves a gap, which an opaque number can
    afford) and from the single-row
    ``ssn_counter`` on SQLite (inside the transaction, which holds SQLite's write lock: no gaps).
    Exactly-once per FIN is the database's job: ``fin`` is the primary key and the insert is
    ``ON CONFLICT (fin) DO NOTHING``; a concurrent issuer on PostgreSQL waits for the first one's
    commit and then sees the conflict.
    """

    def __init__(self, session: Session, options: StorageOptions,
                 issued: dict[str, tuple[Any, Any]] | None = None) -> None:
        self._session = session
        self._format = options.ssn_format
        # FIN → (actual address, contacts) as issue() wrote them in this unit of work.
        self._issued = issued if issued is not None else {}

    @translates
    def get(self, fin: str) -> InsuredPerson | None:
        rows = run(self._session, _insured_by_fin(), {"fin": fin})
        return _insured(rows[0]) if rows else None

    @translates
    def standing(self, voen: str, fin: str) -> PersonStanding:
        rows = run(self._session, _standing(), {"voen": voen, "fin": fin})
        first = rows[0]  # the FIN's own row: one even when nothing stands in the way
        return PersonStanding(
            insured=_insured(first) if first.ssn is not None else None,
            open_applications=tuple(
                OpenApplication(row.application_id, ApplicationStatus(row.status))
                for row in rows if row.application_id is not None),
        )

    @translates
    def get_by_ssn(self, ssn: str) -> InsuredPerson | None:
        row = self._session.scalar(select(InsuredPersonRow).where(InsuredPersonRow.ssn == ssn))
        return _insured(row) if row is not None else None

    @translates
    def current_contact_data(self, fin: str) -> CorrectionBaseline | None:
        """The person's current actual address and contacts (after the latest registration or
        correction), or ``None`` for an unknown FIN."""
        row = self._session.get(InsuredPersonRow, fin)
        if row is None:
            return None
        return CorrectionBaseline(
            actual_address=codec.address_from_json(row.actual_address),
            contacts=codec.contacts_from_json(row.contacts),
        )

    @translates
    def issue(
        self, *, fin: str, surname: str, name: str, patronymic: str | None, voen: str, on: date,
        actual_address: Address | None = None, contacts: Contacts | None = None,
    ) -> InsuredPerson:
        # No read first: the insert's ON CONFLICT decides (a serial it took is then rolled
        # back with the refused request on SQLite, a gap on PostgreSQL's sequence).
        dialect = self._session.get_bind().dialect.name
        now = _now()
        values = {
            "fin": fin,
            "ssn_date": on,
            "surname": surname,
            "name": name,
            "patronymic": patronymic,
            "surname_folded": fold(surname),
            "name_folded": fold(name),
            "patronymic_folded": fold(patronymic) if patronymic is not None else None,
            "registered_by_voen": voen,
            "actual_address": codec.address_to_json(actual_address),
            "contacts": codec.contacts_to_json(contacts),
            "created_at": now,
            "updated_at": now,
        }
        top = 10**self._format.serial_digits - 1
        if dialect == "postgresql":
            # The insert numbers the person itself: one round trip, not nextval and then it.
            rows = run(self._session, _numbered_issue_statement(self._format.prefix,
                                                                self._format.serial_digits),
                       values)
            if not rows and int(run(self._session, _last_serial_statement())[0][0]) > top:
                raise _exhausted(self._format)
            ssn = str(rows[0].ssn) if rows else ""
            if rows and not self._format.is_valid(ssn):  # the SQL's format against the domain's
                raise StorageError(f"the database numbered an SSN {ssn!r} that is not one")
        else:
            serial = int(run(self._session, _sqlite_serial_statement())[0][0])
            if serial > top:
                raise _exhausted(self._format)
            values["ssn"] = ssn = self._format.format(serial)
            rows = run(self._session, _issue_statement(), values, keys=tuple(values))
        if not rows:
            raise Conflict(f"FIN {fin} already has an SSN", code=SSN_EXISTS, field="fin")
        self._issued[fin] = (values["actual_address"], values["contacts"])
        return InsuredPerson(
            fin=fin,
            ssn=ssn,
            ssn_date=on,
            surname=surname,
            name=name,
            patronymic=patronymic,
            registered_by_voen=voen,
        )


# Built once per dialect: the request path reuses their cache keys and compiled forms.


def _is_open(applications: Table) -> ColumnElement[bool]:
    # The statuses as literals (constants of the domain): the same SQL as an IN of parameters
    # after SQLAlchemy expands them, but compiled once (persistence.driver prepares no
    # expanding parameter).
    statuses: list[Any] = [literal_column(f"'{status}'") for status in OPEN_STATUSES]
    return applications.c.status.in_(statuses)


def _insured_columns(table: Table) -> list[Any]:
    # What _insured() reads of an insured person.
    return [table.c.fin, table.c.ssn, table.c.ssn_date, table.c.surname, table.c.name,
            table.c.patronymic, table.c.registered_by_voen]


@functools.cache
def _open_for_person() -> Select[Any]:
    table = _table(ApplicationRow)
    return (select(table)
            .where(table.c.insurer_voen == bindparam("voen"), table.c.fin == bindparam("fin"),
                   _is_open(table))
            .order_by(table.c.created_at, table.c.application_id))


@functools.cache
def _authorities_of_person() -> Any:
    table = _table(AuthorityRow)
    return (select(table)
            .where(table.c.insurer_voen == bindparam("voen"), table.c.fin == bindparam("fin"))
            .order_by(table.c.granted_at, table.c.authority_id))


@functools.cache
def _seal_holder() -> Any:
    table = _table(SealHolderRow)
    return select(table).where(table.c.insurer_voen == bindparam("voen"),
                               table.c.fin == bindparam("fin"))


@functools.cache
def _insert_application() -> Any:
    return insert(_table(ApplicationRow))


@functools.cache
def _insert_history() -> Any:
    return insert(_table(StatusHistoryRow))


@functools.cache
def _insert_application_with_history(keys: tuple[str, ...], entries: int) -> Any:
    """PostgreSQL: an application's row (a data-modifying CTE) and its ``entries`` history
    rows in one statement, which is atomic by itself. Parameters: the application's by column
    name (``keys``), the history rows' as ``<column>_<n>``, inserted in the order of n."""
    apps, history = _table(ApplicationRow), _table(StatusHistoryRow)
    added = (pg_dialect.insert(apps)
             .values({k: bindparam(k, type_=apps.c[k].type) for k in keys})
             .returning(apps.c.application_id).cte("added"))
    columns = list(HISTORY_COLUMNS)
    rows = [select(added.c.application_id,
                   *[bindparam(f"{c}_{n}", type_=history.c[c].type) for c in columns])
            for n in range(entries)]
    source = rows[0] if entries == 1 else union_all(*rows)
    return insert(history).from_select(["application_id", *columns], source).add_cte(added)


@functools.cache
def _insured_by_fin() -> Any:
    table = _table(InsuredPersonRow)
    return select(*_insured_columns(table)).where(table.c.fin == bindparam("fin"))


@functools.cache
def _standing() -> Select[Any]:
    # The FIN as a one-row table, joined to its insured person and to the insurer's open
    # applications: one row when neither exists, one per open application otherwise.
    person, apps = _table(InsuredPersonRow), _table(ApplicationRow)
    key = select(bindparam("fin", type_=String).label("fin")).subquery("wanted")
    return (select(*_insured_columns(person), apps.c.application_id, apps.c.status)
            .select_from(key.outerjoin(person, person.c.fin == key.c.fin).outerjoin(
                apps, and_(apps.c.insurer_voen == bindparam("voen"), apps.c.fin == key.c.fin,
                           _is_open(apps))))
            .order_by(apps.c.created_at, apps.c.application_id))


@functools.cache
def _issue_statement() -> Any:
    # SQLite's issue, the SSN formatted in Python (PostgreSQL: _numbered_issue_statement).
    return (sqlite_dialect.insert(_table(InsuredPersonRow))
            .on_conflict_do_nothing(index_elements=["fin"]).returning(InsuredPersonRow.fin))


@functools.cache
def _numbered_issue_statement(prefix: str, serial_digits: int) -> Any:
    """PostgreSQL's issue: the next serial of the sequence, formatted as
    ``gateway.domain.ssn.SsnFormat`` formats it (the prefix, the zero-padded serial, the Luhn
    check digit of both), inserted and returned by one statement. A serial the format cannot
    hold inserts nothing (``lpad`` would cut it): ``issue`` tells that from a FIN that has its
    SSN by the serial taken (``currval``), and checks what comes back with
    ``SsnFormat.is_valid``; a test compares both over many serials."""
    table = _table(InsuredPersonRow)

    def number(value: int) -> Any:  # constants inline: no parameter to send for them
        return literal_column(str(value), Integer)

    # nextval once, in a subquery of its own (the expressions below read its result many times).
    # SsnFormat allows digits 0-9 only (no quote: the prefix goes into the SQL text).
    if not (prefix.isascii() and prefix.isdigit()):
        raise ValueError("SSN prefix must be digits 0-9")
    numbered = select(ssn_sequence.next_value().label("serial")).subquery("numbered")
    formatted = select(numbered.c.serial, (
        literal_column(f"'{prefix}'", String)
        + func.lpad(sql_cast(numbered.c.serial, String), number(serial_digits),
                    literal_column("'0'", String))).label("payload")).subquery("formatted")
    serial, payload = formatted.c.serial, formatted.c.payload
    length = len(prefix) + serial_digits
    # Luhn: from the rightmost digit of the payload, every other digit is doubled, its digits
    # summed ("0246813579"[d] is the digit sum of 2d).
    terms = []
    for position in range(1, length + 1):
        digit = func.substr(payload, number(position), number(1))
        if (length - position) % 2 == 0:
            digit = func.substr(literal_column("'0246813579'", String),
                                sql_cast(digit, Integer) + number(1), number(1))
        terms.append(sql_cast(digit, Integer))
    check = sql_cast((number(10) - functools.reduce(operator.add, terms) % number(10))
                 % number(10), String)
    columns = [c.key for c in table.c if c.key != "ssn"]
    chosen = select((payload + check).label("ssn"),
                    *[bindparam(key, type_=table.c[key].type) for key in columns]
                    ).select_from(formatted).where(serial < number(10**serial_digits))
    return (pg_dialect.insert(table).from_select(["ssn", *columns], chosen)
            .on_conflict_do_nothing(index_elements=["fin"])
            .returning(table.c.fin, table.c.ssn))


def _exhausted(fmt: SsnFormat) -> SsnSerialsExhausted:
    return SsnSerialsExhausted(
        f"no SSN serial left in the configured format (prefix {fmt.prefix!r},"
        f" {fmt.serial_digits} serial digits): widen ssn_serial_digits")


@functools.cache
def _last_serial_statement() -> Any:
    # The serial this session's nextval took last (PostgreSQL; in the same transaction).
    return select(func.currval(literal_column(f"'{ssn_sequence.name}'")))


@functools.cache
def _sqlite_serial_statement() -> Any:
    # SQLite's serials: the single-row counter, inside the transaction (PostgreSQL's insert
    # takes its serial from the sequence itself: _numbered_issue_statement).
    table = _table(SsnCounterRow)
    first = sqlite_dialect.insert(table).values(id=1, last_serial=1)
    return first.on_conflict_do_update(
        index_elements=["id"], set_={"last_serial": table.c.last_serial + 1}
    ).returning(table.c.last_serial)

