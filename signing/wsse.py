"""Signing SOAP envelopes (WS-Security) and standalone documents (enveloped XML-DSig).

What :func:`sign_envelope` produces — the profile :class:`signing.verifier.EnvelopeVerifier`
accepts, and what xmlsec1, signxml, Santuario/WSS4J and zeep verify::

    <soapenv:Header>
      ...X-Road headers, each with a wsu:Id...
      <wsse:Security soapenv:mustUnderstand="1">   (requests; answers: must_understand=False)
        <wsu:Timestamp wsu:Id="TS-…"><wsu:Created/><wsu:Expires/></wsu:Timestamp>
        <wsse:BinarySecurityToken wsu:Id="X509-…" ValueType="…#X509v3"
                                  EncodingType="…#Base64Binary">MII…</wsse:BinarySecurityToken>
        <ds:Signature>
          <ds:SignedInfo>  exclusive C14N; one Reference per signed element, each with the
                           exclusive C14N transform only (Timestamp, X-Road headers, Body)
          <ds:SignatureValue/>
          <ds:KeyInfo><wsse:SecurityTokenReference><wsse:Reference URI="#X509-…"/>…
        </ds:Signature>
      </wsse:Security>
    </soapenv:Header>

Signing is split in two so a remote signer (Asan İmza: the digest goes to a phone, the value
comes back minutes later) completes the very same structure: :func:`prepare_envelope_signature`
builds everything but the ``SignatureValue`` and returns a :class:`PendingSignature` holding the
canonical ``SignedInfo`` bytes (and their digest); :func:`complete_signature` checks the value
against the certificate and inserts it. :func:`sign_envelope` is both steps with a local
:class:`~signing.signer.Signer`. Documents (the notice, a stored application) get the same pair:
:func:`prepare_document_signature` / :func:`sign_document`.

The envelope or document is modified in place and returned.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from signing import ns
from signing.algorithms import (
    DigestMethod,
    SignatureMethod,
    check_method_fits_key,
    default_method_for,
    ecdsa_der_to_raw,
    ecdsa_raw_to_der,
)
from signing.errors import ConfigurationError, SignatureCreationError
from signing.parser import canonicalize
from signing.policy import DEFAULT_SIGNED_HEADERS
from signing.signer import Signer

__all__ = [
    "PendingSignature",
    "complete_envelope_signature",
    "complete_signature",
    "enveloped_canonical",
    "format_timestamp",
    "prepare_document_signature",
    "prepare_envelope_signature",
    "sign_document",
    "sign_envelope",
]

QNameLike = str | etree.QName

DEFAULT_LIFETIME = timedelta(seconds=300)

_HASHLIB_NAMES = {
    DigestMethod.SHA256: "sha256",
    DigestMethod.SHA384: "sha384",
    DigestMethod.SHA512: "sha512",
}


@dataclass(frozen=True)
class PendingSignature:
    """A signature built up to its value: what a (remote) signer must sign.

    Attributes:
        root: the envelope or document the signature belongs to (returned on completion).
        signature: the ``ds:Signature`` element, its ``SignatureValue`` still empty.
        signed_info: exclusive-C14N bytes of ``ds:SignedInfo`` — the data to sign.
        method: the signature method announced in ``SignedInfo``.
        certificate: the certificate named in ``KeyInfo``; the value is checked against it.
    """

    root: etree._Element
    signature: etree._Element
    signed_info: bytes
    method: SignatureMethod
    certificate: x509.Certificate

    @property
    def digest(self) -> bytes:
        """Hash of :attr:`signed_info` with the method's digest: what a remote signer signs."""
        h = hashes.Hash(self.method.hash_algorithm())
        h.update(self.signed_info)
        return h.finalize()


def format_timestamp(moment: datetime) -> str:
    """``xs:dateTime`` in UTC with milliseconds and ``Z``, as WS-Security peers expect."""
    if moment.tzinfo is None:
        raise ConfigurationError("timestamps must be timezone-aware")
    u = moment.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )


def new_id(prefix: str) -> str:
    """A fresh, unguessable NCName for a ``wsu:Id``."""
    return f"{prefix}-{secrets.token_hex(12)}"


@lru_cache(maxsize=64)
def _certificate_text(certificate: x509.Certificate) -> str:
    """Base64 DER of a certificate (cached: encoding it costs more than an ECDSA signature)."""
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")


# --- envelopes -----------------------------------------------------------------------------


def sign_envelope(
    envelope: etree._Element,
    signer: Signer,
    *,
    method: SignatureMethod | None = None,
    digest: DigestMethod = DigestMethod.SHA256,
    now: datetime | None = None,
    lifetime: timedelta = DEFAULT_LIFETIME,
    sign_headers: Sequence[QNameLike] | None = None,
    must_understand: bool = True,
) -> etree._Element:
    """Add a WS-Security header with a timestamp, the signer's token and one signature.

    ``sign_headers`` defaults to every X-Road header present
    (:data:`~signing.policy.DEFAULT_SIGNED_HEADERS`). ``must_understand=False`` leaves
    ``soapenv:mustUnderstand`` off the Security header: right for answers, since a plain client
    (JAX-WS without a WS-Security handler) must fail on a mustUnderstand header it does not
    process (SOAP 1.1 §4.2.3), and nothing obliges a client to verify.
    """
    pending = prepare_envelope_signature(
        envelope,
        signer.certificate,
        chain=signer.chain,
        method=method,
        digest=digest,
        now=now,
        lifetime=lifetime,
        sign_headers=sign_headers,
        must_understand=must_understand,
    )
    return _insert_value(pending, signer.sign(pending.signed_info, pending.method))


def prepare_envelope_signature(
    envelope: etree._Element,
    certificate: x509.Certificate,
    *,
    chain: Sequence[x509.Certificate] = (),
    method: SignatureMethod | None = None,
    digest: DigestMethod = DigestMethod.SHA256,
    now: datetime | None = None,
    lifetime: timedelta = DEFAULT_LIFETIME,
    sign_headers: Sequence[QNameLike] | None = None,
    must_understand: bool = True,
) -> PendingSignature:
    """Build the Security header and ``SignedInfo`` for ``certificate``; sign it later.

    ``chain`` (issuing CAs, nearest first) travels as extra BinarySecurityTokens so a verifier
    that trusts only the root can build the path; self-signed roots are left out.
    """
    method = _method_for(certificate, method)
    if envelope.tag != ns.SOAP_ENVELOPE:
        raise ConfigurationError("sign_envelope needs a SOAP 1.1 Envelope")
    if lifetime <= timedelta(0):
        raise ConfigurationError("the timestamp lifetime must be positive")
    header = _header_of(envelope)
    body = _only_child(envelope, ns.SOAP_BODY, "Body")
    security = _security_of(header, must_understand)
    if security.find(ns.DS_SIGNATURE) is not None:
        raise ConfigurationError("the envelope already carries a signature")

    created = now if now is not None else datetime.now(UTC)
    # One random token per envelope; the prefixes keep the ids distinct within it.
    token = secrets.token_hex(12)
    token_id = f"X509-{token}"
    timestamp = security.find(ns.WSU_TIMESTAMP)
    parts = []
    if timestamp is None:
        parts.append(
            f'<wsu:Timestamp wsu:Id="TS-{token}"><wsu:Created>{format_timestamp(created)}'
            f"</wsu:Created><wsu:Expires>{format_timestamp(created + lifetime)}</wsu:Expires>"
            "</wsu:Timestamp>"
        )
    for index, cert in enumerate((certificate, *_intermediates(certificate, chain))):
        parts.append(
            f'<wsse:BinarySecurityToken EncodingType="{ns.BASE64_BINARY}" '
            f'ValueType="{ns.X509V3}" wsu:Id="{token_id if index == 0 else f"{token_id}-{index}"}"'
            f">{_certificate_text(cert)}</wsse:BinarySecurityToken>"
        )
    # Built as text and parsed once: an order of magnitude cheaper than element by element.
    for child in _fragment(
        f'<wsse:Security xmlns:wsse="{ns.WSSE}" xmlns:wsu="{ns.WSU}">{"".join(parts)}'
        "</wsse:Security>"
    ):
        security.append(child)
    if timestamp is None:
        timestamp = security.find(ns.WSU_TIMESTAMP)
        assert timestamp is not None

    targets: list[etree._Element] = [timestamp]
    targets.extend(_headers_to_sign(header, sign_headers))
    targets.append(body)
    prefixes = {"Timestamp": "TS", "Body": "Body"}
    references = []
    for element in targets:
        local = etree.QName(element).localname
        prefix = prefixes.get(local, f"id-{local}")
        element_id = _ensure_wsu_id(element, f"{prefix}-{token}")
        references.append((f"#{element_id}", _digest(canonicalize(element), digest)))

    signed_info = _canonical_signed_info(method, digest, references, transforms=())
    signature = _signature_element(
        signed_info,
        '<ds:KeyInfo><wsse:SecurityTokenReference xmlns:wsse="' + ns.WSSE + '">'
        f'<wsse:Reference URI="#{token_id}" ValueType="{ns.X509V3}"/>'
        "</wsse:SecurityTokenReference></ds:KeyInfo>",
    )
    security.append(signature)
    return PendingSignature(envelope, signature, signed_info, method, certificate)


def complete_signature(pending: PendingSignature, signature_value: bytes) -> etree._Element:
    """Insert ``signature_value`` (over :attr:`PendingSignature.signed_info`) and return the root.

    The value is checked against the certificate first, so a remote signer that answers with
    a value for different data (or a wrong key) is caught here, not by the peer. ECDSA values
    may come as raw ``r || s`` (XML-DSig) or DER; they are stored raw.
    """
    return _insert_value(pending, _normalised_value(pending, signature_value))


def _insert_value(pending: PendingSignature, value: bytes) -> etree._Element:
    # A local Signer's value is trusted as is (its contract: PKCS#1/PSS bytes or raw r || s);
    # checking it would cost an ECDSA verification per response for nothing.
    value_element = pending.signature.find(ns.DS_SIGNATURE_VALUE)
    if value_element is None or value_element.text:
        raise ConfigurationError("this signature has already been completed")
    value_element.text = base64.b64encode(value).decode("ascii")
    return pending.root


#: The name used by callers that only ever complete envelopes.
complete_envelope_signature = complete_signature


# --- standalone documents ------------------------------------------------------------------


def sign_document(
    element: etree._Element,
    signer: Signer,
    *,
    method: SignatureMethod | None = None,
    digest: DigestMethod = DigestMethod.SHA256,
) -> etree._Element:
    """Sign ``element`` (a document's root) with an enveloped signature as its last child."""
    pending = prepare_document_signature(
        element, signer.certificate, chain=signer.chain, method=method, digest=digest
    )
    return _insert_value(pending, signer.sign(pending.signed_info, pending.method))


def prepare_document_signature(
    element: etree._Element,
    certificate: x509.Certificate,
    *,
    chain: Sequence[x509.Certificate] = (),
    method: SignatureMethod | None = None,
    digest: DigestMethod = DigestMethod.SHA256,
) -> PendingSignature:
    """Build an enveloped signature over the whole document (``URI=""``); sign it later.

    Transforms are enveloped-signature then exclusive C14N; ``KeyInfo`` carries the signer's
    certificate and its issuing CAs in ``X509Data``, which every XML-DSig library reads.
    """
    method = _method_for(certificate, method)
    if element.getparent() is not None:
        raise ConfigurationError("sign_document signs a whole document: pass its root element")
    if any(el.tag == ns.DS_SIGNATURE for el in element.iter(ns.DS_SIGNATURE)):
        raise ConfigurationError("the document already carries a signature")
    # The digest is taken before the signature exists: the enveloped transform removes
    # exactly the element we are about to append (which gets no tail), so both are equal.
    reference = ("", _digest(canonicalize(element), digest))
    signed_info = _canonical_signed_info(
        method, digest, [reference], transforms=(ns.ENVELOPED_SIGNATURE,)
    )
    certificates = "".join(
        f"<ds:X509Certificate>{_certificate_text(cert)}</ds:X509Certificate>"
        for cert in (certificate, *_intermediates(certificate, chain))
    )
    signature = _signature_element(
        signed_info, f"<ds:KeyInfo><ds:X509Data>{certificates}</ds:X509Data></ds:KeyInfo>"
    )
    element.append(signature)
    return PendingSignature(element, signature, signed_info, method, certificate)


def enveloped_canonical(
    root: etree._Element, signature: etree._Element, inclusive_prefixes: Sequence[str] = ()
) -> bytes:
    """Exclusive C14N of ``root`` with ``signature`` removed (the enveloped-signature transform).

    Works on a copy, keeping the text that follows the signature, so the caller's tree is
    never touched.
    """
    path: list[int] = []
    node = signature
    while node is not root:
        parent = node.getparent()
        if parent is None:
            return canonicalize(root, inclusive_prefixes)  # not enveloped: nothing to remove
        path.append(parent.index(node))
        node = parent
    copy = deepcopy(root)
    target = copy
    for index in reversed(path):
        target = target[index]
    parent = target.getparent()
    assert parent is not None
    if target.tail:
        previous = target.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + target.tail
        else:
            parent.text = (parent.text or "") + target.tail
    parent.remove(target)
    return canonicalize(copy, inclusive_prefixes)


# --- helpers ---------------------------------------------------------------------------------


def _method_for(certificate: x509.Certificate, method: SignatureMethod | None) -> SignatureMethod:
    key = certificate.public_key()
    if method is None:
        return default_method_for(key)
    check_method_fits_key(method, key)
    return method


def _header_of(envelope: etree._Element) -> etree._Element:
    headers = envelope.findall(ns.SOAP_HEADER)
    if len(headers) > 1:
        raise ConfigurationError("the envelope has more than one SOAP Header")
    if headers:
        return headers[0]
    header = etree.Element(ns.SOAP_HEADER)
    envelope.insert(0, header)
    return header


def _only_child(parent: etree._Element, tag: str, what: str) -> etree._Element:
    found = parent.findall(tag)
    if len(found) != 1:
        raise ConfigurationError(f"the envelope must have exactly one {what}")
    return found[0]


def _security_of(header: etree._Element, must_understand: bool) -> etree._Element:
    found = header.findall(ns.WSSE_SECURITY)
    if len(found) > 1:
        raise ConfigurationError("the envelope has more than one wsse:Security header")
    security = (
        found[0]
        if found
        else etree.SubElement(header, ns.WSSE_SECURITY, nsmap={"wsse": ns.WSSE, "wsu": ns.WSU})
    )
    if must_understand:
        security.set(ns.SOAP_MUST_UNDERSTAND, "1")
    return security


def _headers_to_sign(
    header: etree._Element, sign_headers: Sequence[QNameLike] | None
) -> list[etree._Element]:
    if sign_headers is None:
        wanted = {ns.q(ns.XRD, local) for local in DEFAULT_SIGNED_HEADERS}
    else:
        wanted = {name.text if isinstance(name, etree.QName) else name for name in sign_headers}
    if ns.WSSE_SECURITY in wanted or ns.SOAP_BODY in wanted:
        raise ConfigurationError("the Security header and the Body are not header choices")
    return [child for child in header if isinstance(child.tag, str) and child.tag in wanted]


def _ensure_wsu_id(element: etree._Element, value: str) -> str:
    existing = element.get(ns.WSU_ID)
    if existing:
        if not _NCNAME.fullmatch(existing):
            raise ConfigurationError(f"wsu:Id {existing!r} is not an NCName")
        return existing
    element.set(ns.WSU_ID, value)
    return value


def _intermediates(
    certificate: x509.Certificate, chain: Iterable[x509.Certificate]
) -> list[x509.Certificate]:
    return [c for c in chain if c != certificate and c.subject != c.issuer]


_TEMPLATE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def _fragment(text: str) -> etree._Element:
    """Parse markup we generated ourselves (never peer input)."""
    return etree.fromstring(text, _TEMPLATE_PARSER)


def _digest(canonical: bytes, digest: DigestMethod) -> str:
    return base64.b64encode(hashlib.new(_HASHLIB_NAMES[digest], canonical).digest()).decode()


def _canonical_signed_info(
    method: SignatureMethod,
    digest: DigestMethod,
    references: Sequence[tuple[str, str]],
    *,
    transforms: Sequence[str],
) -> bytes:
    """``ds:SignedInfo`` written directly in exclusive-C14N form: the exact bytes to sign.

    Canonical form here is simple and fixed: the ``ds`` declaration on the root, one attribute
    per element, start and end tags for empty elements, no whitespace; URIs and ids are checked
    to need no escaping. Tests compare it with lxml's canonicalization of the inserted element.
    """
    transform_markup = "".join(
        f'<ds:Transform Algorithm="{algorithm}"></ds:Transform>'
        for algorithm in (*transforms, ns.EXC_C14N)
    )
    reference_markup = "".join(
        f'<ds:Reference URI="{uri}"><ds:Transforms>{transform_markup}</ds:Transforms>'
        f'<ds:DigestMethod Algorithm="{digest.value}"></ds:DigestMethod>'
        f"<ds:DigestValue>{value}</ds:DigestValue></ds:Reference>"
        for uri, value in references
    )
    return (
        f'<ds:SignedInfo xmlns:ds="{ns.DS}">'
        f'<ds:CanonicalizationMethod Algorithm="{ns.EXC_C14N}"></ds:CanonicalizationMethod>'
        f'<ds:SignatureMethod Algorithm="{method.value}"></ds:SignatureMethod>'
        f"{reference_markup}</ds:SignedInfo>"
    ).encode("ascii")


def _signature_element(signed_info: bytes, key_info: str) -> etree._Element:
    inner = signed_info.decode("ascii").replace(f' xmlns:ds="{ns.DS}"', "", 1)
    return _fragment(
        f'<ds:Signature xmlns:ds="{ns.DS}">{inner}<ds:SignatureValue></ds:SignatureValue>'
        f"{key_info}</ds:Signature>"
    )


def _normalised_value(pending: PendingSignature, value: bytes) -> bytes:
    key = pending.certificate.public_key()
    method = pending.method
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            size = (key.curve.key_size + 7) // 8
            raw = value if len(value) == 2 * size else ecdsa_der_to_raw(value, key.curve.key_size)
            key.verify(
                ecdsa_raw_to_der(raw), pending.signed_info, ec.ECDSA(method.hash_algorithm())
            )
            return raw
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(value, pending.signed_info, method.rsa_padding(), method.hash_algorithm())
            return value
    except (InvalidSignature, ValueError) as exc:
        raise SignatureCreationError(
            "the signature value does not verify with the signer's certificate"
        ) from exc
    raise ConfigurationError(f"unsupported key type {type(key).__name__}")
