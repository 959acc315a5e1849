"""The desk tool's recovery paths, driven in-process against the real gateway on loopback: a
journaled request whose signature has aged (never sent, or done by the gateway with the answer
lost), and a gateway whose batch limit is smaller than the tool's chunks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from gateway.client.journal import PENDING, Journal
from gateway.client.register import BATCH, Registrar, RunOptions
from gateway.client.service import Gateway, PreparedRequest
from gateway.wsgi_server import serve_in_thread
from signing.parser import parse_xml, serialize
from signing.wsse import sign_envelope
from simulators import people as seed
from tests.e2e.conftest import DEMO_VOEN, Stack, sibling_stack
from tests.e2e.test_desk_tool import PEOPLE, desk, population_url, registry  # noqa: F401
from tests.e2e.test_registration_flow import service

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def desk_gateway(stack: Stack) -> Gateway:
    return Gateway(stack.wsdl, stack.pki.signer("director"), voen=DEMO_VOEN,
                   trust=stack.pki.trust_store(), gateway=stack.gateway_identity)


def journal_with(tmp_path: Path, fins: list[str]) -> Journal:
    journal = Journal(tmp_path / "hires.csv.dsmf-journal.sqlite")
    journal.add_rows([(fin, f"r{n}", n + 2, {"clientRef": f"r{n}", "documentType": "ID_CARD",
                                             "fin": fin, "actualAddressDiffers": False})
                      for n, fin in enumerate(fins)])
    return journal


def aged(stack: Stack, request: PreparedRequest, minutes: int = 10) -> PreparedRequest:
    """The same request (same message id, same body) as if it had been signed long ago."""
    envelope = parse_xml(request.body)
    header = envelope.find(f"{{{SOAP_ENV}}}Header")
    assert header is not None
    security = header.find(f"{{{WSSE}}}Security")
    assert security is not None
    header.remove(security)
    old = datetime.now(UTC) - timedelta(minutes=minutes)
    body = serialize(sign_envelope(envelope, stack.pki.signer("director"), now=old))
    return PreparedRequest(request.operation, request.message_id, body, request.http_headers)


def journaled_chunk(gateway: Gateway, journal: Journal) -> tuple[PreparedRequest, int]:
    rows = journal.rows(state=PENDING)
    request = gateway.prepare(BATCH, str(uuid.uuid4()), voen=DEMO_VOEN,
                              item=[row.item for row in rows])
    chunk = journal.open_chunk(request, [row.fin for row in rows])
    return request, chunk.chunk_id


def test_an_aged_request_never_sent_is_signed_again_under_its_message_id(
    desk: Stack, tmp_path: Path  # noqa: F811
) -> None:
    fins = [p.fin for p in PEOPLE[310:313]]
    gateway, journal = desk_gateway(desk), journal_with(tmp_path, fins)
    request, chunk_id = journaled_chunk(gateway, journal)
    old = aged(desk, request)
    journal.replace_request(journal.open_chunks()[0], old)

    Registrar(gateway, journal, RunOptions(backoff_seconds=0.01)).run()

    rows = journal.rows()
    assert [(r.fin, r.outcome, r.chunk_id) for r in rows] == [
        (fin, "REGISTERED", chunk_id) for fin in fins]
    chunk = journal._db.execute("SELECT message_id, request, open FROM chunk").fetchall()
    assert [(c[0], c[2]) for c in chunk] == [(request.message_id, 0)]
    assert bytes(chunk[0][1]) != old.body  # signed again, same id
    assert {a.fin: a.ssn for a in registry(desk)} == {r.fin: r.ssn for r in rows}


def test_an_aged_request_the_gateway_already_did_is_settled_from_the_registry(
    desk: Stack, tmp_path: Path  # noqa: F811
) -> None:
    fins = [p.fin for p in PEOPLE[320:324]]
    gateway, journal = desk_gateway(desk), journal_with(tmp_path, fins)
    request, _chunk_id = journaled_chunk(gateway, journal)
    # The gateway does it; the answer is lost (the tool was killed before it was recorded).
    gateway.send(request)
    journal.replace_request(journal.open_chunks()[0], aged(desk, request))

    Registrar(gateway, journal, RunOptions(backoff_seconds=0.01)).run()

    applications = registry(desk)
    assert sorted(a.fin for a in applications) == sorted(fins)  # nobody registered twice
    rows = journal.rows()
    assert {r.fin: (r.outcome, r.ssn, r.application_id) for r in rows} == {
        a.fin: ("REGISTERED", a.ssn, a.applicationId) for a in applications}
    assert not journal.open_chunks()


def test_chunks_shrink_to_the_gateways_batch_limit(desk: Stack, tmp_path: Path) -> None:  # noqa: F811
    fins = [p.fin for p in PEOPLE[330:335]]
    with sibling_stack(desk, tmp_path / "small", max_batch_items=2,
                       population_url=desk.gateway.settings.population_url) as small:
        gateway, journal = desk_gateway(small), journal_with(tmp_path, fins)
        stats = Registrar(gateway, journal, RunOptions(chunk_size=5)).run()
    assert stats.batch_limit == 2
    assert [(r.outcome, r.fault_code) for r in journal.rows()] == [("REGISTERED", None)] * 5
    assert sorted(a.fin for a in registry(desk)) == sorted(fins)
    sizes = journal._db.execute(
        "SELECT count(*) FROM row GROUP BY chunk_id ORDER BY chunk_id").fetchall()
    assert [s[0] for s in sizes] == [2, 2, 1]




def test_one_by_one_gives_each_row_its_own_outcome(desk: Stack, tmp_path: Path) -> None:  # noqa: F811
    new = PEOPLE[340].fin
    existing = "9QW3E5R"  # holds an SSN in the demo data, registered by nobody here
    gateway = desk_gateway(desk)
    journal = journal_with(tmp_path, [new, existing, seed.NOT_FOUND_FIN])
    stats = Registrar(gateway, journal, RunOptions(one_by_one=True, chunk_size=50)).run()
    rows = {r.fin: r for r in journal.rows()}
    assert (rows[new].outcome, rows[new].fault_code) == ("REGISTERED", None)
    assert rows[new].ssn and rows[new].application_id
    found = service(desk).FindPerson(voen=DEMO_VOEN, documentType="ID_CARD", fin=existing)
    assert (rows[existing].outcome, rows[existing].fault_code, rows[existing].ssn) == (
        "SSN_EXISTS", "Client.Conflict.SsnExists", found.existingInsured.ssn)
    unknown = rows[seed.NOT_FOUND_FIN]
    assert (unknown.outcome, unknown.fault_code) == ("FAILED", "Client.Person.NotFound")
    # One SubmitRegistration per row, each under its own message id.
    chunks = journal._db.execute("SELECT operation, message_id FROM chunk").fetchall()
    assert [c[0] for c in chunks] == ["SubmitRegistration"] * 3
    assert len({c[1] for c in chunks}) == 3
    assert stats.sent_rows == 3
    assert [a.fin for a in registry(desk)] == [new]


class AnswerLosingProxy:
    """A real HTTP hop in front of the gateway (a load balancer, say) that passes each request
    on and, for the first ``lose`` POSTs, loses the gateway's answer (502, no body)."""

    def __init__(self, target: str, lose: int) -> None:
        self.target = target
        self.lose = lose
        self.posted: list[bytes] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        query = environ.get("QUERY_STRING", "")
        url = self.target + (f"?{query}" if query else "")
        # The gateway writes its own address into the WSDL from the Host header: the proxy's.
        headers = {"Host": environ["HTTP_HOST"]}
        if environ["REQUEST_METHOD"] == "POST":
            headers["Content-Type"] = environ.get("CONTENT_TYPE", "text/xml")
            headers["SOAPAction"] = environ.get("HTTP_SOAPACTION", "")
            answer = requests.post(url, data=body, headers=headers, timeout=60)
            self.posted.append(body)
            if len(self.posted) <= self.lose:
                start_response("502 Bad Gateway", [("Content-Length", "0")])
                return [b""]
        else:
            answer = requests.get(url, headers=headers, timeout=60)
        start_response(f"{answer.status_code} {answer.reason}",
                       [("Content-Type", answer.headers.get("Content-Type", "text/xml"))])
        return [answer.content]


def test_a_lost_answer_is_fetched_again_with_the_same_bytes(
    desk: Stack, tmp_path: Path  # noqa: F811
) -> None:
    fins = [p.fin for p in PEOPLE[350:353]]
    proxy = AnswerLosingProxy(desk.url, lose=1)
    server = serve_in_thread(proxy)
    try:
        wsdl = server.url.rstrip("/") + urlsplit(desk.url).path + "?wsdl"
        gateway = Gateway(wsdl, desk.pki.signer("director"), voen=DEMO_VOEN,
                          trust=desk.pki.trust_store(), gateway=desk.gateway_identity)
        journal = journal_with(tmp_path, fins)
        Registrar(gateway, journal, RunOptions(backoff_seconds=0.01)).run()
    finally:
        server.stop()
    # The gateway did the first copy; the second, byte for byte the same, got its stored answer.
    assert len(proxy.posted) == 2 and proxy.posted[0] == proxy.posted[1]
    rows = journal.rows()
    assert [(r.outcome, r.chunk_id) for r in rows] == [("REGISTERED", 1)] * 3
    assert {a.fin: a.ssn for a in registry(desk)} == {r.fin: r.ssn for r in rows}
