"""Who a certificate names: FIN, VÖEN, seal authority and card number (ETSI EN 319 412-1 style).

The defaults follow the national profile our test PKI models:

* subject ``serialNumber`` = ``PNOAZ-<FIN>`` -- the person's FIN (*Fərdi İdentifikasiya Nömrəsi*);
* subject ``organizationIdentifier`` (2.5.4.97) = ``TINAZ-<VÖEN>`` -- the employer's tax id
  (*Vergi ödəyicisinin eyniləşdirmə nömrəsi*);
* **seal authority** (*möhür hüququ*: the right to act with the organisation's seal) = the
  certificate carries :data:`SEAL_AUTHORITY_POLICY_OID` in ``certificatePolicies``;
* **card number** = the certificate serial number in upper-case hex (configurable).

Everything is configurable through :class:`IdentityMapping` because a real CA's profile decides
it. Identity extraction does not validate the certificate: do that first (:mod:`signing.trust`).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from signing.errors import CertificateError, ConfigurationError

#: Certificate policy marking a holder with seal authority for the organisation in the
#: certificate (our configurable default; a private-enterprise arc of the test PKI).
SEAL_AUTHORITY_POLICY_OID = "1.3.6.1.4.1.63311.1.1"
#: Generic qualified-certificate policy carried by every person certificate of the test PKI.
QUALIFIED_PERSON_POLICY_OID = "1.3.6.1.4.1.63311.1.2"
#: Policy of organisation (system/seal-of-system) certificates of the test PKI.
SYSTEM_CERTIFICATE_POLICY_OID = "1.3.6.1.4.1.63311.1.3"


class CardNumberSource(StrEnum):
    """Where the card number (the credential an authority is bound to) is read from."""

    SERIAL = "serial"  # certificate serial number, upper-case hex
    SUBJECT_SERIAL = "subject_serial"  # the subject's serialNumber attribute, verbatim
    FINGERPRINT = "fingerprint"  # SHA-256 of the certificate, upper-case hex


@dataclass(frozen=True)
class IdentityMapping:
    """How identity fields are read from a certificate."""

    serial_number_prefix: str = "PNOAZ-"
    org_identifier_prefix: str = "TINAZ-"
    seal_policy_oid: str = SEAL_AUTHORITY_POLICY_OID
    card_number_source: CardNumberSource = CardNumberSource.SERIAL
    fin_pattern: str = r"[0-9A-Z]{7}"
    voen_pattern: str = r"[0-9]{10}"

    def __post_init__(self) -> None:
        try:
            x509.ObjectIdentifier(self.seal_policy_oid)
        except ValueError as exc:
            raise ConfigurationError(f"seal_policy_oid {self.seal_policy_oid!r} is no OID") from exc
        try:
            object.__setattr__(
                self, "card_number_source", CardNumberSource(self.card_number_source)
            )
        except ValueError as exc:
            allowed = ", ".join(s.value for s in CardNumberSource)
            raise ConfigurationError(f"card_number_source must be one of {allowed}") from exc
        for name in ("fin_pattern", "voen_pattern"):
            try:
                re.compile(getattr(self, name))
            except re.error as exc:
                raise ConfigurationError(f"{name} is not a regular expression: {exc}") from exc

    @classmethod
    def from_config(cls, mapping: Mapping[str, object]) -> IdentityMapping:
        """Build from a configuration mapping; unknown keys are an error, not silently ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ConfigurationError(f"unknown identity mapping keys: {', '.join(unknown)}")
        for key, value in mapping.items():
            if not isinstance(value, str):
                raise ConfigurationError(f"identity mapping {key} must be a string")
        return cls(**mapping)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CertificateIdentity:
    """The identity facts the gateway's authorization needs, read from one certificate."""

    fin: str | None
    voen: str | None
    seal_authority: bool
    card_number: str
    common_name: str
    surname: str | None
    given_name: str | None
    organization: str | None
    is_system: bool
    fingerprint_sha256: str
    policy_oids: frozenset[str] = field(default_factory=frozenset)


def card_number_of(certificate: x509.Certificate) -> str:
    """The default card number: the certificate serial number as upper-case hex, no leading 0x."""
    return format(certificate.serial_number, "X")


def fingerprint_sha256(certificate: x509.Certificate) -> str:
    """Lower-case hex SHA-256 of the certificate's DER encoding."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def policy_oids_of(certificate: x509.Certificate) -> frozenset[str]:
    """Dotted OIDs of the certificate's ``certificatePolicies`` (empty if absent)."""
    try:
        ext = certificate.extensions.get_extension_for_class(x509.CertificatePolicies)
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(p.policy_identifier.dotted_string for p in ext.value)


def extract_identity(
    certificate: x509.Certificate, mapping: IdentityMapping = IdentityMapping()
) -> CertificateIdentity:
    """Read FIN, VÖEN, seal authority and card number from ``certificate``.

    A subject attribute that carries the configured prefix but a malformed value, or that appears
    twice, raises :class:`~signing.errors.CertificateError`: an ambiguous identity is refused,
    never guessed. ``is_system`` means "not issued to a natural person" (no FIN). Seal authority
    needs both the policy OID and an organisation identifier: a seal acts for an organisation.
    """
    subject = certificate.subject
    fin = _prefixed(subject, NameOID.SERIAL_NUMBER, mapping.serial_number_prefix,
                    mapping.fin_pattern, "FIN")
    voen = _prefixed(subject, NameOID.ORGANIZATION_IDENTIFIER, mapping.org_identifier_prefix,
                     mapping.voen_pattern, "VÖEN")
    policies = policy_oids_of(certificate)

    if mapping.card_number_source is CardNumberSource.SERIAL:
        card_number = card_number_of(certificate)
    elif mapping.card_number_source is CardNumberSource.FINGERPRINT:
        card_number = fingerprint_sha256(certificate).upper()
    else:
        serial_attr = _single(subject, NameOID.SERIAL_NUMBER)
        if serial_attr is None:
            raise CertificateError("the certificate has no subject serialNumber for a card number")
        card_number = serial_attr

    return CertificateIdentity(
        fin=fin,
        voen=voen,
        seal_authority=voen is not None and mapping.seal_policy_oid in policies,
        card_number=card_number,
        common_name=_single(subject, NameOID.COMMON_NAME) or "",
        surname=_single(subject, NameOID.SURNAME),
        given_name=_single(subject, NameOID.GIVEN_NAME),
        organization=_single(subject, NameOID.ORGANIZATION_NAME),
        is_system=fin is None,
        fingerprint_sha256=fingerprint_sha256(certificate),
        policy_oids=policies,
    )


class IdentityMemo:
    """:func:`extract_identity` remembered per certificate, for the request path.

    An identity is a function of the certificate's bytes and the mapping alone, so the same
    card signing all day is read once (issue #10: the subject and policy walk cost more than
    the rest of the actor step). Entries are keyed by the certificate itself, whose hash and
    equality are its DER encoding, so a different certificate is never mistaken for a known
    one. It saves only the reading: the caller still reads an identity only from a
    certificate the verifier validated for this request (path, revocation, signature), and a
    certificate refused here (``CertificateError``) is not remembered. At most
    ``max_entries`` (least recently used out); 0 remembers nothing."""

    def __init__(self, mapping: IdentityMapping = IdentityMapping(), max_entries: int = 4096):
        if max_entries < 0:
            raise ConfigurationError("max_entries must be >= 0")
        self.mapping = mapping
        self.max_entries = max_entries
        self._entries: OrderedDict[x509.Certificate, CertificateIdentity] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, certificate: x509.Certificate) -> CertificateIdentity:
        with self._lock:
            identity = self._entries.get(certificate)
            if identity is not None:
                self._entries.move_to_end(certificate)
                return identity
        identity = extract_identity(certificate, self.mapping)
        if self.max_entries:
            with self._lock:
                self._entries[certificate] = identity
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return identity


def _single(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attributes = name.get_attributes_for_oid(oid)
    if not attributes:
        return None
    if len(attributes) > 1:
        raise CertificateError(f"the subject has {len(attributes)} attributes {oid.dotted_string}")
    value = attributes[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _prefixed(
    name: x509.Name, oid: x509.ObjectIdentifier, prefix: str, pattern: str, what: str
) -> str | None:
    value = _single(name, oid)
    if value is None or not value.startswith(prefix):
        return None
    rest = value[len(prefix):]
    if not re.fullmatch(pattern, rest):
        raise CertificateError(f"the certificate's {what} {rest!r} is malformed")
    return rest


_CARD_SEPARATORS = re.compile(r"[\s:\-]")
_HEX = re.compile(r"^[0-9A-F]+$")


def normalise_card_number(value: str, source: CardNumberSource = CardNumberSource.SERIAL) -> str:
    """A card number as typed by a person, in the form :func:`extract_identity` reads it from
    the certificate, so that the two compare equal; raises ``ValueError`` when it cannot be one.

    * ``serial``: hex digits, optionally with a ``0x`` prefix, spaces, colons or hyphens between
      them (as certificate viewers show serials); at most 20 octets (RFC 5280); upper case,
      without leading zeros.
    * ``fingerprint``: the 64 hex digits of the SHA-256, same separators allowed; upper case.
    * ``subject_serial``: verbatim, without surrounding spaces.
    """
    text = value.strip()
    if source is CardNumberSource.SUBJECT_SERIAL:
        if not text:
            raise ValueError("the card number is empty")
        return text
    digits = _CARD_SEPARATORS.sub("", text).upper()
    if digits.startswith("0X"):
        digits = digits[2:]
    if not digits or not _HEX.match(digits):
        raise ValueError("a card number is the certificate's serial number in hex digits")
    if source is CardNumberSource.FINGERPRINT:
        if len(digits) != 64:
            raise ValueError("a card number is the 64 hex digits of the certificate's SHA-256")
        return digits
    digits = digits.lstrip("0") or "0"
    if len(digits) > 40:
        raise ValueError("a certificate serial number has at most 20 octets (40 hex digits)")
    return digits
