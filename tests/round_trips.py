"""Round trips to PostgreSQL counted by libpq itself: the protocol trace (``PQtrace``) of every
connection of a ``Database``'s pool, for the tests that a hot request sends no more than it must
(issue #10).

A round trip is a message after which the client waits for the server: a ``Sync`` (the end of an
extended-protocol statement, or of a pipelined batch of them) or a simple-protocol ``Query``
(psycopg's ``BEGIN``, ``COMMIT``, ``ROLLBACK``, ``DEALLOCATE ALL``). Counting these messages in
what libpq really wrote means a round trip that comes back anywhere (the driver, SQLAlchemy,
psycopg's own housekeeping) shows.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from psycopg import pq
from sqlalchemy import event

from persistence.db import Database


@dataclass
class Trace:
    """What the traced connections sent, as (kind, text) per round trip; read after the block."""

    path: str
    start: int = 0
    sent: list[str] = field(default_factory=list)

    def read(self) -> None:
        with open(self.path, encoding="utf-8", errors="replace") as f:
            f.seek(self.start)
            text = f.read()
        pending = ""
        for line in text.splitlines():
            parts = line.split("\t")
            if len(parts) < 3 or parts[0] != "F":
                continue
            kind = parts[2]
            if kind == "Parse":
                # F <len> Parse "<name>" "<sql>" ...: the statement's first words name it.
                found = re.search(r'Parse\s+"[^"]*"\s+"(\w+(?:\s+\w+){0,2})', line)
                pending = found.group(1).upper() if found else "?"
            elif kind == "Bind" and not pending:
                pending = "EXECUTE PREPARED"
            elif kind == "Sync":
                self.sent.append(pending or "SYNC")
                pending = ""
            elif kind == "Query":
                found = re.search(r'Query\s+"(\w+(?:\s+\w+)?)', line)
                self.sent.append(found.group(1).upper() if found else "?")

    @property
    def round_trips(self) -> int:
        return len(self.sent)


@contextmanager
def traced(db: Database) -> Iterator[Trace]:
    """Traces every connection ``db``'s pool opens from now on (the pool is emptied first, so
    every connection used in the block is traced); the block's round trips in ``Trace.sent``."""
    assert db.dialect == "postgresql"
    fd, path = tempfile.mkstemp(prefix="pq-trace-", suffix=".txt")
    os.close(fd)
    files: list[Any] = []

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        out = open(path, "a", encoding="utf-8")  # closed when the block ends
        files.append(out)
        dbapi_connection.pgconn.trace(out.fileno())
        dbapi_connection.pgconn.set_trace_flags(
            pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    event.listen(db.engine, "connect", on_connect)
    db.dispose()
    trace = Trace(path)
    try:
        yield trace
    finally:
        event.remove(db.engine, "connect", on_connect)
        db.dispose()  # untraced connections from now on
        for out in files:
            out.close()
        trace.read()
        os.unlink(path)


@contextmanager
def counted(trace: Trace) -> Iterator[list[str]]:
    """The round trips sent inside the block (of a ``traced`` database's connections), as the
    statements' first words: e.g. ``["SELECT REQUEST_LEDGER", "INSERT INTO REQUEST_LEDGER"]``."""
    sent: list[str] = []
    mark = os.path.getsize(trace.path)
    yield sent
    part = Trace(trace.path, start=mark)
    part.read()
    sent.extend(part.sent)
