"""The request ledger: replay protection, idempotency and the message log in the request's own
transaction (implements ``gateway.services.ports.RequestLedger``).

One request is one transaction (DESIGN §5). The handler's writes are held open by
``Database.request_transaction``; ``SqlRequestRecord.commit`` adds to the same transaction

* the ledger row of (sender, X-Road id) — the digest of the signed content, and for a request that
  changed state its final signed answer and HTTP status — inserted with ``ON CONFLICT``: the
  database's primary key decides which of two concurrent copies wins, in any number of processes;
* the request and the answer in the message log;

and commits once. Nothing is recorded before that commit, so a request that dies mid-flight
(killed worker, lost connection, database restart) leaves no trace and never blocks its id: the
client's retry simply runs. The loser of a race keeps nothing and learns the winner's record.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Delete,
    Select,
    Table,
    bindparam,
    delete,
    exists,
    insert,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.orm import Session

from gateway.services.ports import Exchange, RequestClaim, StoredAnswer
from persistence.db import Database, RequestTransaction
from persistence.driver import WROTE, prepared
from persistence.errors import translated, translates
from persistence.message_log import (
    LOG_COLUMNS,
    LogEntry,
    append_in,
    entry_rows,
    exchange_messages,
)
from persistence.tables import MessageLogRow, RequestLedgerRow

_PURGE_EVERY = 500


def _table() -> Table:
    table = RequestLedgerRow.__table__
    assert isinstance(table, Table)
    return table


# The request path's statements are built once: SQLAlchemy then reuses their cache key and
# compiled form instead of building and hashing a new statement tree on every request.
_CLAIMED = ("content_digest", "response", "http_status", "created_at", "expires_at")


@functools.cache
def _lookup_statement() -> Select[Any]:
    table = _table()
    return select(table.c.content_digest, table.c.response, table.c.http_status).where(
        table.c.key == bindparam("key"), table.c.expires_at >= bindparam("now"))


@functools.cache
def _claim_statement(dialect: str) -> Any:
    table = _table()
    stmt = (pg_dialect if dialect == "postgresql" else sqlite_dialect).insert(table)
    return stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={k: stmt.excluded[k] for k in _CLAIMED},
        where=table.c.expires_at < bindparam("taken_over_before"),
    ).returning(table.c.key)


@functools.cache
def _claim_and_log_statement(messages: int) -> Any:
    """PostgreSQL: the claim and the message-log rows in one statement. The claim is a
    data-modifying CTE (the same ``INSERT … ON CONFLICT DO UPDATE … WHERE`` as
    ``_claim_statement``); the log rows are inserted only when it returned its key, so a lost
    claim writes nothing at all; the statement returns the log rows' ids (none: lost). One
    statement is atomic by itself (issue #10). Parameters: the claim's by column name, the
    ``messages`` log rows' as ``<column>_<n>``; they go in in this order (one UNION ALL, run
    in order), request before answer, as the separate inserts did."""
    ledger, log = _table(), MessageLogRow.__table__
    assert isinstance(log, Table)
    values = pg_dialect.insert(ledger).values(
        {k: bindparam(k, type_=ledger.c[k].type) for k in ("key", *_CLAIMED)})
    claim = values.on_conflict_do_update(
        index_elements=["key"],
        set_={k: values.excluded[k] for k in _CLAIMED},
        where=ledger.c.expires_at < bindparam("taken_over_before", type_=ledger.c.expires_at.type),
    ).returning(ledger.c.key).cte("claim")
    won = exists(select(claim.c.key))
    rows = [select(*[bindparam(f"{c}_{n}", type_=log.c[c].type) for c in LOG_COLUMNS]).where(won)
            for n in range(messages)]
    source = rows[0] if messages == 1 else union_all(*rows)
    return insert(log).from_select(LOG_COLUMNS, source).returning(log.c.id).add_cte(claim)


@functools.cache
def _purge_statement() -> Delete:
    table = _table()
    return delete(table).where(table.c.expires_at < bindparam("now"))


def _alone(conn: Connection, write: Callable[[], bool]) -> bool:
    """``write()`` in one transaction of ``conn`` begun and ended straight through the dialect
    (the engine's ``BEGIN IMMEDIATE`` and writer turn on SQLite), not through SQLAlchemy's
    ``Transaction`` (its objects, events and bookkeeping: about a sixth of the Python calls
    of a request's commit without writes, issue #10). Committed when ``write()`` returns True,
    else rolled back. Driver errors of BEGIN and COMMIT go through the connection's own error
    handling, as the statements' do (``persistence.driver``): the same wrapped errors, and a
    lost connection is invalidated. ``write()`` must run its statements on the driver's cursor
    (``persistence.driver``): a SQLAlchemy execution would begin a transaction of its own."""
    fairy = conn.connection
    dialect = conn.dialect
    try:
        dialect.do_begin(fairy)
    except Exception as error:  # noqa: BLE001 - re-raised wrapped, as SQLAlchemy's begin does
        conn._handle_dbapi_exception(error, None, None, None, None)
    try:
        done = write()
        try:
            (dialect.do_commit if done else dialect.do_rollback)(fairy)
        except Exception as error:  # noqa: BLE001 - re-raised wrapped (as in its commit)
            conn._handle_dbapi_exception(error, None, None, None, None)
    except BaseException:
        _end_quietly(conn)
        raise
    finally:
        fairy.info.pop(WROTE, None)  # what SQLAlchemy's commit and rollback events do
    return done


def _end_quietly(conn: Connection) -> None:
    """Rolls back what the driver has open on ``conn`` outside SQLAlchemy's ``Transaction``,
    here rather than in the pool's reset on return (which logs "Exception during reset" with a
    traceback for a server that has just gone away); a connection whose rollback fails is
    discarded (as ``ConnectionSession.close`` does). The original error matters more."""
    if conn.invalidated:
        return
    try:
        conn.dialect.do_rollback(conn.connection)
    except Exception:  # noqa: BLE001 - a lost connection: discarded, the caller's error stands
        conn.invalidate()


_T = TypeVar("_T")


def _autocommit(conn: Connection, run: Callable[[], _T], fallback: Callable[[], _T]) -> _T:
    """``run()``, one statement on ``conn``, in psycopg's autocommit mode: PostgreSQL runs it
    as a transaction of its own, atomic and with the READ COMMITTED snapshot of its start, as
    ``BEGIN; statement; COMMIT`` (or ``ROLLBACK``) would, in one round trip instead of three;
    and without a ROLLBACK, after which psycopg drops its prepared statements and sends
    ``DEALLOCATE ALL`` before the connection's next statement, a fourth (issue #10).
    Switching autocommit is local to psycopg (no round trip); the connection goes back to the
    pool as it came (autocommit off, no transaction open), or is discarded when it cannot be
    switched back. psycopg refuses the switch on a connection that is not idle (a broken
    one): ``fallback()`` then runs the same in a transaction, and the statement's own error
    handling reports the failure as any statement's."""
    raw = conn.connection.driver_connection
    try:
        raw.autocommit = True  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - reported by fallback's statement, wrapped
        return fallback()
    try:
        return run()
    finally:
        # (An invalidated connection is not touched: its ``.connection`` would reconnect.)
        if not conn.invalidated:
            conn.connection.info.pop(WROTE, None)  # nothing is held: it committed
            try:
                raw.autocommit = False  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001 - the statement's error, if any, matters more
                conn.invalidate()


class SqlRequestLedger:
    def __init__(self, database: Database, *, purge_every: int = _PURGE_EVERY) -> None:
        self.database = database
        self._purge_every = max(1, purge_every)
        self._purge_owed = False
        self._commits = itertools.count(1)

    @translates
    def lookup(self, key: str) -> StoredAnswer | None:
        params = {"key": key, "now": datetime.now(UTC)}
        tx = self.database.current_request()
        if tx is not None and tx.session is not None:
            # Inside a request that already holds its writing transaction (e.g. a first card
            # signature was noted), the read joins it instead of waiting for it.
            conn = tx.session.connection()
            rows = prepared(_lookup_statement(), conn.dialect).run(conn, params)
        else:
            with self.database.engine.connect() as conn:
                # One statement on a connection of the pool, on the driver's cursor: a single
                # SELECT reads a consistent state by itself (on SQLite without the write lock
                # that BEGIN IMMEDIATE would take) (issue #10).
                def read(conn: Connection = conn) -> list[Any]:
                    return prepared(_lookup_statement(), conn.dialect).run(conn, params)

                def read_and_end(conn: Connection = conn) -> list[Any]:
                    try:
                        return read()
                    finally:
                        # The driver may have opened a transaction for the SELECT (psycopg
                        # does): ended here, not by the pool's reset on return, which logs a
                        # traceback when the server has just gone away (a restart).
                        _end_quietly(conn)

                if conn.dialect.name == "postgresql":
                    rows = _autocommit(conn, read, read_and_end)
                else:
                    rows = read_and_end()
        if not rows:
            return None
        row = rows[0]
        return StoredAnswer(row.content_digest, row.response, row.http_status)

    @contextmanager
    def begin(self) -> Iterator[SqlRequestRecord]:
        with self.database.request_transaction() as tx:
            yield SqlRequestRecord(self, tx)

    def _purge_due(self) -> bool:
        """Every ``purge_every``-th commit purges, or the next one after a purge that did not
        happen (its commit failed or lost its claim)."""
        if self._purge_owed:
            self._purge_owed = False
            next(self._commits)
            return True
        return next(self._commits) % self._purge_every == 0

    def _purge_missed(self) -> None:
        self._purge_owed = True


class SqlRequestRecord:
    def __init__(self, ledger: SqlRequestLedger, tx: RequestTransaction) -> None:
        self._ledger = ledger
        self._tx = tx

    @property
    def wrote(self) -> bool:
        return self._tx.wrote

    def commit(
        self,
        exchange: Exchange,
        *,
        claim: RequestClaim | None = None,
        answer: tuple[bytes, int] | None = None,
        keep_writes: bool = True,
    ) -> StoredAnswer | None:
        if not keep_writes:
            self._tx.rollback()
        purge = self._ledger._purge_due()
        try:
            lost = self._commit(exchange, claim, answer, purge)
        except BaseException:
            if purge:
                self._ledger._purge_missed()
            raise
        if lost is not None and purge:
            self._ledger._purge_missed()  # a lost claim wrote nothing, the purge included
        return lost

    def _commit(self, exchange: Exchange, claim: RequestClaim | None,
                answer: tuple[bytes, int] | None, purge: bool) -> StoredAnswer | None:
        if self._tx.session is None:
            return self._commit_alone(exchange, claim, answer, purge)
        try:
            with translated():
                session = self._tx.open()
                if not self._write(session.connection(), exchange, claim, answer, purge):
                    assert claim is not None  # only a claim is lost
                    self._tx.rollback()
                    return self._ledger.lookup(claim.key) or StoredAnswer(
                        claim.content_digest, None, None)
            self._tx.commit()
        except BaseException:
            self._tx.rollback()
            raise
        return None

    def _commit_alone(
        self, exchange: Exchange, claim: RequestClaim | None, answer: tuple[bytes, int] | None,
        purge: bool,
    ) -> StoredAnswer | None:
        """The handler wrote nothing (a read such as FindPerson, a refusal, a transient failure
        whose writes were dropped): the ledger row and the log are the transaction's only
        writes, on one pooled connection without an ORM session (issue #10). The same
        statements, the same one transaction (``BEGIN IMMEDIATE`` on SQLite and the writer
        turn, as every one). On PostgreSQL, a claim and its log rows are one statement
        (``_claim_and_log_statement``) in autocommit: atomic by itself, one round trip instead
        of BEGIN, two INSERTs and COMMIT (the purge, every few hundred commits, keeps its
        transaction)."""
        with translated():
            with self._ledger.database.engine.connect() as conn:
                def in_transaction(conn: Connection = conn) -> bool:
                    return _alone(conn, lambda: self._write(conn, exchange, claim, answer, purge))

                if claim is not None and not purge and conn.dialect.name == "postgresql":
                    won = _autocommit(
                        conn, lambda: self._claim_and_log(conn, exchange, claim, answer),
                        in_transaction)
                else:
                    won = in_transaction()
                if won:
                    return None
        assert claim is not None
        # Lost the race: read the winner's record once this connection is back in the pool.
        return self._ledger.lookup(claim.key) or StoredAnswer(claim.content_digest, None, None)

    def _write(self, conn: Connection, exchange: Exchange, claim: RequestClaim | None,
               answer: tuple[bytes, int] | None, purge: bool) -> bool:
        """The claim (if any) and the log rows in ``conn``'s transaction, then the purge when
        due; False (and nothing written) when the claim is lost."""
        if claim is not None and conn.dialect.name == "postgresql":
            # One statement, one round trip, instead of two.
            if not self._claim_and_log(conn, exchange, claim, answer):
                return False
        else:
            if claim is not None and not self._claim(conn, claim, answer):
                return False
            append_in(
                conn, exchange_messages(exchange.request, exchange.response),
                message_id=exchange.message_id, correlation_id=exchange.correlation_id,
                actor_fin=exchange.actor_fin, voen=exchange.voen,
                operation=exchange.operation, ids=False,
            )
        if purge:
            prepared(_purge_statement(), conn.dialect).run(conn, {"now": datetime.now(UTC)})
        return True

    @staticmethod
    def _claim_and_log(conn: Connection, exchange: Exchange, claim: RequestClaim,
                       answer: tuple[bytes, int] | None) -> bool:
        """PostgreSQL: ``_claim_and_log_statement`` on ``conn``; False when the claim was lost
        (then nothing was written)."""
        values = _claim_values(claim, answer)
        entries = [
            LogEntry(direction, payload, message_id=exchange.message_id,
                     correlation_id=exchange.correlation_id, actor_fin=exchange.actor_fin,
                     voen=exchange.voen, operation=exchange.operation)
            for direction, payload in exchange_messages(exchange.request, exchange.response)
        ]
        rows = entry_rows(entries)
        for n, row in enumerate(rows):
            for column, value in row.items():
                values[f"{column}_{n}"] = value
        stmt = prepared(_claim_and_log_statement(len(rows)), conn.dialect)
        return bool(stmt.run(conn, values))

    @staticmethod
    def _claim(
        s: Session | Connection, claim: RequestClaim, answer: tuple[bytes, int] | None
    ) -> bool:
        """Inserts the ledger row; False when a live row for the key exists already (an
        expired one is taken over: its timestamp check refuses the old message anyway)."""
        values = _claim_values(claim, answer)
        conn = s if isinstance(s, Connection) else s.connection()
        stmt = prepared(_claim_statement(conn.dialect.name), conn.dialect, keys=tuple(values))
        return bool(stmt.run(conn, values))


def _claim_values(claim: RequestClaim, answer: tuple[bytes, int] | None) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "key": claim.key,
        "content_digest": claim.content_digest,
        "response": answer[0] if answer else None,
        "http_status": answer[1] if answer else None,
        "created_at": now,
        "expires_at": claim.expires_at,
        "taken_over_before": now,
    }
