"""One request, one transaction (issue #9): retries, replays and the message log, on both
databases, against the gateway served on loopback.

The rules (README, "Retries and idempotency"): the same sender + X-Road id + the same signed
content (even re-signed with a fresh Timestamp) gets the stored answer when the first request
changed state, and simply runs again when it was a read; the same id with other content is
``Client.Signature.Replay``; transient ``Server.*`` failures are never stored; the answer leaves
only after the business rows, the ledger row and the message-log entries committed together.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lxml import etree
from sqlalchemy import func, select

from gateway.soap.xroad import request_hash
from persistence.db import Database
from persistence.tables import (
    ApplicationRow,
    InsuredPersonRow,
    MessageLogRow,
    RequestLedgerRow,
    StatusHistoryRow,
)
from signing.parser import serialize
from tests.e2e.conftest import (
    DEMO_VOEN,
    OTHER_VOEN,
    SOAP_ENV,
    TNS,
    Stack,
    find_person_payload,
    response_fault_code,
    sibling_stack,
    signed_request,
)
from tests.e2e.test_one_transaction import Registry, submit_payload, synthetic_people
from tests.log_faults import allow_log_inserts, refuse_log_inserts
from tests.processes import clean_env, write_toml

NS = {"soapenv": SOAP_ENV, "t": TNS}


def counts(database: Database) -> dict[str, int]:
    with database.transaction() as s:
        return {
            "applications": s.scalar(select(func.count()).select_from(ApplicationRow)) or 0,
            "insured": s.scalar(select(func.count()).select_from(InsuredPersonRow)) or 0,
            "log": s.scalar(select(func.count()).select_from(MessageLogRow)) or 0,
            "ledger": s.scalar(select(func.count()).select_from(RequestLedgerRow)) or 0,
        }


def result_of(content: bytes, operation: str, field_name: str) -> str | None:
    return etree.fromstring(content).findtext(
        f"soapenv:Body/t:{operation}Response/t:result/t:{field_name}", namespaces=NS)


def fault_message(content: bytes) -> str:
    return etree.fromstring(content).findtext(
        "soapenv:Body/soapenv:Fault/faultstring", namespaces=NS) or ""


def payload_of(content: bytes) -> bytes:
    payload = etree.fromstring(content).find("soapenv:Body/*", namespaces=NS)
    assert payload is not None
    return etree.tostring(payload, method="c14n", exclusive=True)


def request_hash_of(content: bytes) -> str | None:
    return etree.fromstring(content).findtext(
        "soapenv:Header/{http://x-road.eu/xsd/xroad.xsd}requestHash", namespaces=NS)


def correlation_of(content: bytes) -> str | None:
    return etree.fromstring(content).findtext(".//t:FaultDetail/t:correlationId", namespaces=NS)


# -- retries and replays --------------------------------------------------------------------------


def test_resigned_retry_of_a_registration_gets_the_stored_answer(stack: Stack) -> None:
    signer = stack.pki.signer("director")
    message_id = f"erp-{uuid.uuid4()}"
    original = serialize(signed_request(signer, "SubmitRegistration", submit_payload("5GH3J7K"),
                                        message_id=message_id))
    first = stack.post(original)
    assert first.status_code == 200, first.text[:500]
    assert result_of(first.content, "SubmitRegistration", "status") == "REGISTERED"
    before = counts(stack.gateway.database)
    # The ERP lost the answer and signs the same content again: new Timestamp, new signature.
    resigned = serialize(signed_request(signer, "SubmitRegistration", submit_payload("5GH3J7K"),
                                        message_id=message_id))
    again = stack.post(resigned)
    assert again.status_code == 200
    # The same answer (the same SSN, the same application) ...
    assert payload_of(again.content) == payload_of(first.content)
    # ... bound to the request actually sent, so a client that checks requestHash accepts it.
    assert request_hash_of(again.content) == request_hash(resigned)
    # The very first bytes once more: the stored answer, byte for byte.
    assert stack.post(original).content == first.content
    after = counts(stack.gateway.database)
    # Nothing done twice; only the two exchanges themselves are logged.
    assert after == {**before, "log": before["log"] + 4}


def test_same_id_with_other_content_is_a_replay_quoting_the_id(stack: Stack) -> None:
    signer = stack.pki.signer("director")
    message_id = f"erp-{uuid.uuid4()}"
    first = stack.post(signed_request(signer, "SubmitRegistration", submit_payload("5GH3J7K"),
                                      message_id=message_id))
    assert first.status_code == 200
    before = counts(stack.gateway.database)
    other = stack.post(signed_request(signer, "SubmitRegistration", submit_payload("8LV4N2X"),
                                      message_id=message_id))
    assert other.status_code == 500
    assert response_fault_code(other) == "Client.Signature.Replay"
    assert message_id in fault_message(other.content)
    after = counts(stack.gateway.database)
    assert after == {**before, "log": before["log"] + 2}


def test_a_read_stores_no_answer_and_its_retry_runs_again(stack: Stack) -> None:
    signer = stack.pki.signer("director")
    message_id = f"erp-{uuid.uuid4()}"
    # The card's first signature is noted once (authority binding, #11): a write. After it,
    # reads write nothing but their log entries and the ledger row.
    stack.post(signed_request(signer, "FindPerson", find_person_payload("5GH3J7K"),
                              message_id=f"warm-up-{uuid.uuid4()}"))
    with stack.gateway.database.transaction() as s:
        s.execute(RequestLedgerRow.__table__.delete())
    before = counts(stack.gateway.database)
    first = stack.post(signed_request(signer, "FindPerson", find_person_payload("5GH3J7K"),
                                      message_id=message_id))
    assert first.status_code == 200
    with stack.gateway.database.transaction() as s:
        stored = s.execute(select(RequestLedgerRow.response, RequestLedgerRow.content_digest)
                           ).all()
    # One small row that remembers the id and its content, no 7 KB answer.
    assert len(stored) == before["ledger"] + 1
    assert all(response is None for response, _ in stored)
    again = stack.post(signed_request(signer, "FindPerson", find_person_payload("5GH3J7K"),
                                      message_id=message_id))
    assert again.status_code == 200
    assert again.content != first.content  # answered afresh (its own signature and time)
    assert counts(stack.gateway.database) == {**before, "ledger": before["ledger"] + 1,
                                              "log": before["log"] + 4}


def test_a_transient_fault_is_not_stored_and_the_retry_succeeds(
        stack: Stack, tmp_path: Path) -> None:
    """Defect 3: Server.Upstream.Unavailable was stored and replayed (with HTTP 200)."""
    signer = stack.pki.signer("director")
    body = serialize(signed_request(signer, "FindPerson", find_person_payload("5GH3J7K"),
                                    message_id=f"erp-{uuid.uuid4()}"))
    with sibling_stack(stack, tmp_path / "down", population_url="http://127.0.0.1:9/none",
                       upstream_retries=0) as down:
        refused = down.post(body)
    assert refused.status_code == 500
    assert response_fault_code(refused) == "Server.Upstream.Unavailable"
    # The registry is back (the first gateway reaches it): the same bytes now succeed.
    again = stack.post(body)
    assert again.status_code == 200, again.text[:500]
    outcome = etree.fromstring(again.content).findtext(
        "soapenv:Body/t:FindPersonResponse/t:outcome", namespaces=NS)
    assert outcome == "FOUND"


# -- the message log is part of the transaction ---------------------------------------------------


def test_a_registration_whose_log_entry_cannot_be_written_is_not_done(stack: Stack) -> None:
    """Defect 1: an acknowledged registration had no message-log entry. Now the log entry
    commits with the registration or neither does, and the client is told."""
    database = stack.gateway.database
    body = serialize(signed_request(stack.pki.signer("director"), "SubmitRegistration",
                                    submit_payload("5GH3J7K"), message_id=f"e-{uuid.uuid4()}"))
    before = counts(database)
    refuse_log_inserts(database)
    try:
        refused = stack.post(body)
    finally:
        allow_log_inserts(database)
    assert refused.status_code == 500
    assert (response_fault_code(refused) or "").startswith("Server.Storage")
    assert counts(database) == before  # no application, no SSN, no ledger row, no log
    # The client's retry of the same bytes, now that the log works: done, and logged.
    done = stack.post(body)
    assert done.status_code == 200, done.text[:500]
    assert result_of(done.content, "SubmitRegistration", "status") == "REGISTERED"
    with database.transaction() as s:
        logged = set(s.scalars(select(MessageLogRow.payload)))
    assert done.content in logged and body in logged


def test_a_refused_overlong_message_id_is_still_logged(stack: Stack) -> None:
    """Defect 1: ids longer than the log's column were refused but then failed to log."""
    database = stack.gateway.database
    before = counts(database)
    refused = stack.post(signed_request(stack.pki.signer("director"), "FindPerson",
                                        find_person_payload("5GH3J7K"), message_id="x" * 300))
    assert refused.status_code == 500
    assert response_fault_code(refused) == "Client.Header.Missing"
    correlation = correlation_of(refused.content)
    with database.transaction() as s:
        rows = s.execute(select(MessageLogRow.direction, MessageLogRow.message_id)
                         .where(MessageLogRow.correlation_id == correlation)).all()
    assert sorted(rows) == [("IN", None), ("OUT", None)]
    assert counts(database) == {**before, "log": before["log"] + 2}


# -- concurrent finishers -------------------------------------------------------------------------


def test_concurrent_finishers_never_overwrite_a_registration(
        stack: Stack, tmp_path: Path) -> None:
    """Defect 4: two finish-submitted runs over a backlog left applications REJECTED without an
    SSN while insured_persons held it. Three finishers (two processes and this one) race."""
    population = synthetic_people("9F", 40)
    registry = Registry(population)
    fins = [p.fin for p in population]
    try:
        registry.stop()  # the registry is down: everything is accepted as SUBMITTED
        with sibling_stack(stack, tmp_path / "down", population_url=registry.url,
                           upstream_retries=0) as down:
            signer_a = stack.pki.signer("director")
            signer_b = stack.pki.signer("director_b")

            def submit(item: tuple[str, str]) -> bytes:
                fin, who = item
                signer, voen = (signer_a, DEMO_VOEN) if who == "a" else (signer_b, OTHER_VOEN)
                answer = down.post(signed_request(
                    signer, "SubmitRegistration", submit_payload(fin).replace(DEMO_VOEN, voen),
                    message_id=f"f-{uuid.uuid4()}", voen=voen))
                assert answer.status_code == 200, answer.text[:400]
                return answer.content

            # The first five FINs are also submitted by a second insurer: one of each pair
            # must be registered, the other rejected.
            work = [(fin, "a") for fin in fins] + [(fin, "b") for fin in fins[:5]]
            with ThreadPoolExecutor(max_workers=4) as pool:
                answers = list(pool.map(submit, work))
        assert all(result_of(a, "SubmitRegistration", "status") == "SUBMITTED" for a in answers)
        registry.start()

        settings = stack.gateway.settings
        config = write_toml(tmp_path / "finisher.toml", {
            "database_url": settings.effective_database_url,
            "data_dir": str(tmp_path / "finisher"),
            "trust_anchors": [str(p) for p in stack.pki.trust_anchor_paths],
            "signing_key_file": str(stack.pki.identity("gateway").key_path),
            "signing_cert_file": str(stack.pki.identity("gateway").cert_path),
            "population_url": registry.url,
        })
        finishers = [subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "finish-submitted",
             "--limit", "1000"], cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE) for _ in range(2)]
        with sibling_stack(stack, tmp_path / "up", population_url=registry.url) as up:
            up.gateway.services.registration.finish_submitted(limit=1000)
        outputs = [f.communicate(timeout=120) for f in finishers]
        for finisher, (_, err) in zip(finishers, outputs, strict=True):
            assert finisher.returncode == 0, err.decode(errors="replace")[-2000:]
    finally:
        registry.stop()

    with stack.gateway.database.transaction() as s:
        insured = dict(s.execute(select(InsuredPersonRow.fin, InsuredPersonRow.ssn)
                                 .where(InsuredPersonRow.fin.in_(fins))).all())
        apps = s.execute(select(ApplicationRow.application_id, ApplicationRow.fin,
                                ApplicationRow.insurer_voen, ApplicationRow.status,
                                ApplicationRow.ssn).where(ApplicationRow.fin.in_(fins))).all()
        last_history = dict(s.execute(
            select(StatusHistoryRow.application_id, StatusHistoryRow.status)
            .where(StatusHistoryRow.application_id.in_([a.application_id for a in apps]))
            .order_by(StatusHistoryRow.application_id, StatusHistoryRow.seq)).all())
    assert set(insured) == set(fins)  # every FIN got exactly one SSN (the key is unique)
    by_fin: dict[str, list[tuple[str, str | None]]] = {}
    for app in apps:
        by_fin.setdefault(app.fin, []).append((app.status, app.ssn))
        # The history ends where the application is: nothing was overwritten afterwards.
        assert last_history[app.application_id] == app.status, app
        if app.status == "REJECTED":
            assert app.ssn is None, app
    for fin in fins:
        registered = [ssn for status, ssn in by_fin[fin] if status == "REGISTERED"]
        assert registered == [insured[fin]], (fin, by_fin[fin])
        assert len(by_fin[fin]) == (2 if fin in fins[:5] else 1)
        assert all(status in ("REGISTERED", "REJECTED") for status, _ in by_fin[fin])
