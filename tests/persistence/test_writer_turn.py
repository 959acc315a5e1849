"""SQLite transactions of one process take turns in a queue (persistence.db._WriterTurn): a
second thread's ``BEGIN IMMEDIATE`` reaches SQLite only after the first thread's COMMIT or
ROLLBACK, instead of sleeping in SQLite's busy handler; the turn never deadlocks where SQLite
alone would not."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError

from persistence.db import create_engine_for


def recording_engine(path: Path, events: list[str], busy_timeout_ms: int = 5000) -> Engine:
    engine = create_engine_for(f"sqlite:///{path}", busy_timeout_ms=busy_timeout_ms)

    # What reaches SQLite itself, in the thread that sends it.
    def _sql(statement: str) -> None:
        if statement.startswith("BEGIN"):
            events.append(f"{threading.current_thread().name}: BEGIN")

    @event.listens_for(engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(_sql)

    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    events.clear()
    return engine


def test_a_second_thread_begins_only_after_the_first_commits(tmp_path: Path) -> None:
    events: list[str] = []
    engine = recording_engine(tmp_path / "turn.db", events)
    a_inside, b_started = threading.Event(), threading.Event()

    def first() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
            a_inside.set()
            b_started.wait(5)
            # B is now waiting for its turn: it must not have reached SQLite yet.
            events.append("A: still inside")
        events.append("A: committed")

    def second() -> None:
        a_inside.wait(5)
        b_started.set()
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (2)"))

    a = threading.Thread(target=first, name="A")
    b = threading.Thread(target=second, name="B")
    a.start()
    b.start()
    a.join(10)
    b.join(10)
    assert events == ["A: BEGIN", "A: still inside", "A: committed", "B: BEGIN"]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 2
    engine.dispose()


def test_the_turn_passes_on_after_a_rollback(tmp_path: Path) -> None:
    events: list[str] = []
    engine = recording_engine(tmp_path / "turn.db", events)

    def failing() -> None:
        with pytest.raises(RuntimeError), engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
            raise RuntimeError("refused")

    thread = threading.Thread(target=failing, name="A")
    thread.start()
    thread.join(10)
    # Another thread gets its turn at once (a turn kept after the rollback would make it wait
    # the whole busy timeout, then fail in SQLite).
    done: list[int] = []

    def next_one() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (2)"))
            done.append(1)

    other = threading.Thread(target=next_one, name="B")
    other.start()
    other.join(10)
    assert done == [1]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT x FROM t")).scalars().all() == [2]
    engine.dispose()


def test_the_same_thread_on_a_second_connection_meets_sqlite_not_a_deadlock(
        tmp_path: Path) -> None:
    # A thread holding a transaction that opens another on a second connection: SQLite answers
    # "database is locked" after its busy timeout, exactly as without the turn.
    events: list[str] = []
    engine = recording_engine(tmp_path / "turn.db", events, busy_timeout_ms=100)
    with engine.begin() as outer:
        outer.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(OperationalError, match="locked"), engine.begin() as inner:
            inner.execute(text("INSERT INTO t VALUES (2)"))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT x FROM t")).scalars().all() == [1]
    engine.dispose()
