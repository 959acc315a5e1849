"""The message log's storage: every signed request and response exactly as received or sent,
appended without reading anything, sealed later in batches.

Writers never wait for each other: :func:`append_entries` is one plain ``INSERT`` in the
caller's transaction (the request's unit of work, or its own for :meth:`MessageLog.append`). It
reads no other row and takes no lock beyond the new row itself, so any number of workers on any
number of hosts append in parallel; the order of entries is their id order.

Integrity comes afterwards, from the sealer (``gateway.evidence.seal``): it reads entries that
no seal covers yet, builds a Merkle tree over them, signs a seal document that chains to the
previous seal, has it timestamped by a TSA (RFC 3161) and stores it here with one leaf row per
entry (:meth:`MessageLog.store_seal`). What the hashes are is defined in
``gateway.evidence.merkle``; this module only stores and reads rows.

Which entries are "not sealed yet"? Ids are handed out before commit, so on PostgreSQL a
transaction that started earlier may commit an entry with a lower id after a seal already
covered higher ids. The sealer therefore looks for entries without a leaf row above a *floor*:
the highest entry id covered by seals made more than ``settle`` ago (longer than any
transaction lives), and takes them lowest id first.

Append-only is enforced by the database (migration ``0006_message_log_seals``): UPDATE and
DELETE are refused on the log, its seals and leaves, except the retention procedure
(:meth:`MessageLog.erase_payloads`), which may only empty the payload of a sealed entry and set
``erased_at``; its digest stays and the seal still verifies.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, and_, func, insert, select, text, update
from sqlalchemy.orm import Session

from gateway.domain.errors import Conflict, NotFound
from persistence.db import Database
from persistence.driver import prepared
from persistence.errors import translates
from persistence.tables import (
    Direction,
    MessageLogCrlRow,
    MessageLogLeafRow,
    MessageLogRow,
    MessageLogSealRow,
    MessageLogSubjectRow,
)

# The worker lease (``persistence.stores.SqlWorkerLeases``) that lets one sealer work at a time.
SEALER_LEASE = "message-log-sealer"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One message to log: the bytes exactly as on the wire, and what it was about."""

    direction: str
    payload: bytes
    message_id: str | None = None
    correlation_id: str | None = None
    actor_fin: str | None = None
    voen: str | None = None
    operation: str | None = None
    at: datetime | None = None  # default: now (UTC)


@dataclass(frozen=True, slots=True)
class StoredEntry:
    id: int
    at: datetime
    direction: str
    message_id: str | None
    correlation_id: str | None
    actor_fin: str | None
    voen: str | None
    operation: str | None
    payload: bytes
    payload_sha256: str
    erased_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredSeal:
    number: int
    sealed_at: datetime
    first_entry_id: int | None
    last_entry_id: int | None
    entry_count: int
    tree_head: str
    seal_xml: bytes
    seal_sha256: str
    tsa_token: bytes
    tsa_time: datetime


@dataclass(frozen=True, slots=True)
class Leaf:
    entry_id: int
    seal_number: int
    leaf_index: int
    leaf_hash: str


@dataclass(frozen=True, slots=True)
class Backlog:
    """Entries no seal covers yet (above the floor), and the newest seal."""

    unsealed: int
    oldest_unsealed_at: datetime | None
    last_seal: StoredSeal | None


class SealConflict(Conflict):
    """Another sealer stored a seal first (its lease had run out): this batch is dropped."""

    code = "Server.MessageLog.SealConflict"


def _table(row: type[Any]) -> Table:
    table = row.__table__
    assert isinstance(table, Table)
    return table


@functools.cache
def _insert_one() -> Any:
    """Built once (the request path appends with it): its cache key and compiled form are
    then reused."""
    table = _table(MessageLogRow)
    return insert(table).returning(table.c.id)


@functools.cache
def _insert_plain() -> Any:
    return insert(_table(MessageLogRow))


@functools.cache
def _insert_many() -> Any:
    table = _table(MessageLogRow)
    return insert(table).returning(table.c.id, sort_by_parameter_order=True)


def _hex_sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# The column's width: a longer id (refused by the X-Road header checks) is logged as unknown; the
# raw request holds it anyway.
MESSAGE_ID_MAX = 255


def entry_rows(entries: Sequence[LogEntry]) -> list[dict[str, Any]]:
    """The ``message_log`` rows of ``entries`` as inserted (the columns of ``LOG_COLUMNS``),
    ``at`` defaulting to now."""
    now = datetime.now(UTC)
    return [
        {
            "at": entry.at or now,
            "direction": Direction(entry.direction).value,
            "message_id": entry.message_id if entry.message_id is None
            or len(entry.message_id) <= MESSAGE_ID_MAX else None,
            "correlation_id": entry.correlation_id,
            "actor_fin": entry.actor_fin,
            "voen": entry.voen,
            "operation": entry.operation,
            "payload": entry.payload,
            "payload_sha256": _hex_sha256(entry.payload),
            "erased_at": None,
        }
        for entry in entries
    ]


LOG_COLUMNS = ("at", "direction", "message_id", "correlation_id", "actor_fin", "voen",
               "operation", "payload", "payload_sha256", "erased_at")


def append_entries(
    session: Session | Connection, entries: Sequence[LogEntry], *, ids: bool = True
) -> list[int]:
    """Insert ``entries`` in the caller's transaction; returns their ids, in order (``ids=False``:
    returns nothing, and the rows go in without ``RETURNING``, which the request path, which
    never needs them, saves).

    One ``INSERT`` that reads no other row and takes no lock, so concurrent writers never wait
    for each other here (sealing happens later, in batches).
    """
    if not entries:
        return []
    rows = entry_rows(entries)
    if not ids:
        # The request path: on the driver's cursor (persistence.driver, issue #10).
        conn = session if isinstance(session, Connection) else session.connection()
        statement = prepared(_insert_plain(), conn.dialect, keys=tuple(rows[0]))
        if len(rows) == 1:
            statement.run(conn, rows[0])
        else:
            statement.run_many(conn, rows)
        return []
    if len(rows) == 1:
        return [int(session.execute(_insert_one(), rows[0]).scalar_one())]
    result = session.execute(_insert_many(), rows)
    return [int(i) for i in result.scalars().all()]


def exchange_messages(request: bytes | None, response: bytes) -> list[tuple[str, bytes]]:
    """A request and its response, in this order (``request`` is None when it was never read,
    e.g. too large)."""
    messages = [(Direction.IN.value, request)] if request is not None else []
    messages.append((Direction.OUT.value, response))
    return messages


def append_in(
    s: Session | Connection,
    messages: Sequence[tuple[str, bytes]],
    *,
    message_id: str | None,
    correlation_id: str | None,
    actor_fin: str | None,
    voen: str | None,
    operation: str | None,
    ids: bool = True,
) -> list[int]:
    """Appends ``messages`` (direction, bytes) inside the caller's transaction (the request's
    own, so the entries commit with what they record, or not at all): :func:`append_entries`."""
    return append_entries(s, [
        LogEntry(direction, payload, message_id=message_id, correlation_id=correlation_id,
                 actor_fin=actor_fin, voen=voen, operation=operation)
        for direction, payload in messages
    ], ids=ids)


def _entry(row: MessageLogRow) -> StoredEntry:
    return StoredEntry(
        id=row.id, at=row.at, direction=row.direction, message_id=row.message_id,
        correlation_id=row.correlation_id, actor_fin=row.actor_fin, voen=row.voen,
        operation=row.operation, payload=row.payload, payload_sha256=row.payload_sha256,
        erased_at=row.erased_at,
    )


def _seal(row: MessageLogSealRow) -> StoredSeal:
    return StoredSeal(
        number=row.number, sealed_at=row.sealed_at, first_entry_id=row.first_entry_id,
        last_entry_id=row.last_entry_id, entry_count=row.entry_count, tree_head=row.tree_head,
        seal_xml=row.seal_xml, seal_sha256=row.seal_sha256, tsa_token=row.tsa_token,
        tsa_time=row.tsa_time,
    )


def _leaf(row: MessageLogLeafRow) -> Leaf:
    return Leaf(row.entry_id, row.seal_number, row.leaf_index, row.leaf_hash)


class MessageLog:
    """The ``message_log`` table and its seals."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # -- appending -------------------------------------------------------------------------

    @translates
    def append(
        self,
        direction: Direction | str,
        payload: bytes,
        *,
        message_id: str | None,
        correlation_id: str | None,
        actor_fin: str | None = None,
        voen: str | None = None,
        operation: str | None = None,
    ) -> int:
        """Appends one message (bytes exactly as on the wire) in its own transaction."""
        entry = LogEntry(Direction(direction).value, payload, message_id, correlation_id,
                         actor_fin, voen, operation)
        with self._db.transaction() as s:
            return append_entries(s, [entry])[0]

    @translates
    def append_exchange(
        self,
        request: bytes | None,
        response: bytes,
        *,
        message_id: str | None,
        correlation_id: str | None,
        actor_fin: str | None = None,
        voen: str | None = None,
        operation: str | None = None,
    ) -> list[int]:
        """A request and its response in one transaction. ``request`` is None when it was
        never read (too large)."""
        with self._db.transaction() as s:
            return append_in(s, exchange_messages(request, response), message_id=message_id,
                             correlation_id=correlation_id, actor_fin=actor_fin, voen=voen,
                             operation=operation)

    # -- sealing ---------------------------------------------------------------------------

    def acquire_lease(self, holder: str, ttl: timedelta) -> bool:
        """Take (or renew) the sealer lease; False while another holder's lease runs."""
        from persistence.stores import SqlWorkerLeases

        return SqlWorkerLeases(self._db).acquire(SEALER_LEASE, holder, ttl)

    def release_lease(self, holder: str) -> None:
        from persistence.stores import SqlWorkerLeases

        SqlWorkerLeases(self._db).release(SEALER_LEASE, holder)

    def _floor(self, s: Session, now: datetime, settle: timedelta) -> int:
        return int(s.scalar(
            select(func.max(MessageLogSealRow.last_entry_id))
            .where(MessageLogSealRow.sealed_at < now - settle)
        ) or 0)

    def _unsealed_query(self, floor: int) -> Any:
        return (
            select(MessageLogRow)
            .where(MessageLogRow.id > floor)
            .where(~select(MessageLogLeafRow.entry_id)
                   .where(MessageLogLeafRow.entry_id == MessageLogRow.id).exists())
        )

    @translates
    def last_seal(self) -> StoredSeal | None:
        with self._db.transaction() as s:
            row = s.scalars(
                select(MessageLogSealRow).order_by(MessageLogSealRow.number.desc()).limit(1)
            ).first()
            return _seal(row) if row is not None else None

    @translates
    def unsealed(self, now: datetime, settle: timedelta, limit: int) -> list[StoredEntry]:
        """Entries no seal covers yet, lowest id first (see the module docstring)."""
        with self._db.transaction() as s:
            floor = self._floor(s, now, settle)
            rows = s.scalars(self._unsealed_query(floor).order_by(MessageLogRow.id).limit(limit))
            return [_entry(r) for r in rows]

    @translates
    def backlog(self, now: datetime, settle: timedelta) -> Backlog:
        with self._db.transaction() as s:
            floor = self._floor(s, now, settle)
            sub = self._unsealed_query(floor).subquery()
            count, oldest = s.execute(select(func.count(), func.min(sub.c.at))).one()
            row = s.scalars(
                select(MessageLogSealRow).order_by(MessageLogSealRow.number.desc()).limit(1)
            ).first()
            return Backlog(int(count), oldest, _seal(row) if row is not None else None)

    @translates
    def store_seal(
        self,
        seal: StoredSeal,
        leaves: Sequence[Leaf],
        subjects: Sequence[tuple[str, int]],
        crls: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Store a seal with its leaves (and the CRLs it names, ``(sha256, bytes)``, kept once
        each), if it still follows the newest seal; otherwise ``SealConflict`` and nothing is
        written."""
        with self._db.transaction() as s:
            newest = s.scalar(select(func.max(MessageLogSealRow.number))) or 0
            if newest != seal.number - 1:
                raise SealConflict(f"seal {seal.number} no longer follows seal {newest}")
            s.execute(insert(_table(MessageLogSealRow)), {
                "number": seal.number, "sealed_at": seal.sealed_at,
                "first_entry_id": seal.first_entry_id, "last_entry_id": seal.last_entry_id,
                "entry_count": seal.entry_count, "tree_head": seal.tree_head,
                "seal_xml": seal.seal_xml, "seal_sha256": seal.seal_sha256,
                "tsa_token": seal.tsa_token, "tsa_time": seal.tsa_time,
            })
            if leaves:
                s.execute(insert(_table(MessageLogLeafRow)), [
                    {"entry_id": leaf.entry_id, "seal_number": leaf.seal_number,
                     "leaf_index": leaf.leaf_index, "leaf_hash": leaf.leaf_hash}
                    for leaf in leaves
                ])
            if subjects:
                s.execute(insert(_table(MessageLogSubjectRow)), [
                    {"application_id": app, "entry_id": entry_id} for app, entry_id in subjects
                ])
            known = set(s.scalars(select(MessageLogCrlRow.sha256).where(
                MessageLogCrlRow.sha256.in_([digest for digest, _ in crls]))))
            new = {digest: data for digest, data in crls if digest not in known}
            if new:
                s.execute(insert(_table(MessageLogCrlRow)), [
                    {"sha256": digest, "crl": data, "first_seal": seal.number}
                    for digest, data in new.items()
                ])

    # -- reading for verification and evidence -------------------------------------------------

    @translates
    def seals(self, after: int = 0, limit: int = 100) -> list[StoredSeal]:
        with self._db.transaction() as s:
            rows = s.scalars(select(MessageLogSealRow).where(MessageLogSealRow.number > after)
                             .order_by(MessageLogSealRow.number).limit(limit))
            return [_seal(r) for r in rows]

    @translates
    def seal(self, number: int) -> StoredSeal:
        with self._db.transaction() as s:
            row = s.get(MessageLogSealRow, number)
            if row is None:
                raise NotFound(f"no seal {number}", code="Client.NotFound.Seal")
            return _seal(row)

    @translates
    def sealed_entries(self, number: int) -> list[tuple[Leaf, StoredEntry | None]]:
        """The leaves of seal ``number`` in leaf order, each with its entry (None: deleted)."""
        with self._db.transaction() as s:
            rows = s.execute(
                select(MessageLogLeafRow, MessageLogRow)
                .outerjoin(MessageLogRow, MessageLogRow.id == MessageLogLeafRow.entry_id)
                .where(MessageLogLeafRow.seal_number == number)
                .order_by(MessageLogLeafRow.leaf_index)
            ).all()
            return [(_leaf(leaf), _entry(entry) if entry is not None else None)
                    for leaf, entry in rows]

    @translates
    def crls(self, digests: Sequence[str]) -> dict[str, bytes]:
        """The archived CRLs with these SHA-256 digests (those found)."""
        with self._db.transaction() as s:
            rows = s.execute(select(MessageLogCrlRow.sha256, MessageLogCrlRow.crl)
                             .where(MessageLogCrlRow.sha256.in_(list(digests))))
            return {digest: bytes(data) for digest, data in rows}

    @translates
    def leaf_hashes(self, number: int) -> list[str]:
        with self._db.transaction() as s:
            return list(s.scalars(
                select(MessageLogLeafRow.leaf_hash)
                .where(MessageLogLeafRow.seal_number == number)
                .order_by(MessageLogLeafRow.leaf_index)
            ))

    @translates
    def entries_without_leaf(self, limit: int = 1000) -> list[StoredEntry]:
        """Every entry no seal covers (a full scan: for verification, not the hot path)."""
        with self._db.transaction() as s:
            rows = s.scalars(self._unsealed_query(0).order_by(MessageLogRow.id).limit(limit))
            return [_entry(r) for r in rows]

    @translates
    def count_entries(self) -> int:
        with self._db.transaction() as s:
            return int(s.scalar(select(func.count()).select_from(MessageLogRow)) or 0)

    @translates
    def entries_of_message(self, message_id: str) -> list[tuple[StoredEntry, Leaf | None]]:
        """The entries logged under X-Road message id ``message_id`` (request, response), each
        with its leaf (None while not sealed). ``NotFound`` (``Client.NotFound.Message``)."""
        with self._db.transaction() as s:
            rows = s.execute(
                select(MessageLogRow, MessageLogLeafRow)
                .outerjoin(MessageLogLeafRow, MessageLogLeafRow.entry_id == MessageLogRow.id)
                .where(MessageLogRow.message_id == message_id)
                .order_by(MessageLogRow.id)
            ).all()
        if not rows:
            raise NotFound(f"no logged message {message_id}", code="Client.NotFound.Message")
        return [(_entry(e), _leaf(leaf) if leaf is not None else None) for e, leaf in rows]

    @translates
    def entries_of_application(self, application_id: str) -> list[tuple[StoredEntry, Leaf]]:
        """Every sealed entry that mentions ``application_id`` and, for each, the other entries
        of the same exchange (same correlation id), so requests come with their answers."""
        with self._db.transaction() as s:
            ids = select(MessageLogSubjectRow.entry_id).where(
                MessageLogSubjectRow.application_id == application_id)
            correlations = select(MessageLogRow.correlation_id).where(MessageLogRow.id.in_(ids))
            rows = s.execute(
                select(MessageLogRow, MessageLogLeafRow)
                .join(MessageLogLeafRow, MessageLogLeafRow.entry_id == MessageLogRow.id)
                .where(MessageLogRow.id.in_(ids)
                       | and_(MessageLogRow.correlation_id.is_not(None),
                              MessageLogRow.correlation_id.in_(correlations)))
                .order_by(MessageLogRow.id)
            ).all()
        if not rows:
            raise NotFound(f"no sealed message about application {application_id}",
                           code="Client.NotFound.Message")
        return [(_entry(e), _leaf(leaf)) for e, leaf in rows]

    # -- retention -------------------------------------------------------------------------

    @translates
    def erase_payloads(self, logged_before: datetime, now: datetime, limit: int = 1000) -> int:
        """The retention procedure: empties the payloads (personal data) of sealed entries
        logged before ``logged_before``; the digest, the metadata and the leaf stay, so seals
        and other messages' evidence still verify. Returns how many were erased."""
        table = _table(MessageLogRow)
        sealed = select(MessageLogLeafRow.entry_id).where(
            MessageLogLeafRow.entry_id == MessageLogRow.id).exists()
        with self._db.transaction() as s:
            if self._db.dialect == "postgresql":
                # The append-only trigger lets this one change through, nothing else.
                s.execute(text("SELECT set_config('dsmf.message_log_retention', 'on', true)"))
            ids = list(s.scalars(
                select(MessageLogRow.id)
                .where(MessageLogRow.at < logged_before, MessageLogRow.erased_at.is_(None), sealed)
                .order_by(MessageLogRow.id).limit(limit)
            ))
            if not ids:
                return 0
            s.execute(update(table).where(table.c.id.in_(ids)).values(payload=b"", erased_at=now))
            return len(ids)


def iterate_seals(log: MessageLog, batch: int = 100) -> Iterator[StoredSeal]:
    """Every seal, oldest first, read in short transactions."""
    after = 0
    while True:
        chunk = log.seals(after, batch)
        if not chunk:
            return
        yield from chunk
        after = chunk[-1].number


__all__ = [
    "Backlog",
    "Leaf",
    "LogEntry",
    "MessageLog",
    "SealConflict",
    "StoredEntry",
    "StoredSeal",
    "append_entries",
    "append_in",
    "exchange_messages",
    "iterate_seals",
]
