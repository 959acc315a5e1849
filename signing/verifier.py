"""Verifying signed SOAP envelopes (WS-Security) and signed standalone documents.

A lean verifier over lxml's exclusive C14N and ``cryptography``: it re-serialises nothing, looks
nothing up twice, and runs in the order of DESIGN §2, each step refusing with its own error:

1. **structure** — the envelope is SOAP 1.1 with exactly one Header and one Body (its direct
   children, nothing else there), one ``wsse:Security`` in the Header, one ``ds:Signature`` in the
   whole document and that one a child of ``wsse:Security``; every ``Id``/``ID``/``wsu:Id``/
   ``xml:id`` value unique; the references cover the Body, the Timestamp and the present X-Road
   headers the policy requires signed (``userId``, ``requestHash``), and may also name other
   header blocks (direct children of Header) and the tokens, each found only at its pinned place
   by ``wsu:Id`` (or a plain ``Id``) — anything else is :class:`SignatureWrapping`; only the
   policy's algorithms (:class:`AlgorithmNotAllowed`) and transforms (the enveloped-signature
   transform only where it is a no-op), no ``Manifest``/``Object``/``RetrievalMethod``/XSLT/XPath
   (:class:`TransformNotAllowed`); a well-formed Security header with a timestamp and an X.509
   token that ``KeyInfo`` names — by reference, subjectKeyIdentifier, SHA-1 thumbprint or
   issuer and serial, always a token in this message (:class:`SecurityHeaderMalformed`,
   :class:`SignatureMissing`);
2. **certificate** — the token's path to the trust list at the verification time
   (:class:`~signing.errors.CertificateError` subclasses, from the trust store);
3. **cryptography** — key strength (:class:`WeakKey`), the signature over the canonical
   ``SignedInfo``, then each reference's digest over the element found in step 1
   (:class:`SignatureInvalid`);
4. **freshness** — ``Created``/``Expires`` against the clock with the policy's skew and maximum
   lifetime; no ``Expires`` means ``Created`` + the maximum (:class:`TimestampInFuture`,
   :class:`TimestampExpired`);
5. **replay** — the signed X-Road ``id`` in the replay cache, or the signature value itself when
   the ``id`` is not signed (:class:`ReplayDetected`).

Inside ``ds:Signature`` the algorithms are read first (signature, canonicalization, every
digest method), then ``Object``/``Manifest``/transforms/URIs, so a peer signing outside the profile
learns the most useful reason. A ``SignedInfo`` whose canonical form is the profile's plain shape
(what our signer, the zeep plugin and most WS-Security stacks send) is read by one regular
expression over its canonical bytes — the same bytes then verified — and anything else by the
full element-by-element reader, which alone decides every refusal: the fast reader only ever
accepts, with the policy's URIs, or hands over (the tests run each attack and combinations of
them through both).

What the caller gets back (:class:`VerifiedMessage`) holds the very elements whose digests were
checked — never a second lookup in a tree an attacker shaped — so "trust only what ``verify``
returns" is the whole rule for the gateway. The replay cache sees only messages that passed
every other check, so a :class:`ReplayDetected` for a message id is safe to answer with the
stored response (idempotent retry) if the caller keeps one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from signing import ns
from signing.algorithms import (
    ALLOWED_CURVES,
    DigestMethod,
    KeyAlgorithm,
    SignatureMethod,
    ecdsa_raw_to_der,
)
from signing.errors import (
    AlgorithmNotAllowed,
    ConfigurationError,
    ReplayDetected,
    SecurityHeaderMalformed,
    SignatureInvalid,
    SignatureMissing,
    SignatureWrapping,
    TimestampExpired,
    TimestampInFuture,
    TokenLimitExceeded,
    TransformNotAllowed,
    WeakKey,
)
from signing.parser import canonicalize
from signing.policy import SecurityPolicy
from signing.wsse import enveloped_canonical

__all__ = [
    "CertificateValidator",
    "EnvelopeVerifier",
    "InMemoryReplayCache",
    "ReplayCache",
    "VerifiedDocument",
    "VerifiedMessage",
]

# --- ports -------------------------------------------------------------------------------------


class CertificateValidator(Protocol):
    """What the verifier needs of :class:`signing.trust.TrustStore`."""

    def validate(
        self,
        certificate: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        at: datetime,
    ) -> object:
        """Return the validated path or raise a :class:`~signing.errors.CertificateError`."""
        ...


class ReplayCache(Protocol):
    """Remembers message ids until they expire (the database table in production)."""

    def remember(self, message_id: str, expires_at: datetime) -> bool:
        """Record ``message_id``; True if it is new, False if it was seen before."""
        ...


class InMemoryReplayCache:
    """A process-local :class:`ReplayCache` for tests and single-process tools."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._seen: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def remember(self, message_id: str, expires_at: datetime) -> bool:
        with self._lock:
            now = self._clock()
            if len(self._seen) > 10_000:
                self._seen = {k: v for k, v in self._seen.items() if v >= now}
            previous = self._seen.get(message_id)
            if previous is not None and previous >= now:
                return False
            self._seen[message_id] = expires_at
            return True


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedMessage:
    """A verified envelope. Use only these elements: they are the ones that were digested.

    Attributes:
        envelope: the whole envelope (for logging and the message log, not for reading data).
        body: the signed ``soap:Body``.
        signed_headers: X-Road header local name → the signed header element.
        certificate: the signer's certificate (validated against the trust list).
        intermediates: the other X.509 tokens the message carried.
        signed_at: the signed ``wsu:Created``.
        message_id: the signed X-Road ``id`` header's text, if present.
        expires_at: the signed ``wsu:Expires`` (``Created`` + the policy's maximum lifetime
            when the Timestamp has no ``Expires``).
        signature_method: the signature algorithm that was verified.
        replay_id: what replay protection keys on: the signed X-Road ``id``, or, when the
            ``id`` is not signed, ``signature:`` + the SHA-256 of the signature value.
    """

    envelope: etree._Element
    body: etree._Element
    signed_headers: Mapping[str, etree._Element]
    certificate: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    signed_at: datetime
    message_id: str | None
    expires_at: datetime | None = None
    signature_method: SignatureMethod | None = None
    replay_id: str = ""


@dataclass(frozen=True)
class VerifiedDocument:
    """A verified standalone document: ``document`` is the signed root element."""

    document: etree._Element
    certificate: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    signature_method: SignatureMethod
    verified_at: datetime


# --- the parts read from a Signature -----------------------------------------------------------


@dataclass
class _Reference:
    uri: str
    digest_method: DigestMethod
    digest_value: bytes
    inclusive_prefixes: tuple[str, ...]
    enveloped: bool
    target: etree._Element | None = None


@dataclass
class _Signature:
    element: etree._Element
    signed_info: etree._Element
    method: SignatureMethod
    c14n_prefixes: tuple[str, ...]
    value: bytes
    key_info: etree._Element | None
    references: list[_Reference] = field(default_factory=list)
    canonical: bytes | None = None  # exc-C14N of SignedInfo, when already computed


_NCNAME_REF = re.compile(r"#([A-Za-z_][A-Za-z0-9_.\-]*)")
_XS_DATETIME = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})"
)
_ID_VALUES = etree.XPath(
    "//@*[local-name()='Id' or local-name()='ID'] | //@xml:id", smart_strings=False
)
_PREFIX_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")

_HASHLIB_NAMES = {
    DigestMethod.SHA256: "sha256",
    DigestMethod.SHA384: "sha384",
    DigestMethod.SHA512: "sha512",
}
_HMAC_MARKERS = ("hmac",)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EnvelopeVerifier:
    """Verifies signed envelopes and documents against one trust list and one policy.

    Thread-safe and stateless apart from the replay cache; build one at start-up.
    """

    def __init__(
        self,
        trust: CertificateValidator,
        policy: SecurityPolicy | None = None,
        replay: ReplayCache | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._trust = trust
        self._policy = policy if policy is not None else SecurityPolicy()
        self._replay = replay
        self._clock = clock

    @property
    def policy(self) -> SecurityPolicy:
        return self._policy

    # --- envelopes ---------------------------------------------------------------------------

    def verify(self, envelope: etree._Element) -> VerifiedMessage:
        """Verify a signed SOAP 1.1 envelope; refuse it with a specific error otherwise."""
        policy = self._policy
        # 1. structure
        header, body, security, signature_el = _envelope_parts(envelope)
        _check_unique_ids(envelope)
        sig = _read_signature(signature_el, policy, document=False)
        timestamp = _single_child(security, ns.WSU_TIMESTAMP, "wsu:Timestamp")
        xroad = _xroad_headers(header)
        tokens = [c for c in security if c.tag == ns.WSSE_BST]
        # What a reference may name: each at its pinned place, nothing else. Ids are unique in
        # the whole document, so an id found here names this very element.
        required: list[tuple[str, etree._Element]] = [("Body", body), ("Timestamp", timestamp)]
        required += [(local, el) for local, el in xroad.items()
                     if local in policy.required_header_refs]
        allowed: dict[str, etree._Element] = {}
        for role, element in required:
            if not _element_ids(element):
                raise SignatureWrapping(f"{role} carries no wsu:Id, so it cannot be signed")
        for element in (body, timestamp, *tokens, *(c for c in header if c is not security)):
            if isinstance(element.tag, str):
                for element_id in _element_ids(element):
                    allowed[element_id] = element
        signed: set[etree._Element] = set()
        for ref in sig.references:
            match = _NCNAME_REF.fullmatch(ref.uri)
            if match is None:
                raise SignatureWrapping(f"reference {ref.uri!r} is not a same-document #id")
            target_id = match.group(1)
            target = allowed.get(target_id)
            if target is None:
                if ref.enveloped and _contains_signature(target_id, signature_el):
                    raise TransformNotAllowed(
                        f"the enveloped-signature transform on #{target_id} would remove the "
                        "signature (accepted only where it is a no-op)"
                    )
                raise SignatureWrapping(
                    f"reference #{target_id} is not the Body, the Timestamp, a header block "
                    "or a token"
                )
            if target in signed:
                raise SignatureWrapping(f"element #{target_id} is referenced twice")
            signed.add(target)
            ref.target = target
        missing = [role for role, element in required if element not in signed]
        if missing:
            raise SignatureWrapping(f"not covered by the signature: {', '.join(missing)}")
        signed_xroad = {local: el for local, el in xroad.items() if el in signed}
        certificate, intermediates = _token_certificates(tokens, sig.key_info, policy)
        created, expires = _read_timestamp(timestamp, policy.max_timestamp_lifetime)

        # 2. certificate path
        now = self._now()
        self._trust.validate(certificate, intermediates, at=now)
        # 3. cryptography
        _check_signature(sig, certificate, policy)
        # 4. freshness
        skew = policy.clock_skew
        if created > now + skew:
            raise TimestampInFuture(f"the timestamp was created in the future ({created})")
        if expires < now - skew:
            raise TimestampExpired(f"the timestamp expired at {expires}")
        if expires - created > policy.max_timestamp_lifetime:
            raise TimestampExpired(
                f"timestamp lifetime {expires - created} exceeds {policy.max_timestamp_lifetime}"
            )
        # 5. replay: on the signed id, or on the signature itself when the id is not signed
        # (an unsigned id can be changed by anyone who saw the message; the signature cannot).
        id_header = signed_xroad.get("id")
        message_id = _string_value(id_header).strip() if id_header is not None else None
        replay_id = message_id or "signature:" + base64.b64encode(
            hashlib.sha256(sig.value).digest()
        ).decode("ascii")
        if self._replay is not None:
            if not self._replay.remember(replay_id, expires + skew):
                raise ReplayDetected(f"message {replay_id!r} was already received")
        return VerifiedMessage(
            envelope=envelope,
            body=body,
            signed_headers=MappingProxyType(signed_xroad),
            certificate=certificate,
            intermediates=intermediates,
            signed_at=created,
            message_id=message_id,
            expires_at=expires,
            signature_method=sig.method,
            replay_id=replay_id,
        )

    # --- documents ---------------------------------------------------------------------------

    def verify_document(
        self, element: etree._Element, *, at: datetime | None = None
    ) -> VerifiedDocument:
        """Verify an enveloped signature over the standalone document rooted at ``element``.

        The one ``ds:Signature`` must be a direct child of ``element`` with one reference to the
        whole document (``URI=""`` or ``#`` + the root's id), transforms enveloped-signature then
        exclusive C14N, and the signer's certificate in ``KeyInfo/X509Data``. The certificate
        is validated at ``at`` (default: now) — pass the time of receipt for a stored document.
        """
        policy = self._policy
        signatures = list(element.iter(ns.DS_SIGNATURE))
        if not signatures:
            raise SignatureMissing("no ds:Signature")
        if len(signatures) > 1:
            raise SignatureWrapping("more than one ds:Signature")
        signature_el = signatures[0]
        _check_unique_ids(element)
        sig = _read_signature(signature_el, policy, document=True)
        if signature_el.getparent() is not element:
            raise SignatureWrapping("the signature is not a direct child of the signed document")
        if len(sig.references) != 1:
            raise SignatureWrapping("a document signature has exactly one reference")
        ref = sig.references[0]
        root_ids = {str(v) for k, v in element.attrib.items() if _is_id_attribute(str(k))}
        if ref.uri != "":
            match = _NCNAME_REF.fullmatch(ref.uri)
            if match is None:
                raise SignatureWrapping(f"reference {ref.uri!r} is not a same-document #id")
            if match.group(1) not in root_ids:
                raise SignatureWrapping(f"reference {ref.uri!r} is not the signed document")
        if not ref.enveloped:
            raise SignatureInvalid("an enveloped signature needs the enveloped-signature transform")
        ref.target = element
        certificate, intermediates = _x509_data_certificates(sig.key_info)

        when = at if at is not None else self._now()
        self._trust.validate(certificate, intermediates, at=when)
        _check_signature(sig, certificate, policy, enveloped_in=element)
        return VerifiedDocument(element, certificate, intermediates, sig.method, when)

    # --- structural pieces -------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ConfigurationError("the verifier's clock must return timezone-aware datetimes")
        return now


def _envelope_parts(
    envelope: etree._Element,
) -> tuple[etree._Element, etree._Element, etree._Element, etree._Element]:
    """Header, Body, Security and Signature, each the only one of its kind, at its place."""
    if envelope.tag != ns.SOAP_ENVELOPE:
        raise SecurityHeaderMalformed("not a SOAP 1.1 Envelope")
    children = [c for c in envelope if isinstance(c.tag, str)]
    if not any(c.tag == ns.SOAP_HEADER for c in children):
        raise SignatureMissing("the envelope has no SOAP Header, so no WS-Security signature")
    if [c.tag for c in children] != [ns.SOAP_HEADER, ns.SOAP_BODY]:
        raise SignatureWrapping("the envelope must be exactly one Header followed by one Body")
    header, body = children
    # One pass over the tree finds every copy an attacker might have hidden elsewhere.
    found: dict[str, list[etree._Element]] = {
        ns.SOAP_BODY: [],
        ns.WSSE_SECURITY: [],
        ns.DS_SIGNATURE: [],
    }
    for element in envelope.iter(ns.SOAP_BODY, ns.WSSE_SECURITY, ns.DS_SIGNATURE):
        found[element.tag].append(element)
    if len(found[ns.SOAP_BODY]) != 1:
        raise SignatureWrapping("a second soap:Body is nested in the envelope")
    securities = found[ns.WSSE_SECURITY]
    if not securities:
        raise SignatureMissing("no wsse:Security header")
    if len(securities) > 1:
        raise SignatureWrapping("more than one wsse:Security element")
    security = securities[0]
    if security.getparent() is not header:
        raise SignatureWrapping("the wsse:Security element is not a SOAP header")
    signatures = found[ns.DS_SIGNATURE]
    if not signatures:
        raise SignatureMissing("no ds:Signature")
    if len(signatures) > 1:
        raise SignatureWrapping("more than one ds:Signature")
    if signatures[0].getparent() is not security:
        raise SignatureWrapping("the ds:Signature is not a child of wsse:Security")
    return header, body, security, signatures[0]


def _xroad_headers(header: etree._Element) -> dict[str, etree._Element]:
    """The X-Road headers (direct children of Header), each at most once, by local name."""
    found: dict[str, etree._Element] = {}
    for child in header:
        if not isinstance(child.tag, str) or not child.tag.startswith("{" + ns.XRD + "}"):
            continue
        local = child.tag[len(ns.XRD) + 2 :]
        if local in found:
            raise SignatureWrapping(f"X-Road header {local!r} appears twice")
        found[local] = child
    return found


def _element_ids(element: etree._Element) -> tuple[str, ...]:
    """The ids a reference may name an element by: ``wsu:Id``, or a plain ``Id`` (xml-crypto's
    default). Both are in the document-wide uniqueness check, so neither can be shadowed."""
    return tuple(v for v in (element.get(ns.WSU_ID), element.get("Id")) if v)


def _contains_signature(element_id: str, signature: etree._Element) -> bool:
    """Whether the element carrying ``element_id`` is an ancestor of ``signature``."""
    for ancestor in signature.iterancestors():
        if element_id in {str(v) for k, v in ancestor.attrib.items() if _is_id_attribute(str(k))}:
            return True
    return False


# --- reading a ds:Signature (no cryptography yet) -------------------------------------------


def _element_children(element: etree._Element) -> list[etree._Element]:
    return list(element.iterchildren("*"))


def _single_child(parent: etree._Element, tag: str, what: str) -> etree._Element:
    found = [c for c in parent if c.tag == tag]
    if not found:
        raise SecurityHeaderMalformed(f"{what} is missing")
    if len(found) > 1:
        raise SignatureWrapping(f"more than one {what}")
    return found[0]


_STRING_VALUE = etree.XPath("string()")


def _string_value(element: etree._Element) -> str:
    """All text of ``element`` (XPath string-value): what C14N signs, comments or not."""
    return str(_STRING_VALUE(element))


def _pure_text(element: etree._Element, what: str) -> str:
    """The text of a value element that must hold nothing but text (no comments, no children).

    A comment inside ``DigestValue`` is the CVE-2025-29774 trick: a reader taking the first
    text node gets a different value than the canonical form the signer signed.
    """
    if len(element):
        raise SecurityHeaderMalformed(f"{what} must contain only text (found a comment or element)")
    return element.text or ""


def _base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecurityHeaderMalformed(f"{what} is not valid base64") from exc


def _algorithm(element: etree._Element, what: str) -> str:
    algorithm = element.get("Algorithm")
    if not algorithm:
        raise SecurityHeaderMalformed(f"{what} has no Algorithm")
    return algorithm


def _inclusive_prefixes(element: etree._Element, what: str) -> tuple[str, ...]:
    prefixes: tuple[str, ...] = ()
    children = _element_children(element)
    for child in children:
        if child.tag != ns.EC_INCLUSIVE_NAMESPACES or len(children) > 1:
            raise TransformNotAllowed(f"{what} has unexpected parameters ({child.tag})")
        tokens = tuple((child.get("PrefixList") or "").split())
        if "#default" in tokens:
            raise TransformNotAllowed("InclusiveNamespaces '#default' is not supported")
        if not all(_PREFIX_TOKEN.fullmatch(t) for t in tokens):
            raise SecurityHeaderMalformed("InclusiveNamespaces PrefixList is not a prefix list")
        prefixes = tokens
    return prefixes


def _read_signature(
    signature: etree._Element, policy: SecurityPolicy, *, document: bool
) -> _Signature:
    if not document:
        fast = _read_plain_signature(signature, policy)
        if fast is not None:
            return fast
    return _read_full_signature(signature, policy, document=document)


def _read_full_signature(
    signature: etree._Element, policy: SecurityPolicy, *, document: bool
) -> _Signature:
    """Every part of ``ds:Signature`` read element by element; decides every refusal."""
    children = _element_children(signature)
    tags = [c.tag for c in children]
    for tag in (ns.DS_SIGNED_INFO, ns.DS_SIGNATURE_VALUE, ns.DS_KEY_INFO):
        if tags.count(tag) > 1:
            raise SignatureWrapping(f"more than one {etree.QName(tag).localname} in the Signature")
    if not tags or tags[0] != ns.DS_SIGNED_INFO:
        raise SecurityHeaderMalformed("the Signature does not start with SignedInfo")
    signed_info = children[0]
    si_children = _element_children(signed_info)
    if len(si_children) < 3:
        raise SecurityHeaderMalformed(
            "SignedInfo needs CanonicalizationMethod, SignatureMethod, Reference"
        )
    c14n_el, method_el, *reference_els = si_children
    if c14n_el.tag != ns.DS_C14N_METHOD or method_el.tag != ns.DS_SIGNATURE_METHOD:
        raise SecurityHeaderMalformed(
            "SignedInfo must start with CanonicalizationMethod, SignatureMethod"
        )
    if len(reference_els) > policy.max_references:
        raise SignatureWrapping(f"more than {policy.max_references} references")
    if any(r.tag != ns.DS_REFERENCE for r in reference_els):
        raise SecurityHeaderMalformed("SignedInfo holds something other than References")

    # Algorithms first: the most useful reason to give a peer that signs outside the profile.
    method_uri = _algorithm(method_el, "SignatureMethod")
    if method_uri not in policy.signature_methods or any(
        m in method_uri.lower() for m in _HMAC_MARKERS
    ):
        raise AlgorithmNotAllowed(f"signature method {method_uri} is not allowed")
    if _element_children(method_el):
        raise AlgorithmNotAllowed("SignatureMethod parameters (HMACOutputLength, ...) are refused")
    c14n_uri = _algorithm(c14n_el, "CanonicalizationMethod")
    if c14n_uri not in policy.canonicalization_methods:
        raise AlgorithmNotAllowed(
            f"canonicalization {c14n_uri} is not allowed (exclusive C14N only)"
        )
    for reference in reference_els:
        digest_method = reference.find(ns.DS_DIGEST_METHOD)
        if (
            digest_method is not None
            and digest_method.get("Algorithm") not in policy.digest_methods
        ):
            raise AlgorithmNotAllowed(
                f"digest method {digest_method.get('Algorithm')} is not allowed"
            )

    if ns.DS_OBJECT in tags:
        raise TransformNotAllowed("ds:Object (enveloping content) is not accepted")
    # Nothing but elements and text inside a signature: a comment in a DigestValue is the
    # CVE-2025-29774 trick (a reader taking the first text node sees another value than the
    # canonical form that was signed). Refusing them all lets the rest read plain children.
    for _ in signature.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity):
        raise SecurityHeaderMalformed("comments are not accepted inside ds:Signature")
    if tags not in (
        [ns.DS_SIGNED_INFO, ns.DS_SIGNATURE_VALUE],
        [ns.DS_SIGNED_INFO, ns.DS_SIGNATURE_VALUE, ns.DS_KEY_INFO],
    ):
        raise SecurityHeaderMalformed("the Signature's children are not SignedInfo, Value, KeyInfo")
    value = _base64(_pure_text(children[1], "SignatureValue"), "SignatureValue")
    key_info = children[2] if len(children) == 3 else None
    sig = _Signature(
        element=signature,
        signed_info=signed_info,
        method=SignatureMethod(method_uri),
        c14n_prefixes=_inclusive_prefixes(c14n_el, "CanonicalizationMethod"),
        value=value,
        key_info=key_info,
    )
    allowed = policy.document_transforms if document else policy.transforms
    for reference in reference_els:
        sig.references.append(_read_reference(reference, allowed, policy))
    if key_info is not None and any(True for _ in key_info.iter(ns.DS_RETRIEVAL_METHOD)):
        raise TransformNotAllowed("KeyInfo RetrievalMethod is not followed")
    return sig


_DS_RE = re.escape(ns.DS)
_PLAIN_SIGNED_INFO = re.compile(
    r'<ds:SignedInfo xmlns:ds="' + _DS_RE + r'">\s*'
    r'<ds:CanonicalizationMethod Algorithm="([^"]*)"></ds:CanonicalizationMethod>\s*'
    r'<ds:SignatureMethod Algorithm="([^"]*)"></ds:SignatureMethod>\s*'
    r'((?:<ds:Reference URI="[^"]*"><ds:Transforms>\s*'
    r'(?:<ds:Transform Algorithm="[^"]*"></ds:Transform>\s*){1,2}'
    r"</ds:Transforms>\s*"
    r'<ds:DigestMethod Algorithm="[^"]*"></ds:DigestMethod>\s*'
    r"<ds:DigestValue>[A-Za-z0-9+/=\s]*</ds:DigestValue>\s*</ds:Reference>\s*)+)"
    r"</ds:SignedInfo>"
)
_PLAIN_REFERENCE = re.compile(
    r'<ds:Reference URI="([^"]*)"><ds:Transforms>\s*'
    r'((?:<ds:Transform Algorithm="[^"]*"></ds:Transform>\s*){1,2})</ds:Transforms>\s*'
    r'<ds:DigestMethod Algorithm="([^"]*)"></ds:DigestMethod>\s*'
    r"<ds:DigestValue>([^<]*)</ds:DigestValue>"
)
_PLAIN_TRANSFORM = re.compile(r'<ds:Transform Algorithm="([^"]*)">')


def _read_plain_signature(signature: etree._Element, policy: SecurityPolicy) -> _Signature | None:
    """The common case read from the canonical bytes of SignedInfo, or None to read in full.

    When SignedInfo's exclusive C14N is the profile's plain shape (``ds`` prefix, no parameters,
    no extra attributes) and every URI in it is one the policy allows, one regular expression
    over the canonical text replaces some sixty element look-ups, and the same bytes are then
    verified. C14N normalises everything a regular expression could trip on (attribute order,
    quotes, escaping, comments, empty elements).

    This reader never refuses: whatever it does not accept exactly as the full reader would —
    another shape, a URI outside the policy, bad base64, a wrong digest length — it hands to the
    full reader (returns None), which alone decides every refusal and its reason. So the two
    paths cannot differ in outcome; ``tests/signing/test_fast_reader.py`` checks it on every
    attack and on combinations of them.
    """
    children = list(signature)
    if len(children) != 3 or [c.tag for c in children] != [
        ns.DS_SIGNED_INFO,
        ns.DS_SIGNATURE_VALUE,
        ns.DS_KEY_INFO,
    ]:
        return None
    for _ in signature.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity):
        return None
    signed_info, value_el, key_info = children
    canonical = canonicalize(signed_info)
    match = _PLAIN_SIGNED_INFO.fullmatch(canonical.decode("utf-8"))
    if match is None:
        return None
    c14n_uri, method_uri, references_text = match.groups()
    if c14n_uri not in policy.canonicalization_methods:
        return None
    if method_uri not in policy.signature_methods or any(
        m in method_uri.lower() for m in _HMAC_MARKERS
    ):
        return None
    references: list[_Reference] = []
    for uri, transforms_text, digest_uri, digest_text in _PLAIN_REFERENCE.findall(
        references_text
    ):
        transforms = _PLAIN_TRANSFORM.findall(transforms_text)
        if not all(t in policy.transforms for t in transforms):
            return None
        enveloped = transforms == [ns.ENVELOPED_SIGNATURE, ns.EXC_C14N]
        if transforms != [ns.EXC_C14N] and not enveloped:
            return None
        if (
            digest_uri not in policy.digest_methods
            or len(references) == policy.max_references
            or not _NCNAME_REF.fullmatch(uri)
        ):
            return None
        digest_method = DigestMethod(digest_uri)
        digest_value = _base64_or_none(digest_text)
        if digest_value is None or len(digest_value) != digest_method.digest_size:
            return None
        references.append(_Reference(uri, digest_method, digest_value, (), enveloped))
    if len(value_el) or any(True for _ in key_info.iter(ns.DS_RETRIEVAL_METHOD)):
        return None
    value = _base64_or_none(value_el.text or "")
    if value is None:
        return None
    return _Signature(
        element=signature,
        signed_info=signed_info,
        method=SignatureMethod(method_uri),
        c14n_prefixes=(),
        value=value,
        key_info=key_info,
        references=references,
        canonical=canonical,
    )


def _base64_or_none(text: str) -> bytes | None:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _read_reference(
    reference: etree._Element, allowed: frozenset[str], policy: SecurityPolicy
) -> _Reference:
    if reference.get("Type") == ns.DS_MANIFEST_TYPE:
        raise TransformNotAllowed("references to a ds:Manifest are not accepted")
    uri = reference.get("URI")
    if uri is None:
        raise SignatureWrapping("a Reference without URI (the verifier would have to guess)")
    if uri.startswith("#xpointer("):
        raise TransformNotAllowed("XPointer references are not accepted")
    children = _element_children(reference)
    transforms_el = children[0] if children and children[0].tag == ns.DS_TRANSFORMS else None
    rest = children[1:] if transforms_el is not None else children
    if [c.tag for c in rest] != [ns.DS_DIGEST_METHOD, ns.DS_DIGEST_VALUE]:
        raise SecurityHeaderMalformed("a Reference needs (Transforms?, DigestMethod, DigestValue)")

    transforms: list[str] = []
    prefixes: tuple[str, ...] = ()
    if transforms_el is not None:
        for transform in _element_children(transforms_el):
            if transform.tag != ns.DS_TRANSFORM:
                raise SecurityHeaderMalformed("Transforms holds something other than Transform")
            algorithm = _algorithm(transform, "Transform")
            if algorithm not in allowed:
                raise TransformNotAllowed(f"transform {algorithm} is not allowed")
            if algorithm == ns.EXC_C14N:
                prefixes = _inclusive_prefixes(transform, "the exclusive C14N transform")
            elif _element_children(transform):
                raise TransformNotAllowed(f"transform {algorithm} takes no parameters")
            transforms.append(algorithm)
    enveloped = False
    if transforms[:1] == [ns.ENVELOPED_SIGNATURE]:
        enveloped = True
        transforms = transforms[1:]
    if transforms != [ns.EXC_C14N]:
        if not transforms:
            raise AlgorithmNotAllowed("a reference without exclusive C14N implies inclusive C14N")
        raise TransformNotAllowed(
            "transforms must be exactly [enveloped-signature,] exclusive C14N"
        )

    digest_uri = _algorithm(rest[0], "DigestMethod")
    if digest_uri not in policy.digest_methods:
        raise AlgorithmNotAllowed(f"digest method {digest_uri} is not allowed")
    digest_method = DigestMethod(digest_uri)
    digest_value = _base64(_pure_text(rest[1], "DigestValue"), "DigestValue")
    if len(digest_value) != digest_method.digest_size:
        raise SecurityHeaderMalformed("DigestValue has the wrong length for its DigestMethod")
    return _Reference(uri, digest_method, digest_value, prefixes, enveloped)


# --- ids, tokens, timestamps ------------------------------------------------------------------


def _is_id_attribute(name: str) -> bool:
    return name == ns.XML_ID or etree.QName(name).localname in ("Id", "ID")


def _check_unique_ids(root: etree._Element) -> None:
    """Every ``Id``/``ID`` (any namespace) and ``xml:id`` value must be unique in the document.

    Resolution then needs no index: an id names exactly one element, the one we pinned.
    """
    values = _ID_VALUES(root)
    assert isinstance(values, list)
    if len(set(values)) != len(values):
        counts: dict[object, int] = {}
        for value in values:
            counts[value] = counts.get(value, 0) + 1
        duplicate = next(v for v, n in counts.items() if n > 1)
        raise SignatureWrapping(f"the id {duplicate!r} is used twice (signature wrapping)")


@lru_cache(maxsize=256)
def _certificate_from(text: str, what: str) -> x509.Certificate:
    """Decode a base64 DER certificate; cached, since the same senders come back all day."""
    der = _base64(text, what)
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise SecurityHeaderMalformed(f"{what} is not an X.509 certificate") from exc


def _token_certificates(
    tokens: Sequence[etree._Element], key_info: etree._Element | None, policy: SecurityPolicy
) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
    """The signer's certificate (the token ``KeyInfo`` names) and the other tokens.

    ``KeyInfo`` holds one ``wsse:SecurityTokenReference`` naming a ``BinarySecurityToken`` of
    this message by any of the WS-Security X.509 token profile's forms: a ``wsse:Reference`` to
    its id, a ``wsse:KeyIdentifier`` (subjectKeyIdentifier or SHA-1 thumbprint), or
    ``ds:X509Data/ds:X509IssuerSerial``. Whatever the form, the key comes from a token in the
    message, so the certificate path is built from the same certificate the form names; a form
    that names no token here, or more than one, is refused.
    """
    if key_info is None:
        raise SecurityHeaderMalformed("the Signature has no KeyInfo")
    ki_children = _element_children(key_info)
    if len(ki_children) != 1 or ki_children[0].tag != ns.WSSE_STR:
        raise SecurityHeaderMalformed("KeyInfo must hold one wsse:SecurityTokenReference")
    str_children = _element_children(ki_children[0])
    if len(str_children) != 1 or str_children[0].tag not in (
        ns.WSSE_REFERENCE, ns.WSSE_KEY_IDENTIFIER, ns.DS_X509_DATA
    ):
        raise SecurityHeaderMalformed(
            "the SecurityTokenReference must hold one wsse:Reference, wsse:KeyIdentifier or "
            "ds:X509Data/ds:X509IssuerSerial"
        )
    key_ref = str_children[0]
    matches = _token_matcher(key_ref)
    # Counted and measured before any is decoded or parsed, let alone chained: the cheap
    # refusal comes before the expensive work an attacker could make us do.
    if len(tokens) > policy.max_tokens:
        raise TokenLimitExceeded(
            f"{len(tokens)} BinarySecurityTokens; at most {policy.max_tokens} are accepted"
        )
    if any(len(_string_value(t)) > policy.max_token_bytes for t in tokens):
        raise TokenLimitExceeded(
            f"a BinarySecurityToken is longer than {policy.max_token_bytes} characters"
        )
    decoded: list[tuple[etree._Element, x509.Certificate]] = []
    for bst in tokens:
        if bst.get("ValueType") != ns.X509V3:
            raise SecurityHeaderMalformed("only X509v3 BinarySecurityTokens are accepted")
        if bst.get("EncodingType") not in (None, ns.BASE64_BINARY):
            raise SecurityHeaderMalformed("BinarySecurityToken encoding is not Base64Binary")
        text = _pure_text(bst, "BinarySecurityToken")
        decoded.append((bst, _certificate_from(text, "BinarySecurityToken")))
    named = [(bst, cert) for bst, cert in decoded if matches(bst, cert)]
    if not named:
        raise SecurityHeaderMalformed("KeyInfo does not point to a BinarySecurityToken here")
    if len(named) > 1:
        raise SecurityHeaderMalformed("KeyInfo names more than one BinarySecurityToken")
    leaf_token = named[0][0]
    leaf = named[0][1]
    return leaf, tuple(cert for bst, cert in decoded if bst is not leaf_token)


_TokenMatcher = Callable[[etree._Element, x509.Certificate], bool]


def _token_matcher(key_ref: etree._Element) -> _TokenMatcher:
    """How the key reference recognises its token (checked before any token is decoded)."""
    if key_ref.tag == ns.WSSE_REFERENCE:
        value_type = key_ref.get("ValueType")
        if value_type not in (None, ns.X509V3):
            raise SecurityHeaderMalformed(f"token reference ValueType {value_type} is not X509v3")
        match = _NCNAME_REF.fullmatch(key_ref.get("URI") or "")
        if match is None:
            raise SecurityHeaderMalformed("KeyInfo does not point to a BinarySecurityToken here")
        wanted = match.group(1)
        return lambda bst, cert: wanted in _element_ids(bst)
    if key_ref.tag == ns.WSSE_KEY_IDENTIFIER:
        if key_ref.get("EncodingType") not in (None, ns.BASE64_BINARY):
            raise SecurityHeaderMalformed("KeyIdentifier encoding is not Base64Binary")
        value = _base64(_pure_text(key_ref, "KeyIdentifier"), "KeyIdentifier")
        value_type = key_ref.get("ValueType")
        if value_type == ns.X509_SKI:
            return lambda bst, cert: _subject_key_id(cert) == value
        if value_type == ns.THUMBPRINT_SHA1:
            return lambda bst, cert: hmac.compare_digest(_thumbprint_sha1(cert), value)
        raise SecurityHeaderMalformed(f"KeyIdentifier ValueType {value_type} is not supported")
    children = _element_children(key_ref)
    if len(children) != 1 or children[0].tag != ns.DS_X509_ISSUER_SERIAL:
        raise SecurityHeaderMalformed("X509Data in a token reference must be one X509IssuerSerial")
    name_el = _single_child(children[0], ns.DS_X509_ISSUER_NAME, "X509IssuerName")
    serial_el = _single_child(children[0], ns.DS_X509_SERIAL_NUMBER, "X509SerialNumber")
    serial_text = _pure_text(serial_el, "X509SerialNumber").strip()
    if not serial_text.isdigit() or len(serial_text) > 60:
        raise SecurityHeaderMalformed("X509SerialNumber is not a decimal integer")
    serial = int(serial_text)
    try:
        issuer = x509.Name.from_rfc4514_string(_pure_text(name_el, "X509IssuerName").strip())
    except ValueError as exc:
        raise SecurityHeaderMalformed("X509IssuerName is not an RFC 4514 name") from exc
    return lambda bst, cert: cert.serial_number == serial and _same_name(cert.issuer, issuer)


def _same_name(a: x509.Name, b: x509.Name) -> bool:
    """Distinguished names equal attribute by attribute (types and case-folded values)."""
    def key(name: x509.Name) -> list[tuple[str, str]]:
        return sorted(
            (attr.oid.dotted_string, " ".join(str(attr.value).split()).casefold())
            for attr in name
        )
    return key(a) == key(b)


def _subject_key_id(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest
    except x509.ExtensionNotFound:
        return None


def _thumbprint_sha1(certificate: x509.Certificate) -> bytes:
    # SHA-1 only names the token (the WS-Security 1.1 ThumbprintSHA1 form); no trust rests on it:
    # the certificate found is the one validated and whose key checks the signature.
    return hashlib.sha1(  # noqa: S324
        certificate.public_bytes(serialization.Encoding.DER)
    ).digest()


def _x509_data_certificates(
    key_info: etree._Element | None,
) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
    if key_info is None:
        raise SecurityHeaderMalformed("the Signature has no KeyInfo with an X.509 certificate")
    certificates = [
        _certificate_from(_pure_text(el, "X509Certificate"), "X509Certificate")
        for data in key_info
        if data.tag == ns.DS_X509_DATA
        for el in data
        if el.tag == ns.DS_X509_CERTIFICATE
    ]
    if not certificates:
        raise SecurityHeaderMalformed("KeyInfo carries no X509Certificate (bare keys are refused)")
    issuers = {c.issuer for c in certificates}
    leaves = [c for c in certificates if c.subject not in issuers or c.subject == c.issuer]
    leaves = [c for c in leaves if c.subject != c.issuer] or leaves
    leaf = leaves[0] if len(leaves) == 1 else certificates[0]
    return leaf, tuple(c for c in certificates if c is not leaf)


def _parse_datetime(text: str, what: str) -> datetime:
    match = _XS_DATETIME.fullmatch(text.strip())
    if match is None:
        raise SecurityHeaderMalformed(f"{what} is not an xs:dateTime with a time zone")
    base, fraction, zone = match.groups()
    micro = (fraction or "").ljust(6, "0")[:6]
    try:
        parsed = datetime.fromisoformat(f"{base}.{micro}{'+00:00' if zone == 'Z' else zone}")
    except ValueError as exc:
        raise SecurityHeaderMalformed(f"{what} is not a valid date and time") from exc
    return parsed.astimezone(UTC)


def _read_timestamp(
    timestamp: etree._Element, max_lifetime: timedelta
) -> tuple[datetime, datetime]:
    """``Created`` and ``Expires``; without ``Expires`` (optional in WS-Security), the message
    expires ``max_lifetime`` after it was created: the longest any sender may ask for."""
    created_el = _single_child(timestamp, ns.WSU_CREATED, "wsu:Created")
    created = _parse_datetime(_pure_text(created_el, "wsu:Created"), "wsu:Created")
    expires_els = [c for c in timestamp if c.tag == ns.WSU_EXPIRES]
    if not expires_els:
        return created, created + max_lifetime
    expires_el = _single_child(timestamp, ns.WSU_EXPIRES, "wsu:Expires")
    expires = _parse_datetime(_pure_text(expires_el, "wsu:Expires"), "wsu:Expires")
    if expires <= created:
        raise SecurityHeaderMalformed("wsu:Expires is not after wsu:Created")
    return created, expires


# --- cryptography -------------------------------------------------------------------------------


def _check_signature(
    sig: _Signature,
    certificate: x509.Certificate,
    policy: SecurityPolicy,
    *,
    enveloped_in: etree._Element | None = None,
) -> None:
    key = certificate.public_key()
    method = sig.method
    signed_info = (
        sig.canonical
        if sig.canonical is not None
        else canonicalize(sig.signed_info, sig.c14n_prefixes)
    )
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < policy.min_rsa_bits:
                raise WeakKey(f"RSA key of {key.key_size} bits (at least {policy.min_rsa_bits})")
            if method.key_algorithm is not KeyAlgorithm.RSA:
                raise SignatureInvalid(f"{method.name} does not match the certificate's RSA key")
            key.verify(sig.value, signed_info, method.rsa_padding(), method.hash_algorithm())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name not in ALLOWED_CURVES:
                raise WeakKey(f"EC curve {key.curve.name} is not allowed")
            if method.key_algorithm is not KeyAlgorithm.EC:
                raise SignatureInvalid(f"{method.name} does not match the certificate's EC key")
            size = (key.curve.key_size + 7) // 8
            if len(sig.value) != 2 * size:
                raise SignatureInvalid("the ECDSA signature value has the wrong length")
            der = ecdsa_raw_to_der(sig.value)
            key.verify(der, signed_info, ec.ECDSA(method.hash_algorithm()))
        else:
            raise WeakKey(f"{type(key).__name__} keys are not accepted (RSA or EC only)")
    except InvalidSignature as exc:
        raise SignatureInvalid("the signature value does not match SignedInfo") from exc
    for ref in sig.references:
        # An envelope reference's enveloped-signature transform is a no-op (its target never
        # contains the signature: checked in verify), so it is digested as it stands.
        assert ref.target is not None
        if ref.enveloped and enveloped_in is not None:
            canonical = enveloped_canonical(ref.target, sig.element, ref.inclusive_prefixes)
        else:
            canonical = canonicalize(ref.target, ref.inclusive_prefixes)
        digest = hashlib.new(_HASHLIB_NAMES[ref.digest_method], canonical).digest()
        if not hmac.compare_digest(digest, ref.digest_value):
            raise SignatureInvalid(f"the digest of {ref.uri or 'the document'} does not match")
