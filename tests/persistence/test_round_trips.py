"""Round trips of the request path's ledger statements on PostgreSQL, counted in libpq's own
protocol trace (tests/round_trips.py), so that one that comes back fails here (issue #10)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import pq
from sqlalchemy import insert, text

from gateway.domain.model import EService
from gateway.services.ports import Exchange, RequestClaim, StoredAnswer
from persistence.db import Database, libpq_url
from persistence.driver import plain_read, prepared
from persistence.errors import StorageUnavailable
from persistence.guard import SqlRequestLedger
from persistence.migrate import upgrade
from persistence.tables import WorkerLeaseRow
from persistence.unit_of_work import SqlUnitOfWork
from tests.conftest import _fresh_postgres_database
from tests.persistence.test_request_ledger_commit import rows as logged
from tests.round_trips import Trace, counted, traced

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg() -> Iterator[Database]:
    for url in _fresh_postgres_database():
        upgrade(url)
        database = Database(url)
        try:
            yield database
        finally:
            database.dispose()


@pytest.fixture
def trace(pg: Database) -> Iterator[Trace]:
    with traced(pg) as t:
        yield t


def exchange(key: str) -> Exchange:
    return Exchange(b"<request/>", b"<answer/>", key, key, "5GH3J7K", "1403567891", "FindPerson")


def claim(key: str) -> RequestClaim:
    return RequestClaim(key, "d" * 64, datetime.now(UTC) + timedelta(hours=1))


#: How psycopg begins: with the isolation level the engine states (persistence.db).
BEGIN = "BEGIN ISOLATION"


def pooled_connection_is_clean(db: Database) -> bool:
    """The pool's connection as it came: autocommit off, no transaction open."""
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        return (raw is not None and not raw.autocommit
                and raw.info.transaction_status == pq.TransactionStatus.IDLE)


def test_a_ledger_lookup_is_one_round_trip(pg: Database, trace: Trace) -> None:
    ledger = SqlRequestLedger(pg)
    with ledger.begin() as record:
        record.commit(exchange("k-1"), claim=claim("k-1"))
    for key, found in (("absent", None), ("k-1", StoredAnswer("d" * 64, None, None))):
        with counted(trace) as sent:
            assert ledger.lookup(key) == found
        # One SELECT in autocommit: no BEGIN and ROLLBACK around it, and so no DEALLOCATE ALL
        # (psycopg drops its prepared statements after a ROLLBACK) before the next statement.
        assert sent == ["SELECT REQUEST_LEDGER"], sent
        assert pooled_connection_is_clean(pg)


def test_a_commit_of_a_request_that_wrote_nothing_is_one_statement(
        pg: Database, trace: Trace) -> None:
    ledger = SqlRequestLedger(pg)
    with counted(trace) as sent, ledger.begin() as record:
        assert record.commit(exchange("k-1"), claim=claim("k-1")) is None
    # The claim and both log rows in one statement in autocommit: no BEGIN, no COMMIT.
    assert sent == ["WITH CLAIM AS"], sent
    assert logged(pg) == (["k-1"], [("k-1", "IN"), ("k-1", "OUT")])
    assert pooled_connection_is_clean(pg)
    # The same key again: the claim is lost, nothing is written, and the winner's record is
    # read (one more statement).
    with counted(trace) as sent, ledger.begin() as record:
        assert record.commit(exchange("k-1"), claim=claim("k-1")) == StoredAnswer(
            "d" * 64, None, None)
    assert sent == ["WITH CLAIM AS", "SELECT REQUEST_LEDGER"], sent
    assert logged(pg) == (["k-1"], [("k-1", "IN"), ("k-1", "OUT")])
    assert pooled_connection_is_clean(pg)


def test_a_commit_after_the_handler_wrote_adds_one_statement_before_commit(
        pg: Database, trace: Trace) -> None:
    ledger = SqlRequestLedger(pg)
    with ledger.begin() as record:
        with pg.transaction() as session:  # held for the request's commit, as it wrote
            session.execute(insert(WorkerLeaseRow).values(
                name="test", holder="me", expires_at=datetime.now(UTC)))
        assert record.wrote
        with counted(trace) as sent:
            assert record.commit(exchange("k-2"), claim=claim("k-2")) is None
    # The handler's transaction is held: the claim and the log in one statement, then COMMIT.
    assert sent == ["WITH CLAIM AS", "COMMIT"], sent
    assert logged(pg) == (["k-2"], [("k-2", "IN"), ("k-2", "OUT")])


def test_no_prepared_statements_to_drop_after_a_rollback(pg: Database, trace: Trace) -> None:
    # An executemany (a Submit's status history) would have psycopg prepare its statement;
    # the ROLLBACK of a later read-only unit of work would then drop every prepared statement
    # and cost a DEALLOCATE ALL before the next statement (here the ledger lookup).
    ledger = SqlRequestLedger(pg)
    with pg.transaction() as session:
        conn = session.connection()
        prepared(insert(WorkerLeaseRow), conn.dialect, keys=("name", "holder", "expires_at"))\
            .run_many(conn, [{"name": f"lease-{n}", "holder": "me",
                              "expires_at": datetime.now(UTC)} for n in range(2)])
    with counted(trace) as sent:
        with pg.unit_of_work() as uow:
            assert uow.insurers.get("1403567891") is None
        assert ledger.lookup("absent") is None
    assert sent == ["SELECT INSURERS", "SELECT REQUEST_LEDGER"], sent


def eservices(db: Database) -> list[str]:
    with db.transaction() as s:
        return list(s.execute(text("SELECT code FROM eservices ORDER BY code")).scalars())


def add_eservice(uow: SqlUnitOfWork, code: str) -> None:
    uow.eservices.upsert(EService(code, f"e-service {code}"))


def test_a_unit_of_work_reads_before_its_begin_and_writes_in_one_transaction(
        pg: Database, trace: Trace) -> None:
    # Only reads: the SELECTs alone, no BEGIN and no ROLLBACK.
    with counted(trace) as sent, pg.unit_of_work() as uow:
        assert uow.insurers.get("1403567891") is None
        assert uow.insurers.get("1700345671") is None
    assert sent == ["SELECT INSURERS", "SELECT INSURERS"], sent
    assert pooled_connection_is_clean(pg)
    # A read, then writes: BEGIN before the first write, and the writes commit together.
    with counted(trace) as sent, pg.unit_of_work() as uow:
        assert uow.insurers.get("1403567891") is None
        add_eservice(uow, "a")
        assert uow.insurers.get("1403567891") is None  # in the transaction now
        add_eservice(uow, "b")
        uow.commit()
    # (an upsert is an UPDATE, then a read and an INSERT: all after the one BEGIN)
    assert sent[:3] == ["SELECT INSURERS", BEGIN, "UPDATE ESERVICES SET"], sent
    assert sent.count(BEGIN) == 1 and sent[-1] == "COMMIT", sent
    assert eservices(pg) == ["a", "b"]
    assert pooled_connection_is_clean(pg)
    # A read, a write, then a failure: the write is rolled back, nothing half-written.
    with counted(trace) as sent, pytest.raises(RuntimeError), pg.unit_of_work() as uow:
        assert uow.insurers.get("1403567891") is None
        add_eservice(uow, "c")
        raise RuntimeError("the handler failed")
    assert sent[:3] == ["SELECT INSURERS", BEGIN, "UPDATE ESERVICES SET"], sent
    assert sent.count(BEGIN) == 1 and sent[-1] == "ROLLBACK", sent
    assert eservices(pg) == ["a", "b"]
    assert pooled_connection_is_clean(pg)


def test_a_locking_read_begins_the_transaction_first(pg: Database, trace: Trace) -> None:
    with counted(trace) as sent, pg.unit_of_work() as uow:
        assert uow.sql.applications.get_for_update("no-such-application") is None
    # FOR UPDATE keeps its lock until the unit of work ends: it runs in the transaction.
    assert sent[0] == BEGIN and sent[-1] == "ROLLBACK" and len(sent) == 3, sent
    assert pooled_connection_is_clean(pg)


def test_a_connection_lost_after_the_reads_fails_the_write_and_the_pool_works_on(
        pg: Database) -> None:
    with pytest.raises(StorageUnavailable), pg.unit_of_work() as uow:
        assert uow.insurers.get("1403567891") is None  # in autocommit, before the BEGIN
        url = pg.engine.url.render_as_string(hide_password=False)
        with psycopg.connect(libpq_url(url), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        add_eservice(uow, "LOST")
        uow.commit()
    assert "LOST" not in eservices(pg)
    assert pooled_connection_is_clean(pg)


def test_transactions_are_read_committed_whatever_the_servers_default(pg: Database) -> None:
    # The reads before a unit of work's BEGIN read what they would inside it only in READ
    # COMMITTED; an operator's stricter server default must not quietly change that.
    with psycopg.connect(libpq_url(pg.engine.url.render_as_string(hide_password=False)),
                         autocommit=True) as admin:
        name = admin.info.dbname
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_isolation'
                      " = 'repeatable read'")
    database = Database(pg.engine.url.render_as_string(hide_password=False))
    try:
        with database.engine.connect() as conn:
            # What a session on this database gets by default, unless told otherwise:
            assert conn.exec_driver_sql("SHOW default_transaction_isolation").scalar() == \
                "repeatable read"
        with database.transaction() as session:
            level = session.execute(text("SHOW transaction_isolation")).scalar()
        assert level == "read committed"
    finally:
        database.dispose()


@pytest.mark.parametrize("sql", [
    "SELECT set_config('dsmf.message_log_retention', 'on', true)",
    "SELECT nextval('ssn_serial')",
    "select pg_notify('c', 'x')",
    "SELECT setval('s', 1)",
    "SELECT txid_current()",
    "SELECT 1 AS a INTO t",
    "SELECT 1; DELETE FROM message_log",
    "SELECT pg_advisory_lock(1)",
    'SELECT "set_config"(\'a.b\', \'c\', true)',
    "SELECT a FROM t FOR\n  UPDATE",
    "/* a comment */ SELECT 1",
    "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
])
def test_a_select_that_writes_or_locks_is_not_a_plain_read(sql: str) -> None:
    assert not plain_read(sql)


@pytest.mark.parametrize("sql", [
    "SELECT request_ledger.content_digest FROM request_ledger WHERE request_ledger.key = "
    "%(key)s AND request_ledger.expires_at >= %(now)s",
    "SELECT count(*) AS count_1 FROM (SELECT applications.application_id FROM applications "
    "WHERE applications.insurer_voen = %(voen)s AND applications.fin IN (%(fin_1)s, %(fin_2)s)"
    " LIMIT %(param_1)s) AS anon_1",
    "SELECT coalesce(max(a.n), %(c)s) FROM a WHERE CAST(a.x AS VARCHAR(20)) = %(x)s AND "
    "NOT (a.y = %(y)s OR EXISTS (SELECT 1 FROM b WHERE b.k = a.k))",
])
def test_the_gateways_reads_are_plain_reads(sql: str) -> None:
    assert plain_read(sql)


def test_a_select_that_changes_the_session_runs_in_the_transaction(pg: Database) -> None:
    # set_config(..., true) lasts until its transaction ends (MessageLog.erase_payloads uses it
    # to pass the log's append-only trigger); run before BEGIN it would be lost at once. A
    # SELECT ... INTO creates a table: rolled back with the unit of work, not kept.
    session = pg.connection_session()
    try:
        session.execute(text("SELECT set_config('dsmf.probe', 'on', true)"))
        assert session.execute(text("SELECT current_setting('dsmf.probe', true)")).scalar() \
            == "on"
        session.execute(text("SELECT 1 AS a INTO made_by_select_into"))
        session.rollback()
    finally:
        session.close()
    with pg.engine.connect() as conn:
        assert conn.exec_driver_sql(
            "SELECT to_regclass('made_by_select_into') IS NULL").scalar() is True
    assert pooled_connection_is_clean(pg)
