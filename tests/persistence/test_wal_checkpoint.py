"""SQLite's WAL checkpoint off the requests' commits (``Database.checkpoint_in_background`` and
``checkpoint_wal``), and the bound that stays when nobody checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from persistence.db import Database
from tests.conftest import _fresh_postgres_database

PAGE = 4096
FRAME = PAGE + 24  # a WAL frame: its header and one page


def _database(path: Path) -> Database:
    database = Database(f"sqlite:///{path}")
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE pages (b BLOB)"))
    return database


def _commit_pages(database: Database, n: int) -> None:
    """``n`` commits of about one page each, as a stream of small requests writes."""
    blob = b"x" * 3000
    for _ in range(n):
        with database.engine.begin() as conn:
            conn.execute(text("INSERT INTO pages VALUES (:b)"), {"b": blob})


def _wal_frames(path: Path) -> int:
    """The WAL file's length in frames: its high-water mark (SQLite rewrites a WAL from the
    start after a complete checkpoint and does not shrink the file)."""
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size // FRAME if wal.exists() else 0


def test_by_default_a_commit_checkpoints_the_wal_past_1000_pages(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    database = _database(path)
    try:
        _commit_pages(database, 1500)
        # A commit past 1000 pages checkpointed it, and the next one started the WAL over.
        assert 1000 <= _wal_frames(path) < 1100
    finally:
        database.dispose()


def test_in_background_mode_no_commit_checkpoints_and_checkpoint_wal_does(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gw.db"
    database = _database(path)
    try:
        assert database.checkpoint_in_background(10_000) is True
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 10_000
        size = path.stat().st_size
        _commit_pages(database, 1500)
        assert _wal_frames(path) >= 1500  # every commit appended, none checkpointed
        assert path.stat().st_size == size  # so nothing reached the database file yet
        frames, done = database.checkpoint_wal() or (0, 0)
        assert frames >= 1500 and done == frames
        assert path.stat().st_size >= size + 1500 * PAGE
        # The next commit starts the WAL over: the file stays as long as it was, no longer.
        _commit_pages(database, 10)
        assert _wal_frames(path) == frames
    finally:
        database.dispose()


def test_the_fallback_bounds_the_wal_when_nobody_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    database = _database(path)
    try:
        database.checkpoint_in_background(1200)
        _commit_pages(database, 2500)
        assert 1200 <= _wal_frames(path) < 1300
    finally:
        database.dispose()


def test_nothing_to_checkpoint_in_memory() -> None:
    database = Database("sqlite://")
    assert database.checkpoint_in_background(10_000) is False
    assert database.checkpoint_wal() is None


@pytest.mark.postgres
def test_nothing_to_checkpoint_on_postgresql() -> None:
    for url in _fresh_postgres_database():
        database = Database(url)
        try:
            assert database.checkpoint_in_background(10_000) is False
            assert database.checkpoint_wal() is None
        finally:
            database.dispose()
