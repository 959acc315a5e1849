"""The gateway's own surface besides the operations: health, metrics, WSDL/XSD serving, HTTP
methods and paths, the unsigned ``listMethods`` metaservice, and faults signed like answers.

Real gateway, real simulators, real HTTP on loopback (the ``stack`` fixture); raw requests where
the test is about the bytes on the wire.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
import requests
from lxml import etree
from sqlalchemy import select

from gateway.soap.service import OPERATIONS
from persistence.tables import MessageLogRow
from signing.errors import SignatureInvalid
from signing.testpki import TestPki
from signing.verifier import EnvelopeVerifier
from simulators.runner import Simulators
from tests.e2e.conftest import (
    SOAP_ENV,
    TNS,
    Stack,
    find_person_payload,
    make_settings,
    request_envelope,
    response_fault_code,
    serve_gateway,
)

XSD_NS = "http://www.w3.org/2001/XMLSchema"
ID_NS = "http://x-road.eu/xsd/identifiers"
NS = {"soapenv": SOAP_ENV, "t": TNS, "id": ID_NS}
LIST_METHODS = f'<t:listMethods xmlns:t="{TNS}"/>'


def root_of(stack: Stack) -> str:
    """http://127.0.0.1:PORT (the endpoint is PORT/soap)."""
    assert stack.url.endswith("/soap")
    return stack.url[: -len("/soap")]


def closed_port_url() -> str:
    """A loopback URL nobody listens on: bind a port, take its number, close it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/population"


# -- /health --------------------------------------------------------------------------------------


def test_health_is_ok_with_every_check(stack: Stack) -> None:
    answer = requests.get(f"{root_of(stack)}/health", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"status": "ok",
                             "checks": {"database": "ok", "signing-key": "ok",
                                        "population-registry": "ok"}}
    # The aliases answer the same.
    for alias in ("/healthz", "/health/ready", "/readyz"):
        assert requests.get(f"{root_of(stack)}{alias}", timeout=10).json() == answer.json()
    live = requests.get(f"{root_of(stack)}/health/live", timeout=10)
    assert live.status_code == 200 and live.json() == {"status": "ok"}


def test_health_is_degraded_not_down_with_an_unreachable_population_registry(
    database_url: str, tmp_path: Path, test_pki: TestPki, simulators: Simulators,
) -> None:
    settings = make_settings(database_url, tmp_path, test_pki, simulators,
                             population_url=closed_port_url(), upstream_retries=0,
                             upstream_timeout_seconds=2.0)
    with serve_gateway(settings, test_pki, simulators, demo_data=False) as down:
        answer = requests.get(down.url.removesuffix("/soap") + "/health", timeout=30)
    # Issue #9 defect 6: a load balancer must keep a gateway in rotation while the registry is
    # down, because that is exactly when it accepts submissions as SUBMITTED.
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["signing-key"] == "ok"
    reason = body["checks"]["population-registry"]
    assert reason.startswith("the population registry is unreachable"), reason
    assert set(body["checks"]) == {"database", "signing-key", "population-registry"}


def test_health_is_503_when_the_database_is_unreachable(
    tmp_path: Path, test_pki: TestPki, simulators: Simulators,
) -> None:
    port = closed_port_url().rsplit(":", 1)[1].split("/")[0]
    settings = make_settings(f"postgresql+psycopg://dsmf@127.0.0.1:{port}/nowhere", tmp_path,
                             test_pki, simulators)
    with serve_gateway(settings, test_pki, simulators, demo_data=False,
                       migrate=False) as running:
        root = running.url.removesuffix("/soap")
        answer = requests.get(f"{root}/health", timeout=30)
        live = requests.get(f"{root}/health/live", timeout=30)
    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable"
    assert answer.json()["checks"]["database"] != "ok"
    assert answer.json()["checks"]["signing-key"] == "ok"
    # Liveness does not depend on the database: a restart would not bring it back.
    assert live.status_code == 200


# -- /metrics -------------------------------------------------------------------------------------


def test_metrics_count_requests_by_operation_and_outcome(stack: Stack) -> None:
    assert stack.post(request_envelope("listMethods", LIST_METHODS)).status_code == 200
    refused = stack.post(request_envelope("FindPerson", find_person_payload("5GH3J7K"),
                                          message_id="msg-2"))
    assert response_fault_code(refused) == "Client.Signature.Missing"

    answer = requests.get(f"{root_of(stack)}/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    text = answer.text
    assert "# TYPE dsmf_requests_total counter" in text
    assert 'dsmf_requests_total{operation="listMethods",outcome="ok"} 1.0' in text
    assert ('dsmf_requests_total{operation="FindPerson",outcome="Client.Signature.Missing"} 1.0'
            in text)
    assert 'dsmf_request_seconds_count{operation="listMethods"} 1.0' in text

    stack.post(request_envelope("listMethods", LIST_METHODS, message_id="msg-3"))
    again = requests.get(f"{root_of(stack)}/metrics", timeout=10).text
    assert 'dsmf_requests_total{operation="listMethods",outcome="ok"} 2.0' in again


# -- WSDL and schemas -----------------------------------------------------------------------------


def test_wsdl_points_at_this_server(stack: Stack) -> None:
    answer = requests.get(stack.wsdl, timeout=10)
    assert answer.status_code == 200
    wsdl = etree.fromstring(answer.content)
    locations = [a.get("location") for a in
                 wsdl.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address")]
    assert locations == [stack.url]


def test_xsd_is_served_by_name(stack: Stack) -> None:
    answer = requests.get(f"{stack.url}?xsd=gateway.xsd", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/xml")
    schema = etree.fromstring(answer.content)
    assert schema.tag == f"{{{XSD_NS}}}schema"
    assert schema.get("targetNamespace") == TNS
    names = {el.get("name") for el in schema.iterfind(f"{{{XSD_NS}}}element")}
    assert {"listMethods", "FindPerson", "SubmitRegistration"} <= names
    # Its imports point back at this server, never at a file path.
    for imported in schema.iter(f"{{{XSD_NS}}}import", f"{{{XSD_NS}}}include"):
        location = imported.get("schemaLocation")
        if location:
            assert location.startswith(f"{stack.url}?xsd="), location


def test_xsd_path_traversal_and_unknown_names_are_404(stack: Stack) -> None:
    for name in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "nope.xsd", ""):
        answer = requests.get(f"{stack.url}?xsd={name}", timeout=10)
        assert answer.status_code == 404, name
        assert answer.text == "no such schema\n"
        assert "root:" not in answer.text


# -- HTTP methods and paths -----------------------------------------------------------------------


def test_unknown_path_is_404(stack: Stack) -> None:
    answer = requests.get(f"{root_of(stack)}/no/such/thing", timeout=10)
    assert answer.status_code == 404
    assert answer.text == "see ?wsdl\n"


def test_methods_other_than_get_and_post_are_405(stack: Stack) -> None:
    for method in ("PUT", "DELETE", "PATCH"):
        answer = requests.request(method, stack.url, data=b"<x/>", timeout=10)
        assert answer.status_code == 405, method
        assert answer.text == "POST a SOAP 1.1 request\n"


# -- listMethods (unsigned) -----------------------------------------------------------------------


def test_unsigned_list_methods_lists_every_operation(stack: Stack) -> None:
    answer = stack.post(request_envelope("listMethods", LIST_METHODS))
    assert answer.status_code == 200, answer.text[:500]
    root = etree.fromstring(answer.content)
    services = root.findall("soapenv:Body/t:listMethodsResponse/t:service", NS)
    codes = [s.findtext("id:serviceCode", namespaces=NS) for s in services]
    assert sorted(codes) == sorted(OPERATIONS)
    assert len(codes) == len(set(codes))
    assert {s.findtext("id:serviceVersion", namespaces=NS) for s in services} == {"v1"}
    assert {s.findtext("id:subsystemCode", namespaces=NS) for s in services} == {
        "insured-registration"}
    # Answered like any other: signed by the gateway.
    verified = EnvelopeVerifier(stack.pki.trust_store(), None, None).verify(root)
    assert verified.certificate == stack.pki.identity("gateway").certificate


# -- refusals -------------------------------------------------------------------------------------


def test_unsigned_find_person_is_refused(stack: Stack) -> None:
    answer = stack.post(request_envelope("FindPerson", find_person_payload("5GH3J7K")))
    assert answer.status_code == 500
    assert response_fault_code(answer) == "Client.Signature.Missing"


def test_a_fault_is_signed_by_the_gateway_with_its_code_and_correlation_id(stack: Stack) -> None:
    answer = stack.post(request_envelope("FindPerson", find_person_payload("5GH3J7K"),
                                         message_id="fault-msg-1"))
    assert answer.status_code == 500
    assert answer.headers["Content-Type"].startswith("text/xml")
    root = etree.fromstring(answer.content)

    verifier = EnvelopeVerifier(stack.pki.trust_store(), None, None)
    verified = verifier.verify(root)
    assert verified.certificate == stack.pki.identity("gateway").certificate
    assert verified.message_id == "fault-msg-1"  # the X-Road id is echoed and signed

    fault = verified.body.find("soapenv:Fault", NS)
    assert fault is not None
    assert fault.findtext("faultcode") == "soapenv:Client.Signature.Missing"
    detail = fault.find("detail/t:FaultDetail", NS)
    assert detail is not None
    assert detail.findtext("t:code", namespaces=NS) == "Client.Signature.Missing"
    correlation_id = detail.findtext("t:correlationId", namespaces=NS)
    assert correlation_id is not None and re.fullmatch(r"[0-9a-f]{32}", correlation_id)
    assert "Traceback" not in answer.text

    # The same correlation id is in the message log, with the request and this very answer.
    with stack.gateway.database.transaction() as session:
        logged = list(session.execute(
            select(MessageLogRow.direction, MessageLogRow.payload)
            .where(MessageLogRow.correlation_id == correlation_id)
            .order_by(MessageLogRow.id)
        ))
    assert [row.direction for row in logged] == ["IN", "OUT"]
    assert logged[1].payload == answer.content

    # A fault body altered in transit no longer verifies.
    original = b"<tns:code>Client.Signature.Missing</tns:code>"
    assert original in answer.content
    tampered = etree.fromstring(answer.content.replace(original,
                                                       b"<tns:code>Client.Other</tns:code>"))
    with pytest.raises(SignatureInvalid):
        verifier.verify(tampered)
