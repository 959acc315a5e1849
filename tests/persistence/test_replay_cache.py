"""The replay cache is shared through the database: two engines (as two workers) agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from persistence.db import Database
from persistence.stores import SqlReplayCache
from signing.verifier import ReplayCache


def test_replay_across_two_engines(db: Database, database_url: str) -> None:
    other = Database(database_url)  # its own engine and pool: another worker process
    try:
        first: ReplayCache = SqlReplayCache(db)  # what the signature verifier needs
        second: ReplayCache = SqlReplayCache(other)
        until = datetime.now(UTC) + timedelta(minutes=5)
        assert first.remember("msg-1", until) is True
        assert second.remember("msg-1", until) is False
        assert first.remember("msg-1", until) is False
        assert second.remember("msg-2", until) is True
        assert first.remember("msg-2", until) is False
    finally:
        other.dispose()


def test_expired_entries_are_reusable_and_purged(db: Database) -> None:
    cache = SqlReplayCache(db, purge_every=3)
    past = datetime.now(UTC) - timedelta(seconds=1)
    future = datetime.now(UTC) + timedelta(minutes=5)
    assert cache.remember("old", past) is True
    assert cache.remember("old", future) is True  # its window had passed
    assert cache.remember("old", future) is False
    assert cache.remember("stale", past) is True
    assert cache.purge() == 1
    with db.transaction() as session:
        ids = session.execute(text("SELECT message_id FROM replay_cache")).scalars().all()
    assert ids == ["old"]
