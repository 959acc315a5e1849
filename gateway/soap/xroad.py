"""X-Road 4.0 message headers: read them from a request, echo them into the response.

Responses repeat the request's ``client``, ``service``, ``id``, ``userId``, ``issue`` and
``protocolVersion`` in that order and add ``requestHash`` (SHA-512 of the request as received,
as X-Road does), so a client can tie a signed response to exactly what it sent.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from dataclasses import dataclass

from lxml import etree

from gateway.domain.errors import ValidationFailed

XROAD_NS = "http://x-road.eu/xsd/xroad.xsd"
IDENTIFIERS_NS = "http://x-road.eu/xsd/identifiers"
WSU_ID = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}Id"
ECHOED = ("client", "service", "id", "userId", "issue", "protocolVersion")
SHA512_URI = "http://www.w3.org/2001/04/xmlenc#sha512"
MAX_MESSAGE_ID = 200


@dataclass(frozen=True)
class XRoadHeaders:
    elements: dict[str, etree._Element]

    @property
    def message_id(self) -> str | None:
        return self._text("id")

    @property
    def user_id(self) -> str | None:
        return self._text("userId")

    @property
    def protocol_version(self) -> str | None:
        return self._text("protocolVersion")

    @property
    def client_member_code(self) -> str | None:
        client = self.elements.get("client")
        if client is None:
            return None
        return client.findtext(f"{{{IDENTIFIERS_NS}}}memberCode")

    @property
    def service_code(self) -> str | None:
        service = self.elements.get("service")
        if service is None:
            return None
        return service.findtext(f"{{{IDENTIFIERS_NS}}}serviceCode")

    def _text(self, name: str) -> str | None:
        el = self.elements.get(name)
        if el is None or el.text is None:
            return None
        return el.text.strip()


def acting_for(body: etree._Element) -> str | None:
    """The VÖEN the (verified) body's operation names in its ``voen`` element, if any."""
    payload = next(iter(body), None)
    if payload is None or not isinstance(payload.tag, str):
        return None
    namespace = etree.QName(payload).namespace
    value = payload.findtext(f"{{{namespace}}}voen" if namespace else "voen")
    return value.strip() if value else None


def read_headers(header: etree._Element | None) -> XRoadHeaders:
    """The X-Road headers among the SOAP Header's children (each at most once)."""
    found: dict[str, etree._Element] = {}
    if header is None:
        return XRoadHeaders(found)
    for child in header:
        if not isinstance(child.tag, str) or not child.tag.startswith(f"{{{XROAD_NS}}}"):
            continue
        name = etree.QName(child).localname
        if name in found:
            raise ValidationFailed(
                f"X-Road header {name} appears twice", code="Client.Header.Duplicate", field=name
            )
        found[name] = child
    return XRoadHeaders(found)


def require_headers(headers: XRoadHeaders, operation: str) -> None:
    for name in ("client", "service", "id", "protocolVersion"):
        if name not in headers.elements:
            raise ValidationFailed(
                f"X-Road header {name} is required", code="Client.Header.Missing", field=name
            )
    message_id = headers.message_id
    if not message_id or len(message_id) > MAX_MESSAGE_ID:
        # Replay protection and idempotency hang on this id: it must be there and bounded.
        raise ValidationFailed(
            f"X-Road id must be 1..{MAX_MESSAGE_ID} characters", code="Client.Header.Missing",
            field="id",
        )
    if headers.protocol_version != "4.0":
        raise ValidationFailed(
            "X-Road protocolVersion must be 4.0", code="Client.Header.ProtocolVersion",
            field="protocolVersion",
        )
    code = headers.service_code
    if code is not None and code != operation:
        raise ValidationFailed(
            f"X-Road service code {code!r} does not name the operation {operation!r}",
            code="Client.Header.ServiceMismatch", field="service",
        )


def request_hash(request: bytes) -> str:
    return base64.b64encode(hashlib.sha512(request).digest()).decode("ascii")


def echo_into(header: etree._Element, headers: XRoadHeaders, request: bytes | None) -> None:
    """Append the echoed X-Road headers (and requestHash) to a response's SOAP Header."""
    for name in ECHOED:
        el = headers.elements.get(name)
        if el is None:
            continue
        clone = copy.deepcopy(el)
        if WSU_ID in clone.attrib:  # the response's signature assigns its own ids
            del clone.attrib[WSU_ID]
        clone.tail = None
        header.append(clone)
    if request is not None and headers.elements:
        rh = etree.SubElement(header, f"{{{XROAD_NS}}}requestHash", nsmap={"xrd": XROAD_NS})
        rh.set("algorithmId", SHA512_URI)
        rh.text = request_hash(request)
