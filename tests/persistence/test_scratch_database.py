"""persistence.db.scratch_postgres_database: a fresh database (or a copy) for benchmarks, dropped
after; Database.watch_statements, what benchmarks replay."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from persistence.db import Database, database_name, libpq_url, scratch_postgres_database
from tests.conftest import missing_requirement


def test_scratch_database_is_created_empty_and_dropped() -> None:
    base = os.environ.get("DSMF_TEST_POSTGRES_URL")
    if not base:
        missing_requirement("DSMF_TEST_POSTGRES_URL is not set")
    admin = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    with scratch_postgres_database(base, prefix="t") as url:
        name = make_url(url).database
        assert name and name.startswith("t_")
        db = Database(url)
        db.ping()
        db.dispose()
        with psycopg.connect(admin) as conn:
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (name,)).fetchone() is not None
    with psycopg.connect(admin) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() is None


def test_scratch_copy_holds_the_source_rows_and_both_are_dropped() -> None:
    base = os.environ.get("DSMF_TEST_POSTGRES_URL")
    if not base:
        missing_requirement("DSMF_TEST_POSTGRES_URL is not set")
    admin = libpq_url(base)
    with scratch_postgres_database(base, prefix="src") as source:
        with psycopg.connect(libpq_url(source), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (7)")
        with scratch_postgres_database(base, prefix="cp",
                                       copy_of=database_name(source)) as copy:
            names = [database_name(source), database_name(copy)]
            assert names[1].startswith("cp_")
            with psycopg.connect(libpq_url(copy)) as conn:
                assert conn.execute("SELECT x FROM t").fetchall() == [(7,)]
    with psycopg.connect(admin) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = ANY(%s)",
                            (names,)).fetchone() == (0,)


def test_watch_statements_sees_what_is_sent_to_the_driver(tmp_path: Path) -> None:
    seen: list[tuple[str, object]] = []
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    db.watch_statements(lambda statement, parameters: seen.append((statement, parameters)))
    with db.engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (:x)"), {"x": 7})
    db.dispose()
    assert ("INSERT INTO t VALUES (?)", (7,)) in seen
