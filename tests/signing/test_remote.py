"""Remote (Asan İmza-style) signing contract: verification code, polling, answer checks."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from signing.algorithms import SignatureMethod, ecdsa_der_to_raw
from signing.errors import ConfigurationError, RemoteSignerRefused, SignatureCreationError
from signing.remote import (
    RefusalReason,
    RemoteSigner,
    RemoteState,
    RemoteStatus,
    RemoteTransaction,
    check_remote_signature,
    digest_for,
    verification_code,
    wait_for_signature,
)
from signing.testpki import TestPki

SIGNED_INFO = b'<ds:SignedInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">...</ds:SignedInfo>'


def test_verification_code_by_hand() -> None:
    # First byte 0x2f = 0010 1111 → its 6 high bits 001011; last byte 0xb6 = 1011 0110 → its
    # 7 low bits 0110110. Together 001011 0110110 = 1462 (SK ID Solutions' documented example).
    digest = bytes([0x2F]) + bytes(30) + bytes([0xB6])
    assert verification_code(digest) == "1462"
    assert verification_code(bytes(32)) == "0000"  # zero-padded to 4 digits
    # 0x04 → high six bits 000001; 0x05 → low seven 0000101: (1 << 7) | 5 = 133
    assert verification_code(bytes([0x04]) + bytes(30) + bytes([0x05])) == "0133"
    assert verification_code(b"\xff" * 64) == "8191"


@pytest.mark.parametrize(
    ("digest", "code"),
    [  # SK ID Solutions' mid-rest-java-client test vectors
        (hashlib.sha256(b"HACKERMAN_SHA256").digest(), "6008"),
        (hashlib.sha384(b"HACKERMAN_SHA384").digest(), "7230"),
        (hashlib.sha512(b"HACKERMAN_SHA512").digest(), "3843"),
    ],
)
def test_verification_code_vectors(digest: bytes, code: str) -> None:
    assert verification_code(digest) == code


def test_verification_code_wants_a_digest() -> None:
    with pytest.raises(ConfigurationError):
        verification_code(SIGNED_INFO)  # the data, not its hash
    with pytest.raises(ConfigurationError):
        verification_code(hashlib.sha1(b"x").digest())  # noqa: S324


def test_digest_for_uses_the_method_hash() -> None:
    assert digest_for(SIGNED_INFO, SignatureMethod.RSA_SHA256) == hashlib.sha256(
        SIGNED_INFO
    ).digest()
    assert len(digest_for(SIGNED_INFO, SignatureMethod.ECDSA_SHA512)) == 64


class PhoneService:
    """A mobile-signature service in miniature: the phone approves after ``delay`` polls, or
    refuses with ``refuse``. Signs the digest it receives with the holder's key."""

    def __init__(self, pki: TestPki, holder: str, *, delay: int = 2,
                 refuse: RefusalReason | None = None) -> None:
        issued = pki.identities[holder]
        key = serialization.load_pem_private_key(issued.key_path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        self.key = key
        self.certificate: x509.Certificate = issued.certificate
        self.delay = delay
        self.refuse = refuse
        self.polls = 0
        self._ids = itertools.count(1)
        self._pending: dict[str, tuple[bytes, SignatureMethod]] = {}

    def start(self, digest: bytes, method: SignatureMethod, display_text: str) -> RemoteTransaction:
        assert display_text
        transaction_id = f"tx-{next(self._ids)}"
        self._pending[transaction_id] = (digest, method)
        return RemoteTransaction(transaction_id, verification_code(digest))

    def poll(self, transaction_id: str) -> RemoteStatus:
        self.polls += 1
        if self.polls <= self.delay:
            return RemoteStatus.outstanding()
        if self.refuse is not None:
            return RemoteStatus.refused(self.refuse)
        digest, method = self._pending[transaction_id]
        prehashed = Prehashed(method.hash_algorithm())
        if isinstance(self.key, rsa.RSAPrivateKey):
            value = self.key.sign(digest, method.rsa_padding(), prehashed)
        else:
            der = self.key.sign(digest, ec.ECDSA(prehashed))
            value = ecdsa_der_to_raw(der, self.key.curve.key_size)
        return RemoteStatus.signed(value, self.certificate)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("holder", "method"),
    [("asan", SignatureMethod.RSA_SHA256), ("asan_deputy", SignatureMethod.RSA_PSS_SHA256),
     ("gateway", SignatureMethod.ECDSA_SHA256)],
)
def test_start_poll_check(pki: TestPki, holder: str, method: SignatureMethod) -> None:
    service = PhoneService(pki, holder)
    assert isinstance(service, RemoteSigner)
    digest = digest_for(SIGNED_INFO, method)
    transaction = service.start(digest, method, "DSMF: sığortaolunanın qeydiyyatı")
    assert transaction.verification_code == verification_code(digest)
    clock = FakeClock()
    status = wait_for_signature(service, transaction, interval=1, sleep=clock.sleep, clock=clock)
    assert status.state is RemoteState.SIGNED and service.polls == 3
    assert status.signature is not None and status.certificate is not None
    check_remote_signature(digest, method, status.signature, status.certificate)


def test_answer_over_another_digest_is_refused(pki: TestPki) -> None:
    service = PhoneService(pki, "asan", delay=0)
    method = SignatureMethod.RSA_SHA256
    transaction = service.start(digest_for(b"something else", method), method, "x")
    status = service.poll(transaction.transaction_id)
    assert status.signature is not None and status.certificate is not None
    with pytest.raises(SignatureCreationError):
        check_remote_signature(digest_for(SIGNED_INFO, method), method, status.signature,
                               status.certificate)
    with pytest.raises(SignatureCreationError):  # right digest, someone else's certificate
        check_remote_signature(digest_for(b"something else", method), method, status.signature,
                               pki.identities["asan_deputy"].certificate)


def test_refusal(pki: TestPki) -> None:
    service = PhoneService(pki, "asan", delay=1, refuse=RefusalReason.USER_CANCELLED)
    transaction = service.start(digest_for(SIGNED_INFO, SignatureMethod.RSA_SHA256),
                                SignatureMethod.RSA_SHA256, "x")
    clock = FakeClock()
    with pytest.raises(RemoteSignerRefused) as info:
        wait_for_signature(service, transaction, interval=1, sleep=clock.sleep, clock=clock)
    assert info.value.reason == "USER_CANCELLED"
    assert info.value.code == "Client.MobileSignature.Refused"


def test_timeout_is_bounded(pki: TestPki) -> None:
    service = PhoneService(pki, "asan", delay=10_000)
    transaction = service.start(digest_for(SIGNED_INFO, SignatureMethod.RSA_SHA256),
                                SignatureMethod.RSA_SHA256, "x")
    clock = FakeClock()
    with pytest.raises(SignatureCreationError, match="not answered"):
        wait_for_signature(service, transaction, timeout=10, interval=2, sleep=clock.sleep,
                           clock=clock)
    assert service.polls == 6  # at 0, 2, 4, 6, 8, 10 s
    frozen = PhoneService(pki, "asan", delay=10_000)  # a clock that never moves still stops
    with pytest.raises(SignatureCreationError):
        wait_for_signature(frozen, transaction, timeout=10, interval=2, sleep=lambda s: None,
                           clock=lambda: 0.0)
    assert frozen.polls == 7


def test_status_invariants(pki: TestPki) -> None:
    with pytest.raises(ConfigurationError):
        RemoteStatus(RemoteState.SIGNED)
    with pytest.raises(ConfigurationError):
        RemoteStatus(RemoteState.REFUSED)
    with pytest.raises(ConfigurationError):
        RemoteStatus(RemoteState.OUTSTANDING, reason=RefusalReason.EXPIRED)
    assert RemoteStatus.refused(RefusalReason.EXPIRED).reason == "EXPIRED_TRANSACTION"
