"""The sealed message log on SQLite and PostgreSQL, with the real TSA simulator over HTTP and the
gateway's key from the test PKI: appends, seals, their chain, what ``log verify`` detects,
the append-only triggers, retention, and a TSA that is down."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.evidence.errors import TimestampInvalid, TimestampUnavailable
from gateway.evidence.merkle import fold, inclusion_path, leaf_hash, tree_head
from gateway.evidence.seal import Sealer, SealHealth, application_ids, read_seal
from gateway.evidence.tsa import check_token
from gateway.evidence.verify import LogVerifier
from persistence.db import Database
from persistence.errors import StorageError
from persistence.message_log import LogEntry, MessageLog, SealConflict, append_entries
from signing.parser import parse_xml
from tests.persistence import _workers

TIMEOUT_SECONDS = 120


def exchange(log: MessageLog, n: int, *, app: str | None = None) -> list[int]:
    body = f"<applicationId>{app}</applicationId>" if app else f"<n>{n}</n>"
    return log.append_exchange(
        f"<Envelope><Body>{body}İsmayılov</Body></Envelope>".encode(),
        f"<Envelope><Body>answer {n}</Body></Envelope>".encode(),
        message_id=f"m-{n}", correlation_id=f"c-{n}", actor_fin="6ZK4T2P",
        voen="1403567891", operation="GetApplication",
    )


def tamper(db: Database, sql: str, **params: object) -> None:
    """What only a database administrator can do: switch the append-only triggers off."""
    tables = ("message_log", "message_log_seals", "message_log_leaves", "message_log_subjects",
              "message_log_crls")
    with db.transaction() as s:
        if db.dialect == "postgresql":
            for table in tables:
                s.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        else:
            names = s.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
            for (name,) in list(names):
                s.execute(text(f"DROP TRIGGER {name}"))
        s.execute(text(sql), params)


# -- appends and seals ----------------------------------------------------------------------------


def test_append_entries_in_the_callers_transaction(db: Database, log: MessageLog) -> None:
    with db.transaction() as s:
        ids = append_entries(s, [LogEntry("IN", b"<a/>", "m-1"), LogEntry("OUT", b"<b/>", "m-1")])
    assert ids == sorted(ids) and len(ids) == 2
    with pytest.raises(RuntimeError), db.transaction() as s:
        append_entries(s, [LogEntry("IN", b"<rolled-back/>", "m-2")])
        raise RuntimeError("the request's transaction fails")
    assert log.count_entries() == 2  # nothing of the failed transaction stays


def test_an_append_never_waits_for_another_open_transaction(db: Database,
                                                           log: MessageLog) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time whatever the log does (BEGIN IMMEDIATE)")
    # A request's transaction has appended and is still open (its unit of work goes on)...
    with db.transaction() as first:
        append_entries(first, [LogEntry("IN", b"<first/>", "m-1")])
        # ...and another request's append commits meanwhile. Under the old global chain it
        # waited for the first transaction's lock; lock_timeout turns any wait into an error.
        with db.transaction() as second:
            second.execute(text("SET LOCAL lock_timeout = '2s'"))
            append_entries(second, [LogEntry("IN", b"<second/>", "m-2")])
        assert [e.payload for e, _ in log.entries_of_message("m-2")] == [b"<second/>"]
    assert log.count_entries() == 2


def test_seals_cover_every_entry_and_chain(log: MessageLog, sealer: Sealer,
                                           verifier: LogVerifier, tmp_path: Path) -> None:
    for n in range(7):
        exchange(log, n)
    first = sealer.seal_all()  # batch_max 50: one seal
    assert [(s.number, s.entry_count) for s in first] == [(1, 14)]
    exchange(log, 7)
    assert len(sealer.seal_all()) == 1
    heartbeat = sealer.seal_once(force=True)
    assert heartbeat is not None and heartbeat.entry_count == 0
    assert sealer.seal_once() is None  # nothing new, heartbeat not due

    seals = [log.seal(n) for n in (1, 2, 3)]
    fields = [read_seal(parse_xml(s.seal_xml)) for s in seals]
    assert fields[0].previous_seal == "00" * 32
    assert fields[1].previous_seal == seals[0].seal_sha256
    assert fields[2].previous_timestamp == hashlib.sha256(seals[1].tsa_token).hexdigest()
    assert fields[1].first_entry == fields[1].last_entry - 1
    # The CRLs in force are kept with the seals, once each, for the exports.
    crl_digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in sealer.crl_files]
    assert all(f.crls == tuple(crl_digests) for f in fields)
    assert set(log.crls(crl_digests)) == set(crl_digests)
    for seal in seals:  # each token stamps exactly the stored seal bytes
        check_token(seal.tsa_token, seal.seal_xml, verifier.tsa_trust)
    report = verifier.verify(anchor=tmp_path / "anchor.json")
    assert report.ok, report.problems
    assert (report.seals, report.sealed_entries, report.unsealed_entries) == (3, 16, 0)
    assert json.loads((tmp_path / "anchor.json").read_text())["number"] == 3


def test_batches_are_bounded(log: MessageLog, sealer: Sealer) -> None:
    sealer.batch_max = 4
    for n in range(5):
        exchange(log, n)
    assert [s.entry_count for s in sealer.seal_all()] == [4, 4, 2]


def test_four_writer_processes_all_get_sealed(database_url: str, log: MessageLog,
                                             sealer: Sealer, verifier: LogVerifier) -> None:
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0
    with context.Pool(4) as pool:
        results = pool.starmap_async(
            _workers.append_many, [(database_url, f"w{k}", 25, start_at) for k in range(4)]
        ).get(TIMEOUT_SECONDS)
    ids = sorted(i for chunk in results for i in chunk)
    assert len(set(ids)) == 100
    sealer.seal_all()
    report = verifier.verify()
    assert report.ok, report.problems
    assert report.sealed_entries == 100 and report.unsealed_entries == 0


def test_one_sealer_at_a_time(log: MessageLog, sealer: Sealer, pki: object) -> None:
    exchange(log, 1)
    rival = Sealer(log, sealer.signer, sealer.tsa, settle=timedelta(0))
    assert log.acquire_lease(rival.holder, timedelta(minutes=1))
    assert sealer.seal_once() is None  # the rival holds the lease
    log.release_lease(rival.holder)
    assert sealer.seal_once() is not None


def test_a_seal_that_no_longer_follows_the_newest_is_dropped(log: MessageLog,
                                                             sealer: Sealer) -> None:
    exchange(log, 1)
    made = sealer.seal_once()
    assert made is not None
    with pytest.raises(SealConflict):
        log.store_seal(made, [], [])  # the same number again: another sealer won
    assert [s.number for s in log.seals()] == [1]


def test_applications_are_indexed_by_the_sealer(log: MessageLog, sealer: Sealer) -> None:
    assert application_ids(b"<t:applicationId> A-1 </t:applicationId><applicationId>B</"
                           b"applicationId>") == {"A-1", "B"}
    exchange(log, 1, app="APP-9")
    exchange(log, 2)
    sealer.seal_all()
    rows = log.entries_of_application("APP-9")
    # The request names the application; its answer comes along (same correlation id).
    assert [(e.message_id, e.direction) for e, _ in rows] == [("m-1", "IN"), ("m-1", "OUT")]


# -- what verify detects ---------------------------------------------------------------------------


@pytest.fixture
def sealed(log: MessageLog, sealer: Sealer) -> list[int]:
    ids = [i for n in range(4) for i in exchange(log, n)]
    sealer.seal_all()
    ids += exchange(log, 4)
    sealer.seal_all()
    return ids


def test_one_changed_payload_byte_is_found(db: Database, verifier: LogVerifier,
                                           sealed: list[int]) -> None:
    tamper(db, "UPDATE message_log SET payload = :p WHERE id = :id",
           p="<Envelope><Body><n>1</n>Ismayılov</Body></Envelope>".encode(), id=sealed[2])
    assert verifier.verify().problems == [f"entry {sealed[2]}: payload changed (digest differs)"]


def test_changed_metadata_is_found(db: Database, verifier: LogVerifier, sealed: list[int]) -> None:
    tamper(db, "UPDATE message_log SET voen = '1700345671' WHERE id = :id", id=sealed[1])
    assert verifier.verify().problems == [f"entry {sealed[1]}: changed after sealing (seal 1)",
                                          "seal 1: tree head does not recompute from its entries"]


def test_a_deleted_row_is_found(db: Database, verifier: LogVerifier, sealed: list[int]) -> None:
    # The leaf row references the entry, so the leaf goes first; the tree head then differs.
    tamper(db, "DELETE FROM message_log_leaves WHERE entry_id = :id", id=sealed[3])
    tamper(db, "DELETE FROM message_log WHERE id = :id", id=sealed[3])
    problems = verifier.verify().problems
    assert "seal 1: covers 8 entries, 7 leaves found" in problems
    assert "seal 1: tree head does not recompute from its entries" in problems


def test_a_truncated_tail_is_found(db: Database, verifier: LogVerifier, sealed: list[int],
                                   tmp_path: Path) -> None:
    anchor = tmp_path / "anchor.json"
    assert verifier.verify(anchor=anchor).ok
    tamper(db, "DELETE FROM message_log_subjects")
    tamper(db, "DELETE FROM message_log_leaves WHERE seal_number = 2")
    tamper(db, "DELETE FROM message_log_seals WHERE number = 2")
    tamper(db, "DELETE FROM message_log WHERE id >= :id", id=sealed[8])
    report = verifier.verify(anchor=anchor)
    assert report.problems == [
        "the anchor names seal 2, the log ends at seal 1: the tail of the log was cut off"]
    # Without the anchor, the age of the newest seal gives it away (a heartbeat is due).
    assert not verifier.verify(max_seal_age=timedelta(seconds=-1)).ok


def test_a_changed_seal_is_found(db: Database, log: MessageLog, verifier: LogVerifier,
                                 sealed: list[int]) -> None:
    forged = log.seal(1).seal_xml.replace(b"<EntryCount>8<", b"<EntryCount>7<")
    tamper(db, "UPDATE message_log_seals SET seal_xml = :x WHERE number = 1", x=forged)
    problems = verifier.verify().problems
    assert "seal 1: its bytes do not match its digest" in problems
    assert any(p.startswith("seal 1: time-stamp token invalid") for p in problems)
    assert any(p.startswith("seal 1: signature invalid") for p in problems)


def test_changed_seal_rows_are_found(db: Database, verifier: LogVerifier,
                                     sealed: list[int]) -> None:
    tamper(db, "UPDATE message_log_seals SET last_entry_id = last_entry_id + 1, "
               "tsa_time = :t WHERE number = 1", t=datetime(2030, 1, 1, tzinfo=UTC))
    assert verifier.verify().problems == [
        "seal 1: its row differs from its signed document",
        "seal 1: its row's time differs from its time-stamp"]


def test_a_changed_archived_crl_is_found(db: Database, verifier: LogVerifier,
                                         sealed: list[int]) -> None:
    tamper(db, "UPDATE message_log_crls SET crl = :c", c=b"-----BEGIN X509 CRL-----\n")
    problems = verifier.verify().problems
    assert len(problems) == 4 and all("missing or changed" in p for p in problems)


def test_an_entry_slipped_in_later_is_found(db: Database, log: MessageLog, verifier: LogVerifier,
                                            sealed: list[int]) -> None:
    tamper(db, "INSERT INTO message_log (at, direction, payload, payload_sha256) "
               "VALUES (:at, 'IN', :p, :h)",
           at=datetime.now(UTC) - timedelta(hours=1), p=b"<forged/>",
           h=hashlib.sha256(b"<forged/>").hexdigest())
    problems = verifier.verify().problems
    assert len(problems) == 1 and "in no seal since (inserted later?)" in problems[0]


# -- append-only in the database -------------------------------------------------------------------


@pytest.mark.parametrize("statement", [
    "UPDATE message_log SET payload = :p WHERE id = :id",
    "UPDATE message_log SET voen = '1700345671', payload = :p WHERE id = :id",
    "DELETE FROM message_log WHERE id = :id",
])
def test_the_database_refuses_changes(db: Database, log: MessageLog, sealed: list[int],
                                      statement: str) -> None:
    before = log.entries_of_message("m-1")
    with pytest.raises(StorageError), db.transaction() as s:
        s.execute(text(statement), {"p": b"", "id": sealed[2]})
    assert log.entries_of_message("m-1") == before


def test_seals_cannot_be_changed_or_removed(db: Database, log: MessageLog,
                                            sealed: list[int]) -> None:
    for statement in ("UPDATE message_log_seals SET tree_head = 'x' WHERE number = 1",
                      "DELETE FROM message_log_leaves WHERE seal_number = 1",
                      "DELETE FROM message_log_seals WHERE number = 2"):
        with pytest.raises(StorageError), db.transaction() as s:
            s.execute(text(statement))
    assert [s.number for s in log.seals()] == [1, 2]


# -- retention ------------------------------------------------------------------------------------


def test_retention_erases_payloads_and_everything_still_verifies(
        db: Database, log: MessageLog, sealer: Sealer, verifier: LogVerifier,
        sealed: list[int]) -> None:
    unsealed = exchange(log, 9)
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    erased = log.erase_payloads(cutoff, datetime.now(UTC))
    assert erased == len(sealed)  # only sealed entries; the unsealed exchange keeps its bytes
    rows = {e.id: e for e, _ in log.entries_of_message("m-2")}
    assert all(e.payload == b"" and e.erased_at is not None for e in rows.values())
    assert all(e.payload_sha256 for e in rows.values())
    assert {e.payload != b"" for e, _ in log.entries_of_message("m-9")} == {True}
    sealer.seal_all()
    report = verifier.verify()
    assert report.ok, report.problems
    assert report.erased_entries == len(sealed) and report.sealed_entries == len(sealed) + 2
    # Now sealed, the later exchange is erased too; then there is nothing left to erase.
    assert log.erase_payloads(cutoff, datetime.now(UTC)) == len(unsealed)
    assert log.erase_payloads(cutoff, datetime.now(UTC)) == 0
    assert verifier.verify().ok


def test_retention_cannot_erase_what_is_not_sealed(db: Database, log: MessageLog) -> None:
    (entry,) = log.append("IN", b"<x/>", message_id="m", correlation_id="c"),
    with pytest.raises(StorageError), db.transaction() as s:
        if db.dialect == "postgresql":
            s.execute(text("SELECT set_config('dsmf.message_log_retention', 'on', true)"))
        s.execute(text("UPDATE message_log SET payload = :p, erased_at = :t WHERE id = :id"),
                  {"p": b"", "t": datetime.now(UTC), "id": entry})
    assert log.entries_of_message("m")[0][0].payload == b"<x/>"


# -- a TSA that is down ---------------------------------------------------------------------------


def test_a_missing_tsa_delays_sealing_and_never_blocks_appends(
        log: MessageLog, sealer: Sealer, tsa: object, verifier: LogVerifier) -> None:
    tsa.available = False  # type: ignore[attr-defined]
    exchange(log, 1)
    with pytest.raises(TimestampUnavailable):
        sealer.seal_once()
    assert log.seals() == []  # nothing half-written
    health = SealHealth(sealer, max_delay=timedelta(minutes=10))
    with pytest.raises(TimestampUnavailable.__mro__[1]):
        health()
    exchange(log, 2)  # appends go on
    assert log.backlog(datetime.now(UTC), timedelta(0)).unsealed == 4
    tsa.available = True  # type: ignore[attr-defined]
    assert [s.entry_count for s in sealer.seal_all()] == [4]
    health()
    assert verifier.verify().ok


def test_a_token_over_other_data_or_from_another_tsa_is_refused(
        log: MessageLog, sealer: Sealer, pki: object, tsa_trust: list[object]) -> None:
    exchange(log, 1)
    seal = sealer.seal_once()
    assert seal is not None
    with pytest.raises(TimestampInvalid, match="imprint"):
        check_token(seal.tsa_token, seal.seal_xml + b" ", tsa_trust)  # type: ignore[arg-type]
    other_ca = pki.identity("director").certificate  # type: ignore[attr-defined]
    with pytest.raises(TimestampInvalid, match="chain"):
        check_token(seal.tsa_token, seal.seal_xml, [other_ca])


# -- the Merkle tree ------------------------------------------------------------------------------


def test_every_leaf_of_every_tree_size_proves_its_inclusion() -> None:
    for size in range(1, 18):
        leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(size)]
        head = tree_head(leaves)
        for index in range(size):
            assert fold(leaves[index], inclusion_path(leaves, index)) == head
        assert fold(leaves[0], inclusion_path(leaves, size - 1)) != head or size == 1
