"""The request ledger's commit of a request whose handler wrote nothing (``SqlRequestRecord``
``._commit_alone``): the ledger row and the request and answer in the message log in one
transaction begun and ended through the dialect, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from gateway.services.ports import Exchange, RequestClaim, StoredAnswer
from persistence.db import WROTE, Database
from persistence.errors import StorageError
from persistence.guard import SqlRequestLedger
from tests.log_faults import allow_log_inserts, refuse_log_inserts


def exchange(key: str) -> Exchange:
    return Exchange(b"<request/>", b"<answer/>", key, key, "5GH3J7K", "1403567891", "FindPerson")


def claim(key: str, expires_in: timedelta = timedelta(hours=1)) -> RequestClaim:
    return RequestClaim(key, "d" * 64, datetime.now(UTC) + expires_in)


def rows(db: Database) -> tuple[list[str], list[tuple[str, str]]]:
    with db.transaction() as s:
        keys = list(s.execute(text("SELECT key FROM request_ledger ORDER BY key")).scalars())
        logged = [(r[0], r[1]) for r in s.execute(text(
            "SELECT message_id, direction FROM message_log ORDER BY id"))]
    return keys, logged


def commit(ledger: SqlRequestLedger, key: str,
           request_claim: RequestClaim | None = None) -> StoredAnswer | None:
    with ledger.begin() as record:
        assert not record.wrote  # the handler wrote nothing: the commit is the ledger's own
        return record.commit(exchange(key), claim=request_claim or claim(key))


def no_connection_marked_as_written(db: Database) -> bool:
    with db.engine.connect() as conn:
        return not conn.info.get(WROTE)


def test_claim_and_log_commit_together_and_a_live_key_is_refused(db: Database) -> None:
    ledger = SqlRequestLedger(db)
    assert commit(ledger, "k-1") is None
    assert rows(db) == (["k-1"], [("k-1", "IN"), ("k-1", "OUT")])
    # The same key again while its row lives: the first one's record, and nothing written.
    assert commit(ledger, "k-1") == StoredAnswer("d" * 64, None, None)
    assert rows(db) == (["k-1"], [("k-1", "IN"), ("k-1", "OUT")])
    assert no_connection_marked_as_written(db)
    # An expired row is taken over.
    assert commit(ledger, "k-2", claim("k-2", timedelta(seconds=-1))) is None
    assert commit(ledger, "k-2") is None
    assert rows(db)[0] == ["k-1", "k-2"]


def test_expired_rows_are_purged_in_the_same_transaction(db: Database) -> None:
    ledger = SqlRequestLedger(db, purge_every=2)
    assert commit(ledger, "old", claim("old", timedelta(seconds=-1))) is None
    assert commit(ledger, "new") is None  # the second commit purges
    assert rows(db)[0] == ["new"]


def test_a_purge_whose_commit_lost_its_claim_happens_at_the_next_commit(db: Database) -> None:
    ledger = SqlRequestLedger(db, purge_every=3)
    assert commit(ledger, "old", claim("old", timedelta(seconds=-1))) is None
    assert commit(ledger, "live") is None
    # The third commit, whose turn it is to purge, loses its claim: it writes nothing.
    assert commit(ledger, "live") == StoredAnswer("d" * 64, None, None)
    assert rows(db)[0] == ["live", "old"]
    assert commit(ledger, "next") is None  # the purge it owed
    assert rows(db)[0] == ["live", "next"]


def test_a_failed_log_insert_leaves_nothing_and_the_pool_works_on(db: Database) -> None:
    refuse_log_inserts(db)
    ledger = SqlRequestLedger(db)
    key = f"k-{uuid.uuid4()}"
    with pytest.raises(StorageError) as caught:
        commit(ledger, key)
    assert caught.value.code == ("Server.Storage" if db.dialect == "postgresql"
                                 else "Server.Storage.Constraint"), caught.value.code
    assert rows(db) == ([], [])  # the claim was rolled back with the log
    assert no_connection_marked_as_written(db)
    allow_log_inserts(db)
    assert commit(ledger, key) is None  # the same key, now that the log works
    assert rows(db) == ([key], [(key, "IN"), (key, "OUT")])
