"""The prepared registry request (``PreparedCall``): byte for byte what zeep's own service proxy
sends, for values that need escaping too, against a loopback peer that records what it gets."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import requests
from lxml import etree

from gateway.domain.errors import UpstreamFault
from gateway.domain.values import DocumentType
from gateway.upstream.errors import UpstreamConfigurationError
from gateway.upstream.population import NS, ZeepPopulationRegistry
from gateway.upstream.transport import BoundedTransport, PreparedCall
from gateway.wsgi_server import RunningServer, WsgiApp

from .conftest import POPULATION_WSDL

Serve = Callable[[WsgiApp], RunningServer]

PERSON = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
    f'<p:GetPersonByDocumentResponse xmlns:p="{NS}"><p:person><p:fin>5GH3J7K</p:fin>'
    "<p:surname>Nəsibova</p:surname><p:name>Şəhla</p:name><p:birthDate>1990-01-02</p:birthDate>"
    "<p:sex>F</p:sex><p:citizenship>AZE</p:citizenship><p:document>"
    "<p:documentType>ID_CARD</p:documentType><p:number>1234567</p:number>"
    "<p:issueDate>2020-01-01</p:issueDate><p:issuer>ASAN</p:issuer></p:document>"
    "<p:registrationAddress><p:region>Bakı</p:region><p:cityOrDistrict>Nəsimi</p:cityOrDistrict>"
    "<p:street>Azadlıq</p:street><p:house>1</p:house></p:registrationAddress></p:person>"
    "</p:GetPersonByDocumentResponse></s:Body></s:Envelope>"
).encode()

# Markup characters, an end-of-CDATA marker, quotes, Azerbaijani and astral letters,
# surrounding and inner whitespace (a CR must come back as a CR, so it is written as &#13;),
# and the empty string.
AWKWARD = [
    "5GH3J7K",
    "A<B>&C",
    "]]>",
    "\"quoted\" 'single'",
    "Əliyev İş ğ ç ö ü ş ı",
    "\U0001f600 emoji",
    "  spaced  ",
    "line\nbreak\r\ttab",
    "&amp; already escaped",
    "",
]


class Recorder:
    """A WSGI peer that keeps every request's body and SOAP headers and answers one person."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        self._lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {
            "SOAPAction": environ.get("HTTP_SOAPACTION", ""),
            "Content-Type": environ.get("CONTENT_TYPE", ""),
        }
        with self._lock:
            self.requests.append((body, headers))
        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"),
                                  ("Content-Length", str(len(PERSON)))])
        return [PERSON]


@pytest.fixture
def recorded(serve: Serve) -> tuple[Recorder, ZeepPopulationRegistry]:
    recorder = Recorder()
    server = serve(recorder)
    url = server.url.rstrip("/") + "/population-registry"
    return recorder, ZeepPopulationRegistry(POPULATION_WSDL, url, timeout=5.0, retries=0)


def _zeep_sends(registry: ZeepPopulationRegistry, document_type: str, fin: str) -> None:
    """The same operation through zeep's own service proxy (its per-call path)."""
    client = registry._client
    with client.settings(raw_response=True):
        registry._service.GetPersonByDocument(documentType=document_type, fin=fin)


@pytest.mark.parametrize("value", AWKWARD)
def test_the_prepared_request_is_byte_for_byte_what_zeep_sends(
    recorded: tuple[Recorder, ZeepPopulationRegistry], value: str
) -> None:
    recorder, registry = recorded
    registry._get_person.post(documentType="ID_CARD", fin=value)
    _zeep_sends(registry, "ID_CARD", value)
    _zeep_sends(registry, "ID_CARD", "other")  # and a different value is a different request

    (prepared, prepared_headers), (by_zeep, zeep_headers), (other, _) = recorder.requests
    assert prepared == by_zeep
    assert prepared_headers == zeep_headers
    assert prepared_headers["SOAPAction"] == f'"{NS}#GetPersonByDocument"'
    assert prepared != other
    # ... and what arrives reads back as the value that was given, whatever it needed escaping.
    root = etree.fromstring(prepared)
    assert root.findtext(f".//{{{NS}}}fin") == value
    assert root.findtext(f".//{{{NS}}}documentType") == "ID_CARD"
    assert etree.tostring(root, method="c14n") == etree.tostring(
        etree.fromstring(by_zeep), method="c14n"
    )


def test_each_call_fills_its_own_copy(recorded: tuple[Recorder, ZeepPopulationRegistry]) -> None:
    _, registry = recorded
    first = registry._get_person.message(documentType="ID_CARD", fin="AAAAAAA")
    second = registry._get_person.message(documentType="PERMANENT_RESIDENCE_PERMIT", fin="B2")
    assert first != second
    assert registry._get_person.message(documentType="ID_CARD", fin="AAAAAAA") == first
    assert b"dsmf-prepared" not in first + second


def test_find_person_goes_through_the_prepared_request(
    recorded: tuple[Recorder, ZeepPopulationRegistry],
) -> None:
    recorder, registry = recorded
    person = registry.find_person(DocumentType.ID_CARD, "5GH3J7K")
    assert person.surname == "Nəsibova"
    _zeep_sends(registry, "ID_CARD", "5GH3J7K")
    assert recorder.requests[0] == recorder.requests[1]


def test_a_value_xml_cannot_hold_is_refused_before_anything_is_sent(
    recorded: tuple[Recorder, ZeepPopulationRegistry],
) -> None:
    recorder, registry = recorded
    with pytest.raises(UpstreamFault):
        registry.find_person(DocumentType.ID_CARD, "AB\x00CDEF")
    assert recorder.requests == []


def test_a_field_zeep_does_not_write_cannot_be_prepared(
    recorded: tuple[Recorder, ZeepPopulationRegistry],
) -> None:
    _, registry = recorded
    with pytest.raises(UpstreamConfigurationError):
        PreparedCall(registry._client, registry._service, "GetPersonByDocument",
                     ("documentType", "fin", "surname"))
    with pytest.raises(UpstreamConfigurationError):
        PreparedCall(registry._client, registry._service, "NoSuchOperation", ("fin",))


def test_a_transport_keeps_a_pool_per_address_and_refuses_a_ninth(dead_url: str) -> None:
    transport = BoundedTransport(connect_timeout=1.0, read_timeout=1.0)
    for n in range(8):  # nothing listens: each post fails to connect, but has its pool
        with pytest.raises(requests.exceptions.ConnectionError):
            transport.post(f"{dead_url}/service-{n}", b"<x/>", {})
    assert len(transport._routes) == 8
    with pytest.raises(UpstreamConfigurationError):
        transport.post(f"{dead_url}/service-8", b"<x/>", {})
    with pytest.raises(requests.exceptions.ConnectionError):  # a known one still goes out
        transport.post(f"{dead_url}/service-0", b"<x/>", {})


def test_a_client_adding_per_message_headers_cannot_be_prepared(
    recorded: tuple[Recorder, ZeepPopulationRegistry],
) -> None:
    """WS-Security (a Timestamp, a nonce) or a plugin must act on every message: a request
    built once would resend what they added."""
    _, registry = recorded
    client = registry._client
    client.wsse = object()  # any WS-Security signer
    try:
        with pytest.raises(UpstreamConfigurationError):
            PreparedCall(client, registry._service, "GetPersonByDocument",
                         ("documentType", "fin"))
    finally:
        client.wsse = None
    client.plugins = [object()]
    try:
        with pytest.raises(UpstreamConfigurationError):
            PreparedCall(client, registry._service, "GetPersonByDocument",
                         ("documentType", "fin"))
    finally:
        client.plugins = []
