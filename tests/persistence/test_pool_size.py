"""The connection pool keeps ``database_pool_size`` connections, on SQLite files as on
PostgreSQL: as many threads as that, each running units of work, are served by the pooled
connections and never make the pool open another (on SQLite each new connection pays its
PRAGMAs and the schema parse; SQLAlchemy's default pool of 5 made the embedded server's 10
worker threads open 31 connections for 200 requests)."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event

from gateway.config import Settings
from persistence.db import DEFAULT_POOL_SIZE, Database
from persistence.migrate import upgrade

THREADS = 8
BURSTS = 10


def test_the_default_pool_keeps_as_many_connections_as_the_embedded_servers_workers(
        database_url: str) -> None:
    assert Settings().database_pool_size == DEFAULT_POOL_SIZE == 10
    db = Database(database_url)
    try:
        assert db.engine.pool.size() == 10  # type: ignore[attr-defined]
    finally:
        db.dispose()


def test_concurrent_threads_open_no_more_connections_than_the_pool_keeps(
        database_url: str) -> None:
    upgrade(database_url)
    db = Database(database_url, pool_size=THREADS)
    opened: list[int] = []
    checked_out = 0
    most = 0
    lock = threading.Lock()

    @event.listens_for(db.engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        with lock:
            opened.append(id(dbapi_connection))

    @event.listens_for(db.engine, "checkout")
    def _checkout(*_args: Any) -> None:
        nonlocal checked_out, most
        with lock:
            checked_out += 1
            most = max(most, checked_out)

    @event.listens_for(db.engine, "checkin")
    def _checkin(*_args: Any) -> None:
        nonlocal checked_out
        with lock:
            checked_out -= 1

    # Bursts, as a server sees them: every thread runs a unit of work at once, then all are
    # idle together (a pool that keeps fewer than the threads closes the surplus then, and
    # opens new ones at the next burst).
    together = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(BURSTS):
                together.wait(timeout=30)
                with db.unit_of_work() as uow:
                    uow.insured_persons.get("AAAAAAA")
                    uow.insurers.get("1403567891")
                together.wait(timeout=30)
        except BaseException as error:  # reported by the assertions below
            errors.append(error)

    threads = [threading.Thread(target=work, name=f"w{i}") for i in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        assert most > 1  # the threads did hold connections at the same time
        assert 1 <= len(opened) <= THREADS, f"{len(opened)} connections opened"
    finally:
        db.dispose()
