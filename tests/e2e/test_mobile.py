"""Asan İmza end to end: zeep → gateway → zeep → the MSSP simulator's scripted phones.

Sign-in opens a session (a bearer token) that may read and keep drafts but never submit;
mobile signing of a draft registers the person and stores the signed application, which
verifies offline with xmlsec1; every refusal of the phone or of the gateway's checks leaves
the draft a draft with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import zeep
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from zeep.exceptions import Fault

from gateway.client.wsse import SigningPlugin, XRoadMember
from gateway.domain.model import REGISTRATION_ESERVICE, Authority, AuthorityType
from gateway.services.ports import MobileSigned, MobileStatus
from signing.testpki import TestPki
from simulators.runner import Simulators
from tests.conftest import missing_requirement
from tests.e2e.conftest import (
    DEMO_VOEN,
    OTHER_VOEN,
    Bodies,
    Stack,
    fault_code,
    make_settings,
    serve_gateway,
)

ASAN_PHONE, ASAN_USER = "+994501234567", "100001"  # "asan": seal holder of OTHER_VOEN
DEPUTY_PHONE, DEPUTY_USER = "+994551234567", "100002"  # "asan_deputy" of DEMO_VOEN, no seal
# Each poll sleeps a little; the simulator answers after 0.2 s and expires after 3 s.
POLL_INTERVAL = 0.1
POLL_DEADLINE = 8.0


def unsigned_client(stack: Stack, *, token: str | None = None,
                    voen: str = OTHER_VOEN) -> Any:
    """A portal-like client: X-Road headers, no signature, optionally a session token."""
    plugin = SigningPlugin(
        None, client=XRoadMember("AZ", "COM", voen, "portal"), session_token=token,
        verify_with=stack.pki.trust_store(), gateway=stack.gateway_identity,
    )
    return Bodies(zeep.Client(stack.wsdl, plugins=[plugin]).service)


def card_client(stack: Stack, identity: str = "director_b") -> Any:
    return Bodies(stack.client(identity, voen=OTHER_VOEN)[0].service)


def wait_for(svc: Any, transaction_id: str) -> Any:
    """Poll GetMobileSigningStatus until it is no longer OUTSTANDING (bounded)."""
    deadline = time.monotonic() + POLL_DEADLINE
    for _ in range(int(POLL_DEADLINE / POLL_INTERVAL) + 1):
        answer = svc.GetMobileSigningStatus(transactionId=transaction_id)
        if answer.state != "OUTSTANDING" or time.monotonic() > deadline:
            return answer
        time.sleep(POLL_INTERVAL)
    return answer


def login(stack: Stack, phone: str = ASAN_PHONE, user_id: str = ASAN_USER,
          voen: str | None = OTHER_VOEN) -> Any:
    svc = unsigned_client(stack)
    started = svc.StartMobileLogin(phone=phone, userId=user_id, voen=voen)
    assert len(started.verificationCode) == 4 and started.verificationCode.isdigit()
    return started, wait_for(svc, started.transactionId)


def save_draft(svc: Any, fin: str, voen: str = OTHER_VOEN) -> str:
    saved = svc.SaveDraft(voen=voen, documentType="ID_CARD", fin=fin, actualAddressDiffers=False)
    assert saved.status == "DRAFT"
    return str(saved.applicationId)


def test_login_opens_a_session_that_reads_and_keeps_drafts_but_cannot_submit(
    stack: Stack,
) -> None:
    started, done = login(stack)
    assert done.state == "DONE" and done.reason is None
    token = done.sessionToken
    assert token and done.sessionExpiresAt is not None
    # The token is handed out once.
    again = unsigned_client(stack).GetMobileSigningStatus(transactionId=started.transactionId)
    assert again.state == "DONE" and again.sessionToken is None

    svc = unsigned_client(stack, token=token)
    page = svc.SearchApplications(voen=OTHER_VOEN)
    assert page is not None
    app_id = save_draft(svc, "5GH3J7K")
    assert svc.GetApplication(voen=OTHER_VOEN, applicationId=app_id).application.summary.status \
        == "DRAFT"
    with pytest.raises(Fault) as refused:
        svc.SubmitRegistration(voen=OTHER_VOEN, applicationId=app_id)
    assert fault_code(refused.value) == "Client.Signature.Missing"
    with pytest.raises(Fault) as refused:
        svc.ConfirmDraft(voen=OTHER_VOEN, applicationId=app_id)
    assert fault_code(refused.value) == "Client.Signature.Missing"
    # The session acts only where its holder may: not for another insurer.
    with pytest.raises(Fault) as refused:
        svc.SearchApplications(voen=DEMO_VOEN)
    assert fault_code(refused.value).startswith("Client.NotAuthorized")

    stranger = unsigned_client(stack, token="x" * 43)
    with pytest.raises(Fault) as refused:
        stranger.SearchApplications(voen=OTHER_VOEN)
    assert fault_code(refused.value) == "Client.NotAuthorized.SessionInvalid"
    # Without a session or a signature nothing is read.
    with pytest.raises(Fault) as refused:
        unsigned_client(stack).SearchApplications(voen=OTHER_VOEN)
    assert fault_code(refused.value) == "Client.Signature.Missing"


def test_login_for_an_insurer_without_authority_is_refused(stack: Stack) -> None:
    _, done = login(stack, voen=DEMO_VOEN)
    assert (done.state, done.reason, done.sessionToken) == ("REFUSED", "NOT_AUTHORIZED", None)


def test_mobile_signing_registers_the_draft_and_stores_a_verifiable_document(
    stack: Stack, tmp_path: Path,
) -> None:
    _, done = login(stack)
    svc = unsigned_client(stack, token=done.sessionToken)
    app_id = save_draft(svc, "6TY2U8P")

    started = svc.StartMobileSigning(voen=OTHER_VOEN, applicationId=app_id, phone=ASAN_PHONE,
                                     userId=ASAN_USER)
    answer = wait_for(svc, started.transactionId)
    assert answer.state == "DONE", answer
    assert answer.result.applicationId == app_id
    assert answer.result.status == "REGISTERED" and answer.result.ssn

    card = card_client(stack)
    detail = card.GetApplication(voen=OTHER_VOEN, applicationId=app_id)
    assert detail.application.summary.status == "REGISTERED"
    assert detail.application.summary.ssn == answer.result.ssn

    mobile = stack.gateway.services.mobile
    assert mobile is not None
    signed = mobile.signed_document(started.transactionId)
    assert signed is not None and app_id.encode() in signed
    document = tmp_path / "signed-application.xml"
    document.write_bytes(signed)
    xmlsec1 = shutil.which("xmlsec1")
    if xmlsec1 is None:
        missing_requirement("xmlsec1 is not installed")
    root, issuing = stack.pki.trust_anchor_paths[:2]
    result = subprocess.run(
        [xmlsec1, "--verify", "--trusted-pem", str(root), "--untrusted-pem", str(issuing),
         str(document)],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr
    # A signing transaction is over: polling again gives the same result.
    again = svc.GetMobileSigningStatus(transactionId=started.transactionId)
    assert again.state == "DONE" and again.result.ssn == answer.result.ssn


@pytest.mark.parametrize(("phone", "user_id", "reason"), [
    ("+994701111111", "100003", "USER_CANCEL"),
    ("+994702222222", "100004", "EXPIRED_TRANSACTION"),
    ("+994703333333", "100005", "NO_CERT_FOUND"),
    ("+994704444444", "100006", "PIN_BLOCKED"),
    ("+994705555555", "100007", "SIGNATURE_MISMATCH"),
])
def test_refused_signing_keeps_the_draft_with_the_reason(
    stack: Stack, phone: str, user_id: str, reason: str,
) -> None:
    card = card_client(stack)
    app_id = save_draft(card, "7MX2C9R")

    svc = unsigned_client(stack)
    started = card.StartMobileSigning(voen=OTHER_VOEN, applicationId=app_id, phone=phone,
                                      userId=user_id)
    answer = wait_for(svc, started.transactionId)
    assert (answer.state, answer.reason) == ("REFUSED", reason)
    assert answer.result is None

    detail = card.GetApplication(voen=OTHER_VOEN, applicationId=app_id)
    assert detail.application.summary.status == "DRAFT"
    assert reason in (detail.application.draftReason or "")
    # The failure's history entry names who asked for the signature (director_b).
    failed = detail.history[-1]
    assert reason in (failed.note or "")
    assert failed.actorFin == stack.pki.identity("director_b").fin


def test_signing_only_a_draft_of_that_insurer(stack: Stack) -> None:
    card = card_client(stack)
    with pytest.raises(Fault) as refused:
        card.StartMobileSigning(voen=OTHER_VOEN, applicationId="no-such-draft",
                                phone=ASAN_PHONE, userId=ASAN_USER)
    assert fault_code(refused.value) == "Client.NotFound.Application"
    app_id = save_draft(card, "6TY2U8P")
    with pytest.raises(Fault) as refused:  # director_b may not act for DEMO_VOEN at all
        card.StartMobileSigning(voen=DEMO_VOEN, applicationId=app_id, phone=ASAN_PHONE,
                                userId=ASAN_USER)
    assert fault_code(refused.value) == "Client.NotAuthorized.OtherInsurer"


def test_starting_a_signing_needs_an_authenticated_caller(stack: Stack) -> None:
    """Knowing an application id is not enough to push it to a phone (or to learn about it)."""
    card = card_client(stack)
    app_id = save_draft(card, "6TY2U8P")
    with pytest.raises(Fault) as refused:
        unsigned_client(stack).StartMobileSigning(
            voen=OTHER_VOEN, applicationId=app_id, phone=ASAN_PHONE, userId=ASAN_USER)
    assert fault_code(refused.value) == "Client.Signature.Missing"
    # A session signs only with its own phone.
    _, done = login(stack)
    with pytest.raises(Fault) as refused:
        unsigned_client(stack, token=done.sessionToken).StartMobileSigning(
            voen=OTHER_VOEN, applicationId=app_id, phone="+994701111111", userId="100003")
    assert fault_code(refused.value) == "Client.NotAuthorized.WrongCredential"
    detail = card.GetApplication(voen=OTHER_VOEN, applicationId=app_id)
    assert detail.application.draftReason is None
    assert [h.status for h in detail.history] == ["DRAFT"]


def test_a_draft_changed_while_the_phone_is_asked_is_not_registered(stack: Stack) -> None:
    """What is registered is what the phone signed, never a later edit of the draft."""
    _, done = login(stack)
    svc = unsigned_client(stack, token=done.sessionToken)
    app_id = save_draft(svc, "6TY2U8P")
    started = svc.StartMobileSigning(voen=OTHER_VOEN, applicationId=app_id, phone=ASAN_PHONE,
                                     userId=ASAN_USER)
    # The simulator's phone answers after 0.2 s; the draft is swapped before anyone polls.
    svc.SaveDraft(voen=OTHER_VOEN, applicationId=app_id, documentType="ID_CARD",
                  fin="5GH3J7K", actualAddressDiffers=False)
    answer = wait_for(svc, started.transactionId)
    assert (answer.state, answer.reason) == ("REFUSED", "SIGNATURE_MISMATCH")
    detail = card_client(stack).GetApplication(voen=OTHER_VOEN, applicationId=app_id)
    assert detail.application.summary.status == "DRAFT"
    assert detail.application.summary.ssn is None
    assert (detail.application.draftReason or "").startswith("SIGNATURE_MISMATCH: ")
    assert "dəyişdirilib" in (detail.application.draftReason or "")  # Azerbaijani: "changed"


def test_start_refusals_the_caller_can_fix_are_faults(stack: Stack) -> None:
    svc = unsigned_client(stack)
    with pytest.raises(Fault) as refused:  # the user id does not belong to the number
        svc.StartMobileLogin(phone=ASAN_PHONE, userId="999999")
    assert fault_code(refused.value) == "Client.Mobile.UnknownClient"
    with pytest.raises(Fault) as refused:  # a landline cannot hold Asan İmza
        svc.StartMobileLogin(phone="+994124987654", userId=ASAN_USER)
    assert fault_code(refused.value) == "Client.Validation.Phone"
    with pytest.raises(Fault) as refused:
        svc.GetMobileSigningStatus(transactionId="no-such-transaction")
    assert fault_code(refused.value) == "Client.NotFound.Transaction"


@pytest.fixture
def short_session_stack(database_url: str, tmp_path: Path, test_pki: TestPki,
                        simulators: Simulators) -> Iterator[Stack]:
    settings = make_settings(database_url, tmp_path, test_pki, simulators,
                             session_ttl_seconds=1)
    with serve_gateway(settings, test_pki, simulators) as running:
        yield running


def test_an_expired_session_is_refused(short_session_stack: Stack) -> None:
    stack = short_session_stack
    _, done = login(stack)
    assert done.state == "DONE"
    svc = unsigned_client(stack, token=done.sessionToken)
    expires = done.sessionExpiresAt.timestamp()
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(Fault) as refused:
        svc.SearchApplications(voen=OTHER_VOEN)
    assert fault_code(refused.value) == "Client.NotAuthorized.SessionExpired"


def grant_asan_authority(stack: Stack) -> None:
    """The director of DEMO_VOEN has granted asan_deputy an Asan İmza authority (§2.2)."""
    with stack.gateway.database.unit_of_work() as uow:
        uow.authorities.add(Authority(
            authority_id=str(uuid.uuid4()), insurer_voen=DEMO_VOEN,
            eservice_code=REGISTRATION_ESERVICE, authority_type=AuthorityType.ASAN_IMZA,
            fin="8LV4N2X", surname="Bağırov", name="Tural", patronymic="Ağa oğlu",
            granted_at=datetime.now(UTC), granted_by_fin="6ZK4T2P",
            asan_phone=DEPUTY_PHONE, asan_user_id=DEPUTY_USER,
        ))
        uow.commit()


def test_a_delegate_needs_an_asan_authority_bound_to_the_phone(stack: Stack) -> None:
    _, refused = login(stack, DEPUTY_PHONE, DEPUTY_USER, voen=DEMO_VOEN)
    assert (refused.state, refused.reason) == ("REFUSED", "NOT_AUTHORIZED")

    grant_asan_authority(stack)
    _, done = login(stack, DEPUTY_PHONE, DEPUTY_USER, voen=DEMO_VOEN)
    assert done.state == "DONE" and done.sessionToken
    svc = unsigned_client(stack, token=done.sessionToken, voen=DEMO_VOEN)
    app_id = save_draft(svc, "5GH3J7K", voen=DEMO_VOEN)

    started = svc.StartMobileSigning(voen=DEMO_VOEN, applicationId=app_id, phone=DEPUTY_PHONE,
                                     userId=DEPUTY_USER)
    answer = wait_for(svc, started.transactionId)
    assert answer.state == "DONE" and answer.result.status == "REGISTERED"


class PhoneOf:
    """A mobile-signature service whose phone holds the key of a test-PKI identity."""

    def __init__(self, pki: TestPki, identity: str) -> None:
        issued = pki.identity(identity)
        key = serialization.load_pem_private_key(issued.key_path.read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self.key = key
        self.certificate = issued.certificate.public_bytes(serialization.Encoding.DER)
        self.digests: dict[str, bytes] = {}

    def start(self, phone: str, user_id: str, digest: bytes, display_text: str) -> str:
        transaction_id = f"T{len(self.digests)}"
        self.digests[transaction_id] = digest
        return transaction_id

    def status(self, transaction_id: str) -> MobileStatus:
        digest = self.digests[transaction_id]
        value = self.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        return MobileSigned(signature=value, certificate_der=self.certificate)


@pytest.mark.parametrize(("identity", "reason"), [
    ("revoked", "CERTIFICATE_REVOKED"),
    ("expired", "CERTIFICATE_EXPIRED"),
    ("foreign", "SIGNATURE_MISMATCH"),  # a valid value, but no path to the trust list
])
def test_a_signature_with_an_unusable_certificate_is_refused(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, identity: str, reason: str,
) -> None:
    card = card_client(stack)
    app_id = save_draft(card, "7MX2C9R")
    monkeypatch.setattr(stack.gateway.services.mobile, "mobile", PhoneOf(stack.pki, identity))

    svc = unsigned_client(stack)
    started = card.StartMobileSigning(voen=OTHER_VOEN, applicationId=app_id, phone=ASAN_PHONE,
                                     userId=ASAN_USER)
    answer = wait_for(svc, started.transactionId)
    assert (answer.state, answer.reason) == ("REFUSED", reason)
    detail = card.GetApplication(voen=OTHER_VOEN, applicationId=app_id)
    assert detail.application.summary.status == "DRAFT"
    assert reason in (detail.application.draftReason or "")
    # The failure's history entry names who asked for the signature (director_b).
    failed = detail.history[-1]
    assert reason in (failed.note or "")
    assert failed.actorFin == stack.pki.identity("director_b").fin


def test_a_phone_cannot_be_flooded_with_requests(stack: Stack) -> None:
    """Requests that still wait on one phone are bounded (mobile_max_open_per_phone, 3)."""
    svc = unsigned_client(stack)
    # +994702222222 never answers, so its requests stay open until they expire.
    for _ in range(3):
        svc.StartMobileLogin(phone="+994702222222", userId="100004", voen=None)
    with pytest.raises(Fault) as refused:
        svc.StartMobileLogin(phone="+994702222222", userId="100004", voen=None)
    assert fault_code(refused.value) == "Client.Mobile.TooManyRequests"
    # Another phone is not affected.
    started = svc.StartMobileLogin(phone=ASAN_PHONE, userId=ASAN_USER, voen=OTHER_VOEN)
    assert started.transactionId


def test_session_requests_are_idempotent_and_protected_from_replay(stack: Stack) -> None:
    _, done = login(stack)
    plugin = SigningPlugin(
        None, client=XRoadMember("AZ", "COM", OTHER_VOEN, "portal"),
        session_token=done.sessionToken, verify_with=stack.pki.trust_store(),
        gateway=stack.gateway_identity,
        message_ids=lambda: "portal-fixed-id-1",
    )
    svc = Bodies(zeep.Client(stack.wsdl, plugins=[plugin]).service)
    first = save_draft(svc, "6TY2U8P")
    assert save_draft(svc, "6TY2U8P") == first  # the retry gets the stored answer
    with pytest.raises(Fault) as refused:  # the same id on another request
        save_draft(svc, "7MX2C9R")
    assert fault_code(refused.value) == "Client.Signature.Replay"
    card = card_client(stack)
    found = card.SearchApplications(voen=OTHER_VOEN, fin="6TY2U8P")
    assert found.total == 1
