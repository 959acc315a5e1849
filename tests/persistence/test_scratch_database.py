"""persistence.db.scratch_postgres_database: a fresh database for benchmarks, dropped after."""

from __future__ import annotations

import os

import psycopg
from sqlalchemy.engine import make_url

from persistence.db import Database, scratch_postgres_database
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
