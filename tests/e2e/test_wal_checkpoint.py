"""Every gateway process checkpoints SQLite's WAL in the background
(``sqlite_checkpoint_every_seconds``), so no request's commit pays for it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from persistence.db import database_name
from tests.e2e.conftest import Stack, sibling_stack

PAGE = 4096


def _threads(name: str = "checkpoint-wal") -> set[threading.Thread]:
    """This process's threads of that name. The tests compare the sets before and after
    ``start_worker``: a thread of an earlier test's gateway that ends meanwhile (``close``
    waits 5 s for each) then does not hide the one started here, as it would in a count."""
    return {t for t in threading.enumerate() if t.name == name}


def test_the_worker_checkpoints_the_wal_in_the_background(stack: Stack, tmp_path: Path) -> None:
    with sibling_stack(stack, tmp_path / "checkpointing",
                       sqlite_checkpoint_every_seconds=0.2) as sibling:
        database = sibling.gateway.database
        before = _threads()
        sibling.gateway.start_worker()
        if database.dialect != "sqlite":
            assert not _threads() - before  # PostgreSQL checkpoints on its own
            return
        assert len(_threads() - before) == 1
        path = Path(database_name(database.engine.url.render_as_string()))
        with database.engine.begin() as conn:
            conn.execute(text("CREATE TABLE scratch_pages (b BLOB)"))
        size = path.stat().st_size
        for _ in range(300):  # far below the 1000 pages at which a commit would checkpoint
            with database.engine.begin() as conn:
                conn.execute(text("INSERT INTO scratch_pages VALUES (:b)"), {"b": b"x" * 3000})
        deadline = time.monotonic() + 20
        while path.stat().st_size < size + 300 * PAGE and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size >= size + 300 * PAGE  # the pages reached the file


def test_no_background_checkpoint_when_turned_off(stack: Stack, tmp_path: Path) -> None:
    with sibling_stack(stack, tmp_path / "off", sqlite_checkpoint_every_seconds=0) as sibling:
        before = _threads()
        sibling.gateway.start_worker()
        assert not _threads() - before
        with sibling.gateway.database.engine.connect() as conn:
            if sibling.gateway.database.dialect == "sqlite":
                assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000


def test_without_the_finisher_the_maintenance_still_runs(stack: Stack, tmp_path: Path) -> None:
    with sibling_stack(stack, tmp_path / "no-finisher", finisher_enabled=False) as sibling:
        finishers, checkpointers = _threads("finish-submitted"), _threads()
        sibling.gateway.start_worker()
        assert not _threads("finish-submitted") - finishers
        sqlite = sibling.gateway.database.dialect == "sqlite"
        assert len(_threads() - checkpointers) == (1 if sqlite else 0)
