"""Client-side kit: a zeep plugin that signs requests with our profile and verifies responses.

zeep's own ``wsse.Signature`` signs with SHA-1 and checks neither timestamps nor certificate
chains (DESIGN.md §2), so ERPs and our tests use this instead::

    plugin = SigningPlugin(signer, client=XRoadMember("AZ", "COM", "1403567891", "erp"),
                           verify_with=trust_store)
    client = zeep.Client(wsdl_url, plugins=[plugin])
    client.service.FindPerson(voen=..., documentType="ID_CARD", fin="5GH3J7K")

Each request gets the X-Road headers (a fresh message id, the operation as service code) and a
WS-Security signature made by ``signer`` (a key file, a PKCS#11 card, anything that is a
``signing.signer.Signer``). Each response is verified against the trust store before zeep
parses it; a response that fails raises ``signing.errors.VerificationError``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from signing.policy import SecurityPolicy
from signing.signer import Signer
from signing.trust import TrustStore
from signing.verifier import EnvelopeVerifier, VerifiedMessage
from signing.wsse import sign_envelope

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XROAD_NS = "http://x-road.eu/xsd/xroad.xsd"
ID_NS = "http://x-road.eu/xsd/identifiers"
TNS = "urn:az:dsmf:insured-registration:v1"


@dataclass(frozen=True)
class XRoadMember:
    instance: str
    member_class: str
    member_code: str
    subsystem_code: str | None = None


DSMF_SERVICE = XRoadMember("AZ", "GOV", "1500000011", "insured-registration")


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
        self.verifier = (
            EnvelopeVerifier(verify_with, SecurityPolicy(), None, clock)
            if verify_with is not None else None
        )
        self.last_message_id: str | None = None
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
        self.last_request = etree.tostring(envelope)
        return envelope, http_headers

    def ingress(
        self, envelope: etree._Element, http_headers: dict[str, str], operation: Any
    ) -> tuple[etree._Element, dict[str, str]]:
        if self.verifier is not None:
            self.last_response = self.verifier.verify(envelope)
        return envelope, http_headers


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
