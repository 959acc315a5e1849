"""Stores outside the service ports: Asan İmza transactions, sessions, the replay cache.

Each comes twice: a repository bound to a unit of work's session (``uow.mobile_transactions``,
``uow.sessions``), for changes that must commit together with an application; and a
``…Store(database)`` whose every call is its own short transaction, for the gateway's plumbing.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from gateway.domain.errors import NotFound
from gateway.domain.mobile import MobileKind, MobileState, MobileTransaction
from persistence.db import Database
from persistence.errors import translates
from persistence.repositories import dialect_insert, rowcount
from persistence.tables import (
    MobileTransactionRow,
    ReplayCacheRow,
    SessionRow,
    WorkerLeaseRow,
)


def _table(row_class: type[Any]) -> Table:
    table = row_class.__table__
    assert isinstance(table, Table)
    return table


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# Asan İmza (mobile signature) transactions
# --------------------------------------------------------------------------------------------


_MOBILE_FIELDS = tuple(f.name for f in fields(MobileTransaction))


def _mobile_values(tx: MobileTransaction) -> dict[str, Any]:
    values = {name: getattr(tx, name) for name in _MOBILE_FIELDS}
    values["kind"] = tx.kind.value
    values["state"] = tx.state.value
    return values


def _mobile(row: MobileTransactionRow) -> MobileTransaction:
    values = {name: getattr(row, name) for name in _MOBILE_FIELDS}
    values["kind"] = MobileKind(row.kind)
    values["state"] = MobileState(row.state)
    return MobileTransaction(**values)


class SqlMobileTransactionRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    @translates
    def create(self, tx: MobileTransaction) -> None:
        self._session.execute(insert(_table(MobileTransactionRow)), _mobile_values(tx))

    @translates
    def get(self, transaction_id: str) -> MobileTransaction | None:
        row = self._session.scalar(
            select(MobileTransactionRow)
            .where(MobileTransactionRow.transaction_id == transaction_id)
            .execution_options(populate_existing=True)
        )
        return _mobile(row) if row is not None else None

    @translates
    def update(self, tx: MobileTransaction, *, expected_state: MobileState | None = None) -> bool:
        """Stores ``tx``. With ``expected_state``, only if the stored state is still that one
        (returns False otherwise): two pollers cannot both complete a transaction."""
        table = _table(MobileTransactionRow)
        stmt = update(table).where(table.c.transaction_id == tx.transaction_id)
        if expected_state is not None:
            stmt = stmt.where(table.c.state == expected_state.value)
        values = _mobile_values(tx)
        del values["transaction_id"]
        result = self._session.execute(stmt, values)
        if rowcount(result) == 0 and expected_state is None:
            raise NotFound(
                f"no mobile transaction {tx.transaction_id}", code="Client.NotFound.Transaction"
            )
        return bool(rowcount(result) == 1)

    @translates
    def count_open(self, phone: str, now: datetime) -> int:
        """How many transactions still wait on this phone (OUTSTANDING, not yet expired)."""
        table = _table(MobileTransactionRow)
        return int(self._session.scalar(
            select(func.count()).select_from(table).where(
                table.c.phone == phone,
                table.c.state == MobileState.OUTSTANDING.value,
                table.c.expires_at > now,
            )
        ) or 0)

    @translates
    def expire_overdue(self, now: datetime) -> int:
        """Marks OUTSTANDING transactions past their deadline as EXPIRED; returns how many."""
        table = _table(MobileTransactionRow)
        result = self._session.execute(
            update(table)
            .where(table.c.state == MobileState.OUTSTANDING.value, table.c.expires_at <= now)
            .values(state=MobileState.EXPIRED.value, completed_at=now,
                    fault_code="208", fault_reason="EXPIRED_TRANSACTION")
        )
        return int(rowcount(result))


class MobileStore:
    """``SqlMobileTransactionRepository`` with one transaction per call."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def create(self, tx: MobileTransaction) -> None:
        with self._db.transaction() as s:
            SqlMobileTransactionRepository(s).create(tx)

    def get(self, transaction_id: str) -> MobileTransaction | None:
        with self._db.transaction() as s:
            return SqlMobileTransactionRepository(s).get(transaction_id)

    def update(self, tx: MobileTransaction, *, expected_state: MobileState | None = None) -> bool:
        with self._db.transaction() as s:
            return SqlMobileTransactionRepository(s).update(tx, expected_state=expected_state)

    def count_open(self, phone: str, now: datetime) -> int:
        with self._db.transaction() as s:
            return SqlMobileTransactionRepository(s).count_open(phone, now)

    def expire_overdue(self, now: datetime) -> int:
        with self._db.transaction() as s:
            return SqlMobileTransactionRepository(s).expire_overdue(now)


# --------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a session token: what is stored, logged and used as the session id."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A signed-in session. ``session_id`` is the token's SHA-256; the token itself is never
    stored, so a copy of the database does not let anyone act as a signed-in user."""

    session_id: str
    fin: str
    voen: str | None
    name: str
    credential: str
    seal_authority: bool
    created_at: datetime
    expires_at: datetime
    role: str | None = None
    revoked_at: datetime | None = None
    #: PEM of the certificate the session was opened with (re-checked against revocation).
    certificate: str | None = None

    def is_valid(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


def _session_record(row: SessionRow) -> SessionRecord:
    return SessionRecord(
        session_id=row.token_hash,
        fin=row.fin,
        voen=row.voen,
        name=row.name,
        credential=row.credential,
        seal_authority=row.seal_authority,
        created_at=row.created_at,
        expires_at=row.expires_at,
        role=row.role,
        revoked_at=row.revoked_at,
        certificate=row.certificate,
    )


class SqlSessionRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    @translates
    def create(
        self,
        token: str,
        *,
        fin: str,
        voen: str | None,
        name: str,
        credential: str,
        seal_authority: bool,
        expires_at: datetime,
        role: str | None = None,
        created_at: datetime | None = None,
        certificate: str | None = None,
    ) -> SessionRecord:
        record = SessionRecord(
            session_id=token_hash(token),
            fin=fin,
            voen=voen,
            name=name,
            credential=credential,
            seal_authority=seal_authority,
            created_at=created_at or _now(),
            expires_at=expires_at,
            role=role,
            certificate=certificate,
        )
        self._session.execute(insert(_table(SessionRow)), self._values(record))
        return record

    @translates
    def get(self, token: str) -> SessionRecord | None:
        """The session for a raw token (expired and revoked ones too: check ``is_valid``)."""
        return self.get_by_id(token_hash(token))

    @translates
    def get_by_id(self, session_id: str) -> SessionRecord | None:
        row = self._session.scalar(
            select(SessionRow)
            .where(SessionRow.token_hash == session_id)
            .execution_options(populate_existing=True)
        )
        return _session_record(row) if row is not None else None

    @translates
    def update(self, record: SessionRecord) -> None:
        """Stores a changed session (e.g. a sliding expiry)."""
        table = _table(SessionRow)
        values = self._values(record)
        del values["token_hash"]
        result = self._session.execute(
            update(table).where(table.c.token_hash == record.session_id), values
        )
        if rowcount(result) == 0:
            raise NotFound("no such session", code="Client.NotFound.Session")

    @translates
    def revoke(self, token: str, at: datetime | None = None) -> bool:
        """Ends the session; False when there is no such (unrevoked) session."""
        table = _table(SessionRow)
        result = self._session.execute(
            update(table)
            .where(table.c.token_hash == token_hash(token), table.c.revoked_at.is_(None))
            .values(revoked_at=at or _now())
        )
        return bool(rowcount(result) == 1)

    @translates
    def purge_expired(self, now: datetime) -> int:
        table = _table(SessionRow)
        result = self._session.execute(delete(table).where(table.c.expires_at <= now))
        return int(rowcount(result))

    @staticmethod
    def _values(record: SessionRecord) -> dict[str, Any]:
        return {
            "token_hash": record.session_id,
            "fin": record.fin,
            "voen": record.voen,
            "name": record.name,
            "credential": record.credential,
            "seal_authority": record.seal_authority,
            "role": record.role,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            "revoked_at": record.revoked_at,
            "certificate": record.certificate,
        }


class SessionStore:
    """``SqlSessionRepository`` with one transaction per call."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def create(
        self,
        token: str,
        *,
        fin: str,
        voen: str | None,
        name: str,
        credential: str,
        seal_authority: bool,
        expires_at: datetime,
        role: str | None = None,
        created_at: datetime | None = None,
        certificate: str | None = None,
    ) -> SessionRecord:
        with self._db.transaction() as s:
            return SqlSessionRepository(s).create(
                token, fin=fin, voen=voen, name=name, credential=credential,
                seal_authority=seal_authority, expires_at=expires_at, role=role,
                created_at=created_at, certificate=certificate,
            )

    def get(self, token: str) -> SessionRecord | None:
        with self._db.transaction() as s:
            return SqlSessionRepository(s).get(token)

    def get_valid(self, token: str, now: datetime | None = None) -> SessionRecord | None:
        """The session if it exists, is not revoked and has not expired."""
        record = self.get(token)
        return record if record is not None and record.is_valid(now or _now()) else None

    def update(self, record: SessionRecord) -> None:
        with self._db.transaction() as s:
            SqlSessionRepository(s).update(record)

    def extend(self, token: str, expires_at: datetime) -> SessionRecord | None:
        with self._db.transaction() as s:
            repo = SqlSessionRepository(s)
            record = repo.get(token)
            if record is None:
                return None
            extended = replace(record, expires_at=expires_at)
            repo.update(extended)
            return extended

    def revoke(self, token: str, at: datetime | None = None) -> bool:
        with self._db.transaction() as s:
            return SqlSessionRepository(s).revoke(token, at)

    def purge_expired(self, now: datetime | None = None) -> int:
        with self._db.transaction() as s:
            return SqlSessionRepository(s).purge_expired(now or _now())


# --------------------------------------------------------------------------------------------
# Replay cache
# --------------------------------------------------------------------------------------------


class SqlReplayCache:
    """Message ids already accepted, shared by every worker process (``signing``'s ReplayCache).

    ``remember`` is one ``INSERT … ON CONFLICT DO NOTHING``: the database's primary key decides
    which of two concurrent copies of a message wins, in any number of processes. An id whose
    entry has expired may be used again (its timestamp check upstream refuses stale messages
    anyway). Expired rows are purged on every ``purge_every``-th call.
    """

    def __init__(self, database: Database, *, purge_every: int = 500) -> None:
        self._db = database
        self._purge_every = max(1, purge_every)
        self._calls = itertools.count(1)

    @translates
    def remember(self, message_id: str, expires_at: datetime) -> bool:
        """True if ``message_id`` is new (now remembered until ``expires_at``), False on replay."""
        now = _now()
        table = _table(ReplayCacheRow)
        with self._db.transaction() as s:
            if next(self._calls) % self._purge_every == 0:
                s.execute(delete(table).where(table.c.expires_at < now))
            inserted = s.execute(
                dialect_insert(s, table)
                .on_conflict_do_nothing(index_elements=["message_id"])
                .returning(table.c.message_id),
                {"message_id": message_id, "expires_at": expires_at},
            )
            if inserted.first() is not None:
                return True
            reused = s.execute(
                update(table)
                .where(table.c.message_id == message_id, table.c.expires_at < now)
                .values(expires_at=expires_at)
            )
            return bool(rowcount(reused) == 1)

    @translates
    def purge(self, now: datetime | None = None) -> int:
        table = _table(ReplayCacheRow)
        with self._db.transaction() as s:
            result = s.execute(delete(table).where(table.c.expires_at < (now or _now())))
            return int(rowcount(result))


# --------------------------------------------------------------------------------------------
# Worker leases
# --------------------------------------------------------------------------------------------


class SqlWorkerLeases:
    """One holder of a named background job at a time, across processes and hosts.

    ``acquire`` takes the lease when it is free or expired, or renews it for its holder, in one
    ``INSERT … ON CONFLICT DO UPDATE … WHERE``; a holder that dies simply lets it run out.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    @translates
    def acquire(self, name: str, holder: str, ttl: timedelta) -> bool:
        now = _now()
        table = _table(WorkerLeaseRow)
        values = {"name": name, "holder": holder, "expires_at": now + ttl}
        with self._db.transaction() as s:
            stmt = dialect_insert(s, table)
            stmt = stmt.on_conflict_do_update(
                index_elements=["name"],
                set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
                where=(table.c.expires_at < now) | (table.c.holder == holder),
            ).returning(table.c.name)
            return s.execute(stmt, values).first() is not None

    @translates
    def release(self, name: str, holder: str) -> None:
        table = _table(WorkerLeaseRow)
        with self._db.transaction() as s:
            s.execute(delete(table).where(table.c.name == name, table.c.holder == holder))

