"""Functions run in child processes (multiprocessing, spawn) by the concurrency tests.

Each opens its own ``Database`` from the URL, waits for a common start time so the processes
really overlap, and returns plain strings / ints (picklable)."""

from __future__ import annotations

import time
from datetime import date

from gateway.domain.errors import GatewayError
from persistence.db import Database
from persistence.message_log import MessageLog


def _wait_until(start_at: float) -> None:
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)


def issue(url: str, fin: str, voen: str, start_at: float, hold_seconds: float) -> str:
    database = Database(url)
    try:
        _wait_until(start_at)
        try:
            with database.unit_of_work() as uow:
                insured = uow.insured_persons.issue(
                    fin=fin, surname="Rzayev", name="Elçin", patronymic="Kamal oğlu",
                    voen=voen, on=date(2026, 3, 2),
                )
                # Keep the transaction open a moment so that the others collide with it.
                time.sleep(hold_seconds)
                uow.commit()
            return f"SSN:{insured.ssn}"
        except GatewayError as error:
            return f"ERROR:{error.code}"
    finally:
        database.dispose()


def append_many(url: str, tag: str, count: int, start_at: float) -> list[int]:
    database = Database(url)
    try:
        log = MessageLog(database)
        _wait_until(start_at)
        return [
            log.append("IN" if i % 2 == 0 else "OUT", f"<m>{tag}-{i}</m>".encode(),
                       message_id=f"{tag}-{i // 2}", correlation_id=f"c-{tag}-{i}",
                       actor_fin="6ZK4T2P", voen="1403567891", operation="SubmitRegistration")
            for i in range(count)
        ]
    finally:
        database.dispose()


def write_in_turn(url: str, events_path: str) -> str:
    """Says "B: starting", then writes in a transaction; "B: BEGIN" is recorded when the
    BEGIN reaches SQLite itself (its trace callback), after any wait for the writer turn."""
    from typing import Any

    from sqlalchemy import event, text

    from persistence.db import create_engine_for

    def record(line: str) -> None:
        with open(events_path, "a", encoding="utf-8") as events:
            events.write(line + "\n")

    engine = create_engine_for(url)

    @event.listens_for(engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(
            lambda statement: record("B: BEGIN") if statement.startswith("BEGIN") else None)

    try:
        with engine.connect():
            pass  # connected (and traced) before the clock starts
        record("B: starting")
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (2)"))
        return "committed"
    finally:
        engine.dispose()
