"""The mobile-signature client against the real Asan İmza simulator: every scripted phone."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from gateway.domain.errors import InternalError, UpstreamFault, UpstreamUnavailable
from gateway.services.ports import (
    MobileOutstanding,
    MobileRefused,
    MobileSignatureService,
    MobileSigned,
    MobileStatus,
)
from gateway.upstream.errors import MobileSignatureRefused
from gateway.upstream.mobile import ETSI_STATUS_NAMES, ZeepMobileSignatureService
from gateway.wsgi_server import RunningServer, WsgiApp
from signing.testpki import TestPki
from simulators.mobile import (
    SCRIPTS,
    EtsiStatus,
    MobileSignatureSimulator,
    create_mobile_app,
)
from simulators.runner import Simulators

from .conftest import AP_ID, APPROVE_DELAY, MOBILE_WSDL, TRANSACTION_TIMEOUT, WSDL_DIR

DATA = b"<ds:SignedInfo>...</ds:SignedInfo>"
DIGEST = hashlib.sha256(DATA).digest()
POLL_INTERVAL = 0.05

Serve = Callable[[WsgiApp], RunningServer]


def poll(
    service: MobileSignatureService, transaction_id: str, *, max_seconds: float
) -> tuple[MobileStatus, int]:
    """Polls until the transaction is over; bounded in count and in time."""
    max_polls = int(max_seconds / POLL_INTERVAL) + 2
    deadline = time.monotonic() + max_seconds
    for count in range(1, max_polls + 1):
        status = service.status(transaction_id)
        if not isinstance(status, MobileOutstanding):
            return status, count
        assert time.monotonic() < deadline, "transaction still outstanding at the deadline"
        time.sleep(POLL_INTERVAL)
    raise AssertionError(f"still outstanding after {max_polls} polls")


def _serial_number(certificate: x509.Certificate) -> str:
    return str(certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value)


def test_the_client_implements_the_port(mobile: ZeepMobileSignatureService) -> None:
    service: MobileSignatureService = mobile
    assert callable(service.start) and callable(service.status)


@pytest.mark.parametrize(
    ("phone", "user_id", "identity", "fin"),
    [
        ("+994501234567", "100001", "asan", "4PD6W1S"),
        ("+994551234567", "100002", "asan_deputy", "8LV4N2X"),
    ],
)
def test_holder_approves_after_the_delay_and_the_signature_verifies(
    mobile: ZeepMobileSignatureService,
    pki: TestPki,
    phone: str,
    user_id: str,
    identity: str,
    fin: str,
) -> None:
    started = time.monotonic()
    transaction_id = mobile.start(phone, user_id, DIGEST, "DSMF: sığortaolunanın uçotu")
    # (That it is outstanding before the delay is checked on a fake clock below.)
    status, _ = poll(mobile, transaction_id, max_seconds=APPROVE_DELAY + 5.0)
    assert isinstance(status, MobileSigned)
    assert time.monotonic() - started >= APPROVE_DELAY

    certificate = x509.load_der_x509_certificate(status.certificate_der)
    assert certificate == pki.identities[identity].certificate
    assert _serial_number(certificate) == f"PNOAZ-{fin}"
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    # Over the hash that was sent ...
    public_key.verify(status.signature, DIGEST, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    # ... which is exactly an rsa-sha256 signature over the data itself (XML-DSig SignatureValue).
    public_key.verify(status.signature, DATA, padding.PKCS1v15(), hashes.SHA256())

    # Asking again gives the same answer.
    again = mobile.status(transaction_id)
    assert again == status


def test_user_cancel_after_the_delay(mobile: ZeepMobileSignatureService) -> None:
    started = time.monotonic()
    transaction_id = mobile.start("+994701111111", "100003", DIGEST, "x")
    status, _ = poll(mobile, transaction_id, max_seconds=APPROVE_DELAY + 5.0)
    assert time.monotonic() - started >= APPROVE_DELAY
    assert status == MobileRefused(reason="USER_CANCEL", etsi_code=401)


def test_unanswered_transaction_expires_after_the_timeout(
    mobile: ZeepMobileSignatureService,
) -> None:
    started = time.monotonic()
    transaction_id = mobile.start("+994702222222", "100004", DIGEST, "x")
    status, _ = poll(mobile, transaction_id, max_seconds=TRANSACTION_TIMEOUT + 5.0)
    assert status == MobileRefused(reason="EXPIRED_TRANSACTION", etsi_code=208)
    assert time.monotonic() - started >= TRANSACTION_TIMEOUT


def test_pin_blocked(mobile: ZeepMobileSignatureService) -> None:
    transaction_id = mobile.start("+994704444444", "100006", DIGEST, "x")
    status, _ = poll(mobile, transaction_id, max_seconds=APPROVE_DELAY + 5.0)
    assert status == MobileRefused(reason="PIN_BLOCKED", etsi_code=402)


def test_not_an_asan_user_is_refused_at_once(mobile: ZeepMobileSignatureService) -> None:
    with pytest.raises(MobileSignatureRefused) as caught:
        mobile.start("+994703333333", "123456", DIGEST, "x")
    assert (caught.value.reason, caught.value.etsi_code) == ("NO_CERT_FOUND", 422)
    assert caught.value.code == "Client.Mobile.NoCertFound"


def test_signature_over_different_data_does_not_verify(
    mobile: ZeepMobileSignatureService,
) -> None:
    transaction_id = mobile.start("+994705555555", "100007", DIGEST, "x")
    status, _ = poll(mobile, transaction_id, max_seconds=APPROVE_DELAY + 5.0)
    assert isinstance(status, MobileSigned)
    public_key = x509.load_der_x509_certificate(status.certificate_der).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    with pytest.raises(InvalidSignature):
        public_key.verify(status.signature, DIGEST, padding.PKCS1v15(), Prehashed(hashes.SHA256()))


@pytest.mark.parametrize(
    ("phone", "user_id"),
    [
        ("+994501234567", "100002"),  # a known number with another holder's user id
        ("+994509999999", "100001"),  # a number the MSSP does not know
    ],
)
def test_unknown_client(mobile: ZeepMobileSignatureService, phone: str, user_id: str) -> None:
    with pytest.raises(MobileSignatureRefused) as caught:
        mobile.start(phone, user_id, DIGEST, "x")
    assert (caught.value.reason, caught.value.etsi_code) == ("UNKNOWN_CLIENT", 105)
    assert caught.value.code == "Client.Mobile.UnknownClient"


def test_malformed_number_is_wrong_param(mobile: ZeepMobileSignatureService) -> None:
    with pytest.raises(MobileSignatureRefused) as caught:
        mobile.start("0501234567", "100001", DIGEST, "x")
    assert caught.value.etsi_code == 101


def test_digest_must_be_sha256(mobile: ZeepMobileSignatureService) -> None:
    with pytest.raises(InternalError):
        mobile.start("+994501234567", "100001", b"short", "x")


def test_unknown_transaction_is_refused_as_wrong_param(
    mobile: ZeepMobileSignatureService,
) -> None:
    assert mobile.status("MSSPdoesnotexist") == MobileRefused("WRONG_PARAM", 101)


def test_the_simulator_signs_only_what_it_was_sent(
    mobile: ZeepMobileSignatureService, simulators: Simulators
) -> None:
    other = hashlib.sha256(b"another document").digest()
    first = mobile.start("+994501234567", "100001", DIGEST, "x")
    second = mobile.start("+994501234567", "100001", other, "x")
    one, _ = poll(mobile, first, max_seconds=APPROVE_DELAY + 5.0)
    two, _ = poll(mobile, second, max_seconds=APPROVE_DELAY + 5.0)
    assert isinstance(one, MobileSigned) and isinstance(two, MobileSigned)
    key = x509.load_der_x509_certificate(two.certificate_der).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(two.signature, other, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    assert one.signature != two.signature


def test_mobile_service_down_is_unavailable(dead_url: str) -> None:
    service = ZeepMobileSignatureService(MOBILE_WSDL, dead_url, ap_id=AP_ID, timeout=1.0)
    with pytest.raises(UpstreamUnavailable):
        service.start("+994501234567", "100001", DIGEST, "x")
    with pytest.raises(UpstreamUnavailable):
        service.status("MSSPanything")


def test_the_scripted_phone_table_is_consistent() -> None:
    numbers = [s.msisdn for s in SCRIPTS]
    assert len(numbers) == len(set(numbers))
    assert all(n.startswith("+994") and len(n) == 13 for n in numbers)
    # The client's table of ETSI names agrees with the simulator's codes.
    for status in EtsiStatus:
        assert ETSI_STATUS_NAMES[status.value] == status.name


# -- a private simulator instance: AP registration, eviction, a fake clock ---------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _private(
    serve: Serve, pki: TestPki, **options: Any
) -> tuple[ZeepMobileSignatureService, FakeClock]:
    clock = FakeClock()
    mssp = MobileSignatureSimulator.from_test_pki(pki.directory, clock=clock, **options)
    server = serve(create_mobile_app(WSDL_DIR, mssp))
    url = server.url.rstrip("/") + "/mobile-signature"
    return ZeepMobileSignatureService(MOBILE_WSDL, url, ap_id=AP_ID, timeout=2.0), clock


def test_expiry_and_approval_follow_the_simulator_clock(serve: Serve, pki: TestPki) -> None:
    service, clock = _private(serve, pki, approve_delay=5.0, transaction_timeout=60.0)
    approving = service.start("+994501234567", "100001", DIGEST, "x")
    silent = service.start("+994702222222", "100004", DIGEST, "x")
    cancelling = service.start("+994701111111", "100003", DIGEST, "x")
    clock.now += 4.9
    assert isinstance(service.status(approving), MobileOutstanding)
    assert isinstance(service.status(cancelling), MobileOutstanding)
    clock.now += 0.2
    assert isinstance(service.status(approving), MobileSigned)
    assert service.status(cancelling) == MobileRefused("USER_CANCEL", 401)
    assert isinstance(service.status(silent), MobileOutstanding)
    clock.now += 60.0
    assert service.status(silent) == MobileRefused("EXPIRED_TRANSACTION", 208)
    # A signed transaction stays signed.
    assert isinstance(service.status(approving), MobileSigned)


def test_an_unregistered_application_provider_is_a_service_fault(
    serve: Serve, pki: TestPki
) -> None:
    service, _ = _private(serve, pki, ap_ids={"SOMEONE-ELSE"})
    with pytest.raises(UpstreamFault):
        service.start("+994501234567", "100001", DIGEST, "x")


def test_old_transactions_are_evicted(serve: Serve, pki: TestPki) -> None:
    service, _ = _private(serve, pki, max_transactions=2)
    first = service.start("+994501234567", "100001", DIGEST, "x")
    second = service.start("+994501234567", "100001", DIGEST, "x")
    third = service.start("+994501234567", "100001", DIGEST, "x")
    assert service.status(first) == MobileRefused("WRONG_PARAM", 101)
    assert isinstance(service.status(second), MobileOutstanding)
    assert isinstance(service.status(third), MobileOutstanding)


def test_simulator_refuses_a_script_without_its_key() -> None:
    with pytest.raises(ValueError, match="asan"):
        MobileSignatureSimulator({}, scripts=SCRIPTS[:1])


def test_simulator_state_is_thread_safe_and_bounded(pki: TestPki) -> None:
    mssp = MobileSignatureSimulator.from_test_pki(pki.directory, max_transactions=150)
    ids: list[str] = []
    lock = threading.Lock()

    def open_many() -> None:
        for _ in range(50):
            transaction = mssp.start(
                ap_id=AP_ID, msisdn="+994501234567", user_id="100001", digest=DIGEST
            )
            with lock:
                ids.append(transaction.mssp_trans_id)

    threads = [threading.Thread(target=open_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(ids) == len(set(ids)) == 400
    assert len(mssp) == 150
