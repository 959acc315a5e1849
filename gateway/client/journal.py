"""The local journal of a ``dsmf-client register`` run: SQLite next to the input file.

It is what makes a run resumable and exactly-once. Every row is recorded by its FIN; before a
request leaves, the signed bytes, their X-Road message id and the rows they carry are committed
here in one transaction (a *chunk*); when the verified answer arrives, the rows' outcomes and
the chunk's end are committed in one transaction. Killed at any point, the next run finds every
chunk that was signed but not answered and sends the same bytes with the same message id again,
and the gateway answers a retry of a request it has already done with its stored answer. A row
is in exactly one of these states:

    PENDING  -- not in any request yet (or its request was refused as a whole: nothing was done)
    SENT     -- in a chunk that is signed and journaled, answer not recorded yet
    DONE     -- outcome recorded (REGISTERED, SUBMITTED, SSN_EXISTS or FAILED)
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from gateway.client.service import PreparedRequest

PENDING: Final = "PENDING"
SENT: Final = "SENT"
DONE: Final = "DONE"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunk (
    chunk_id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    operation TEXT NOT NULL,
    request BLOB NOT NULL,
    http_headers TEXT NOT NULL,
    open INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    closed_at TEXT
);
CREATE TABLE IF NOT EXISTS row (
    fin TEXT PRIMARY KEY,
    client_ref TEXT NOT NULL,
    line INTEGER NOT NULL,
    item TEXT NOT NULL,
    state TEXT NOT NULL,
    chunk_id INTEGER REFERENCES chunk(chunk_id),
    outcome TEXT,
    ssn TEXT,
    application_id TEXT,
    fault_code TEXT,
    message TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS row_state ON row(state, line);
CREATE INDEX IF NOT EXISTS row_chunk ON row(chunk_id);
"""


def journal_path_for(input_path: Path) -> Path:
    return input_path.with_name(input_path.name + ".dsmf-journal.sqlite")


@dataclass(frozen=True)
class JournalRow:
    fin: str
    client_ref: str
    line: int
    item: dict[str, Any]
    state: str
    chunk_id: int | None
    outcome: str | None
    ssn: str | None
    application_id: str | None
    fault_code: str | None
    message: str | None
    attempts: int = 0


@dataclass(frozen=True)
class Chunk:
    chunk_id: int
    request: PreparedRequest
    fins: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    outcome: str
    ssn: str | None = None
    application_id: str | None = None
    fault_code: str | None = None
    message: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Journal:
    """Thread-safe: one connection behind a lock (the writes are small and few)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # A killed process loses nothing that was committed (the OS keeps the WAL); FULL also
        # survives a power cut, for the price of an fsync per commit - a few per chunk.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- meta -------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self._lock:
            found = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return found[0] if found else None

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) "
                       "DO UPDATE SET value = excluded.value", (key, value))

    # --- rows -------------------------------------------------------------------------------

    def add_rows(self, rows: Sequence[tuple[str, str, int, dict[str, Any]]], *,
                 retry_failed: bool = False) -> None:
        """Record rows (fin, client_ref, line, item). A row not yet in any request takes the
        file's current data; one already sent keeps what was signed; a FAILED one is tried
        again only when asked."""
        now = _now()
        with self._transaction() as db:
            # A row taken out of the file since the last run is not sent - if it was never in
            # a request. (One that was stays: the gateway may have done it.)
            present = {fin for fin, _ref, _line, _item in rows}
            for (fin,) in db.execute("SELECT fin FROM row WHERE state = 'PENDING'").fetchall():
                if fin not in present:
                    db.execute("DELETE FROM row WHERE fin = ? AND state = 'PENDING'", (fin,))
            for fin, ref, line, item in rows:
                data = json.dumps(item, ensure_ascii=False, sort_keys=True)
                db.execute(
                    "INSERT INTO row(fin, client_ref, line, item, state, updated_at) "
                    "VALUES (?, ?, ?, ?, 'PENDING', ?) ON CONFLICT(fin) DO UPDATE SET "
                    "client_ref = excluded.client_ref, line = excluded.line, "
                    "item = excluded.item, updated_at = excluded.updated_at "
                    "WHERE row.state = 'PENDING'",
                    (fin, ref, line, data, now),
                )
                if retry_failed:
                    db.execute(
                        "UPDATE row SET state = 'PENDING', chunk_id = NULL, outcome = NULL, "
                        "fault_code = NULL, message = NULL, client_ref = ?, line = ?, item = ?, "
                        "updated_at = ? WHERE fin = ? AND state = 'DONE' AND outcome = 'FAILED'",
                        (ref, line, data, now, fin),
                    )

    def rows(self, *, state: str | None = None, outcome: str | None = None,
             chunk_id: int | None = None) -> list[JournalRow]:
        query = ("SELECT fin, client_ref, line, item, state, chunk_id, outcome, ssn, "
                 "application_id, fault_code, message, attempts FROM row")
        where: list[str] = []
        args: list[object] = []
        if state is not None:
            where.append("state = ?")
            args.append(state)
        if outcome is not None:
            where.append("outcome = ?")
            args.append(outcome)
        if chunk_id is not None:
            where.append("chunk_id = ?")
            args.append(chunk_id)
        if where:
            query += " WHERE " + " AND ".join(where)
        with self._lock:
            found = self._db.execute(query + " ORDER BY line", args).fetchall()
        return [JournalRow(r[0], r[1], r[2], json.loads(r[3]), *r[4:]) for r in found]

    def counts(self) -> dict[str, int]:
        with self._lock:
            found = self._db.execute(
                "SELECT coalesce(outcome, state), count(*) FROM row GROUP BY 1").fetchall()
        return {key: count for key, count in found}

    # --- chunks -----------------------------------------------------------------------------

    def open_chunk(self, request: PreparedRequest, fins: Sequence[str]) -> Chunk:
        """Journal a signed request and the rows it carries, before it is sent."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO chunk(message_id, operation, request, http_headers, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (request.message_id, request.operation, request.body,
                 json.dumps(request.http_headers), _now()),
            )
            chunk_id = cursor.lastrowid
            assert chunk_id is not None
            db.executemany(
                "UPDATE row SET state = 'SENT', chunk_id = ?, attempts = attempts + 1, "
                "updated_at = ? WHERE fin = ? AND state = 'PENDING'",
                [(chunk_id, _now(), fin) for fin in fins],
            )
        return Chunk(chunk_id, request, tuple(fins))

    def replace_request(self, chunk: Chunk, request: PreparedRequest) -> Chunk:
        """The same message id and content, signed again (the first signature's time ran out)."""
        assert request.message_id == chunk.request.message_id
        with self._transaction() as db:
            db.execute("UPDATE chunk SET request = ? WHERE chunk_id = ?",
                       (request.body, chunk.chunk_id))
        return Chunk(chunk.chunk_id, request, chunk.fins)

    def move_chunk(self, chunk: Chunk, request: PreparedRequest) -> Chunk:
        """The same rows under a new message id (the old id's answer was a whole-request
        ``Server.*`` fault): the old chunk closes and the new one opens in one transaction."""
        now = _now()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO chunk(message_id, operation, request, http_headers, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (request.message_id, request.operation, request.body,
                 json.dumps(request.http_headers), now),
            )
            chunk_id = cursor.lastrowid
            assert chunk_id is not None
            db.execute("UPDATE row SET chunk_id = ?, attempts = attempts + 1, updated_at = ? "
                       "WHERE chunk_id = ? AND state = 'SENT'", (chunk_id, now, chunk.chunk_id))
            db.execute("UPDATE chunk SET open = 0, closed_at = ? WHERE chunk_id = ?",
                       (now, chunk.chunk_id))
        return Chunk(chunk_id, request, chunk.fins)

    def open_chunks(self) -> list[Chunk]:
        with self._lock:
            chunks = self._db.execute(
                "SELECT chunk_id, message_id, operation, request, http_headers FROM chunk "
                "WHERE open = 1 ORDER BY chunk_id").fetchall()
            result = []
            for chunk_id, message_id, operation, body, headers in chunks:
                fins = [r[0] for r in self._db.execute(
                    "SELECT fin FROM row WHERE chunk_id = ? AND state = 'SENT' ORDER BY line",
                    (chunk_id,))]
                request = PreparedRequest(operation, message_id, bytes(body), json.loads(headers))
                result.append(Chunk(chunk_id, request, tuple(fins)))
        return result

    def chunk_rows(self, chunk: Chunk) -> list[JournalRow]:
        return self.rows(state=SENT, chunk_id=chunk.chunk_id)

    def close_chunk(self, chunk: Chunk, outcomes: dict[str, Outcome],
                    *, back_to_pending: Sequence[str] = ()) -> None:
        """Record the answer: each row's outcome, rows the gateway did nothing with back to
        PENDING, and the chunk closed - in one transaction."""
        now = _now()
        with self._transaction() as db:
            for fin, o in outcomes.items():
                db.execute(
                    "UPDATE row SET state = 'DONE', outcome = ?, ssn = ?, application_id = ?, "
                    "fault_code = ?, message = ?, updated_at = ? WHERE fin = ? AND chunk_id = ?",
                    (o.outcome, o.ssn, o.application_id, o.fault_code, o.message, now, fin,
                     chunk.chunk_id),
                )
            for fin in back_to_pending:
                db.execute("UPDATE row SET state = 'PENDING', chunk_id = NULL, updated_at = ? "
                           "WHERE fin = ? AND chunk_id = ?", (now, fin, chunk.chunk_id))
            # A row the answer said nothing about must not stay SENT in a closed chunk (never
            # resent, never settled): it waits for another request. If the gateway did it after
            # all, that request's answer says its SSN exists and the registry shows it as ours.
            db.execute("UPDATE row SET state = 'PENDING', chunk_id = NULL, updated_at = ? "
                       "WHERE chunk_id = ? AND state = 'SENT'", (now, chunk.chunk_id))
            db.execute("UPDATE chunk SET open = 0, closed_at = ? WHERE chunk_id = ?",
                       (now, chunk.chunk_id))

    def update_outcome(self, fin: str, outcome: Outcome) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE row SET outcome = ?, ssn = ?, application_id = ?, fault_code = ?, "
                "message = ?, updated_at = ? WHERE fin = ? AND state = 'DONE'",
                (outcome.outcome, outcome.ssn, outcome.application_id, outcome.fault_code,
                 outcome.message, _now(), fin),
            )
