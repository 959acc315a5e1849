"""Remote (mobile) signing: Asan İmza-style services in the manner of ETSI TS 102 204.

The holder has no card: the gateway sends the **digest** to the mobile-signature service, which
asks the phone; meanwhile the holder is shown a 4-digit **verification code** (the same code
appears on the phone, so the holder knows they approve *this* request); the gateway polls until
the service answers with the signature value and the holder's certificate, or a refusal. The
transport (SOAP via zeep) lives in ``gateway/upstream``; this module holds the contract, the
verification code and the checks on what comes back.

What is signed: for XML-DSig the data to be signed is the exclusive-C14N serialisation of
``ds:SignedInfo``; the digest sent is its hash under the signature method's hash (SHA-256 for
``rsa-sha256`` / ``ecdsa-sha256``); the value returned is what goes into ``ds:SignatureValue``
(PKCS#1 v1.5 or PSS for RSA, raw ``r || s`` for ECDSA).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from signing.algorithms import KeyAlgorithm, SignatureMethod, ecdsa_raw_to_der
from signing.errors import ConfigurationError, RemoteSignerRefused, SignatureCreationError


class RemoteState(StrEnum):
    OUTSTANDING = "outstanding"
    SIGNED = "signed"
    REFUSED = "refused"


class RefusalReason(StrEnum):
    """Why a remote signature did not happen (ETSI TS 102 204 / Mobile-ID status names)."""

    USER_CANCELLED = "USER_CANCELLED"  # the holder pressed Cancel
    EXPIRED = "EXPIRED_TRANSACTION"  # no answer within the service's time limit
    NOT_A_CLIENT = "NOT_MID_CLIENT"  # no active mobile signature for this phone/person
    PHONE_ABSENT = "PHONE_ABSENT"  # phone unreachable
    DELIVERY_ERROR = "DELIVERY_ERROR"  # the request could not be delivered to the SIM
    SIM_ERROR = "SIM_ERROR"  # the SIM applet failed
    PIN_BLOCKED = "PIN_BLOCKED"  # the signing PIN on the SIM is blocked
    SIGNATURE_HASH_MISMATCH = "SIGNATURE_HASH_MISMATCH"  # returned signature is not over ours
    INTERNAL_ERROR = "INTERNAL_ERROR"  # the service failed


@dataclass(frozen=True)
class RemoteTransaction:
    """A started remote signing: poll with ``transaction_id``; show ``verification_code``."""

    transaction_id: str
    verification_code: str


@dataclass(frozen=True)
class RemoteStatus:
    """One answer of :meth:`RemoteSigner.poll`. Build with the class methods."""

    state: RemoteState
    signature: bytes | None = None
    certificate: x509.Certificate | None = None
    reason: RefusalReason | None = None

    def __post_init__(self) -> None:
        signed = self.signature is not None and self.certificate is not None
        if (self.state is RemoteState.SIGNED) != signed:
            raise ConfigurationError("a SIGNED status carries a signature and a certificate")
        if (self.state is RemoteState.REFUSED) != (self.reason is not None):
            raise ConfigurationError("a REFUSED status (and only it) carries a reason")

    @classmethod
    def outstanding(cls) -> RemoteStatus:
        return cls(RemoteState.OUTSTANDING)

    @classmethod
    def signed(cls, signature: bytes, certificate: x509.Certificate) -> RemoteStatus:
        return cls(RemoteState.SIGNED, signature=signature, certificate=certificate)

    @classmethod
    def refused(cls, reason: RefusalReason) -> RemoteStatus:
        return cls(RemoteState.REFUSED, reason=RefusalReason(reason))


@runtime_checkable
class RemoteSigner(Protocol):
    """An asynchronous signer: the signature arrives minutes later, if at all."""

    def start(
        self, digest: bytes, method: SignatureMethod, display_text: str
    ) -> RemoteTransaction:
        """Ask the holder to sign ``digest`` (already hashed with ``method``'s hash);
        ``display_text`` is shown on the phone."""
        ...

    def poll(self, transaction_id: str) -> RemoteStatus:
        """The current state of a transaction (never blocks for long)."""
        ...


_DIGEST_SIZES = (32, 48, 64)


def verification_code(digest: bytes) -> str:
    """The Mobile-ID verification code of ``digest``: 4 decimal digits, zero-padded.

    ``digest`` is the hash sent to the service for signing -- the SHA-256 (or the signature
    method's hash) of the data to be signed, i.e. of the C14N bytes of ``ds:SignedInfo``. The
    code is computed over those digest bytes themselves (not over a hash of them, which is
    Smart-ID's different scheme): the 6 most significant bits of the first byte followed by the
    7 least significant bits of the last byte, ``((h[0] & 0xFC) << 5) | (h[-1] & 0x7F)`` -- a
    number in 0..8191. Matches SK ID Solutions' published example
    (``2f665f6a…59d8cb6`` → ``1462``).
    """
    if len(digest) not in _DIGEST_SIZES:
        raise ConfigurationError(
            f"a {len(digest)}-byte value is no SHA-256/384/512 digest; pass the hash, not data"
        )
    return f"{((digest[0] & 0xFC) << 5) | (digest[-1] & 0x7F):04d}"


def digest_for(data: bytes, method: SignatureMethod) -> bytes:
    """The digest to send for ``data`` (e.g. C14N SignedInfo) under ``method``."""
    h = hashes.Hash(method.hash_algorithm())
    h.update(data)
    return h.finalize()


def check_remote_signature(
    digest: bytes, method: SignatureMethod, signature: bytes, certificate: x509.Certificate
) -> None:
    """Verify that a remote service's answer is a signature over *our* digest by *that*
    certificate's key, before it goes into a message. Raises SignatureCreationError."""
    method = SignatureMethod(method)
    public = certificate.public_key()
    prehashed = Prehashed(method.hash_algorithm())
    try:
        if method.key_algorithm is KeyAlgorithm.RSA:
            if not isinstance(public, rsa.RSAPublicKey):
                raise SignatureCreationError(f"{method.name} answered with a non-RSA certificate")
            public.verify(signature, digest, method.rsa_padding(), prehashed)
        else:
            if not isinstance(public, ec.EllipticCurvePublicKey):
                raise SignatureCreationError(f"{method.name} answered with a non-EC certificate")
            public.verify(ecdsa_raw_to_der(signature), digest, ec.ECDSA(prehashed))
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureCreationError(
            "the remote signer returned a signature that does not verify over the digest sent"
        ) from exc


def wait_for_signature(
    remote: RemoteSigner,
    transaction: RemoteTransaction,
    *,
    timeout: float = 120.0,
    interval: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RemoteStatus:
    """Poll until SIGNED (returned) or REFUSED (:class:`~signing.errors.RemoteSignerRefused`);
    after ``timeout`` seconds, :class:`~signing.errors.SignatureCreationError`. Bounded: at most
    ``timeout / interval + 1`` polls. For tools and tests; the gateway lets its client poll."""
    if interval <= 0 or timeout < 0:
        raise ConfigurationError("interval must be positive and timeout non-negative")
    deadline = clock() + timeout
    for _ in range(int(timeout / interval) + 2):
        status = remote.poll(transaction.transaction_id)
        if status.state is RemoteState.SIGNED:
            return status
        if status.state is RemoteState.REFUSED:
            assert status.reason is not None
            raise RemoteSignerRefused(
                f"remote signing {transaction.transaction_id} refused: {status.reason.value}",
                reason=status.reason.value,
            )
        if clock() >= deadline:
            break
        sleep(interval)
    raise SignatureCreationError(
        f"remote signing {transaction.transaction_id} not answered within {timeout:g} s"
    )
