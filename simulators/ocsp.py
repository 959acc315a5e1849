"""An OCSP responder of the test PKI's issuing CA (RFC 6960 over HTTP), on loopback.

Stands in for the national CA's responder: answers POSTed (and GET, Appendix A.1) requests for
the test PKI's certificates with GOOD or REVOKED (from the issuing CA's CRL), echoes the
request's nonce, and signs either with the CA's own key (``responder="ca"``) or with a
delegated responder certificate the CA issues at start with id-kp-OCSPSigning
(``responder="delegated"``, the usual set-up). For tests it can also misbehave the ways a
verifier must catch: sign with a CA-issued certificate *without* the OCSP-signing purpose
(``responder="unauthorised"``), leave the nonce out, or replay its previous answer.

Not product code: ``serve``/``simulators`` start it for the embedded default, tests as a peer.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.testpki import TestPki, load_test_pki

PATH = "/ocsp"
Responder = Literal["ca", "delegated", "unauthorised"]


@dataclass
class OcspResponder:
    """The responder's state; a WSGI app (``__call__``)."""

    issuer: x509.Certificate
    issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificates: dict[int, x509.Certificate]
    revoked: dict[int, tuple[datetime, x509.ReasonFlags | None]]
    responder: Responder = "delegated"
    echo_nonce: bool = True
    replay_previous: bool = False
    validity: timedelta = timedelta(minutes=10)
    requests_served: int = 0
    _signer_cert: x509.Certificate | None = field(default=None, repr=False)
    _signer_key: Any = field(default=None, repr=False)
    _previous: bytes | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_test_pki(cls, pki_dir: Path, **options: Any) -> OcspResponder:
        pki = load_test_pki(Path(pki_dir))
        key = serialization.load_pem_private_key(
            (pki.directory / "ca" / "issuing-ca.key").read_bytes(), password=None
        )
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        return cls(pki.issuing, key, _certificates(pki), _revoked(pki.crl), **options)

    def __post_init__(self) -> None:
        self.set_responder(self.responder)

    def set_responder(self, responder: Responder) -> None:
        """Who signs the answers from now on (a fresh responder certificate if delegated)."""
        self.responder = responder
        if responder == "ca":
            self._signer_cert, self._signer_key = self.issuer, self.issuer_key
        else:
            self._signer_key = ec.generate_private_key(ec.SECP256R1())
            self._signer_cert = _responder_certificate(
                self.issuer, self.issuer_key, self._signer_key,
                ocsp_signing=responder == "delegated",
            )

    # -- WSGI --------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        path = environ.get("PATH_INFO", "")
        if method == "POST" and path == PATH:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            data = environ["wsgi.input"].read(min(length, 65_536))
        elif method == "GET" and path.startswith(PATH + "/"):
            data = base64.b64decode(path[len(PATH) + 1:] + "==")
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"POST an OCSP request to /ocsp\n"]
        body = self.answer(data)
        start_response("200 OK", [("Content-Type", "application/ocsp-response"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    def answer(self, data: bytes) -> bytes:
        with self._lock:
            self.requests_served += 1
            if self.replay_previous and self._previous is not None:
                return self._previous
            body = self._build(data)
            self._previous = body
            return body

    def _build(self, data: bytes) -> bytes:
        try:
            request = ocsp.load_der_ocsp_request(data)
        except ValueError:
            return _status(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        cert = self.certificates.get(request.serial_number)
        if cert is None or cert.issuer != self.issuer.subject:
            return _status(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        now = datetime.now(UTC).replace(microsecond=0)
        revoked = self.revoked.get(cert.serial_number)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert, issuer=self.issuer, algorithm=request.hash_algorithm,
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=now - timedelta(seconds=5), next_update=now + self.validity,
            revocation_time=revoked[0] if revoked else None,
            revocation_reason=revoked[1] if revoked else None,
        )
        assert self._signer_cert is not None
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self._signer_cert)
        if self._signer_cert is not self.issuer:
            builder = builder.certificates([self._signer_cert])
        if self.echo_nonce:
            try:
                nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
                builder = builder.add_extension(nonce, critical=False)
            except x509.ExtensionNotFound:
                pass
        response = builder.sign(self._signer_key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)


def _status(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def _certificates(pki: TestPki) -> dict[int, x509.Certificate]:
    found = {i.certificate.serial_number: i.certificate for i in pki.identities.values()}
    found[pki.issuing.serial_number] = pki.issuing
    return found


def _revoked(
    crl: x509.CertificateRevocationList,
) -> dict[int, tuple[datetime, x509.ReasonFlags | None]]:
    revoked: dict[int, tuple[datetime, x509.ReasonFlags | None]] = {}
    for entry in crl:
        try:
            reason: x509.ReasonFlags | None = entry.extensions.get_extension_for_class(
                x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reason = None
        revoked[entry.serial_number] = (entry.revocation_date_utc, reason)
    return revoked


def _responder_certificate(
    issuer: x509.Certificate, issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey, *, ocsp_signing: bool,
) -> x509.Certificate:
    now = datetime.now(UTC)
    usage = ExtendedKeyUsageOID.OCSP_SIGNING if ocsp_signing else ExtendedKeyUsageOID.CLIENT_AUTH
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "AZ"),
            x509.NameAttribute(NameOID.COMMON_NAME, "AZ Test Issuing CA 1 OCSP Responder"),
        ]))
        .issuer_name(issuer.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
