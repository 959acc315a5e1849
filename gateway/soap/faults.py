"""The one place where errors become SOAP 1.1 faults.

Every fault carries a specific code (``Client.*`` when the caller can fix it, ``Server.*`` when
we must) and a correlation id that is also in our log, never a stack trace.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from gateway.domain.errors import GatewayError
from signing.errors import SigningError

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "urn:az:dsmf:insured-registration:v1"

INTERNAL_MESSAGE = "internal error; quote the correlation id to the operator"


@dataclass(frozen=True)
class FaultInfo:
    code: str
    message: str
    field: str | None = None

    @property
    def is_client(self) -> bool:
        return self.code.startswith("Client")


def describe(exc: BaseException) -> FaultInfo:
    """Our errors carry their own code; anything else is an internal error, without details."""
    if isinstance(exc, GatewayError):
        return FaultInfo(exc.code, exc.message, exc.field)
    if isinstance(exc, SigningError):
        return FaultInfo(exc.code, exc.message)
    return FaultInfo("Server.Internal", INTERNAL_MESSAGE)


def build_fault_envelope(info: FaultInfo, correlation_id: str) -> etree._Element:
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV})
    etree.SubElement(envelope, f"{{{SOAP_ENV}}}Header")
    body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    # SOAP 1.1 fault codes are QNames in the envelope namespace ("soapenv:Client.X.Y").
    etree.SubElement(fault, "faultcode").text = f"soapenv:{info.code}"
    etree.SubElement(fault, "faultstring").text = info.message
    detail = etree.SubElement(fault, "detail")
    fd = etree.SubElement(detail, f"{{{TNS}}}FaultDetail", nsmap={"tns": TNS})
    etree.SubElement(fd, f"{{{TNS}}}code").text = info.code
    etree.SubElement(fd, f"{{{TNS}}}correlationId").text = correlation_id
    etree.SubElement(fd, f"{{{TNS}}}message").text = info.message
    if info.field:
        etree.SubElement(fd, f"{{{TNS}}}field").text = info.field
    return envelope
