"""Trust against the running gateway: RFC 5280 CRL handling (base + delta, critical
extensions) and cheap refusals of fake-CA padding, each with its exact fault code and nothing
written.

The CRLs are real ones signed by the test PKI's issuing CA, given to the gateway through its
``crls`` setting, as an operator would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier
from zeep.exceptions import Fault

from gateway.wsgi_server import serve_in_thread
from signing.testpki import TestPki, write_crl
from simulators.ocsp import PATH as OCSP_PATH
from simulators.ocsp import OcspResponder
from simulators.runner import Simulators
from tests.e2e.conftest import OTHER_VOEN, Stack, fault_code, make_settings, serve_gateway
from tests.e2e.test_mobile import login, unsigned_client
from tests.e2e.test_security import applications_written, base_request, refused_with
from tests.signing import attacks
from tests.signing.attacks import Sender
from tests.signing.fake_cas import fake_ca_identity, fake_ca_request


@pytest.fixture
def gateway_with_crls(
    tmp_path: Path, test_pki: TestPki, simulators: Simulators
) -> Iterator[Stack]:
    # The PKI's own CRL (number 1) lists 'revoked' for key compromise; the issuing CA then
    # publishes an empty delta on top of it, as a CA does between two full CRLs.
    delta = write_crl(test_pki, tmp_path / "delta.crl", [], crl_number=2, delta_of=1)
    settings = make_settings(f"sqlite:///{tmp_path / 'gw.db'}", tmp_path, test_pki, simulators,
                             crls=(test_pki.crl_path, delta))
    with serve_gateway(settings, test_pki, simulators) as running:
        yield running


def test_empty_delta_crl_does_not_make_a_revoked_card_valid(gateway_with_crls: Stack) -> None:
    sender = Sender.from_identity(gateway_with_crls.pki.identity("revoked"))
    data = attacks.serialize(attacks.signed(sender, base=base_request))
    refused_with(gateway_with_crls, data, "Client.Certificate.Revoked")


def test_base_and_delta_accept_a_good_card(gateway_with_crls: Stack) -> None:
    sender = Sender.from_identity(gateway_with_crls.pki.identity("director"))
    response = gateway_with_crls.post(attacks.serialize(attacks.signed(sender,
                                                                       base=base_request)))
    assert response.status_code == 200, response.text[:300]
    assert applications_written(gateway_with_crls) == 1


def test_crl_with_unknown_critical_extension_is_refused(
    tmp_path: Path, test_pki: TestPki, simulators: Simulators
) -> None:
    unknown = x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.7"), b"\x05\x00")
    crl = write_crl(test_pki, tmp_path / "odd.crl", [], crl_number=5,
                    extensions=[(unknown, True)])
    settings = make_settings(f"sqlite:///{tmp_path / 'gw.db'}", tmp_path, test_pki, simulators,
                             crls=(crl,))
    with serve_gateway(settings, test_pki, simulators) as running:
        sender = Sender.from_identity(test_pki.identity("director"))
        data = attacks.serialize(attacks.signed(sender, base=base_request))
        refused_with(running, data, "Client.Certificate.RevocationUnusable")


def test_five_fake_ca_tokens_are_refused_cheaply(gateway_with_crls: Stack) -> None:
    """Five attacker-made P-521 "CA" tokens: refused by count, before any is decoded."""
    signer, fakes = fake_ca_identity(5)
    data = attacks.serialize(fake_ca_request(base_request, signer, fakes))
    refused_with(gateway_with_crls, data, "Client.Signature.TokenLimit")


def test_fake_ca_tokens_within_the_limit_are_untrusted(gateway_with_crls: Stack) -> None:
    signer, fakes = fake_ca_identity(3)
    data = attacks.serialize(fake_ca_request(base_request, signer, fakes))
    refused_with(gateway_with_crls, data, "Client.Certificate.Untrusted")
    # Again: the same refusal, now from the unknown-issuer cache.
    refused_with(gateway_with_crls, data, "Client.Certificate.Untrusted")


@pytest.fixture
def gateway_with_ocsp(
    tmp_path: Path, test_pki: TestPki, simulators: Simulators
) -> Iterator[tuple[Stack, OcspResponder]]:
    """OCSP as the only revocation source, against the responder simulator over HTTP."""
    responder = OcspResponder.from_test_pki(test_pki.directory)
    server = serve_in_thread(responder)
    try:
        settings = make_settings(
            f"sqlite:///{tmp_path / 'gw.db'}", tmp_path, test_pki, simulators, crls=(),
            revocation_sources=("ocsp",), ocsp_url=server.url.rstrip("/") + OCSP_PATH,
        )
        with serve_gateway(settings, test_pki, simulators) as running:
            yield running, responder
    finally:
        server.stop()


def test_ocsp_good_card_is_accepted(gateway_with_ocsp: tuple[Stack, OcspResponder]) -> None:
    stack, responder = gateway_with_ocsp
    sender = Sender.from_identity(stack.pki.identity("director"))
    response = stack.post(attacks.serialize(attacks.signed(sender, base=base_request)))
    assert response.status_code == 200, response.text[:300]
    assert responder.requests_served >= 1


def test_ocsp_revoked_card_is_refused(gateway_with_ocsp: tuple[Stack, OcspResponder]) -> None:
    stack, _ = gateway_with_ocsp
    sender = Sender.from_identity(stack.pki.identity("revoked"))
    data = attacks.serialize(attacks.signed(sender, base=base_request))
    refused_with(stack, data, "Client.Certificate.Revoked")


def test_ocsp_answer_from_an_unauthorised_responder_is_refused(
    gateway_with_ocsp: tuple[Stack, OcspResponder]
) -> None:
    stack, responder = gateway_with_ocsp
    responder.set_responder("unauthorised")
    sender = Sender.from_identity(stack.pki.identity("director"))
    data = attacks.serialize(attacks.signed(sender, base=base_request))
    refused_with(stack, data, "Client.Certificate.RevocationUnknown")


def test_session_ends_when_its_certificate_is_revoked(
    gateway_with_ocsp: tuple[Stack, OcspResponder],
) -> None:
    """An Asan İmza session is re-checked against revocation on every use (before: it lived
    its 30 minutes whatever happened to the certificate)."""
    stack, responder = gateway_with_ocsp
    responder.validity = timedelta(seconds=1)  # each OCSP answer holds one second
    _, done = login(stack)
    assert done.state == "DONE", done
    svc = unsigned_client(stack, token=done.sessionToken)
    svc.SearchApplications(voen=OTHER_VOEN)
    asan = stack.pki.identity("asan").certificate
    responder.revoked[asan.serial_number] = (datetime.now(UTC), x509.ReasonFlags.key_compromise)
    time.sleep(1.5)  # past the nextUpdate of the last GOOD answer (not a timing assertion)
    with pytest.raises(Fault) as info:
        svc.SearchApplications(voen=OTHER_VOEN)
    assert fault_code(info.value) == "Client.Certificate.Revoked"
    # The session is over for good, even were the revocation lifted.
    del responder.revoked[asan.serial_number]
    time.sleep(1.5)
    with pytest.raises(Fault) as again:
        svc.SaveDraft(voen=OTHER_VOEN, documentType="ID_CARD", fin="5GH3J7K",
                      actualAddressDiffers=False)
    assert fault_code(again.value) == "Client.NotAuthorized.SessionInvalid"
