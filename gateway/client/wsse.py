"""Client-side kit: a zeep plugin that signs requests with our profile and verifies responses.

zeep's own ``wsse.Signature`` signs with SHA-1 and checks neither timestamps nor certificate
chains (DESIGN.md §2), so ERPs and our tests use this instead::

    plugin = SigningPlugin(signer, client=XRoadMember("AZ", "COM", "1403567891", "erp"),
                           verify_with=trust_store,
                           gateway=GatewayIdentity.pinned(gateway_certificate))
    client = zeep.Client(wsdl_url, plugins=[plugin])
    client.service.FindPerson(voen=..., documentType="ID_CARD", fin="5GH3J7K")

Each request gets the X-Road headers (a fresh message id, the operation as service code) and a
WS-Security signature made by ``signer`` (a key file, a PKCS#11 card, anything that is a
``signing.signer.Signer``). Each response is verified against the trust store before zeep
parses it, and then **bound** to the request it answers (a valid signature alone proves only
that *some* holder of a national certificate signed it):

- the signer is the gateway: its certificate pinned, or a configured identity (subject and/or
  organizationIdentifier) -- else :class:`AnswerSignerMismatch`;
- the signed ``requestHash`` is the SHA-512 of exactly the bytes zeep sent -- else
  :class:`AnswerRequestHashMismatch`;
- the signed, echoed X-Road ``id`` is this request's -- else :class:`AnswerMessageIdMismatch`.

A successful answer must carry both ``requestHash`` and ``id``; a fault may lack them (the gateway
refused before it could read the headers: nothing was done), but if it carries them they must
match. Each failure is a ``signing.errors.VerificationError`` with its own ``code``.

One plugin holds the state of one exchange at a time: give each thread its own client.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from lxml import etree
from zeep.wsdl.utils import etree_to_string

from signing.errors import ConfigurationError, VerificationError
from signing.policy import SecurityPolicy
from signing.signer import Signer
from signing.trust import TrustStore
from signing.verifier import EnvelopeVerifier, VerifiedMessage
from signing.wsse import sign_envelope

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XROAD_NS = "http://x-road.eu/xsd/xroad.xsd"
ID_NS = "http://x-road.eu/xsd/identifiers"
TNS = "urn:az:dsmf:insured-registration:v1"
_SHA512_URI = "http://www.w3.org/2001/04/xmlenc#sha512"


@dataclass(frozen=True)
class XRoadMember:
    instance: str
    member_class: str
    member_code: str
    subsystem_code: str | None = None


DSMF_SERVICE = XRoadMember("AZ", "GOV", "1500000011", "insured-registration")


class AnswerBindingError(VerificationError):
    """A validly signed answer that is not the gateway's answer to *this* request."""

    code = "Answer.Unbound"


class AnswerSignerMismatch(AnswerBindingError):
    code = "Answer.Signer"


class AnswerRequestHashMismatch(AnswerBindingError):
    code = "Answer.RequestHash"


class AnswerMessageIdMismatch(AnswerBindingError):
    code = "Answer.MessageId"


@dataclass(frozen=True)
class GatewayIdentity:
    """Who must have signed the answers: a pinned certificate (SHA-256 fingerprint), or a
    subject (RFC 4514 string) and/or an organizationIdentifier (e.g. ``TINAZ-1500000011``) --
    the latter survive the gateway's certificate renewal. At least one is required."""

    fingerprint_sha256: bytes | None = None
    subject: str | None = None
    organization_identifier: str | None = None

    def __post_init__(self) -> None:
        if self.fingerprint_sha256 is None and self.subject is None and (
            self.organization_identifier is None
        ):
            raise ConfigurationError("pin the gateway's certificate or name its identity")

    @classmethod
    def pinned(cls, certificate: x509.Certificate) -> GatewayIdentity:
        return cls(fingerprint_sha256=certificate.fingerprint(hashes.SHA256()))

    def check(self, certificate: x509.Certificate) -> None:
        who = certificate.subject.rfc4514_string()
        if self.fingerprint_sha256 is not None and (
            certificate.fingerprint(hashes.SHA256()) != self.fingerprint_sha256
        ):
            raise AnswerSignerMismatch(f"the answer is signed by {who}, not the pinned gateway")
        if self.subject is not None and who != self.subject:
            raise AnswerSignerMismatch(f"the answer is signed by {who}, not {self.subject}")
        if self.organization_identifier is not None:
            values = [a.value for a in certificate.subject.get_attributes_for_oid(
                NameOID.ORGANIZATION_IDENTIFIER)]
            if values != [self.organization_identifier]:
                raise AnswerSignerMismatch(
                    f"the answer is signed by {who}, not by {self.organization_identifier}"
                )


class SigningPlugin:
    """A zeep plugin (duck-typed ``egress``/``ingress``)."""

    def __init__(
        self,
        signer: Signer | None,
        *,
        client: XRoadMember,
        service: XRoadMember = DSMF_SERVICE,
        user_id: str | None = None,
        verify_with: TrustStore | None = None,
        gateway: GatewayIdentity | None = None,
        message_ids: Callable[[], str] = lambda: str(uuid.uuid4()),
        session_token: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.signer = signer
        self.client = client
        self.service = service
        self.user_id = user_id
        self.message_ids = message_ids
        self.session_token = session_token
        if verify_with is not None and gateway is None:
            # A trust list alone accepts an answer signed by any cardholder in the country.
            raise ConfigurationError("verifying answers needs the gateway's identity (gateway=)")
        self.gateway = gateway
        self.verifier = (
            EnvelopeVerifier(verify_with, SecurityPolicy(), None, clock)
            if verify_with is not None else None
        )
        self.last_message_id: str | None = None
        #: the bytes zeep sends (its own serialisation), whose hash the answer must echo
        self.last_request: bytes | None = None
        self.last_response: VerifiedMessage | None = None

    def egress(
        self, envelope: etree._Element, http_headers: dict[str, str], operation: Any,
        binding_options: Any,
    ) -> tuple[etree._Element, dict[str, str]]:
        header = envelope.find(f"{{{SOAP_ENV}}}Header")
        if header is None:
            header = etree.Element(f"{{{SOAP_ENV}}}Header")
            envelope.insert(0, header)
        self.last_message_id = self.message_ids()
        add_xroad_headers(
            header, client=self.client, service=self.service, operation=operation.name,
            message_id=self.last_message_id, user_id=self.user_id,
        )
        if self.session_token:
            etree.SubElement(header, f"{{{TNS}}}sessionToken").text = self.session_token
        if self.signer is not None:
            envelope = sign_envelope(envelope, self.signer)
        self.last_request = etree_to_string(envelope)
        return envelope, http_headers

    def ingress(
        self, envelope: etree._Element, http_headers: dict[str, str], operation: Any
    ) -> tuple[etree._Element, dict[str, str]]:
        self.last_response = None
        if self.verifier is not None:
            verified = self.verifier.verify(envelope)
            self._bind(verified)
            self.last_response = verified
        return envelope, http_headers

    def _bind(self, verified: VerifiedMessage) -> None:
        assert self.gateway is not None  # guaranteed by __init__ whenever there is a verifier
        self.gateway.check(verified.certificate)
        is_fault = verified.body.find(f"{{{SOAP_ENV}}}Fault") is not None
        if verified.message_id is not None or not is_fault:
            if verified.message_id != self.last_message_id:
                raise AnswerMessageIdMismatch(
                    f"the answer echoes X-Road id {verified.message_id!r}, "
                    f"not ours ({self.last_message_id!r})"
                )
        echoed_hash = verified.signed_headers.get("requestHash")
        if echoed_hash is not None or not is_fault:
            expected = (base64.b64encode(hashlib.sha512(self.last_request).digest()).decode()
                        if self.last_request is not None else None)
            got = (echoed_hash.text or "").strip() if echoed_hash is not None else None
            if got is None or expected is None or got != expected:
                raise AnswerRequestHashMismatch(
                    "the answer's requestHash is not the hash of the request sent"
                    if got is not None else "the answer carries no signed requestHash"
                )
            algorithm = echoed_hash.get("algorithmId") if echoed_hash is not None else None
            if algorithm not in (None, _SHA512_URI):
                raise AnswerRequestHashMismatch(f"requestHash algorithm {algorithm} unexpected")


def add_xroad_headers(
    header: etree._Element,
    *,
    client: XRoadMember,
    service: XRoadMember,
    operation: str,
    message_id: str,
    user_id: str | None = None,
    issue: str | None = None,
) -> None:
    nsmap = {"xrd": XROAD_NS, "id": ID_NS}
    c = etree.SubElement(header, f"{{{XROAD_NS}}}client", nsmap=nsmap)
    c.set(f"{{{ID_NS}}}objectType", "SUBSYSTEM" if client.subsystem_code else "MEMBER")
    _identifier(c, client)
    s = etree.SubElement(header, f"{{{XROAD_NS}}}service", nsmap=nsmap)
    s.set(f"{{{ID_NS}}}objectType", "SERVICE")
    _identifier(s, service)
    etree.SubElement(s, f"{{{ID_NS}}}serviceCode").text = operation
    etree.SubElement(s, f"{{{ID_NS}}}serviceVersion").text = "v1"
    etree.SubElement(header, f"{{{XROAD_NS}}}id", nsmap=nsmap).text = message_id
    if user_id:
        etree.SubElement(header, f"{{{XROAD_NS}}}userId", nsmap=nsmap).text = user_id
    if issue:
        etree.SubElement(header, f"{{{XROAD_NS}}}issue", nsmap=nsmap).text = issue
    etree.SubElement(header, f"{{{XROAD_NS}}}protocolVersion", nsmap=nsmap).text = "4.0"


def _identifier(parent: etree._Element, member: XRoadMember) -> None:
    etree.SubElement(parent, f"{{{ID_NS}}}xRoadInstance").text = member.instance
    etree.SubElement(parent, f"{{{ID_NS}}}memberClass").text = member.member_class
    etree.SubElement(parent, f"{{{ID_NS}}}memberCode").text = member.member_code
    if member.subsystem_code:
        etree.SubElement(parent, f"{{{ID_NS}}}subsystemCode").text = member.subsystem_code
