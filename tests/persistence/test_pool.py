"""PostgreSQL connections are not pinged on checkout (``pool_pre_ping`` is off: a round trip per
checkout), yet one the server has closed is never handed out: the checkout sees the closed
socket and takes a fresh connection. A connection lost in its transaction rolls back quietly."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from persistence.db import Database, scratch_postgres_database
from tests.conftest import missing_requirement


@pytest.fixture
def postgres() -> Iterator[Database]:
    base = os.environ.get("DSMF_TEST_POSTGRES_URL")
    if not base:
        missing_requirement("DSMF_TEST_POSTGRES_URL is not set")
    with scratch_postgres_database(base, prefix="t") as url:
        db = Database(url)
        try:
            yield db
        finally:
            db.dispose()


def backend_pid(db: Database) -> int:
    with db.transaction() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_terminated_idle_connection_is_replaced_without_an_error(
        postgres: Database) -> None:
    assert not postgres.engine.pool._pre_ping  # what this replaces
    first = backend_pid(postgres)
    assert backend_pid(postgres) == first  # the pooled connection is reused

    # What a restart or an operator does to every session: terminate it while it is idle.
    admin = make_url(postgres.engine.url).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False),
                         autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (first,)).fetchone() == (True,)
        # Wait until the backend is gone (it has written its notice and closed by then).
        for _ in range(200):
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                               (first,)).fetchone()
            if row == (0,):
                break

    second = backend_pid(postgres)  # no OperationalError: a new connection was taken
    assert second != first


def test_a_connection_lost_in_a_transaction_rolls_back_quietly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The write tracking read the lost connection's info in the rollback's event, which made
    # the rollback fail and log "rollback after an error failed" for every lost connection.
    database = Database(f"sqlite:///{tmp_path / 'lost.db'}")
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    with caplog.at_level(logging.WARNING), pytest.raises(RuntimeError, match="lost"):
        with database.transaction() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
            session.connection().invalidate()
            raise RuntimeError("lost")
    assert [r.getMessage() for r in caplog.records] == []
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    database.dispose()
