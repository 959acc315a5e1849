"""A time-stamping authority (RFC 3161 over HTTP) on loopback: the stand-in for a real TSA.

``POST /tsa`` with ``application/timestamp-query`` answers a ``TimeStampResp`` whose token is a
CMS SignedData over a TSTInfo (asn1crypto builds the ASN.1; cryptography signs), with the ESS
``signingCertificateV2`` attribute and the TSA certificate when asked, so ``openssl ts -verify``
accepts it. The TSA has its own little PKI (a root and the TSA certificate with the critical
``timeStamping`` extended key usage), kept in ``<directory>`` (``ca.pem`` is the trust anchor
to configure as ``log_tsa_trust_anchors``). ``available = False`` makes it answer 503, as a TSA
that is down; ``refusal = "system_failure"`` makes it refuse every request.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["PATH", "TsaSimulator", "create_tsa_app"]

PATH = "/tsa"
POLICY = "1.3.6.1.4.1.63311.9.1"  # the simulator's own (made-up) time-stamping policy
_MAX_REQUEST = 16 * 1024
_HASH_OIDS = {"sha256", "sha384", "sha512"}


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "AZ"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Simulated TSA"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _build_pki(directory: Path) -> None:
    now = datetime.now(UTC) - timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name("Simulated TSA Root"))
        .issuer_name(_name("Simulated TSA Root")).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name("Simulated TSA")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + timedelta(days=1825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                       critical=True)
        # RFC 3161 §2.3: exactly this usage, critical (openssl ts -verify insists).
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "tsa.pem").write_bytes(cert.public_bytes(pem))
    (directory / "tsa-key.pem").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


@dataclass
class TsaSimulator:
    """The TSA's key and certificate, a serial counter, and the switch to take it down."""

    directory: Path
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    available: bool = True
    refusal: str | None = None  # e.g. "system_failure": refuse every request with that reason
    issued: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def in_directory(cls, directory: Path) -> TsaSimulator:
        """Load the TSA from ``directory``, creating its PKI the first time."""
        directory = Path(directory)
        if not (directory / "tsa-key.pem").exists():
            _build_pki(directory)
        key = serialization.load_pem_private_key((directory / "tsa-key.pem").read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        cert = x509.load_pem_x509_certificate((directory / "tsa.pem").read_bytes())
        return cls(directory, key, cert)

    @property
    def trust_anchor_path(self) -> Path:
        return self.directory / "ca.pem"

    def respond(self, request_der: bytes) -> bytes:
        """A DER ``TimeStampResp`` for a DER ``TimeStampReq``."""
        if self.refusal is not None:
            return _rejection(self.refusal)
        try:
            request = tsp.TimeStampReq.load(request_der)
            algorithm = request["message_imprint"]["hash_algorithm"]["algorithm"].native
            digest = request["message_imprint"]["hashed_message"].native
            nonce = request["nonce"].native
            cert_req = bool(request["cert_req"].native)
        except (ValueError, TypeError, KeyError):
            return _rejection("bad_data_format")
        if algorithm not in _HASH_OIDS or len(digest) != hashlib.new(algorithm).digest_size:
            return _rejection("bad_alg")
        with self._lock:
            self.issued += 1
            serial = self.issued
        return tsp.TimeStampResp({
            "status": {"status": "granted"},
            "time_stamp_token": self._token(algorithm, digest, nonce, serial, cert_req),
        }).dump()

    def _token(
        self, algorithm: str, digest: bytes, nonce: int | None, serial: int, cert_req: bool
    ) -> cms.ContentInfo:
        info: dict[str, Any] = {
            "version": "v1",
            "policy": POLICY,
            "message_imprint": {"hash_algorithm": {"algorithm": algorithm},
                                "hashed_message": digest},
            "serial_number": serial,
            "gen_time": datetime.now(UTC).replace(microsecond=0),
            "accuracy": {"seconds": 1},
        }
        if nonce is not None:
            info["nonce"] = nonce
        tst_der = tsp.TSTInfo(info).dump()
        cert_der = self.certificate.public_bytes(serialization.Encoding.DER)
        asn1_cert = asn1_x509.Certificate.load(cert_der)
        signed_attrs = cms.CMSAttributes([
            {"type": "content_type", "values": ["tst_info"]},
            {"type": "signing_time", "values": [cms.Time({"utc_time": datetime.now(UTC)})]},
            {"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]},
            {"type": "signing_certificate_v2", "values": [tsp.SigningCertificateV2({
                "certs": [{"hash_algorithm": {"algorithm": "sha256"},
                           "cert_hash": hashlib.sha256(cert_der).digest()}],
            })]},
        ])
        signature = self.key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
        signed_data = cms.SignedData({
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {
                "content_type": "tst_info",
                "content": core.ParsableOctetString(tst_der),
            },
            "certificates": [asn1_cert] if cert_req else [],
            "signer_infos": [{
                "version": "v1",
                "sid": {"issuer_and_serial_number": {
                    "issuer": asn1_cert.issuer, "serial_number": asn1_cert.serial_number}},
                "digest_algorithm": {"algorithm": "sha256"},
                "signed_attrs": signed_attrs,
                "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                "signature": signature,
            }],
        })
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})


class _Rejection(core.Sequence):  # type: ignore[misc]
    """``TimeStampResp`` without a token (asn1crypto's class requires one; RFC 3161 §2.4.2
    makes it OPTIONAL: absent when the request is refused)."""

    _fields = [("status", tsp.PKIStatusInfo)]  # noqa: RUF012 - read by asn1crypto


def _rejection(failure: str) -> bytes:
    return _Rejection({
        "status": {"status": "rejection", "fail_info": tsp.PKIFailureInfo({failure})},
    }).dump()


def create_tsa_app(tsa: TsaSimulator) -> Callable[[dict[str, Any], Callable[..., Any]],
                                                   Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").rstrip("/") != PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"the TSA is at /tsa\n"]
        if environ.get("REQUEST_METHOD") != "POST":
            start_response("405 Method Not Allowed", [("Content-Type", "text/plain")])
            return [b"POST an RFC 3161 TimeStampReq\n"]
        if not tsa.available:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"the TSA is down\n"]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= _MAX_REQUEST:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"a TimeStampReq of at most 16 KiB\n"]
        body = tsa.respond(environ["wsgi.input"].read(length))
        start_response("200 OK", [("Content-Type", "application/timestamp-reply"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return app
