"""RFC 3161 time-stamping: asking a TSA for a token over some bytes, and checking a token.

The ASN.1 (``TimeStampReq``, ``TimeStampResp``, ``TSTInfo``, CMS ``SignedData``) is asn1crypto's
``tsp``/``cms`` modules; signatures are checked with cryptography. A token is accepted only if:
its ``TSTInfo`` imprint is the SHA-256 of exactly the stamped bytes (and the nonce ours, when
asked); the one ``SignerInfo`` signs the ``TSTInfo`` (content-type and message-digest
attributes); its certificate carries the ``timeStamping`` extended key usage and, if the token
names it (ESS ``signingCertificateV2``), is the one named; and that certificate chains to one
of the configured TSA trust anchors and was valid at the token's time. This is what
``openssl ts -verify`` checks too (the export's README.txt uses it).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import requests
from asn1crypto import cms, core, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.evidence.errors import TimestampInvalid, TimestampUnavailable

REQUEST_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
_MAX_REPLY = 64 * 1024
_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}


class _TimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161 §2.4.2 ``TimeStampResp``: the token is OPTIONAL (absent when refused), which
    asn1crypto's own class does not allow."""

    _fields = [  # noqa: RUF012 - asn1crypto reads this class attribute
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


@dataclass(frozen=True)
class Timestamp:
    """A checked token: its DER (a CMS ``ContentInfo``), the TSA's time and certificate."""

    token: bytes
    time: datetime
    serial: int
    tsa_certificate: x509.Certificate


def load_certificates(paths: Sequence[Path]) -> list[x509.Certificate]:
    certificates: list[x509.Certificate] = []
    for path in paths:
        certificates += x509.load_pem_x509_certificates(Path(path).read_bytes())
    return certificates


def build_request(data: bytes, nonce: int) -> bytes:
    """A ``TimeStampReq`` for SHA-256 over ``data``, asking for the TSA's certificate."""
    return tsp.TimeStampReq({
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": "sha256"},
            "hashed_message": hashlib.sha256(data).digest(),
        },
        "nonce": nonce,
        "cert_req": True,
    }).dump()


class TimeStampClient:
    """A TSA over HTTP (RFC 3161 §3.4): POST the request, check the token that comes back."""

    def __init__(
        self, url: str, trust: Sequence[x509.Certificate], *, timeout: float = 10.0
    ) -> None:
        if not trust:
            raise TimestampInvalid("no TSA trust anchor configured (log_tsa_trust_anchors)")
        self.url = url
        self.trust = list(trust)
        self.timeout = timeout
        self._http = requests.Session()

    def stamp(self, data: bytes) -> Timestamp:
        """A checked token over ``data``; ``TimestampUnavailable`` when the TSA does not answer
        or refuses, ``TimestampInvalid`` when its token does not check out."""
        nonce = secrets.randbits(63)
        try:
            reply = self._http.post(
                self.url, data=build_request(data, nonce), timeout=self.timeout,
                headers={"Content-Type": REQUEST_TYPE}, stream=True,
            )
            body = reply.raw.read(_MAX_REPLY + 1, decode_content=True)
        except requests.RequestException as error:
            raise TimestampUnavailable(f"TSA {self.url} unreachable: {error}") from error
        if reply.status_code != 200:
            raise TimestampUnavailable(f"TSA {self.url} answered HTTP {reply.status_code}")
        if len(body) > _MAX_REPLY:
            raise TimestampInvalid("TSA reply too large")
        try:
            response = _TimeStampResp.load(body)
            status = response["status"]["status"].native
            token = response["time_stamp_token"]
            token_der = b"" if isinstance(token, core.Void) else token.dump()
        except (ValueError, TypeError, KeyError) as error:
            raise TimestampInvalid(f"TSA reply is not a TimeStampResp: {error}") from error
        if status not in ("granted", "granted_with_mods") or not token_der:
            raise TimestampUnavailable(f"TSA refused the request ({status})")
        return check_token(token_der, data, self.trust, nonce=nonce)


def check_token(
    token: bytes, data: bytes, trust: Sequence[x509.Certificate], *, nonce: int | None = None
) -> Timestamp:
    """Check an RFC 3161 token over ``data`` (see the module docstring); ``TimestampInvalid``."""
    try:
        return _check(token, data, trust, nonce)
    except TimestampInvalid:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise TimestampInvalid(f"malformed time-stamp token: {error}") from error


def _check(
    token: bytes, data: bytes, trust: Sequence[x509.Certificate], nonce: int | None
) -> Timestamp:
    info = cms.ContentInfo.load(token)
    if info["content_type"].native != "signed_data":
        raise TimestampInvalid("the token is not CMS SignedData")
    signed = info["content"]
    encap = signed["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        raise TimestampInvalid("the token does not carry a TSTInfo")
    tst_der = encap["content"].contents
    tst = tsp.TSTInfo.load(tst_der)
    imprint = tst["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    if algorithm not in _HASHES:
        raise TimestampInvalid(f"imprint hash {algorithm} not accepted")
    expected = hashlib.new(algorithm, data).digest()
    if imprint["hashed_message"].native != expected:
        raise TimestampInvalid("the token stamps other data (message imprint differs)")
    if nonce is not None and tst["nonce"].native != nonce:
        raise TimestampInvalid("the token answers another request (nonce differs)")

    signer_infos = signed["signer_infos"]
    if len(signer_infos) != 1:
        raise TimestampInvalid("a time-stamp token has exactly one signer")
    signer_info = signer_infos[0]
    attrs = {a["type"].native: a["values"][0] for a in signer_info["signed_attrs"]}
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        raise TimestampInvalid(f"signer digest {digest_name} not accepted")
    if attrs.get("content_type") is None or attrs["content_type"].native != "tst_info":
        raise TimestampInvalid("signed content-type attribute is not TSTInfo")
    if attrs.get("message_digest") is None or (
        attrs["message_digest"].native != hashlib.new(digest_name, tst_der).digest()
    ):
        raise TimestampInvalid("the signature does not cover this TSTInfo")

    certificates = [
        x509.load_der_x509_certificate(c.chosen.dump())
        for c in signed["certificates"] or []
        if c.name == "certificate"
    ]
    tsa_cert = _signer_certificate(signer_info["sid"], certificates)
    _check_signature(tsa_cert, signer_info, digest_name)
    _check_ess(attrs, tsa_cert)
    gen_time: datetime = tst["gen_time"].native
    _check_chain(tsa_cert, certificates, trust, gen_time)
    return Timestamp(token, gen_time, int(tst["serial_number"].native), tsa_cert)


def _signer_certificate(
    sid: cms.SignerIdentifier, certificates: Sequence[x509.Certificate]
) -> x509.Certificate:
    if sid.name != "issuer_and_serial_number":
        raise TimestampInvalid("the token names its signer by key id: not supported")
    serial = sid.chosen["serial_number"].native
    issuer = sid.chosen["issuer"].dump()
    for cert in certificates:
        if cert.serial_number == serial and cert.issuer.public_bytes() == issuer:
            return cert
    raise TimestampInvalid("the token does not carry its signer's certificate")


def _check_signature(
    cert: x509.Certificate, signer_info: cms.SignerInfo, digest_name: str
) -> None:
    signed_bytes = signer_info["signed_attrs"].untag().dump()
    signature = signer_info["signature"].native
    algorithm = _HASHES[digest_name]()
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed_bytes, ec.ECDSA(algorithm))
        else:
            raise TimestampInvalid("TSA key type not supported")
    except InvalidSignature as error:
        raise TimestampInvalid("the TSA's signature does not verify") from error


def _check_ess(attrs: dict[str, object], cert: x509.Certificate) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    v2 = attrs.get("signing_certificate_v2")
    if v2 is None:
        return
    first = v2["certs"][0]  # type: ignore[index]
    name = first["hash_algorithm"]["algorithm"].native
    if hashlib.new(name, cert.public_bytes(Encoding.DER)).digest() != first["cert_hash"].native:
        raise TimestampInvalid("the token names another signing certificate")


def _check_chain(
    cert: x509.Certificate,
    extra: Sequence[x509.Certificate],
    trust: Sequence[x509.Certificate],
    at: datetime,
) -> None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as error:
        raise TimestampInvalid("the TSA certificate has no extended key usage") from error
    if ExtendedKeyUsageOID.TIME_STAMPING not in usage:
        raise TimestampInvalid("the TSA certificate is not for time-stamping")
    current = cert
    for _ in range(4):
        if not current.not_valid_before_utc <= at <= current.not_valid_after_utc:
            raise TimestampInvalid("a TSA certificate was not valid at the token's time")
        for anchor in trust:
            if _issued_by(current, anchor):
                return
        issuer = next((c for c in extra if c != current and _issued_by(current, c)), None)
        if issuer is None:
            break
        current = issuer
    raise TimestampInvalid("the TSA certificate does not chain to a configured TSA anchor")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
