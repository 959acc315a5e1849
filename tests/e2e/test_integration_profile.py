"""The integration profile at the live gateway (docs/integration.md): what stock stacks send is
accepted, and nothing security-relevant rests on what they leave unsigned.

- X-Road headers may go unsigned (stock zeep and node-soap sign only Body and Timestamp): such a
  request is served, and its replay under another (unsigned) id is refused, because replay
  protection then keys on the signature value;
- a system certificate still needs a *signed* ``userId``;
- answers carry no ``mustUnderstand`` and the gateway's chain, also served at ``?certs``.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509
from lxml import etree

from gateway.services.ports import ApplicationQuery
from signing import ns
from signing.testpki import TestPki
from signing.wsse import sign_envelope
from simulators.runner import Simulators
from tests.e2e.conftest import (
    DEMO_VOEN,
    TNS,
    Stack,
    find_person_payload,
    make_settings,
    request_envelope,
    response_fault_code,
    serve_gateway,
)

SAVE_DRAFT = (
    f'<t:SaveDraft xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
    "<t:documentType>ID_CARD</t:documentType><t:fin>6TY2U8P</t:fin>"
    "<t:actualAddressDiffers>false</t:actualAddressDiffers></t:SaveDraft>"
)


@pytest.fixture(scope="module")
def profile_stack(tmp_path_factory: pytest.TempPathFactory, test_pki: TestPki,
                  simulators: Simulators) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("profile")
    gw = test_pki.identity("gateway_rsa")
    settings = make_settings(
        f"sqlite:///{tmp / 'gw.db'}", tmp, test_pki, simulators,
        signing_key_file=gw.key_path, signing_cert_file=gw.cert_path,
        signing_chain_files=tuple(gw.chain_paths),
    )
    with serve_gateway(settings, test_pki, simulators) as running:
        yield running


def drafts(stack: Stack) -> int:
    with stack.gateway.database.unit_of_work() as uow:
        return uow.applications.search(ApplicationQuery(insurer_voen=DEMO_VOEN)).total


def body_only_signed(stack: Stack, operation: str, payload: str, identity: str = "director",
                     **headers: str) -> etree._Element:
    """Signed the way stock zeep / node-soap sign: Body and Timestamp, no X-Road header."""
    envelope = request_envelope(operation, payload, message_id=str(uuid.uuid4()))
    for name, value in headers.items():
        etree.SubElement(envelope[0], ns.q(ns.XRD, name)).text = value
    return sign_envelope(envelope, stack.pki.signer(identity), sign_headers=[])


def post(stack: Stack, envelope: etree._Element) -> requests.Response:
    return stack.post(etree.tostring(envelope))


def test_unsigned_xroad_headers_are_accepted(profile_stack: Stack) -> None:
    before = drafts(profile_stack)
    response = post(profile_stack, body_only_signed(profile_stack, "SaveDraft", SAVE_DRAFT))
    assert response.status_code == 200, response.text[:400]
    assert drafts(profile_stack) == before + 1


def test_replay_under_another_unsigned_id_does_nothing_again(profile_stack: Stack) -> None:
    envelope = body_only_signed(profile_stack, "SaveDraft", SAVE_DRAFT)
    first = post(profile_stack, envelope)
    assert first.status_code == 200
    after_first = drafts(profile_stack)
    # The very same bytes: an idempotent retry, the stored signed answer.
    again = post(profile_stack, envelope)
    assert again.status_code == 200 and again.content == first.content
    # Same signature, the unsigned X-Road id changed: replay protection keys on the signature
    # (the id is not signed), so this is the same request again: its stored answer, nothing
    # written a second time.
    message_id = envelope.find(f"{ns.SOAP_HEADER}/{ns.q(ns.XRD, 'id')}")
    assert message_id is not None
    message_id.text = str(uuid.uuid4())
    replay = post(profile_stack, envelope)
    assert replay.status_code == 200 and replay.content == first.content
    assert drafts(profile_stack) == after_first
    # ... and with another unsigned header changed as well it is not the same request: refused.
    client = envelope.find(f"{ns.SOAP_HEADER}/{ns.q(ns.XRD, 'client')}")
    assert client is not None
    client.set("changed", "1")
    refused = post(profile_stack, envelope)
    assert refused.status_code == 500
    assert response_fault_code(refused) == "Client.Signature.Replay"
    assert drafts(profile_stack) == after_first


def test_system_certificate_needs_a_signed_user_id(profile_stack: Stack) -> None:
    """userId names the person a system certificate acts for: unsigned, it is refused."""
    unsigned = body_only_signed(profile_stack, "FindPerson", find_person_payload("5GH3J7K"),
                                identity="system", userId="AZ6ZK4T2P")
    response = post(profile_stack, unsigned)
    assert response_fault_code(response) == "Client.Signature.Wrapping"
    signed = sign_envelope(
        request_envelope("FindPerson", find_person_payload("5GH3J7K"),
                         message_id=str(uuid.uuid4())),
        profile_stack.pki.signer("system"), sign_headers=[],
    )
    # Without a userId at all, the system certificate has no person to act for.
    response = post(profile_stack, signed)
    assert response_fault_code(response) == "Client.Header.UserId"


def test_answers_have_no_must_understand(profile_stack: Stack) -> None:
    ok = post(profile_stack, body_only_signed(profile_stack, "FindPerson",
                                              find_person_payload("5GH3J7K")))
    fault = post(profile_stack, body_only_signed(profile_stack, "FindPerson",
                                                 find_person_payload("0NF7ND0", doc="BAD")))
    for response in (ok, fault):
        security = etree.fromstring(response.content).find(f".//{ns.WSSE_SECURITY}")
        assert security is not None
        assert security.get(ns.SOAP_MUST_UNDERSTAND) is None


def test_certs_serves_the_answer_key_and_its_chain(profile_stack: Stack, test_pki: TestPki) -> None:
    response = requests.get(f"{profile_stack.url}?certs", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pem-certificate-chain"
    chain = x509.load_pem_x509_certificates(response.content)
    gw = test_pki.identity("gateway_rsa")
    assert chain[0] == gw.certificate
    assert chain[1:] == [c for p in gw.chain_paths for c in x509.load_pem_x509_certificates(
        p.read_bytes())]
    # The answer carries the same chain (less the self-signed root) as tokens.
    answer = post(profile_stack, body_only_signed(profile_stack, "FindPerson",
                                                  find_person_payload("5GH3J7K")))
    tokens = [x509.load_der_x509_certificate(base64.b64decode(t.text or ""))
              for t in etree.fromstring(answer.content).iter(ns.WSSE_BST)]
    assert tokens == [c for c in chain if c.subject != c.issuer]
