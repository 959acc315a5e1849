"""The message log: every signed request and response exactly as received or sent, hash-chained.

For entry *n*::

    payload_sha256[n] = SHA-256(payload[n])
    chain_hash[n]     = SHA-256(chain_hash[n-1] || payload_sha256[n] || metadata[n])

with the hashes as raw 32-byte values, ``chain_hash[0-1]`` = 32 zero bytes, and ``metadata[n]``
the canonical JSON (sorted keys, no spaces, UTF-8) of ``at`` (UTC, ISO 8601 with microseconds),
``direction``, ``message_id``, ``correlation_id``, ``actor_fin``, ``voen`` and ``operation``.
Changing, removing or reordering any entry breaks the chain at that entry or the next one.
(Cutting entries off the *end* is invisible to the chain itself: anchor ``ChainReport.last_hash``
somewhere else — a signed daily statement — to cover that.)

There is one chain, whatever the number of writers: ``append`` serialises on a transaction-level
advisory lock on PostgreSQL (``pg_advisory_xact_lock``) and on SQLite's write lock (our
transactions begin IMMEDIATE), so reading the head and inserting the next entry is atomic.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from gateway.domain.errors import NotFound
from persistence.db import Database
from persistence.errors import translates
from persistence.tables import Direction, MessageLogRow

GENESIS_HASH = "00" * 32
# Any constant works; it only has to be the same in every process ("DSMF-LOG" in ASCII).
_ADVISORY_LOCK_KEY = 0x44534D462D4C4F47
_VERIFY_BATCH = 1000


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    entries: int
    first_bad_id: int | None
    last_hash: str | None = None


def canonical_metadata(
    *,
    at: datetime,
    direction: str,
    message_id: str | None,
    correlation_id: str | None,
    actor_fin: str | None,
    voen: str | None,
    operation: str | None,
) -> bytes:
    document = {
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "direction": direction,
        "message_id": message_id,
        "correlation_id": correlation_id,
        "actor_fin": actor_fin,
        "voen": voen,
        "operation": operation,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def chain_hash(prev_hash: str, payload_sha256: str, metadata: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(bytes.fromhex(prev_hash))
    digest.update(bytes.fromhex(payload_sha256))
    digest.update(metadata)
    return digest.hexdigest()


def _metadata_of(row: MessageLogRow) -> bytes:
    return canonical_metadata(
        at=row.at,
        direction=row.direction,
        message_id=row.message_id,
        correlation_id=row.correlation_id,
        actor_fin=row.actor_fin,
        voen=row.voen,
        operation=row.operation,
    )


def _table() -> Table:
    table = MessageLogRow.__table__
    assert isinstance(table, Table)
    return table


# The column's width: a longer id (refused by the X-Road header checks) is logged as unknown; the
# raw request holds it anyway.
MESSAGE_ID_MAX = 255


def append_in(
    s: Session,
    messages: list[tuple[str, bytes]],
    *,
    message_id: str | None,
    correlation_id: str | None,
    actor_fin: str | None,
    voen: str | None,
    operation: str | None,
) -> list[int]:
    """Appends ``messages`` (direction, bytes) to the chain inside the caller's transaction
    (the request's own, so the entry commits with what it records, or not at all)."""
    if message_id is not None and len(message_id) > MESSAGE_ID_MAX:
        message_id = None
    ids: list[int] = []
    if s.get_bind().dialect.name == "postgresql":
        s.execute(select(func.pg_advisory_xact_lock(_ADVISORY_LOCK_KEY)))
    prev = s.scalar(
        select(MessageLogRow.chain_hash).order_by(MessageLogRow.id.desc()).limit(1)
    ) or GENESIS_HASH
    for direction, payload in messages:
        payload_sha256 = hashlib.sha256(payload).hexdigest()
        # Taken under the lock, so times never go backwards along the chain.
        at = datetime.now(UTC)
        metadata = canonical_metadata(
            at=at, direction=direction, message_id=message_id,
            correlation_id=correlation_id, actor_fin=actor_fin, voen=voen,
            operation=operation,
        )
        link = chain_hash(prev, payload_sha256, metadata)
        entry_id = s.execute(
            insert(_table()).returning(_table().c.id),
            {
                "at": at,
                "direction": direction,
                "message_id": message_id,
                "correlation_id": correlation_id,
                "actor_fin": actor_fin,
                "voen": voen,
                "operation": operation,
                "payload": payload,
                "payload_sha256": payload_sha256,
                "prev_hash": prev,
                "chain_hash": link,
            },
        ).scalar_one()
        ids.append(int(entry_id))
        prev = link
    return ids


def exchange_messages(request: bytes | None, response: bytes) -> list[tuple[str, bytes]]:
    """A request and its response, adjacent in the chain (``request`` is None when it was never
    read, e.g. too large)."""
    messages = [(Direction.IN.value, request)] if request is not None else []
    messages.append((Direction.OUT.value, response))
    return messages


class MessageLog:
    """Append-only, hash-chained log of signed messages (``message_log`` table)."""

    def __init__(self, database: Database) -> None:
        self._db = database

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
        """Appends one message (bytes exactly as on the wire); returns its entry id."""
        return self._append_all(
            [(Direction(direction).value, payload)], message_id=message_id,
            correlation_id=correlation_id, actor_fin=actor_fin, voen=voen, operation=operation,
        )[0]

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
        """A request and its response, adjacent in the chain, in one transaction (one commit
        per exchange instead of two). ``request`` is None when it was never read (too large)."""
        return self._append_all(
            exchange_messages(request, response), message_id=message_id,
            correlation_id=correlation_id, actor_fin=actor_fin, voen=voen, operation=operation,
        )

    def _append_all(
        self,
        messages: list[tuple[str, bytes]],
        *,
        message_id: str | None,
        correlation_id: str | None,
        actor_fin: str | None,
        voen: str | None,
        operation: str | None,
    ) -> list[int]:
        with self._db.transaction() as s:
            return append_in(
                s, messages, message_id=message_id, correlation_id=correlation_id,
                actor_fin=actor_fin, voen=voen, operation=operation,
            )

    @translates
    def verify_chain(self) -> ChainReport:
        """Recomputes every hash from the stored bytes, oldest first, in batches (each its own
        short transaction, so writers are not held up)."""
        prev = GENESIS_HASH
        last_id = 0
        entries = 0
        while True:
            with self._db.transaction() as s:
                rows = list(
                    s.scalars(
                        select(MessageLogRow)
                        .where(MessageLogRow.id > last_id)
                        .order_by(MessageLogRow.id)
                        .limit(_VERIFY_BATCH)
                    )
                )
            if not rows:
                return ChainReport(ok=True, entries=entries, first_bad_id=None,
                                   last_hash=None if entries == 0 else prev)
            for row in rows:
                entries += 1
                payload_sha256 = hashlib.sha256(row.payload).hexdigest()
                expected = chain_hash(prev, payload_sha256, _metadata_of(row))
                if (
                    row.payload_sha256 != payload_sha256
                    or row.prev_hash != prev
                    or row.chain_hash != expected
                ):
                    return ChainReport(ok=False, entries=entries, first_bad_id=row.id,
                                       last_hash=None)
                prev = row.chain_hash
                last_id = row.id

    @translates
    def export_evidence(self, message_id: str) -> dict[str, Any]:
        """Everything needed to show a third party what was exchanged under ``message_id``:
        each logged entry (request, response) with its payload (base64), hashes, the canonical
        metadata, its position in the chain and its neighbours' hashes, and whether the hashes
        recompute. Raises ``NotFound`` (``Client.NotFound.Message``) for an unknown id."""
        with self._db.transaction() as s:
            rows = list(
                s.scalars(
                    select(MessageLogRow)
                    .where(MessageLogRow.message_id == message_id)
                    .order_by(MessageLogRow.id)
                )
            )
            if not rows:
                raise NotFound(f"no logged message {message_id}", code="Client.NotFound.Message")
            entries = []
            for row in rows:
                before = s.execute(
                    select(MessageLogRow.id, MessageLogRow.chain_hash)
                    .where(MessageLogRow.id < row.id)
                    .order_by(MessageLogRow.id.desc())
                    .limit(1)
                ).one_or_none()
                after = s.execute(
                    select(MessageLogRow.id, MessageLogRow.prev_hash, MessageLogRow.chain_hash)
                    .where(MessageLogRow.id > row.id)
                    .order_by(MessageLogRow.id)
                    .limit(1)
                ).one_or_none()
                entries.append(self._evidence_entry(row, before, after))
        requests = [e for e in entries if e["direction"] == Direction.IN.value]
        responses = [e for e in entries if e["direction"] == Direction.OUT.value]
        return {
            "message_id": message_id,
            "hash_algorithm": "sha256",
            "chain_rule": "chain_hash = sha256(prev_hash || payload_sha256 || metadata_canonical)"
            " over raw digest bytes; genesis prev_hash = 32 zero bytes",
            "genesis_hash": GENESIS_HASH,
            "request": requests[0] if requests else None,
            "response": responses[-1] if responses else None,
            "entries": entries,
        }

    @staticmethod
    def _evidence_entry(row: MessageLogRow, before: Any, after: Any) -> dict[str, Any]:
        metadata = _metadata_of(row)
        payload_sha256 = hashlib.sha256(row.payload).hexdigest()
        return {
            "id": row.id,
            "direction": row.direction,
            "at": row.at.isoformat(timespec="microseconds"),
            "message_id": row.message_id,
            "correlation_id": row.correlation_id,
            "actor_fin": row.actor_fin,
            "voen": row.voen,
            "operation": row.operation,
            "payload_base64": base64.b64encode(row.payload).decode("ascii"),
            "payload_sha256": row.payload_sha256,
            "metadata_canonical": metadata.decode("utf-8"),
            "prev_hash": row.prev_hash,
            "chain_hash": row.chain_hash,
            "hashes_recompute": (
                payload_sha256 == row.payload_sha256
                and chain_hash(row.prev_hash, payload_sha256, metadata) == row.chain_hash
            ),
            "previous": None
            if before is None
            else {"id": before.id, "chain_hash": before.chain_hash},
            "next": None
            if after is None
            else {"id": after.id, "prev_hash": after.prev_hash, "chain_hash": after.chain_hash},
            "linked_to_previous": (before.chain_hash if before else GENESIS_HASH)
            == row.prev_hash,
        }
