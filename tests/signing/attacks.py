"""Crafted envelopes a verifier must refuse, each with the exact error (and so fault code) due.

Shared by ``tests/signing/test_wsse_verifier.py`` (in process) and the gateway's end-to-end tests
(against the running server: send ``attack.craft(sender, now=...)`` and expect a SOAP Fault whose
code is ``attack.expected.code``)::

    from tests.signing.attacks import ATTACKS, Sender
    sender = Sender.from_identity(pki.identity("director"))
    for attack in ATTACKS.values():
        data = attack.craft(sender, now=now, base=my_request_envelope)

Every attack starts from a correctly signed envelope and changes it the way a real attacker
would. Where the change touches ``SignedInfo`` the envelope is *re-signed* with the sender's own
key (:func:`resign`), so a refusal proves the structural or policy check, not a broken digest.
Off-profile algorithms (RSA-SHA1, MD5, HMAC, inclusive C14N...) are computed for real by the
independent helpers here (:func:`digest_value`, :func:`signature_value`), never faked.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree

from signing import ns
from signing.errors import (
    AlgorithmNotAllowed,
    CertificateUntrusted,
    SecurityHeaderMalformed,
    SignatureInvalid,
    SignatureMissing,
    SignatureWrapping,
    TimestampExpired,
    TimestampInFuture,
    TokenLimitExceeded,
    TransformNotAllowed,
    VerificationError,
)
from signing.software import SoftwareSigner
from signing.wsse import sign_envelope

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
Base = Callable[[], etree._Element]

# --- algorithm URIs, including the ones the profile refuses -------------------------------------

DSIG = "http://www.w3.org/2000/09/xmldsig#"
MORE = "http://www.w3.org/2001/04/xmldsig-more#"
RSA_SHA1 = DSIG + "rsa-sha1"
RSA_MD5 = MORE + "rsa-md5"
RSA_SHA256 = MORE + "rsa-sha256"
ECDSA_SHA1 = MORE + "ecdsa-sha1"
ECDSA_SHA256 = MORE + "ecdsa-sha256"
DSA_SHA1 = DSIG + "dsa-sha1"
HMAC_SHA1 = DSIG + "hmac-sha1"
HMAC_SHA256 = MORE + "hmac-sha256"
SHA1 = DSIG + "sha1"
MD5 = MORE + "md5"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
XPATH_FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"
BASE64 = DSIG + "base64"

_DIGESTS: dict[str, str] = {
    SHA1: "sha1",
    MD5: "md5",
    "http://www.w3.org/2001/04/xmldsig-more#sha224": "sha224",
    SHA256: "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}
_SIG_HASHES: dict[str, hashes.HashAlgorithm] = {
    RSA_SHA1: hashes.SHA1(),  # noqa: S303 - crafting a refused signature on purpose
    RSA_MD5: hashes.MD5(),  # noqa: S303
    RSA_SHA256: hashes.SHA256(),
    MORE + "rsa-sha384": hashes.SHA384(),
    MORE + "rsa-sha512": hashes.SHA512(),
    ECDSA_SHA1: hashes.SHA1(),  # noqa: S303
    ECDSA_SHA256: hashes.SHA256(),
    MORE + "ecdsa-sha384": hashes.SHA384(),
    MORE + "ecdsa-sha512": hashes.SHA512(),
    "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1": hashes.SHA256(),
}
_HMACS = {HMAC_SHA1: "sha1", HMAC_SHA256: "sha256"}


# --- who signs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sender:
    """A private key with its certificate: what an attacker holding a valid card has."""

    key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_identity(cls, identity: Any) -> Sender:
        """From a :class:`signing.testpki.IssuedIdentity` (``key_path``, ``certificate``...)."""
        key = serialization.load_pem_private_key(Path(identity.key_path).read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        chain = tuple(
            c for p in identity.chain_paths for c in x509.load_pem_x509_certificates(p.read_bytes())
        )
        return cls(key, identity.certificate, chain)

    def signer(self) -> SoftwareSigner:
        return SoftwareSigner(self.key, self.certificate, self.chain)


# --- building and signing envelopes --------------------------------------------------------------

DEFAULT_HEADERS = ("client", "service", "id", "protocolVersion")


def request_envelope(
    *,
    message_id: str | None = None,
    headers: Sequence[str] = DEFAULT_HEADERS,
    user_id: str = "AZ6ZK4T2P",
    payload: bytes | None = None,
) -> etree._Element:
    """An unsigned X-Road 4.0 request (``wsu`` declared on the Envelope, as good peers do)."""
    nsmap = {"soapenv": ns.SOAP11, "xrd": ns.XRD, "id": ns.ID, "wsu": ns.WSU}
    env = etree.Element(ns.SOAP_ENVELOPE, nsmap=nsmap)
    header = etree.SubElement(env, ns.SOAP_HEADER)
    for local in headers:
        el = etree.SubElement(header, ns.q(ns.XRD, local))
        if local == "client":
            el.set(ns.q(ns.ID, "objectType"), "SUBSYSTEM")
            for part, value in (
                ("xRoadInstance", "AZ"),
                ("memberClass", "COM"),
                ("memberCode", "1403567891"),
                ("subsystemCode", "erp"),
            ):
                etree.SubElement(el, ns.q(ns.ID, part)).text = value
        elif local == "service":
            el.set(ns.q(ns.ID, "objectType"), "SERVICE")
            for part, value in (
                ("xRoadInstance", "AZ"),
                ("memberClass", "GOV"),
                ("memberCode", "1500000011"),
                ("subsystemCode", "insured-registration"),
                ("serviceCode", "Ping"),
            ):
                etree.SubElement(el, ns.q(ns.ID, part)).text = value
        elif local == "id":
            el.text = message_id or str(uuid.uuid4())
        elif local == "protocolVersion":
            el.text = "4.0"
        elif local == "userId":
            el.text = user_id
        else:
            el.text = local
    body = etree.SubElement(env, ns.SOAP_BODY)
    if payload is None:
        payload = (
            b'<r:Ping xmlns:r="urn:az:dsmf:insured-registration:v1">'
            b"<r:voen>1403567891</r:voen><r:amount>100</r:amount></r:Ping>"
        )
    body.append(etree.fromstring(payload))
    return env


def signed(
    sender: Sender,
    *,
    now: datetime | None = None,
    lifetime: timedelta = timedelta(seconds=300),
    base: Base | None = None,
) -> etree._Element:
    """A correctly signed request (our own signer), the starting point of every attack."""
    envelope = base() if base is not None else request_envelope()
    return sign_envelope(envelope, sender.signer(), now=now, lifetime=lifetime)


@dataclass(frozen=True)
class Parts:
    envelope: etree._Element
    header: etree._Element
    body: etree._Element
    security: etree._Element
    signature: etree._Element
    signed_info: etree._Element
    timestamp: etree._Element
    token: etree._Element

    def reference(self, element: etree._Element) -> etree._Element:
        uri = "#" + element.get(ns.WSU_ID, "")
        for ref in self.signed_info.iter(ns.DS_REFERENCE):
            if ref.get("URI") == uri:
                return ref
        raise LookupError(uri)


def parts(envelope: etree._Element) -> Parts:
    header = envelope.find(ns.SOAP_HEADER)
    body = envelope.find(ns.SOAP_BODY)
    assert header is not None and body is not None
    security = header.find(ns.WSSE_SECURITY)
    assert security is not None
    signature = security.find(ns.DS_SIGNATURE)
    timestamp = security.find(ns.WSU_TIMESTAMP)
    token = security.find(ns.WSSE_BST)
    assert signature is not None and timestamp is not None and token is not None
    signed_info = signature.find(ns.DS_SIGNED_INFO)
    assert signed_info is not None
    return Parts(envelope, header, body, security, signature, signed_info, timestamp, token)


# --- independent DSig arithmetic (also for algorithms the profile refuses) -----------------------


def canonical(element: etree._Element, algorithm: str | None) -> bytes:
    """Canonical bytes by C14N URI; ``None`` (no transform) means inclusive C14N 1.0."""
    exclusive = algorithm is not None and algorithm.startswith(ns.EXC_C14N)
    comments = algorithm is not None and algorithm.endswith("#WithComments")
    return etree.tostring(element, method="c14n", exclusive=exclusive, with_comments=comments)


def digest_value(algorithm: str, data: bytes) -> bytes:
    return hashlib.new(_DIGESTS[algorithm], data).digest()


def signature_value(key: PrivateKey | bytes, algorithm: str, data: bytes) -> bytes:
    """The raw ``SignatureValue`` for ``algorithm`` (HMAC when ``key`` is bytes)."""
    if isinstance(key, bytes):
        return hmac.new(key, data, _HMACS[algorithm]).digest()
    digest = _SIG_HASHES[algorithm]
    if isinstance(key, rsa.RSAPrivateKey):
        pad: padding.AsymmetricPadding = padding.PKCS1v15()
        if "MGF1" in algorithm:
            pad = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        return key.sign(data, pad, digest)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _find_by_id(envelope: etree._Element, value: str) -> etree._Element:
    for el in envelope.iter():
        if isinstance(el.tag, str) and any(
            etree.QName(k).localname in ("Id", "ID") and v == value for k, v in el.attrib.items()
        ):
            return el
    raise LookupError(value)


def redigest(envelope: etree._Element) -> None:
    """Recompute every Reference's DigestValue with its own (possibly refused) algorithms."""
    signed_info = next(envelope.iter(ns.DS_SIGNED_INFO))
    for ref in signed_info.iter(ns.DS_REFERENCE):
        uri = ref.get("URI") or ""
        if not uri.startswith("#") or uri.startswith("#xpointer"):
            continue
        try:
            target = _find_by_id(envelope, uri[1:])
        except LookupError:
            continue
        transforms = [t.get("Algorithm") for t in ref.iter(ns.DS_TRANSFORM)]
        c14n = next((t for t in reversed(transforms) if t and "c14n" in t), None)
        method = ref.find(ns.DS_DIGEST_METHOD)
        value = ref.find(ns.DS_DIGEST_VALUE)
        assert method is not None and value is not None
        algorithm = method.get("Algorithm") or SHA256
        data = canonical(target, c14n)
        value.text = base64.b64encode(digest_value(algorithm, data)).decode()


def resign(envelope: etree._Element, key: PrivateKey | bytes) -> None:
    """Recompute the SignatureValue over SignedInfo with its declared (possibly refused) methods."""
    signed_info = next(envelope.iter(ns.DS_SIGNED_INFO))
    c14n_el = signed_info.find(ns.DS_C14N_METHOD)
    method_el = signed_info.find(ns.DS_SIGNATURE_METHOD)
    assert c14n_el is not None and method_el is not None
    data = canonical(signed_info, c14n_el.get("Algorithm"))
    value = signature_value(key, method_el.get("Algorithm") or RSA_SHA256, data)
    value_el = signed_info.getparent().find(ns.DS_SIGNATURE_VALUE)  # type: ignore[union-attr]
    assert value_el is not None
    value_el.text = base64.b64encode(value).decode()


def refresh(envelope: etree._Element, sender: Sender) -> etree._Element:
    redigest(envelope)
    resign(envelope, sender.key)
    return envelope


def add_reference(
    p: Parts, element: etree._Element, *, wsu_id: str | None = None
) -> etree._Element:
    """A new exc-C14N/SHA-256 Reference to ``element`` (its wsu:Id created if needed)."""
    if wsu_id is not None:
        element.set(ns.WSU_ID, wsu_id)
    elif element.get(ns.WSU_ID) is None:
        element.set(ns.WSU_ID, f"x-{uuid.uuid4().hex[:12]}")
    ref = copy.deepcopy(p.reference(p.body))
    ref.set("URI", "#" + element.get(ns.WSU_ID, ""))
    p.signed_info.append(ref)
    return ref


def _weak_method(key: PrivateKey) -> str:
    return RSA_SHA1 if isinstance(key, rsa.RSAPrivateKey) else ECDSA_SHA1


def _public_key_pem(sender: Sender) -> bytes:
    return sender.certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def serialize(envelope: etree._Element) -> bytes:
    return etree.tostring(envelope, encoding="UTF-8")


# --- the attacks ---------------------------------------------------------------------------------

Mutation = Callable[[Parts, Sender], None]


@dataclass(frozen=True)
class Attack:
    """One crafted message and the error a verifier must answer with."""

    name: str
    expected: type[VerificationError]
    description: str
    mutate: Mutation
    resign: bool = False
    sign_at: timedelta = timedelta(0)
    lifetime: timedelta = timedelta(seconds=300)
    extra: dict[str, Any] = field(default_factory=dict)

    def craft(
        self, sender: Sender, *, now: datetime | None = None, base: Base | None = None
    ) -> bytes:
        """The attack's message bytes, built from a fresh envelope signed by ``sender``."""
        moment = (now or datetime.now(UTC)) + self.sign_at
        envelope = signed(sender, now=moment, lifetime=self.lifetime, base=base)
        self.mutate(parts(envelope), sender)
        if self.resign:
            refresh(envelope, sender)
        return serialize(envelope)


ATTACKS: dict[str, Attack] = {}


def attack(
    expected: type[VerificationError], description: str, **options: Any
) -> Callable[[Mutation], Mutation]:
    def register(mutate: Mutation) -> Mutation:
        name = mutate.__name__
        ATTACKS[name] = Attack(name, expected, description, mutate, **options)
        return mutate

    return register


def _wrapper(p: Parts) -> etree._Element:
    return etree.SubElement(p.header, "{urn:attacker}Wrapper")


def _forged_body(p: Parts) -> etree._Element:
    forged = etree.Element(ns.SOAP_BODY)
    forged.append(
        etree.fromstring(
            b'<r:Ping xmlns:r="urn:az:dsmf:insured-registration:v1">'
            b"<r:voen>9999999999</r:voen><r:amount>1000000</r:amount></r:Ping>"
        )
    )
    return forged


# Signature wrapping ------------------------------------------------------------------------------


@attack(SignatureWrapping, "signed Body moved into a header, a forged Body in its place")
def body_moved_to_header(p: Parts, s: Sender) -> None:
    _wrapper(p).append(p.body)
    p.envelope.append(_forged_body(p))


@attack(SignatureWrapping, "as above, the forged Body carrying the signed Body's wsu:Id")
def body_moved_forged_same_id(p: Parts, s: Sender) -> None:
    body_id = p.body.get(ns.WSU_ID, "")
    _wrapper(p).append(p.body)
    forged = _forged_body(p)
    forged.set(ns.WSU_ID, body_id)
    p.envelope.append(forged)


@attack(SignatureWrapping, "signed Body renamed inside a wrapper, forged Body without Id")
def body_content_moved(p: Parts, s: Sender) -> None:
    holder = _wrapper(p)
    holder.append(p.body)
    p.envelope.append(_forged_body(p))
    p.body.tag = "{urn:attacker}NotABody"


@attack(SignatureWrapping, "a second element carrying the Body's wsu:Id")
def duplicate_wsu_id(p: Parts, s: Sender) -> None:
    etree.SubElement(_wrapper(p), "{urn:attacker}Decoy").set(ns.WSU_ID, p.body.get(ns.WSU_ID, ""))


@attack(SignatureWrapping, "a second element carrying the Body's id as a plain Id attribute")
def duplicate_plain_id(p: Parts, s: Sender) -> None:
    etree.SubElement(_wrapper(p), "{urn:attacker}Decoy").set("Id", p.body.get(ns.WSU_ID, ""))


@attack(SignatureWrapping, "the Body's wsu:Id replaced by an Id in an attacker namespace")
def id_in_foreign_namespace(p: Parts, s: Sender) -> None:
    value = p.body.attrib.pop(ns.WSU_ID)
    p.body.set("{urn:attacker}Id", value)


@attack(SignatureWrapping, "forged Body declaring the 'wsu' prefix for another namespace")
def wsu_prefix_rebound(p: Parts, s: Sender) -> None:
    body_id = p.body.get(ns.WSU_ID, "")
    _wrapper(p).append(p.body)
    forged = etree.Element(ns.SOAP_BODY, nsmap={"wsu": "urn:attacker:wsu"})
    forged.set("{urn:attacker:wsu}Id", body_id)
    forged.append(_forged_body(p)[0])
    p.envelope.append(forged)


@attack(SignatureWrapping, "a second soap:Body after the signed one")
def second_body(p: Parts, s: Sender) -> None:
    p.envelope.append(_forged_body(p))


@attack(SignatureWrapping, "a soap:Body nested inside the signed Body")
def body_nested_in_body(p: Parts, s: Sender) -> None:
    p.body.append(_forged_body(p))
    refresh(p.envelope, s)


@attack(SignatureWrapping, "an extra element after the Body")
def element_after_body(p: Parts, s: Sender) -> None:
    etree.SubElement(p.envelope, "{urn:attacker}Trailer").text = "x"


@attack(SignatureWrapping, "the Header placed after the Body")
def header_after_body(p: Parts, s: Sender) -> None:
    p.envelope.append(p.header)


@attack(SignatureWrapping, "the ds:Signature moved out of wsse:Security into the Header")
def signature_outside_security(p: Parts, s: Sender) -> None:
    p.header.append(p.signature)


@attack(SignatureWrapping, "the ds:Signature moved into the Body")
def signature_in_body(p: Parts, s: Sender) -> None:
    p.body.append(p.signature)


@attack(SignatureWrapping, "a second ds:Signature inside wsse:Security")
def second_signature(p: Parts, s: Sender) -> None:
    p.security.append(copy.deepcopy(p.signature))


@attack(SignatureWrapping, "a second wsse:Security header")
def second_security_header(p: Parts, s: Sender) -> None:
    extra = etree.SubElement(p.header, ns.WSSE_SECURITY)
    extra.set(ns.q(ns.SOAP11, "actor"), "urn:other")


@attack(SignatureWrapping, "a wsse:Security element hidden in the Body")
def security_in_body(p: Parts, s: Sender) -> None:
    etree.SubElement(p.body, ns.WSSE_SECURITY)
    refresh(p.envelope, s)


@attack(SignatureWrapping, "a second wsu:Timestamp in the Security header", resign=False)
def second_timestamp(p: Parts, s: Sender) -> None:
    p.security.append(copy.deepcopy(p.timestamp))
    p.security[-1].attrib.pop(ns.WSU_ID)


@attack(SignatureWrapping, "an extra reference to an element nested in a header", resign=True)
def extra_reference_to_nested_header_element(p: Parts, s: Sender) -> None:
    holder = etree.SubElement(p.header, "{urn:attacker}Holder")
    add_reference(p, etree.SubElement(holder, "{urn:attacker}Inner"))


@attack(SignatureWrapping, "an extra reference to an element inside the Body", resign=True)
def extra_reference_into_body(p: Parts, s: Sender) -> None:
    add_reference(p, p.body[0])


@attack(SignatureWrapping, "an extra reference to another child of wsse:Security", resign=True)
def extra_reference_to_security_child(p: Parts, s: Sender) -> None:
    add_reference(p, etree.SubElement(p.security, "{urn:attacker}Confirmation"))


@attack(SignatureWrapping, "the Body's reference removed (Body unsigned)", resign=True)
def body_not_referenced(p: Parts, s: Sender) -> None:
    p.signed_info.remove(p.reference(p.body))


@attack(SignatureWrapping, "the Timestamp's reference removed", resign=True)
def timestamp_not_referenced(p: Parts, s: Sender) -> None:
    p.signed_info.remove(p.reference(p.timestamp))


@attack(SignatureWrapping, "an X-Road header added after signing (unsigned userId)")
def unsigned_xroad_header(p: Parts, s: Sender) -> None:
    user = etree.Element(ns.q(ns.XRD, "userId"))
    user.text = "AZ0000000"
    p.header.insert(0, user)


@attack(SignatureWrapping, "an X-Road userId with a wsu:Id the signature does not cover")
def user_id_not_referenced(p: Parts, s: Sender) -> None:
    # userId names the person a system certificate acts for: it must be signed when present.
    user = etree.Element(ns.q(ns.XRD, "userId"))
    user.set(ns.WSU_ID, "user-1")
    user.text = "AZ0000000"
    p.header.insert(0, user)


@attack(SignatureWrapping, "the X-Road id header duplicated")
def duplicate_xroad_header(p: Parts, s: Sender) -> None:
    message_id = p.header.find(ns.q(ns.XRD, "id"))
    assert message_id is not None
    twin = etree.Element(ns.q(ns.XRD, "id"))
    twin.text = "another-id"
    message_id.addnext(twin)


@attack(SignatureWrapping, "the Body referenced twice", resign=True)
def body_referenced_twice(p: Parts, s: Sender) -> None:
    p.signed_info.append(copy.deepcopy(p.reference(p.body)))


@attack(SignatureWrapping, "more references than the policy allows", resign=True)
def too_many_references(p: Parts, s: Sender) -> None:
    for index in range(8):
        add_reference(p, etree.SubElement(p.header, f"{{urn:attacker}}Filler{index}"))


@attack(SignatureWrapping, "the Body's reference turned into URI='' (whole document)", resign=True)
def empty_uri_reference(p: Parts, s: Sender) -> None:
    p.reference(p.body).set("URI", "")


@attack(SignatureWrapping, "a reference to an external URI", resign=True)
def external_uri_reference(p: Parts, s: Sender) -> None:
    p.reference(p.body).set("URI", "http://attacker.example/body.xml")


@attack(SignatureWrapping, "a reference id with a quote (XPath injection)", resign=True)
def quoted_id_reference(p: Parts, s: Sender) -> None:
    ref = p.reference(p.body)
    p.body.set(ns.WSU_ID, "x' or '1'='1")
    ref.set("URI", "#x' or '1'='1")


@attack(SignatureWrapping, "two SignedInfo elements in the Signature")
def two_signed_info(p: Parts, s: Sender) -> None:
    p.signed_info.addnext(copy.deepcopy(p.signed_info))


# Malformed security header -----------------------------------------------------------------------


@attack(SecurityHeaderMalformed, "the BinarySecurityToken removed")
def no_token(p: Parts, s: Sender) -> None:
    p.security.remove(p.token)


@attack(SecurityHeaderMalformed, "the BinarySecurityToken is not base64")
def token_not_base64(p: Parts, s: Sender) -> None:
    p.token.text = "!!not base64!!"


@attack(SecurityHeaderMalformed, "the BinarySecurityToken is base64 but not a certificate")
def token_not_certificate(p: Parts, s: Sender) -> None:
    p.token.text = base64.b64encode(b"\x30\x03\x02\x01\x00").decode()


@attack(SecurityHeaderMalformed, "the BinarySecurityToken has another ValueType")
def token_wrong_value_type(p: Parts, s: Sender) -> None:
    p.token.set("ValueType", "urn:attacker:token")


@attack(TokenLimitExceeded, "dozens of extra tokens for the path builder to chew on")
def token_flood(p: Parts, s: Sender) -> None:
    for index in range(20):
        extra = copy.deepcopy(p.token)
        extra.set(ns.WSU_ID, f"flood-{index}")
        p.security.insert(0, extra)


@attack(SecurityHeaderMalformed, "KeyInfo points to an id that is not a token")
def keyinfo_to_unknown_id(p: Parts, s: Sender) -> None:
    next(p.signature.iter(ns.WSSE_REFERENCE)).set("URI", "#nowhere")


@attack(SecurityHeaderMalformed, "KeyInfo points at the Timestamp instead of the token")
def keyinfo_to_timestamp(p: Parts, s: Sender) -> None:
    next(p.signature.iter(ns.WSSE_REFERENCE)).set("URI", "#" + p.timestamp.get(ns.WSU_ID, ""))


def _key_reference(p: Parts, child: etree._Element) -> None:
    reference = next(p.signature.iter(ns.WSSE_STR))
    reference.clear()
    reference.append(child)


def _issuer_serial(issuer: x509.Name, serial: int) -> etree._Element:
    data = etree.Element(ns.DS_X509_DATA)
    pair = etree.SubElement(data, ns.DS_X509_ISSUER_SERIAL)
    etree.SubElement(pair, ns.DS_X509_ISSUER_NAME).text = issuer.rfc4514_string()
    etree.SubElement(pair, ns.DS_X509_SERIAL_NUMBER).text = str(serial)
    return data


def _key_identifier(value_type: str, value: bytes) -> etree._Element:
    identifier = etree.Element(
        ns.WSSE_KEY_IDENTIFIER, ValueType=value_type, EncodingType=ns.BASE64_BINARY
    )
    identifier.text = base64.b64encode(value).decode()
    return identifier


def _ski(certificate: x509.Certificate) -> bytes:
    return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def _thumbprint(certificate: x509.Certificate) -> bytes:
    der = certificate.public_bytes(serialization.Encoding.DER)
    return hashlib.sha1(der).digest()  # noqa: S324 - the WS-Security ThumbprintSHA1 form


@attack(CertificateUntrusted, "IssuerSerial naming the issuing CA's token, not the signer's")
def issuer_serial_names_the_ca_token(p: Parts, s: Sender) -> None:
    # The certificate named is the one validated and whose key checks the signature: a CA
    # never signs messages, and any other certificate's key would not verify the signature.
    other = s.chain[0]
    _key_reference(p, _issuer_serial(other.issuer, other.serial_number))


@attack(SecurityHeaderMalformed, "IssuerSerial naming a certificate not in the message")
def issuer_serial_not_in_message(p: Parts, s: Sender) -> None:
    _key_reference(p, _issuer_serial(s.certificate.issuer, s.certificate.serial_number + 1))


@attack(SecurityHeaderMalformed, "IssuerSerial with the token's serial but another issuer")
def issuer_serial_wrong_issuer(p: Parts, s: Sender) -> None:
    forged = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Attacker CA")])
    _key_reference(p, _issuer_serial(forged, s.certificate.serial_number))


@attack(SecurityHeaderMalformed, "a subjectKeyIdentifier that names no token in the message")
def ski_of_another_certificate(p: Parts, s: Sender) -> None:
    _key_reference(p, _key_identifier(ns.X509_SKI, hashlib.sha256(b"other").digest()[:20]))


@attack(CertificateUntrusted, "a subjectKeyIdentifier naming the issuing CA's token")
def ski_names_the_ca_token(p: Parts, s: Sender) -> None:
    _key_reference(p, _key_identifier(ns.X509_SKI, _ski(s.chain[0])))


@attack(SecurityHeaderMalformed, "a SHA-1 thumbprint that names no token in the message")
def thumbprint_of_another_certificate(p: Parts, s: Sender) -> None:
    _key_reference(p, _key_identifier(ns.THUMBPRINT_SHA1, hashlib.sha256(b"x").digest()[:20]))


@attack(SecurityHeaderMalformed, "a subjectKeyIdentifier matching two tokens (ambiguous)")
def ski_names_two_tokens(p: Parts, s: Sender) -> None:
    twin = copy.deepcopy(p.token)
    twin.set(ns.WSU_ID, "twin-token")
    p.token.addnext(twin)
    _key_reference(p, _key_identifier(ns.X509_SKI, _ski(s.certificate)))


@attack(SecurityHeaderMalformed, "a KeyIdentifier of an unsupported kind (Kerberos)")
def key_identifier_unknown_type(p: Parts, s: Sender) -> None:
    _key_reference(p, _key_identifier(
        "http://docs.oasis-open.org/wss/oasis-wss-kerberos-token-profile-1.1#Kerberosv5APREQSHA1",
        b"x" * 20,
    ))


@attack(SecurityHeaderMalformed, "KeyInfo carries X509Data instead of a token reference")
def keyinfo_x509data(p: Parts, s: Sender) -> None:
    key_info = p.signature.find(ns.DS_KEY_INFO)
    assert key_info is not None
    key_info.clear()
    data = etree.SubElement(key_info, ns.DS_X509_DATA)
    etree.SubElement(data, ns.DS_X509_CERTIFICATE).text = p.token.text


@attack(SecurityHeaderMalformed, "KeyInfo carries a bare RSA/EC KeyValue")
def keyinfo_key_value(p: Parts, s: Sender) -> None:
    key_info = p.signature.find(ns.DS_KEY_INFO)
    assert key_info is not None
    key_info.clear()
    etree.SubElement(key_info, ns.q(ns.DS, "KeyValue")).text = _public_key_pem(s).decode()


@attack(SecurityHeaderMalformed, "no KeyInfo at all")
def no_keyinfo(p: Parts, s: Sender) -> None:
    key_info = p.signature.find(ns.DS_KEY_INFO)
    assert key_info is not None
    p.signature.remove(key_info)


@attack(SecurityHeaderMalformed, "the Timestamp and its reference removed", resign=True)
def no_timestamp(p: Parts, s: Sender) -> None:
    p.signed_info.remove(p.reference(p.timestamp))
    p.security.remove(p.timestamp)


@attack(
    TimestampExpired,
    "no Expires, created longer ago than the maximum lifetime (re-signed)",
    resign=True,
    sign_at=timedelta(minutes=-15),
)
def timestamp_without_expires_too_old(p: Parts, s: Sender) -> None:
    expires = p.timestamp.find(ns.WSU_EXPIRES)
    assert expires is not None
    p.timestamp.remove(expires)


@attack(SignatureWrapping, "two Expires in the Timestamp (re-signed)", resign=True)
def timestamp_two_expires(p: Parts, s: Sender) -> None:
    expires = p.timestamp.find(ns.WSU_EXPIRES)
    assert expires is not None
    p.timestamp.append(copy.deepcopy(expires))


@attack(SecurityHeaderMalformed, "Created is not an xs:dateTime (re-signed)", resign=True)
def timestamp_not_a_date(p: Parts, s: Sender) -> None:
    created = p.timestamp.find(ns.WSU_CREATED)
    assert created is not None
    created.text = "yesterday"


@attack(SecurityHeaderMalformed, "Created without a time zone (re-signed)", resign=True)
def timestamp_without_zone(p: Parts, s: Sender) -> None:
    created = p.timestamp.find(ns.WSU_CREATED)
    assert created is not None and created.text
    created.text = created.text.rstrip("Z")


@attack(SecurityHeaderMalformed, "the SignatureValue removed")
def no_signature_value(p: Parts, s: Sender) -> None:
    value = p.signature.find(ns.DS_SIGNATURE_VALUE)
    assert value is not None
    p.signature.remove(value)


@attack(SecurityHeaderMalformed, "a DigestValue of the wrong length (re-signed)")
def digest_value_wrong_length(p: Parts, s: Sender) -> None:
    value = p.reference(p.body).find(ns.DS_DIGEST_VALUE)
    assert value is not None
    value.text = base64.b64encode(b"\x00" * 20).decode()
    resign(p.envelope, s.key)


# Missing signature ------------------------------------------------------------------------------


@attack(SignatureMissing, "the wsse:Security header removed")
def no_security_header(p: Parts, s: Sender) -> None:
    p.header.remove(p.security)


@attack(SignatureMissing, "the SOAP Header removed")
def no_soap_header(p: Parts, s: Sender) -> None:
    p.envelope.remove(p.header)


@attack(SignatureMissing, "the ds:Signature removed from wsse:Security")
def no_signature(p: Parts, s: Sender) -> None:
    p.security.remove(p.signature)


# Transforms and dereferencing -------------------------------------------------------------------


def _set_transforms(ref: etree._Element, algorithms: Sequence[str]) -> None:
    transforms = ref.find(ns.DS_TRANSFORMS)
    assert transforms is not None
    transforms.clear()
    for algorithm in algorithms:
        etree.SubElement(transforms, ns.DS_TRANSFORM, Algorithm=algorithm)


@attack(TransformNotAllowed, "a ds:Object inside the Signature")
def object_in_signature(p: Parts, s: Sender) -> None:
    etree.SubElement(p.signature, ns.DS_OBJECT).text = "payload"


@attack(TransformNotAllowed, "a reference typed as ds:Manifest", resign=True)
def manifest_reference(p: Parts, s: Sender) -> None:
    p.reference(p.body).set("Type", ns.DS_MANIFEST_TYPE)


@attack(TransformNotAllowed, "a RetrievalMethod in KeyInfo")
def retrieval_method(p: Parts, s: Sender) -> None:
    key_info = p.signature.find(ns.DS_KEY_INFO)
    assert key_info is not None
    etree.SubElement(key_info, ns.DS_RETRIEVAL_METHOD, URI="http://attacker.example/cert")


@attack(TransformNotAllowed, "an XSLT transform on the Body reference", resign=True)
def xslt_transform(p: Parts, s: Sender) -> None:
    _set_transforms(p.reference(p.body), [XSLT, ns.EXC_C14N])


@attack(TransformNotAllowed, "an XPath transform on the Body reference", resign=True)
def xpath_transform(p: Parts, s: Sender) -> None:
    ref = p.reference(p.body)
    _set_transforms(ref, [XPATH, ns.EXC_C14N])
    xpath = etree.SubElement(next(ref.iter(ns.DS_TRANSFORM)), ns.q(ns.DS, "XPath"))
    xpath.text = "not(ancestor-or-self::*)"


@attack(TransformNotAllowed, "an XPath Filter 2.0 transform", resign=True)
def xpath_filter2_transform(p: Parts, s: Sender) -> None:
    _set_transforms(p.reference(p.body), [XPATH_FILTER2, ns.EXC_C14N])


@attack(
    TransformNotAllowed,
    "the enveloped-signature transform on a reference to wsse:Security (not a no-op)",
    resign=True,
)
def enveloped_transform_on_security(p: Parts, s: Sender) -> None:
    ref = add_reference(p, p.security)
    _set_transforms(ref, [ns.ENVELOPED_SIGNATURE, ns.EXC_C14N])


@attack(TransformNotAllowed, "the enveloped-signature transform after exclusive C14N", resign=True)
def enveloped_transform_last(p: Parts, s: Sender) -> None:
    _set_transforms(p.reference(p.body), [ns.EXC_C14N, ns.ENVELOPED_SIGNATURE])


@attack(AlgorithmNotAllowed, "the enveloped-signature transform alone (implies C14N 1.0)",
        resign=True)
def enveloped_transform_alone(p: Parts, s: Sender) -> None:
    _set_transforms(p.reference(p.body), [ns.ENVELOPED_SIGNATURE])


@attack(TransformNotAllowed, "a base64 transform", resign=True)
def base64_transform(p: Parts, s: Sender) -> None:
    _set_transforms(p.reference(p.body), [BASE64, ns.EXC_C14N])


@attack(TransformNotAllowed, "inclusive C14N as a reference transform", resign=True)
def inclusive_c14n_transform(p: Parts, s: Sender) -> None:
    _set_transforms(p.reference(p.body), [ns.C14N10])


@attack(TransformNotAllowed, "an XPointer reference URI", resign=True)
def xpointer_reference(p: Parts, s: Sender) -> None:
    p.reference(p.body).set("URI", "#xpointer(/)")


# Algorithms -------------------------------------------------------------------------------------


def _signature_method(p: Parts, uri: str) -> None:
    method = p.signed_info.find(ns.DS_SIGNATURE_METHOD)
    assert method is not None
    method.set("Algorithm", uri)


def _digest_methods(p: Parts, uri: str) -> None:
    for method in p.signed_info.iter(ns.DS_DIGEST_METHOD):
        method.set("Algorithm", uri)


@attack(AlgorithmNotAllowed, "a valid RSA-SHA1 / ECDSA-SHA1 signature", resign=True)
def sha1_signature(p: Parts, s: Sender) -> None:
    _signature_method(p, _weak_method(s.key))


@attack(AlgorithmNotAllowed, "a valid RSA-MD5 signature (just the URI for EC senders)")
def md5_signature(p: Parts, s: Sender) -> None:
    _signature_method(p, RSA_MD5)
    if isinstance(s.key, rsa.RSAPrivateKey):
        resign(p.envelope, s.key)


@attack(AlgorithmNotAllowed, "SHA-1 digests on every reference", resign=True)
def sha1_digests(p: Parts, s: Sender) -> None:
    _digest_methods(p, SHA1)


@attack(AlgorithmNotAllowed, "MD5 digests on every reference", resign=True)
def md5_digests(p: Parts, s: Sender) -> None:
    _digest_methods(p, MD5)


@attack(AlgorithmNotAllowed, "a DSA-SHA1 SignatureMethod")
def dsa_signature_method(p: Parts, s: Sender) -> None:
    _signature_method(p, DSA_SHA1)


def _hmac_with_public_key(p: Parts, s: Sender, uri: str) -> None:
    # The key-confusion attack: HMAC keyed with the (public) certificate key.
    _signature_method(p, uri)
    redigest(p.envelope)
    resign(p.envelope, _public_key_pem(s))


@attack(AlgorithmNotAllowed, "HMAC-SHA256 keyed with the certificate's public key")
def hmac_signature(p: Parts, s: Sender) -> None:
    _hmac_with_public_key(p, s, HMAC_SHA256)


@attack(AlgorithmNotAllowed, "HMAC-SHA1 truncated to 0 bits (CVE-2009-0217)")
def hmac_truncated(p: Parts, s: Sender) -> None:
    _hmac_with_public_key(p, s, HMAC_SHA1)
    method = p.signed_info.find(ns.DS_SIGNATURE_METHOD)
    assert method is not None
    etree.SubElement(method, ns.DS_HMAC_OUTPUT_LENGTH).text = "0"
    value = p.signature.find(ns.DS_SIGNATURE_VALUE)
    assert value is not None
    value.text = ""


@attack(AlgorithmNotAllowed, "inclusive C14N as CanonicalizationMethod", resign=True)
def inclusive_c14n(p: Parts, s: Sender) -> None:
    method = p.signed_info.find(ns.DS_C14N_METHOD)
    assert method is not None
    method.set("Algorithm", ns.C14N10)


@attack(
    AlgorithmNotAllowed, "exclusive C14N *with comments* as CanonicalizationMethod", resign=True
)
def c14n_with_comments(p: Parts, s: Sender) -> None:
    method = p.signed_info.find(ns.DS_C14N_METHOD)
    assert method is not None
    method.set("Algorithm", ns.EXC_C14N_WITH_COMMENTS)


@attack(AlgorithmNotAllowed, "C14N 1.1 as CanonicalizationMethod", resign=True)
def c14n11(p: Parts, s: Sender) -> None:
    method = p.signed_info.find(ns.DS_C14N_METHOD)
    assert method is not None
    method.set("Algorithm", ns.C14N11)


@attack(AlgorithmNotAllowed, "a reference without transforms (implies inclusive C14N)", resign=True)
def reference_without_transforms(p: Parts, s: Sender) -> None:
    ref = p.reference(p.body)
    transforms = ref.find(ns.DS_TRANSFORMS)
    assert transforms is not None
    ref.remove(transforms)


# Cryptographic failures -------------------------------------------------------------------------


@attack(SignatureInvalid, "the Body's content changed after signing")
def body_tampered(p: Parts, s: Sender) -> None:
    amount = next(p.body.iter("{urn:az:dsmf:insured-registration:v1}amount"), None)
    if amount is not None:
        amount.text = "1000000"
    else:
        etree.SubElement(p.body[0], "{urn:attacker}Extra").text = "x"


@attack(SignatureInvalid, "an attribute added to the Body after signing")
def body_attribute_added(p: Parts, s: Sender) -> None:
    p.body[0].set("injected", "1")


@attack(SignatureInvalid, "the Timestamp's Expires pushed out after signing")
def timestamp_tampered(p: Parts, s: Sender) -> None:
    expires = p.timestamp.find(ns.WSU_EXPIRES)
    assert expires is not None and expires.text
    expires.text = expires.text.replace(expires.text[:4], str(int(expires.text[:4]) + 1), 1)


@attack(SignatureInvalid, "the signed X-Road id changed after signing")
def xroad_header_tampered(p: Parts, s: Sender) -> None:
    message_id = p.header.find(ns.q(ns.XRD, "id"))
    assert message_id is not None
    message_id.text = "replayed-with-new-id"


@attack(SignatureInvalid, "one bit of the SignatureValue flipped")
def signature_value_tampered(p: Parts, s: Sender) -> None:
    value = p.signature.find(ns.DS_SIGNATURE_VALUE)
    assert value is not None and value.text
    raw = bytearray(base64.b64decode(value.text))
    raw[len(raw) // 2] ^= 0x01
    value.text = base64.b64encode(bytes(raw)).decode()


@attack(SignatureInvalid, "a DigestValue replaced without re-signing")
def digest_value_tampered(p: Parts, s: Sender) -> None:
    value = p.reference(p.body).find(ns.DS_DIGEST_VALUE)
    assert value is not None
    value.text = base64.b64encode(hashlib.sha256(b"forged").digest()).decode()


@attack(SignatureInvalid, "re-signed with another key under the sender's certificate")
def wrong_key(p: Parts, s: Sender) -> None:
    other: PrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if isinstance(s.key, rsa.RSAPrivateKey)
        else ec.generate_private_key(s.key.curve)
    )
    p.body[0].set("forged", "1")
    redigest(p.envelope)
    resign(p.envelope, other)


@attack(SignatureInvalid, "the SignatureMethod of the other key family (RSA <-> ECDSA)")
def method_key_mismatch(p: Parts, s: Sender) -> None:
    _signature_method(p, ECDSA_SHA256 if isinstance(s.key, rsa.RSAPrivateKey) else RSA_SHA256)


# Freshness ----------------------------------------------------------------------------------------


@attack(
    TimestampExpired,
    "signed 10 minutes ago with a 5-minute lifetime",
    sign_at=timedelta(minutes=-10),
)
def timestamp_expired(p: Parts, s: Sender) -> None:
    return None


@attack(TimestampInFuture, "signed 10 minutes in the future", sign_at=timedelta(minutes=10))
def timestamp_in_future(p: Parts, s: Sender) -> None:
    return None


@attack(TimestampExpired, "a one-hour timestamp lifetime", lifetime=timedelta(hours=1))
def timestamp_too_long(p: Parts, s: Sender) -> None:
    return None


# Variants a verifier must still ACCEPT (robustness, not attacks) ---------------------------------

Variant = Callable[[etree._Element, Sender], bytes]
ACCEPTED: dict[str, Variant] = {}


def accepted(variant: Variant) -> Variant:
    ACCEPTED[variant.__name__] = variant
    return variant


@accepted
def unused_namespaces_injected(envelope: etree._Element, s: Sender) -> bytes:
    """Namespace declarations added on and around signed elements do not change exc-C14N."""
    data = serialize(envelope)
    data = re.sub(rb"<([A-Za-z0-9_]+:)?Body\b", rb'\g<0> xmlns:evil="urn:attacker"', data, count=1)
    data = re.sub(rb"<([A-Za-z0-9_]+:)?Envelope\b", rb'\g<0> xmlns:more="urn:more"', data, count=1)
    return data


def _splice_comment(element: etree._Element, at: int) -> None:
    """``<x>abcdef</x>`` → ``<x>abc<!-- x -->def</x>``: invisible to comment-free C14N."""
    text = element.text or ""
    element.text = text[:at]
    comment = etree.Comment(" x ")
    comment.tail = text[at:]
    element.insert(0, comment)


@accepted
def comment_in_digest_value(envelope: etree._Element, s: Sender) -> bytes:
    """CVE-2025-29774 shape; the parser drops comments, so the value read is the signed one."""
    p = parts(envelope)
    value = p.reference(p.body).find(ns.DS_DIGEST_VALUE)
    assert value is not None
    _splice_comment(value, 8)
    return serialize(envelope)


@accepted
def comment_in_signature_value(envelope: etree._Element, s: Sender) -> bytes:
    p = parts(envelope)
    value = p.signature.find(ns.DS_SIGNATURE_VALUE)
    assert value is not None
    _splice_comment(value, 10)
    return serialize(envelope)


@accepted
def comment_truncation_in_signed_text(envelope: etree._Element, s: Sender) -> bytes:
    """CVE-2017-11427 shape: a comment splits the signed X-Road id and a Body value.

    Accepted (the signature holds), and what the verifier returns reads the whole values.
    """
    p = parts(envelope)
    message_id = p.header.find(ns.q(ns.XRD, "id"))
    assert message_id is not None
    _splice_comment(message_id, 3)
    for element in p.body.iter():
        if isinstance(element.tag, str) and element.text and len(element.text) > 2:
            _splice_comment(element, 2)
            break
    return serialize(envelope)


@accepted
def comments_and_whitespace(envelope: etree._Element, s: Sender) -> bytes:
    """Comments inside signed elements are not part of comment-free C14N; nor is layout outside."""
    p = parts(envelope)
    p.body.insert(0, etree.Comment(" a comment in the Body "))
    p.header.text = "\n  "
    p.security.text = "\n    "
    return serialize(envelope)


@accepted
def inclusive_prefix_list(envelope: etree._Element, s: Sender) -> bytes:
    """exc-C14N with an InclusiveNamespaces PrefixList (what WSS4J often sends)."""
    p = parts(envelope)
    for transform in p.signed_info.iter(ns.DS_TRANSFORM):
        etree.SubElement(
            transform, ns.EC_INCLUSIVE_NAMESPACES, nsmap={"ec": ns.EC}, PrefixList="soapenv xrd"
        )
    for ref in p.signed_info.iter(ns.DS_REFERENCE):
        target = _find_by_id(envelope, (ref.get("URI") or "#")[1:])
        data = etree.tostring(
            target, method="c14n", exclusive=True, inclusive_ns_prefixes=["soapenv", "xrd"]
        )
        value = ref.find(ns.DS_DIGEST_VALUE)
        assert value is not None
        value.text = base64.b64encode(hashlib.sha256(data).digest()).decode()
    resign(envelope, s.key)
    return serialize(envelope)


@accepted
def reparsed_and_pretty_printed_outside(envelope: etree._Element, s: Sender) -> bytes:
    """The same message after a round trip through another serializer."""
    return etree.tostring(
        etree.fromstring(serialize(envelope)), xml_declaration=True, encoding="UTF-8"
    )


def _resigned(envelope: etree._Element, s: Sender) -> bytes:
    refresh(envelope, s)
    return serialize(envelope)


@accepted
def enveloped_transform_on_every_reference(envelope: etree._Element, s: Sender) -> bytes:
    """node-soap's WSSecurityCert default: enveloped-signature, then exc-C14N, on detached
    references, where it removes nothing."""
    p = parts(envelope)
    for ref in p.signed_info.iter(ns.DS_REFERENCE):
        _set_transforms(ref, [ns.ENVELOPED_SIGNATURE, ns.EXC_C14N])
    return _resigned(envelope, s)


@accepted
def timestamp_without_expires(envelope: etree._Element, s: Sender) -> bytes:
    """Expires is optional in WS-Security; the policy's maximum lifetime bounds the message."""
    p = parts(envelope)
    expires = p.timestamp.find(ns.WSU_EXPIRES)
    assert expires is not None
    p.timestamp.remove(expires)
    return _resigned(envelope, s)


@accepted
def xroad_headers_not_signed(envelope: etree._Element, s: Sender) -> bytes:
    """Stock zeep and node-soap sign only the Body and the Timestamp."""
    p = parts(envelope)
    for local in DEFAULT_HEADERS:
        element = p.header.find(ns.q(ns.XRD, local))
        if element is not None:
            p.signed_info.remove(p.reference(element))
            del element.attrib[ns.WSU_ID]
    return _resigned(envelope, s)


@accepted
def extra_reference_to_token(envelope: etree._Element, s: Sender) -> bytes:
    """What WSS4J and WCF do when asked to protect the token."""
    p = parts(envelope)
    add_reference(p, p.token)
    return _resigned(envelope, s)


@accepted
def extra_reference_to_custom_header(envelope: etree._Element, s: Sender) -> bytes:
    """Another header block signed along (e.g. WS-Addressing headers)."""
    p = parts(envelope)
    extra = etree.SubElement(p.header, "{http://www.w3.org/2005/08/addressing}MessageID")
    extra.text = "urn:uuid:" + str(uuid.uuid4())
    add_reference(p, extra)
    return _resigned(envelope, s)


@accepted
def plain_id_on_body(envelope: etree._Element, s: Sender) -> bytes:
    """xml-crypto's default id attribute: ``Id`` without a namespace."""
    p = parts(envelope)
    value = p.body.attrib.pop(ns.WSU_ID)
    p.body.set("Id", value)
    return _resigned(envelope, s)


@accepted
def key_reference_by_issuer_serial(envelope: etree._Element, s: Sender) -> bytes:
    """WSS4J's default key reference (with the token in the message)."""
    p = parts(envelope)
    _key_reference(p, _issuer_serial(s.certificate.issuer, s.certificate.serial_number))
    return serialize(envelope)


@accepted
def key_reference_by_ski(envelope: etree._Element, s: Sender) -> bytes:
    p = parts(envelope)
    _key_reference(p, _key_identifier(ns.X509_SKI, _ski(s.certificate)))
    return serialize(envelope)


@accepted
def key_reference_by_thumbprint(envelope: etree._Element, s: Sender) -> bytes:
    p = parts(envelope)
    _key_reference(p, _key_identifier(ns.THUMBPRINT_SHA1, _thumbprint(s.certificate)))
    return serialize(envelope)


def craft_accepted(
    name: str, sender: Sender, *, now: datetime | None = None, base: Base | None = None
) -> bytes:
    return ACCEPTED[name](signed(sender, now=now, base=base), sender)
