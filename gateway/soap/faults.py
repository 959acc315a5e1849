"""The one place where errors become SOAP 1.1 faults.

Every fault carries a specific code (``Client.*`` when the caller can fix it, ``Server.*`` when
we must) and a correlation id that is also in our log, never a stack trace.

The ``Message`` a user reads is looked up *by the code* in the message catalogue
(:mod:`gateway.messages`, Azerbaijani by default, English when the request's HTTP
``Accept-Language`` prefers it), filled with the error's named parameters. The English message
given at the raise site is the developer's: it goes to the log, not to the user.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from gateway.domain.errors import GatewayError
from gateway.messages import DEFAULT_LOCALE, fault_message
from signing import errors as se
from signing.errors import SigningError

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "urn:az:dsmf:insured-registration:v1"

INTERNAL_MESSAGE = "internal error; quote the correlation id to the operator"

#: Where in the message a signature or certificate refusal points (its "field").
_SECURITY_FIELDS: tuple[tuple[type[SigningError], str], ...] = (
    (se.XmlError, ""),
    (se.CertificateError, "wsse:Security/wsse:BinarySecurityToken"),
    (se.TimestampExpired, "wsse:Security/wsu:Timestamp"),
    (se.TimestampInFuture, "wsse:Security/wsu:Timestamp"),
    (se.ReplayDetected, "id"),
    (se.SignatureMissing, "wsse:Security"),
    (se.SecurityHeaderMalformed, "wsse:Security"),
    (se.VerificationError, "wsse:Security/ds:Signature"),
)
#: Codes whose field is always the same, for raise sites that do not name it.
_DEFAULT_FIELDS: Mapping[str, str] = {
    "Client.Validation.Fin": "fin",
    "Client.Validation.Voen": "voen",
    "Client.Person.NotFound": "fin",
    "Client.Person.DocumentInvalid": "fin",
    "Client.NotFound.Insurer": "voen",
}


@dataclass(frozen=True)
class FaultInfo:
    code: str
    #: The developer's English text from the raise site (for the log).
    message: str
    field: str | None = None
    params: Mapping[str, object] = dataclasses.field(default_factory=dict)

    @property
    def is_client(self) -> bool:
        return self.code.startswith("Client")

    def user_message(self, locale: str = DEFAULT_LOCALE) -> str:
        """The catalogue's text for this code in ``locale``."""
        return fault_message(self.code, locale, {"field": self.field or "—", **self.params})


def describe(exc: BaseException) -> FaultInfo:
    """Our errors carry their own code; anything else is an internal error, without details."""
    if isinstance(exc, GatewayError):
        where = exc.field or _DEFAULT_FIELDS.get(exc.code)
        return FaultInfo(exc.code, exc.message, where, dict(exc.params))
    if isinstance(exc, SigningError):
        where = next((name for kind, name in _SECURITY_FIELDS if isinstance(exc, kind)), "")
        return FaultInfo(exc.code, exc.message, where or None,
                         dict(getattr(exc, "params", None) or {}))
    return FaultInfo("Server.Internal", INTERNAL_MESSAGE)


def build_fault_envelope(
    info: FaultInfo, correlation_id: str, locale: str = DEFAULT_LOCALE
) -> etree._Element:
    message = info.user_message(locale)
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV})
    etree.SubElement(envelope, f"{{{SOAP_ENV}}}Header")
    body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    # SOAP 1.1 fault codes are QNames in the envelope namespace ("soapenv:Client.X.Y").
    etree.SubElement(fault, "faultcode").text = f"soapenv:{info.code}"
    etree.SubElement(fault, "faultstring").text = message
    detail = etree.SubElement(fault, "detail")
    fd = etree.SubElement(detail, f"{{{TNS}}}FaultDetail", nsmap={"tns": TNS})
    etree.SubElement(fd, f"{{{TNS}}}code").text = info.code
    etree.SubElement(fd, f"{{{TNS}}}correlationId").text = correlation_id
    etree.SubElement(fd, f"{{{TNS}}}message").text = message
    if info.field:
        etree.SubElement(fd, f"{{{TNS}}}field").text = info.field
    return envelope
