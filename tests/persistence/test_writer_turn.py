"""SQLite transactions take turns in a queue (persistence.db._WriterTurn): a second thread's,
or another process's, ``BEGIN IMMEDIATE`` reaches SQLite only after the first one's COMMIT or
ROLLBACK, instead of sleeping in SQLite's busy handler; the turn never deadlocks where SQLite
alone would not."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError

from persistence.db import _WriterTurn, create_engine_for
from tests.persistence import _workers


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


def test_another_process_begins_only_after_the_first_commits(tmp_path: Path) -> None:
    path, events_path = tmp_path / "turn.db", tmp_path / "events.txt"
    engine = recording_engine(path, [])
    events_path.touch()

    def record(line: str) -> None:
        with events_path.open("a", encoding="utf-8") as events:
            events.write(line + "\n")

    def lines() -> list[str]:
        return events_path.read_text(encoding="utf-8").splitlines()

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
            other = pool.apply_async(_workers.write_in_turn,
                                     (f"sqlite:///{path}", str(events_path)))
            deadline = time.monotonic() + 30
            while "B: starting" not in lines() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert "B: starting" in lines()
            time.sleep(0.3)  # B's BEGIN would reach SQLite meanwhile without the turn
            record("A: still inside")
        assert other.get(timeout=30) == "committed"
    events = lines()
    assert events.index("B: BEGIN") > events.index("A: still inside")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT x FROM t ORDER BY x")).scalars().all() == [1, 2]
    engine.dispose()


def test_a_forked_process_does_not_share_its_parents_turn(tmp_path: Path) -> None:
    # flock belongs to an open file, which fork shares: a child that used the descriptor it
    # inherited would find the parent's held turn its own (and its release would free it).
    turn = _WriterTurn(5.0, str(tmp_path / "turn.db-turn"))
    assert turn._take_file(time.monotonic() + 5)  # the parent holds the turn
    child = multiprocessing.get_context("fork").Process(target=_take_turn_at_once, args=(turn,))
    child.start()
    child.join(30)
    assert child.exitcode == 1  # the child found the turn taken
    turn._release_file()
    child = multiprocessing.get_context("fork").Process(target=_take_turn_at_once, args=(turn,))
    child.start()
    child.join(30)
    assert child.exitcode == 0  # and free once the parent let it go


def _take_turn_at_once(turn: _WriterTurn) -> None:
    import os

    os._exit(0 if turn._take_file(time.monotonic()) else 1)


def test_a_connection_closed_in_its_transaction_ends_its_turn(tmp_path: Path) -> None:
    # Invalidation (an exit exception in a statement, a lost connection, ``invalidate()``)
    # closes the DBAPI connection without COMMIT or ROLLBACK: SQLite's lock is free then, and
    # so must the turn be, or every other writer waits the whole busy timeout from then on.
    path = tmp_path / "turn.db"
    engine = recording_engine(path, [], busy_timeout_ms=60_000)
    connection = engine.connect()
    connection.begin()
    connection.execute(text("INSERT INTO t VALUES (1)"))
    connection.invalidate()

    # Another process opens the lock file itself (its own descriptor) and finds it free.
    other_process = _WriterTurn(60.0, f"{path}-turn")
    assert other_process._take_file(time.monotonic())
    other_process._release_file()

    # Another thread of this process begins at once, not after the busy timeout (60 s).
    def write() -> None:
        with engine.begin() as other:
            other.execute(text("INSERT INTO t VALUES (2)"))

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    with engine.connect() as reader:
        assert reader.execute(text("SELECT x FROM t")).scalars().all() == [2]
    engine.dispose()


def test_a_writer_that_waited_its_whole_turn_gets_no_second_busy_timeout(
        tmp_path: Path) -> None:
    # Another process holds the turn (the lock file) and SQLite's write lock, longer than the
    # busy timeout (a CLI's long transaction). The writer here waits the busy timeout for its
    # turn; SQLite must then decide at once, not wait a busy timeout of its own (twice the
    # configured wait in all before "database is locked").
    path = tmp_path / "turn.db"
    statements: list[str] = []
    engine = recording_engine(path, [], busy_timeout_ms=300)

    @event.listens_for(engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    engine.dispose()  # the next connection is traced
    other_process = _WriterTurn(60.0, f"{path}-turn")
    assert other_process._take_file(time.monotonic())
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t VALUES (1)"))
        before_begin = statements[:statements.index("BEGIN IMMEDIATE")]
        assert before_begin == ["PRAGMA busy_timeout = 0"]
    finally:
        holder.rollback()
        holder.close()
        other_process._release_file()
    with engine.connect() as connection:
        # The connection's own busy timeout is back, and nothing was written.
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 300
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 0
    engine.dispose()
