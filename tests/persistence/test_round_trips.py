"""Round trips of the request path's ledger statements on PostgreSQL, counted in libpq's own
protocol trace (tests/round_trips.py), so that one that comes back fails here (issue #10)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from psycopg import pq

from gateway.services.ports import Exchange, RequestClaim, StoredAnswer
from persistence.db import Database
from persistence.guard import SqlRequestLedger
from persistence.migrate import upgrade
from tests.conftest import _fresh_postgres_database
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
