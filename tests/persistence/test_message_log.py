"""The message log: one hash chain whatever the number of writers, tampering detected."""

from __future__ import annotations

import base64
import hashlib
import multiprocessing
import time

import pytest
from sqlalchemy import text

from gateway.domain.errors import NotFound
from persistence.db import Database
from persistence.message_log import GENESIS_HASH, MessageLog

from . import _workers

TIMEOUT_SECONDS = 120


def test_append_verify_and_evidence(db: Database) -> None:
    log = MessageLog(db)
    assert log.verify_chain().ok and log.verify_chain().entries == 0
    request = "<Envelope>İsmayılov</Envelope>".encode()
    response = b"<Envelope>SSN</Envelope>"
    first = log.append("IN", request, message_id="m-1", correlation_id="c-1",
                       actor_fin="6ZK4T2P", voen="1403567891", operation="SubmitRegistration")
    second = log.append("OUT", response, message_id="m-1", correlation_id="c-1",
                        actor_fin="6ZK4T2P", voen="1403567891", operation="SubmitRegistration")
    third = log.append("IN", b"<x/>", message_id="m-2", correlation_id="c-2")
    assert first < second < third
    report = log.verify_chain()
    assert (report.ok, report.entries, report.first_bad_id) == (True, 3, None)

    evidence = log.export_evidence("m-1")
    assert base64.b64decode(evidence["request"]["payload_base64"]) == request
    assert base64.b64decode(evidence["response"]["payload_base64"]) == response
    assert evidence["request"]["payload_sha256"] == hashlib.sha256(request).hexdigest()
    assert evidence["request"]["prev_hash"] == GENESIS_HASH
    assert evidence["request"]["previous"] is None
    assert evidence["request"]["next"]["id"] == second
    assert evidence["response"]["previous"]["chain_hash"] == evidence["request"]["chain_hash"]
    assert evidence["response"]["next"]["id"] == third
    assert all(e["hashes_recompute"] and e["linked_to_previous"] for e in evidence["entries"])
    assert report.last_hash == log.export_evidence("m-2")["request"]["chain_hash"]
    with pytest.raises(NotFound):
        log.export_evidence("unknown")


@pytest.mark.slow
def test_concurrent_appenders_form_one_chain_and_tampering_is_found(
    db: Database, database_url: str
) -> None:
    start_at = time.time() + 3.0
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        pending = pool.starmap_async(
            _workers.append_many,
            [(database_url, "p1", 50, start_at), (database_url, "p2", 50, start_at)],
        )
        ids = pending.get(timeout=TIMEOUT_SECONDS)
    assert len(set(ids[0]) | set(ids[1])) == 100
    log = MessageLog(db)
    report = log.verify_chain()
    assert (report.ok, report.entries, report.first_bad_id) == (True, 100, None)

    victim = sorted(ids[0] + ids[1])[41]
    with db.transaction() as session:
        session.execute(text("UPDATE message_log SET payload = :p WHERE id = :id"),
                        {"p": b"<m>forged</m>", "id": victim})
    report = log.verify_chain()
    assert (report.ok, report.first_bad_id) == (False, victim)


def test_removed_entry_breaks_the_chain_at_the_next(db: Database) -> None:
    log = MessageLog(db)
    ids = [log.append("IN", f"<m{i}/>".encode(), message_id=f"m{i}", correlation_id=None)
           for i in range(5)]
    with db.transaction() as session:
        session.execute(text("DELETE FROM message_log WHERE id = :id"), {"id": ids[2]})
    report = log.verify_chain()
    assert (report.ok, report.first_bad_id) == (False, ids[3])


def test_changed_metadata_is_found(db: Database) -> None:
    log = MessageLog(db)
    ids = [log.append("IN", b"<m/>", message_id=f"m{i}", correlation_id=None, voen="1403567891")
           for i in range(3)]
    with db.transaction() as session:
        session.execute(text("UPDATE message_log SET voen = '1700345671' WHERE id = :id"),
                        {"id": ids[1]})
    assert log.verify_chain().first_bad_id == ids[1]
