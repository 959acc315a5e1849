"""Revocation by OCSP (RFC 6960), a second source next to CRLs, as national CAs and X-Road use.

:class:`OcspRevocationChecker` is a :class:`signing.trust.RevocationChecker`: for each
certificate it asks the responder named in the certificate's authorityInfoAccess (or a
configured URL), and trusts the answer only when

1. the response is SUCCESSFUL and speaks of exactly this certificate (serial, issuer name hash
   and issuer key hash under the response's own hash algorithm);
2. it echoes the nonce we sent (RFC 8954) -- unless the operator allows nonce-less responses
   (pre-produced, RFC 5019 style); a response with a *different* nonce is refused always;
3. its signature verifies with the key of an **authorised responder**: the issuing CA itself,
   or a certificate issued directly by that CA carrying extendedKeyUsage id-kp-OCSPSigning and
   valid at the time the response was produced (RFC 6960 §4.2.2.2);
4. it is current: thisUpdate not in the future (beyond the clock skew), nextUpdate not past.

A usable answer is cached until its nextUpdate (bounded, LRU); an answer without nextUpdate is
used once and not cached. Anything else -- the responder down, slow, oversized, unsigned,
stale, for another certificate -- is an UNKNOWN answer with the reason, never an exception: the
next source, or the trust store's ``require_crl`` (soft fail only when an operator turns it off),
decides.

The HTTP exchange uses the standard library (``urllib``) with a timeout and a response size
bound: the signing package stays free of the gateway's HTTP stack.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from signing.errors import ConfigurationError
from signing.revocation import RevocationResult, RevocationStatus

log = logging.getLogger(__name__)

_CERT_ID_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
}


@dataclass(frozen=True)
class OcspConfig:
    """How to ask. ``url`` overrides the certificates' authorityInfoAccess (e.g. an internal
    mirror); without it, a certificate that names no responder gets UNKNOWN."""

    url: str | None = None
    timeout_seconds: float = 5.0
    #: Refuse answers that do not echo our nonce (pre-produced responses). A wrong nonce is
    #: refused whatever this says.
    require_nonce: bool = True
    #: Hash of the CertID (RFC 5019 responders often know only SHA-1 here).
    cert_id_hash: str = "sha1"
    clock_skew_seconds: int = 60
    max_response_bytes: int = 65_536
    cache_max_entries: int = 10_000

    def __post_init__(self) -> None:
        if self.cert_id_hash not in _CERT_ID_HASHES:
            raise ConfigurationError(f"cert_id_hash must be one of {', '.join(_CERT_ID_HASHES)}")
        if self.timeout_seconds <= 0 or self.clock_skew_seconds < 0:
            raise ConfigurationError("OCSP timeout must be > 0 and clock skew ≥ 0")
        if self.max_response_bytes < 512 or self.cache_max_entries < 0:
            raise ConfigurationError("max_response_bytes ≥ 512 and cache_max_entries ≥ 0")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ConfigurationError("the OCSP URL must be http:// or https://")


#: (request URL, DER request) → DER response; raises OSError on transport failure.
Transport = Callable[[str, bytes, float, int], bytes]


def http_post(url: str, request: bytes, timeout: float, limit: int) -> bytes:
    """POST an OCSP request (RFC 6960 Appendix A.1) and read at most ``limit`` bytes."""
    req = urllib.request.Request(
        url, data=request, method="POST",
        headers={"Content-Type": "application/ocsp-request",
                 "Accept": "application/ocsp-response"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as answer:
        if answer.status != 200:
            raise OSError(f"HTTP {answer.status}")
        data: bytes = answer.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"the response is larger than {limit} bytes")
    return data


class OcspRevocationChecker:
    """Asks OCSP responders; see the module documentation for what is checked. Thread-safe."""

    def __init__(
        self,
        config: OcspConfig | None = None,
        *,
        transport: Transport = http_post,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._config = config or OcspConfig()
        self._transport = transport
        self._clock = clock
        self._hash = _CERT_ID_HASHES[self._config.cert_id_hash]
        self._cache: OrderedDict[tuple[bytes, int], RevocationResult] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def config(self) -> OcspConfig:
        return self._config

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, at: datetime
    ) -> RevocationResult:
        url = self._config.url or _responder_url(certificate)
        source = f"ocsp:{url or 'no responder'}"
        if url is None:
            return RevocationResult(RevocationStatus.UNKNOWN, source,
                                    detail="the certificate names no OCSP responder")
        key = (hashlib.sha256(issuer.public_bytes(serialization.Encoding.DER)).digest(),
               certificate.serial_number)
        cached = self._cached(key, at)
        if cached is not None:
            return cached
        try:
            result = self._ask(url, source, certificate, issuer, at)
        except _Unusable as exc:
            log.warning("OCSP answer from %s not used: %s", url, exc)
            return RevocationResult(RevocationStatus.UNKNOWN, source, detail=str(exc))
        if result.valid_until is not None and self._config.cache_max_entries > 0:
            with self._lock:
                self._cache[key] = result
                self._cache.move_to_end(key)
                while len(self._cache) > self._config.cache_max_entries:
                    self._cache.popitem(last=False)
        return result

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def _cached(self, key: tuple[bytes, int], at: datetime) -> RevocationResult | None:
        with self._lock:
            result = self._cache.get(key)
            if result is None:
                return None
            assert result.valid_from is not None and result.valid_until is not None
            if result.valid_until < self._clock():
                del self._cache[key]  # past its nextUpdate: ask again
                return None
            if not result.valid_from <= at <= result.valid_until:
                return None
            self._cache.move_to_end(key)
            return result

    def _ask(
        self, url: str, source: str, certificate: x509.Certificate,
        issuer: x509.Certificate, at: datetime,
    ) -> RevocationResult:
        nonce = os.urandom(16)
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(certificate, issuer, self._hash())
            .add_extension(x509.OCSPNonce(nonce), critical=False)
            .build()
        )
        try:
            data = self._transport(url, request.public_bytes(serialization.Encoding.DER),
                                   self._config.timeout_seconds,
                                   self._config.max_response_bytes)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise _Unusable(f"the responder could not be asked: {exc}") from exc
        try:
            response = ocsp.load_der_ocsp_response(data)
        except ValueError as exc:
            raise _Unusable("the answer is not an OCSP response") from exc
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise _Unusable(f"the responder answered {response.response_status.name}")
        try:
            self._check_nonce(response, nonce)
            self._check_signature(response, issuer)
            single = _single_response_for(response, certificate, issuer)
        except ValueError as exc:  # malformed extensions, read lazily by cryptography
            raise _Unusable(f"malformed OCSP response: {exc}") from exc
        now = self._clock()
        skew = timedelta(seconds=self._config.clock_skew_seconds)
        this_update = single.this_update_utc
        next_update = single.next_update_utc
        if this_update > now + skew:
            raise _Unusable("the response's thisUpdate is in the future")
        if next_update is not None and next_update < now - skew:
            raise _Unusable("the response is stale (nextUpdate has passed)")
        status = single.certificate_status
        # An answer without nextUpdate holds only now: not cached, and not for other times.
        valid_until = next_update
        if status is ocsp.OCSPCertStatus.GOOD:
            return RevocationResult(RevocationStatus.GOOD, source,
                                    valid_from=this_update, valid_until=valid_until)
        if status is ocsp.OCSPCertStatus.REVOKED:
            reason = single.revocation_reason.name if single.revocation_reason else None
            revoked_at = single.revocation_time_utc
            compromised = reason in ("key_compromise", "ca_compromise")
            if revoked_at is not None and revoked_at > at and not compromised:
                # Same rule as CRLs: revoked after the time asked about was good then.
                return RevocationResult(
                    RevocationStatus.GOOD, source, revoked_at, reason,
                    detail="revoked after the validation time", valid_from=this_update,
                    valid_until=(min(valid_until, revoked_at - timedelta(microseconds=1))
                                 if valid_until else None),
                )
            return RevocationResult(RevocationStatus.REVOKED, source, revoked_at, reason,
                                    valid_from=this_update, valid_until=valid_until)
        raise _Unusable("the responder does not know the certificate")

    def _check_nonce(self, response: ocsp.OCSPResponse, nonce: bytes) -> None:
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            if self._config.require_nonce:
                raise _Unusable("the response does not echo our nonce") from None
            return
        if echoed != nonce:
            raise _Unusable("the response carries another request's nonce (a replay)")

    def _check_signature(self, response: ocsp.OCSPResponse, issuer: x509.Certificate) -> None:
        signer = _authorised_responder(response, issuer, response.produced_at_utc)
        if signer is None:
            raise _Unusable("the response is not signed by the CA or a responder it authorised")
        if not _signature_valid(signer.public_key(), response.signature,
                                response.tbs_response_bytes, response.signature_hash_algorithm):
            raise _Unusable("the response's signature does not verify")


class _Unusable(Exception):
    """Internal: why an answer is not used (becomes an UNKNOWN result's detail)."""


def _responder_url(certificate: x509.Certificate) -> str | None:
    try:
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except (x509.ExtensionNotFound, ValueError):
        return None
    for description in aia.value:
        if description.access_method == AuthorityInformationAccessOID.OCSP and isinstance(
            description.access_location, x509.UniformResourceIdentifier
        ):
            url = description.access_location.value
            if url.startswith(("http://", "https://")):
                return url
    return None


def _single_response_for(
    response: ocsp.OCSPResponse, certificate: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPSingleResponse:
    issuer_key = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for single in response.responses:
        if single.serial_number != certificate.serial_number:
            continue
        name_hash = hashes.Hash(single.hash_algorithm)
        name_hash.update(issuer.subject.public_bytes())
        key_hash = hashes.Hash(single.hash_algorithm)
        key_hash.update(_subject_public_key_bits(issuer_key))
        if (single.issuer_name_hash == name_hash.finalize()
                and single.issuer_key_hash == key_hash.finalize()):
            return single
    raise _Unusable("the response does not speak of this certificate")


def _subject_public_key_bits(spki_der: bytes) -> bytes:
    """The subjectPublicKey BIT STRING's content (without the unused-bits octet), which is
    what an OCSP CertID's issuerKeyHash hashes (RFC 6960 §4.1.1)."""
    from asn1crypto import keys  # already a dependency (PKCS#11 key objects)

    info = keys.PublicKeyInfo.load(spki_der)
    bits: bytes = info["public_key"].contents[1:]
    return bits


def _authorised_responder(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, produced_at: datetime
) -> x509.Certificate | None:
    """The CA itself when it signed, else a certificate from the response that the CA issued
    for OCSP signing (id-kp-OCSPSigning), valid when the response was produced."""
    if _is_responder(issuer, response):
        return issuer
    for candidate in response.certificates:
        if not _is_responder(candidate, response):
            continue
        try:
            candidate.verify_directly_issued_by(issuer)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if not candidate.not_valid_before_utc <= produced_at <= candidate.not_valid_after_utc:
            continue
        try:
            usages = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (x509.ExtensionNotFound, ValueError):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in usages:
            return candidate
    return None


def _is_responder(cert: x509.Certificate, response: ocsp.OCSPResponse) -> bool:
    if response.responder_name is not None:
        return cert.subject == response.responder_name
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha1(_subject_public_key_bits(spki)).digest() == (  # noqa: S324 - RFC 6960 KeyHash
        response.responder_key_hash
    )


def _signature_valid(
    key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None
) -> bool:
    if algorithm is None or isinstance(algorithm, hashes.SHA1 | hashes.MD5):
        return False  # the profile allows no SHA-1 signatures, nor Ed25519 here
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        else:
            return False
    except InvalidSignature:
        return False
    return True
