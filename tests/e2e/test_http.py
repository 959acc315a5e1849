"""HTTP and SOAP envelope handling of the live gateway on the embedded server (waitress), over
real sockets: HTTP/1.1 keep-alive, chunked request bodies (CXF chunks anything over 4 KB) and
the size limit on them, gzip request bodies with a bounded inflate, gzip answers when asked,
SOAP 1.2 -> VersionMismatch, an unknown mustUnderstand header -> MustUnderstand.

Refusals are built around a signed, state-changing SaveDraft by the demo director: each asserts
its exact fault code and that no application was written. Accepted requests are signed
FindPersons, whose answers are verified with the gateway's certificate.
"""

from __future__ import annotations

import gzip
import http.client
import socket
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lxml import etree

from gateway.messages import fault_message
from gateway.services.ports import ApplicationQuery
from signing import ns
from signing.testpki import TestPki
from signing.verifier import EnvelopeVerifier
from simulators.runner import Simulators
from tests.e2e.conftest import (
    DEMO_VOEN,
    SOAP_ENV,
    TNS,
    Stack,
    make_settings,
    serve_gateway,
)
from tests.signing import attacks
from tests.signing.attacks import Sender

LIMIT = 200_000
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
NS = {"soapenv": SOAP_ENV, "t": TNS}

SAVE_DRAFT = (
    f'<t:SaveDraft xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
    "<t:documentType>ID_CARD</t:documentType><t:fin>6TY2U8P</t:fin>"
    "<t:actualAddressDiffers>false</t:actualAddressDiffers></t:SaveDraft>"
).encode()
FIND_PERSON = (
    f'<t:FindPerson xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
    "<t:documentType>ID_CARD</t:documentType><t:fin>5GH3J7K</t:fin></t:FindPerson>"
).encode()


@pytest.fixture(scope="module")
def http_stack(tmp_path_factory: pytest.TempPathFactory, test_pki: TestPki,
               simulators: Simulators) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("http")
    settings = make_settings(f"sqlite:///{tmp / 'gw.db'}", tmp, test_pki, simulators,
                             max_message_bytes=LIMIT)
    with serve_gateway(settings, test_pki, simulators) as running:
        yield running


# --- building requests ------------------------------------------------------------------------


def envelope_for(operation: str, payload: bytes,
                 extra_headers: Iterable[etree._Element] = ()) -> Callable[[], etree._Element]:
    def build() -> etree._Element:
        envelope = attacks.request_envelope(payload=payload)
        code = envelope.find(".//{http://x-road.eu/xsd/identifiers}serviceCode")
        assert code is not None
        code.text = operation
        header = envelope.find(f"{{{SOAP_ENV}}}Header")
        assert header is not None
        for block in extra_headers:
            header.append(block)
        return envelope
    return build


def signed_bytes(stack: Stack, operation: str, payload: bytes,
                 extra_headers: Iterable[etree._Element] = ()) -> bytes:
    sender = Sender.from_identity(stack.pki.identity("director"))
    envelope = attacks.signed(sender, base=envelope_for(operation, payload, extra_headers))
    return attacks.serialize(envelope)


def save_draft(stack: Stack, extra_headers: Iterable[etree._Element] = ()) -> bytes:
    return signed_bytes(stack, "SaveDraft", SAVE_DRAFT, extra_headers)


def find_person(stack: Stack, extra_headers: Iterable[etree._Element] = ()) -> bytes:
    return signed_bytes(stack, "FindPerson", FIND_PERSON, extra_headers)


def header_block(tag: str, *, must_understand: str | None = None,
                 actor: str | None = None) -> etree._Element:
    block = etree.Element(tag)
    block.text = "x"
    if must_understand is not None:
        block.set(f"{{{SOAP_ENV}}}mustUnderstand", must_understand)
    if actor is not None:
        block.set(f"{{{SOAP_ENV}}}actor", actor)
    return block


# --- sending them -----------------------------------------------------------------------------


class Answer:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.version = response.version
        self.headers = response.headers
        self.raw = response.read()
        self.will_close = response.will_close

    @property
    def body(self) -> bytes:
        if self.headers.get("Content-Encoding") == "gzip":
            return gzip.decompress(self.raw)
        return self.raw

    @property
    def envelope(self) -> etree._Element:
        return etree.fromstring(self.body)

    @property
    def fault_code(self) -> str | None:
        code = self.envelope.findtext("soapenv:Body/soapenv:Fault/faultcode", namespaces=NS)
        return code.split(":", 1)[1] if code and ":" in code else code


def connect(stack: Stack) -> http.client.HTTPConnection:
    url = urlsplit(stack.url)
    return http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=20)


def post(connection: http.client.HTTPConnection, stack: Stack, body: bytes | Iterable[bytes],
         *, chunked: bool = False, headers: dict[str, str] | None = None) -> Answer:
    sent = {"Content-Type": "text/xml; charset=utf-8", **(headers or {})}
    connection.request("POST", urlsplit(stack.url).path, body=body, headers=sent,
                       encode_chunked=chunked)
    return Answer(connection.getresponse())


def post_once(stack: Stack, body: bytes | Iterable[bytes], **kw: object) -> Answer:
    connection = connect(stack)
    try:
        return post(connection, stack, body, **kw)  # type: ignore[arg-type]
    finally:
        connection.close()


def chunks(data: bytes, size: int = 4096) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def applications_written(stack: Stack) -> int:
    with stack.gateway.database.unit_of_work() as uow:
        return uow.applications.search(ApplicationQuery(insurer_voen=DEMO_VOEN)).total


def assert_found(stack: Stack, answer: Answer) -> None:
    assert answer.status == 200, answer.body[:500]
    envelope = answer.envelope
    gateway_cert = stack.pki.identity("gateway").certificate
    assert EnvelopeVerifier(stack.pki.trust_store(), None, None).verify(
        envelope).certificate == gateway_cert
    found = envelope.find("soapenv:Body/t:FindPersonResponse", NS)
    assert found is not None and found.findtext("t:outcome", namespaces=NS) == "FOUND"


def assert_refused(stack: Stack, answer: Answer, code: str) -> None:
    assert answer.status == 500, answer.body[:500]
    assert answer.fault_code == code, answer.body[:500]
    assert applications_written(stack) == 0


# --- HTTP/1.1 -----------------------------------------------------------------------------------


def test_connection_is_kept_alive_across_requests(http_stack: Stack) -> None:
    connection = connect(http_stack)
    try:
        connection.request("GET", urlsplit(http_stack.url).path + "?wsdl")
        wsdl = Answer(connection.getresponse())
        assert wsdl.status == 200 and wsdl.version == 11 and not wsdl.will_close
        sock = connection.sock
        assert sock is not None
        first = post(connection, http_stack, find_person(http_stack))
        second = post(connection, http_stack, find_person(http_stack))
        # The same socket carried all three: http.client reconnects only after a close.
        assert connection.sock is sock
    finally:
        connection.close()
    assert_found(http_stack, first)
    assert_found(http_stack, second)


def test_chunked_request_is_read(http_stack: Stack) -> None:
    body = find_person(http_stack)
    assert len(body) > 4096  # what CXF would chunk
    answer = post_once(http_stack, chunks(body, 1000), chunked=True)
    assert_found(http_stack, answer)


def test_chunked_request_over_the_limit_is_refused_and_the_connection_serves_on(
        http_stack: Stack) -> None:
    oversize = b"<x>" + b"a" * (LIMIT + 10_000) + b"</x>"
    connection = connect(http_stack)
    try:
        answer = post(connection, http_stack, chunks(oversize, 8192), chunked=True)
        assert_refused(http_stack, answer, "Client.Xml.TooLarge")
        # The body was read to its last chunk before the refusal, so nothing of it is left to be
        # taken for a next request: the same connection carries a valid one.
        assert not answer.will_close
        assert_found(http_stack, post(connection, http_stack, find_person(http_stack)))
    finally:
        connection.close()


def test_one_huge_chunk_is_refused_at_the_servers_cap(http_stack: Stack) -> None:
    # A chunk header announcing far more than the server's cap, then data without end: the
    # server stops reading at its cap (body_cap(LIMIT)) and answers the SOAP fault itself.
    url = urlsplit(http_stack.url)
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80),
                                  timeout=20) as sock:
        sock.sendall(f"POST {url.path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                     "Accept-Language: en\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                     + b"%x\r\n" % (64 * 1024 * 1024) + b"<x>")
        sent = 0
        try:
            while sent < 64 * 1024 * 1024:  # the server closes long before
                sock.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    # The answer came before the 64 MB were sent (loopback socket buffers take a few MB).
    assert sent < 64 * 1024 * 1024
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500"), received[:300]
    assert b"Connection: close" in head
    fault = etree.fromstring(body).find("soapenv:Body/soapenv:Fault", NS)
    assert fault is not None
    assert (fault.findtext("faultcode") or "").split(":")[-1] == "Client.Xml.TooLarge"
    # In the language the client asked for.
    assert fault.findtext("faultstring") == fault_message("Client.Xml.TooLarge", "en")
    assert applications_written(http_stack) == 0


def test_broken_chunk_framing_is_refused(http_stack: Stack) -> None:
    url = urlsplit(http_stack.url)
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80),
                                  timeout=20) as sock:
        sock.sendall(f"POST {url.path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                     "zz\r\n<x/>\r\n0\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    _, _, body = received.partition(b"\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 500"), received[:300]
    assert b"Client.Http.Malformed" in body
    assert applications_written(http_stack) == 0


# --- gzip ---------------------------------------------------------------------------------------


def test_gzip_request_is_inflated_and_answered(http_stack: Stack) -> None:
    body = gzip.compress(find_person(http_stack))
    answer = post_once(http_stack, body, headers={"Content-Encoding": "gzip"})
    assert_found(http_stack, answer)


def test_chunked_gzip_request_is_answered(http_stack: Stack) -> None:
    body = gzip.compress(find_person(http_stack))
    answer = post_once(http_stack, chunks(body, 512), chunked=True,
                       headers={"Content-Encoding": "gzip"})
    assert_found(http_stack, answer)


def test_gzip_bomb_is_refused_within_the_limit(http_stack: Stack) -> None:
    # 64 MB of zeros inflate from ~64 kB: the inflate stops at the limit (200 kB) + 1.
    inflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = inflater.compress(b"<x>") + b"".join(
        inflater.compress(bytes(1024 * 1024)) for _ in range(64)) + inflater.flush()
    assert len(bomb) < LIMIT
    answer = post_once(http_stack, bomb, headers={"Content-Encoding": "gzip"})
    assert_refused(http_stack, answer, "Client.Http.InflatedTooLarge")


def test_gzip_body_inflating_just_past_the_limit_is_refused(http_stack: Stack) -> None:
    data = gzip.compress(b"<x>" + b"a" * LIMIT + b"</x>")
    answer = post_once(http_stack, data, headers={"Content-Encoding": "gzip"})
    assert_refused(http_stack, answer, "Client.Http.InflatedTooLarge")


@pytest.mark.parametrize(("data", "coding", "code"), [
    (b"not gzip at all", "gzip", "Client.Http.ContentEncoding.Corrupt"),
    (gzip.compress(b"<x>" + b"a" * 5000 + b"</x>")[:-20], "gzip",
     "Client.Http.ContentEncoding.Corrupt"),  # truncated
    (b"<x/>", "br", "Client.Http.ContentEncoding"),
    (gzip.compress(gzip.compress(b"<x/>")), "gzip, gzip", "Client.Http.ContentEncoding"),
])
def test_bad_content_coding_is_refused(http_stack: Stack, data: bytes, coding: str,
                                       code: str) -> None:
    answer = post_once(http_stack, data, headers={"Content-Encoding": coding})
    assert_refused(http_stack, answer, code)


def test_answer_is_gzipped_only_when_the_client_accepts_it(http_stack: Stack) -> None:
    plain = post_once(http_stack, find_person(http_stack))
    assert plain.headers.get("Content-Encoding") is None
    assert_found(http_stack, plain)
    zipped = post_once(http_stack, find_person(http_stack),
                       headers={"Accept-Encoding": "gzip"})
    assert zipped.headers.get("Content-Encoding") == "gzip"
    assert zipped.raw[:2] == b"\x1f\x8b"
    assert_found(http_stack, zipped)
    refused_gzip = post_once(http_stack, find_person(http_stack),
                             headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert refused_gzip.headers.get("Content-Encoding") is None
    wsdl_connection = connect(http_stack)
    try:
        wsdl_connection.request("GET", urlsplit(http_stack.url).path + "?wsdl",
                                headers={"Accept-Encoding": "gzip"})
        wsdl = Answer(wsdl_connection.getresponse())
    finally:
        wsdl_connection.close()
    assert wsdl.headers.get("Content-Encoding") == "gzip"
    assert etree.fromstring(wsdl.body).tag == "{http://schemas.xmlsoap.org/wsdl/}definitions"


# --- SOAP envelope ------------------------------------------------------------------------------


def test_soap12_envelope_gets_a_version_mismatch_fault(http_stack: Stack) -> None:
    soap11 = save_draft(http_stack)
    soap12 = soap11.replace(SOAP_ENV.encode(), SOAP12_ENV.encode())
    answer = post_once(http_stack, soap12,
                       headers={"Content-Type": "application/soap+xml; charset=utf-8"})
    assert_refused(http_stack, answer, "VersionMismatch")
    # A SOAP 1.1 fault (SOAP 1.1 §4.4.1, SOAP 1.2 appendix A), so a 1.2 client learns why.
    assert answer.envelope.tag == f"{{{SOAP_ENV}}}Envelope"


def test_unknown_must_understand_header_is_refused(http_stack: Stack) -> None:
    block = header_block("{urn:example:routing}priority", must_understand="1")
    answer = post_once(http_stack, save_draft(http_stack, [block]))
    assert_refused(http_stack, answer, "MustUnderstand")
    detail = answer.envelope.find(".//t:FaultDetail", NS)
    assert detail is not None and detail.findtext("t:field", namespaces=NS) == "priority"


@pytest.mark.parametrize("block", [
    header_block("{urn:example:routing}priority", must_understand="0"),
    header_block("{urn:example:routing}priority"),
    header_block("{urn:example:routing}priority", must_understand="1",
                 actor="urn:example:some-other-node"),
], ids=["mustUnderstand=0", "no-mustUnderstand", "other-actor"])
def test_headers_not_for_us_or_optional_are_ignored(http_stack: Stack,
                                                      block: etree._Element) -> None:
    assert_found(http_stack, post_once(http_stack, find_person(http_stack, [block])))


def test_understood_headers_marked_must_understand_are_accepted(http_stack: Stack) -> None:
    # WSS4J marks wsse:Security mustUnderstand="1" by default; X-Road headers may be too.
    sender = Sender.from_identity(http_stack.pki.identity("director"))
    build = envelope_for("FindPerson", FIND_PERSON)

    def marked() -> etree._Element:
        envelope = build()
        for block in envelope.iterfind(f"{{{SOAP_ENV}}}Header/*"):
            block.set(f"{{{SOAP_ENV}}}mustUnderstand", "1")  # before signing: they are signed
        return envelope

    envelope = attacks.signed(sender, base=marked)
    security = envelope.find(f"{{{SOAP_ENV}}}Header/{ns.WSSE_SECURITY}")
    assert security is not None
    security.set(f"{{{SOAP_ENV}}}mustUnderstand", "1")
    assert_found(http_stack, post_once(http_stack, attacks.serialize(envelope)))
