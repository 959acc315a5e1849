"""What a signed message must look like to be accepted: the message-security profile as data.

One frozen :class:`SecurityPolicy` is built at start-up (``from_config`` for the configuration
file) and passed to :class:`signing.verifier.EnvelopeVerifier`; nothing is read from globals.

Transforms: a WS-Security reference carries exclusive C14N, optionally preceded by the
enveloped-signature transform, which node-soap (xml-crypto) adds to every reference by default.
On a detached reference (the Body, the Timestamp, a header block: none of them contains the
signature) it removes nothing, so it is accepted there and refused on any element that does
contain the signature. For :meth:`~signing.verifier.EnvelopeVerifier.verify_document` (a
standalone document signed in place: the notice, a stored application) the signature necessarily
sits inside the element it signs; there the enveloped transform must come first and exclusive
C14N last. Nothing else — XSLT, XPath, XPath Filter 2, XPointer, base64, inclusive C14N — is
ever run.

Signed X-Road headers: stock zeep (``BinarySignature``) and node-soap (``WSSecurityCert``) sign
only the Body and the Timestamp, so the profile requires only the headers that carry authority —
``userId`` (the person a system certificate acts for) and ``requestHash`` (an answer's link to its
request) — to be signed when present (:data:`DEFAULT_REQUIRED_HEADER_REFS`). The others (``id``,
``client``, ``service``, ``protocolVersion``, ``issue``) may be signed; replay protection then
keys on the signature value when the ``id`` is not signed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from signing import ns
from signing.algorithms import DigestMethod, SignatureMethod
from signing.errors import ConfigurationError

__all__ = ["DEFAULT_REQUIRED_HEADER_REFS", "DEFAULT_SIGNED_HEADERS", "SecurityPolicy"]

#: X-Road headers our own signer covers (requests of the client kit, every answer).
#: ``requestHash`` is included so a signed response's link to its request is signed too.
DEFAULT_SIGNED_HEADERS: frozenset[str] = frozenset(
    {"id", "client", "service", "userId", "issue", "protocolVersion", "requestHash"}
)

#: X-Road headers a verifier requires to be signed when present: the ones something
#: security-relevant rests on (see the module docstring).
DEFAULT_REQUIRED_HEADER_REFS: frozenset[str] = frozenset({"userId", "requestHash"})


@dataclass(frozen=True)
class SecurityPolicy:
    """The accepted algorithms, bounds and signed headers.

    Attributes:
        signature_methods: ``ds:SignatureMethod`` URIs accepted.
        digest_methods: ``ds:DigestMethod`` URIs accepted on every reference.
        canonicalization_methods: ``ds:CanonicalizationMethod`` URIs (exclusive C14N only).
        transforms: transforms allowed on envelope references (exclusive C14N, and the
            enveloped-signature transform where it is a no-op).
        document_transforms: transforms allowed on a standalone document's reference.
        max_timestamp_lifetime: longest accepted ``Expires - Created``; a Timestamp without
            ``Expires`` counts as expiring this long after ``Created``.
        clock_skew: tolerance on both ends of the timestamp window.
        min_rsa_bits: smallest accepted RSA modulus.
        max_references: most ``ds:Reference`` elements read before refusing.
        required_header_refs: X-Road header local names that must be signed when present
            (others may be signed).
        max_tokens: most BinarySecurityTokens (the signer's and its issuing CAs') accepted,
            counted before any is decoded: more is only padding for the path builder.
        max_token_bytes: longest BinarySecurityToken text (base64) accepted, also checked
            before decoding.
    """

    signature_methods: frozenset[str] = frozenset(m.value for m in SignatureMethod)
    digest_methods: frozenset[str] = frozenset(m.value for m in DigestMethod)
    canonicalization_methods: frozenset[str] = frozenset({ns.EXC_C14N})
    transforms: frozenset[str] = frozenset({ns.ENVELOPED_SIGNATURE, ns.EXC_C14N})
    document_transforms: frozenset[str] = frozenset({ns.ENVELOPED_SIGNATURE, ns.EXC_C14N})
    max_timestamp_lifetime: timedelta = timedelta(seconds=600)
    clock_skew: timedelta = timedelta(seconds=60)
    min_rsa_bits: int = 2048
    max_references: int = 8
    required_header_refs: frozenset[str] = DEFAULT_REQUIRED_HEADER_REFS
    max_tokens: int = 4
    max_token_bytes: int = 16_384

    def __post_init__(self) -> None:
        unknown_sig = set(self.signature_methods) - {m.value for m in SignatureMethod}
        unknown_dig = set(self.digest_methods) - {m.value for m in DigestMethod}
        if unknown_sig or unknown_dig:
            raise ConfigurationError(
                f"algorithms outside the profile: {sorted(unknown_sig | unknown_dig)}"
            )
        if not self.canonicalization_methods <= {ns.EXC_C14N}:
            raise ConfigurationError("only exclusive C14N without comments may be allowed")
        if not self.transforms <= {ns.ENVELOPED_SIGNATURE, ns.EXC_C14N}:
            raise ConfigurationError("envelope references allow enveloped + exclusive C14N only")
        if not self.document_transforms <= {ns.ENVELOPED_SIGNATURE, ns.EXC_C14N}:
            raise ConfigurationError("document references allow enveloped + exclusive C14N only")
        if self.min_rsa_bits < 2048:
            raise ConfigurationError("RSA keys below 2048 bits are never accepted")
        if self.max_timestamp_lifetime <= timedelta(0) or self.clock_skew < timedelta(0):
            raise ConfigurationError("timestamp lifetime must be positive and skew non-negative")
        if not 3 <= self.max_references <= 32:
            raise ConfigurationError("max_references must allow Body + Timestamp + a header")
        if not 1 <= self.max_tokens <= 16 or not 512 <= self.max_token_bytes <= 1_000_000:
            raise ConfigurationError("max_tokens must be 1..16 and max_token_bytes 512..1000000")
        unknown_headers = set(self.required_header_refs) - set(ns.XROAD_HEADERS)
        if unknown_headers:
            raise ConfigurationError(f"not X-Road headers: {sorted(unknown_headers)}")

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any]) -> SecurityPolicy:
        """Build a policy from configuration values; unknown keys are an error, not ignored.

        Durations are seconds (``max_timestamp_lifetime``, ``clock_skew``); algorithm and header
        sets are lists of URIs / local names.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(mapping) - known
        if unknown:
            raise ConfigurationError(f"unknown security policy keys: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key, value in mapping.items():
            if key in ("max_timestamp_lifetime", "clock_skew"):
                values[key] = _seconds(key, value)
            elif key in ("min_rsa_bits", "max_references", "max_tokens", "max_token_bytes"):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ConfigurationError(f"{key} must be an integer")
                values[key] = value
            else:
                values[key] = _string_set(key, value)
        return cls(**values)


def _seconds(key: str, value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    raise ConfigurationError(f"{key} must be a number of seconds")


def _string_set(key: str, value: Any) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigurationError(f"{key} must be a list of strings")
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        raise ConfigurationError(f"{key} must be a list of strings")
    return frozenset(str(item) for item in items)
