"""Checks that the test environment prepared by scripts/test is what the suite expects."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url


def test_python_is_311() -> None:
    assert sys.version_info[:2] == (3, 11), sys.version


def test_database_url_is_usable(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database
        with sqlite3.connect(url.database) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        return
    assert url.get_backend_name() == "postgresql"
    assert url.database and url.database.startswith("t_")
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        # The database is this test's own, freshly created: no tables of ours.
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert row == (0,)


def test_softhsm_module_exists(softhsm_module: str) -> None:
    assert Path(softhsm_module).is_file()
