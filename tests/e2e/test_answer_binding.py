"""The client kit binds each answer to its request (issue #16, finding 2).

A man in the middle runs as a real HTTP peer on loopback between the kit (zeep + SigningPlugin)
and the running gateway. It forwards requests and then tampers with the genuine answers the way
an attacker with a valid card, or with a recording of earlier traffic, could: re-signing them
with another cardholder's key, or answering with the gateway's genuine answer to another request.
Each is refused by the kit with its own code; the untouched answer passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import zeep
from lxml import etree

from gateway.client.wsse import (
    AnswerMessageIdMismatch,
    AnswerRequestHashMismatch,
    AnswerSignerMismatch,
    GatewayIdentity,
    SigningPlugin,
    XRoadMember,
)
from gateway.wsgi_server import serve_in_thread
from signing.errors import ConfigurationError, VerificationError
from signing.parser import serialize
from signing.testpki import TestPki
from signing.wsse import sign_envelope
from tests.e2e.conftest import DEMO_VOEN, Bodies, Stack

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
Tamper = Callable[[bytes, bytes], bytes]  # (request, genuine answer) -> answer sent on


class Middle:
    """Forwards POSTs to the gateway and passes each answer through ``tamper``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.tamper: Tamper = lambda request, answer: answer
        self.answers: list[bytes] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["REQUEST_METHOD"] == "GET":
            got = requests.get(self.upstream, params=environ.get("QUERY_STRING"), timeout=10)
            body = got.content
            start_response(f"{got.status_code} X", [("Content-Type", "text/xml")])
            return [body]
        request = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        got = requests.post(self.upstream, data=request, timeout=10,
                            headers={"Content-Type": "text/xml; charset=utf-8"})
        self.answers.append(got.content)
        body = self.tamper(request, got.content)
        start_response(f"{got.status_code} X", [("Content-Type", "text/xml"),
                                                ("Content-Length", str(len(body)))])
        return [body]


@pytest.fixture
def middle(stack: Stack) -> Iterator[tuple[Middle, str]]:
    peer = Middle(stack.url)
    server = serve_in_thread(peer)
    try:
        yield peer, server.url.rstrip("/") + "/soap"
    finally:
        server.stop()


def kit(stack: Stack, url: str, *, gateway: GatewayIdentity | None = None,
        ids: Callable[[], str] | None = None) -> tuple[Any, SigningPlugin]:
    extra: dict[str, Any] = {"message_ids": ids} if ids is not None else {}
    plugin = SigningPlugin(
        stack.pki.signer("director"), client=XRoadMember("AZ", "COM", DEMO_VOEN, "erp"),
        verify_with=stack.pki.trust_store(),
        gateway=gateway if gateway is not None else stack.gateway_identity, **extra,
    )
    client = zeep.Client(stack.wsdl, plugins=[plugin])
    service = client.create_service(
        "{urn:az:dsmf:insured-registration:v1}InsuredRegistrationBinding", url)
    return Bodies(service), plugin


def find_person(service: Any, fin: str = "5GH3J7K") -> Any:
    return service.FindPerson(voen=DEMO_VOEN, documentType="ID_CARD", fin=fin)


def resigned_by(stack: Stack, identity: str) -> Tamper:
    def tamper(request: bytes, answer: bytes) -> bytes:
        envelope = etree.fromstring(answer)
        header = envelope[0]
        for security in header.findall(f"{{{WSSE}}}Security"):
            header.remove(security)
        return serialize(sign_envelope(envelope, stack.pki.signer(identity)))
    return tamper


def test_untouched_answer_passes(stack: Stack, middle: tuple[Middle, str]) -> None:
    _, url = middle
    service, plugin = kit(stack, url)
    assert find_person(service) is not None
    assert plugin.last_response is not None
    assert plugin.last_response.certificate == stack.pki.identity("gateway").certificate


def test_answer_signed_by_another_cardholder_is_refused(
    stack: Stack, middle: tuple[Middle, str]
) -> None:
    peer, url = middle
    peer.tamper = resigned_by(stack, "director_b")  # a valid national card, not the gateway
    service, plugin = kit(stack, url)
    with pytest.raises(AnswerSignerMismatch) as info:
        find_person(service)
    assert info.value.code == "Answer.Signer"
    assert isinstance(info.value, VerificationError)
    assert plugin.last_response is None


def test_identity_by_subject_accepts_the_gateway_and_refuses_others(
    stack: Stack, middle: tuple[Middle, str]
) -> None:
    peer, url = middle
    subject = stack.pki.identity("gateway").certificate.subject.rfc4514_string()
    service, _ = kit(stack, url, gateway=GatewayIdentity(subject=subject))
    find_person(service)
    peer.tamper = resigned_by(stack, "system")
    with pytest.raises(AnswerSignerMismatch):
        find_person(service)


def test_genuine_answer_to_another_request_is_refused(
    stack: Stack, middle: tuple[Middle, str]
) -> None:
    """The gateway's own, validly signed answer to an earlier request (another X-Road id)."""
    peer, url = middle
    service, _ = kit(stack, url)
    find_person(service, "5GH3J7K")
    recorded = peer.answers[-1]
    peer.tamper = lambda request, answer: recorded
    with pytest.raises(AnswerMessageIdMismatch) as info:
        find_person(service, "6ZK4T2P")
    assert info.value.code == "Answer.MessageId"


def test_genuine_answer_with_our_id_to_other_content_is_refused(
    stack: Stack, middle: tuple[Middle, str]
) -> None:
    """Same X-Road id (a client reusing ids), other content: only requestHash tells them apart."""
    peer, url = middle
    service, _ = kit(stack, url, ids=lambda: "erp-reused-id")
    find_person(service, "5GH3J7K")
    recorded = peer.answers[-1]
    peer.tamper = lambda request, answer: recorded
    with pytest.raises(AnswerRequestHashMismatch) as info:
        find_person(service, "6ZK4T2P")
    assert info.value.code == "Answer.RequestHash"


def test_verifying_without_the_gateway_identity_is_a_configuration_error(stack: Stack) -> None:
    with pytest.raises(ConfigurationError):
        SigningPlugin(stack.pki.signer("director"), client=XRoadMember("AZ", "COM", DEMO_VOEN),
                      verify_with=stack.pki.trust_store())


def test_identity_by_organization_identifier(test_pki: TestPki) -> None:
    """organizationIdentifier survives the gateway's certificate renewal; here two employers'
    certificates stand in for 'ours' and 'someone else's'."""
    ours = GatewayIdentity(organization_identifier="TINAZ-1403567891")
    ours.check(test_pki.identity("director").certificate)
    with pytest.raises(AnswerSignerMismatch):
        ours.check(test_pki.identity("director_b").certificate)
    with pytest.raises(ConfigurationError):
        GatewayIdentity()
