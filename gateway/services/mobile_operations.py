"""Asan İmza for every state-changing operation the manual allows with it (§2.2 grant and revoke
"with e-imza or Asan İmza", §3.1 registration, §3.2 correction; confirming a draft is
``MobileService.start_signing``).

The phone signs one document, ``dsmf:SignedOperation``: the operation's name, the insurer, the
operation's content field by field, the phone and user id, and the time. When the phone's
signature is verified the gateway reads the operation back *from that signed document* and
executes exactly it, with the Asan holder (from the certificate) as the actor: nothing the
caller sent besides what was signed is used. Each operation runs in the service's own
transaction(s), so a refusal (authorization, validation, conflict) writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from lxml import etree

from gateway.domain.errors import ValidationFailed
from gateway.domain.model import Actor, Application, Authority, AuthorityType
from gateway.domain.values import Address, Contacts, DocumentType
from gateway.services.authorities import AuthorityService
from gateway.services.registration import RegistrationData, RegistrationService

TNS: Final = "urn:az:dsmf:insured-registration:v1"


@dataclass(frozen=True, slots=True)
class GrantOperation:
    eservice_code: str
    authority_type: AuthorityType
    fin: str
    card_number: str | None = None
    asan_phone: str | None = None
    asan_user_id: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    trusted: bool = False


@dataclass(frozen=True, slots=True)
class RevokeOperation:
    authority_id: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CorrectionOperation:
    fin: str
    actual_address_differs: bool | None = None
    actual_address: Address | None = None
    contacts: Contacts | None = None


@dataclass(frozen=True, slots=True)
class RegistrationOperation:
    data: RegistrationData


MobileOperation = GrantOperation | RevokeOperation | CorrectionOperation | RegistrationOperation

#: The operation names in the signed document (the contract's operation names).
NAMES: Final = {
    GrantOperation: "GrantAuthority",
    RevokeOperation: "RevokeAuthority",
    CorrectionOperation: "SubmitCorrection",
    RegistrationOperation: "SubmitRegistration",
}
#: Those that need the insurer's seal authority.
SEAL_OPERATIONS: Final = (GrantOperation, RevokeOperation)

DISPLAY: Final = {
    "GrantAuthority": "DSMF: səlahiyyətin verilməsini imzalayın",
    "RevokeAuthority": "DSMF: səlahiyyətin ləğvini imzalayın",
    "SubmitCorrection": "DSMF: düzəlişi imzalayın",
    "SubmitRegistration": "DSMF: ilkin uçot ərizəsini imzalayın",
}

_ADDRESS_FIELDS: Final = (
    ("region", "region"), ("city_or_district", "cityOrDistrict"), ("street", "street"),
    ("house", "house"), ("apartment", "apartment"), ("postal_code", "postalCode"),
)
_CONTACT_FIELDS: Final = (
    ("mobile_phone", "mobilePhone"), ("landline_phone", "landlinePhone"), ("email", "email"),
)


# --- the signed document -------------------------------------------------------------------


def operation_document(
    operation: MobileOperation, voen: str, phone: str, user_id: str, now: datetime
) -> etree._Element:
    """What the phone signs for ``operation`` on behalf of insurer ``voen``."""
    doc = etree.Element(f"{{{TNS}}}SignedOperation", nsmap={"dsmf": TNS})
    _text(doc, "operation", NAMES[type(operation)])
    _text(doc, "voen", voen)
    content = etree.SubElement(doc, f"{{{TNS}}}content")
    if isinstance(operation, GrantOperation):
        _text(content, "eServiceCode", operation.eservice_code)
        _text(content, "authorityType", operation.authority_type.value)
        _text(content, "fin", operation.fin)
        _opt(content, "cardNumber", operation.card_number)
        _opt(content, "asanPhone", operation.asan_phone)
        _opt(content, "asanUserId", operation.asan_user_id)
        _opt(content, "validFrom", operation.valid_from.isoformat()
             if operation.valid_from else None)
        _opt(content, "validTo", operation.valid_to.isoformat() if operation.valid_to else None)
        _text(content, "trusted", "true" if operation.trusted else "false")
    elif isinstance(operation, RevokeOperation):
        _text(content, "authorityId", operation.authority_id)
        _opt(content, "reason", operation.reason)
    elif isinstance(operation, CorrectionOperation):
        _text(content, "fin", operation.fin)
        if operation.actual_address_differs is not None:
            _text(content, "actualAddressDiffers",
                  "true" if operation.actual_address_differs else "false")
        _address(content, "actualAddress", operation.actual_address)
        _contacts(content, operation.contacts)
    else:
        data = operation.data
        _text(content, "documentType", data.document_type.value)
        _text(content, "fin", data.fin)
        _text(content, "actualAddressDiffers", "true" if data.actual_address_differs else "false")
        _address(content, "actualAddress", data.actual_address)
        _contacts(content, data.contacts)
    signer = etree.SubElement(doc, f"{{{TNS}}}signer")
    _text(signer, "phone", phone)
    _text(signer, "userId", user_id)
    _text(doc, "signedAt", now.isoformat())
    return doc


def read_operation(doc: etree._Element) -> tuple[str, MobileOperation]:
    """``(voen, operation)`` exactly as the signed document states them."""
    name = _get(doc, "operation")
    voen = _get(doc, "voen")
    content = doc.find(f"{{{TNS}}}content")
    if content is None:
        raise ValidationFailed("the signed document has no content",
                               code="Client.Validation.MobileOperation")
    if name == "GrantAuthority":
        return voen, GrantOperation(
            eservice_code=_get(content, "eServiceCode"),
            authority_type=AuthorityType(_get(content, "authorityType")),
            fin=_get(content, "fin"),
            card_number=_find(content, "cardNumber"),
            asan_phone=_find(content, "asanPhone"),
            asan_user_id=_find(content, "asanUserId"),
            valid_from=_date(_find(content, "validFrom")),
            valid_to=_date(_find(content, "validTo")),
            trusted=_find(content, "trusted") == "true",
        )
    if name == "RevokeAuthority":
        return voen, RevokeOperation(authority_id=_get(content, "authorityId"),
                                     reason=_find(content, "reason"))
    if name == "SubmitCorrection":
        differs = _find(content, "actualAddressDiffers")
        return voen, CorrectionOperation(
            fin=_get(content, "fin"),
            actual_address_differs=None if differs is None else differs == "true",
            actual_address=_read_address(content, "actualAddress"),
            contacts=_read_contacts(content),
        )
    if name == "SubmitRegistration":
        return voen, RegistrationOperation(RegistrationData(
            document_type=DocumentType(_get(content, "documentType")),
            fin=_get(content, "fin"),
            actual_address_differs=_find(content, "actualAddressDiffers") == "true",
            actual_address=_read_address(content, "actualAddress"),
            contacts=_read_contacts(content),
        ))
    raise ValidationFailed(f"unknown signed operation {name}",
                           code="Client.Validation.MobileOperation")


def execute(
    operation: MobileOperation,
    actor: Actor,
    voen: str,
    authorities: AuthorityService,
    registration: RegistrationService,
) -> Authority | Application:
    """Runs the signed operation with the Asan holder as actor (each service authorizes)."""
    if isinstance(operation, GrantOperation):
        return authorities.grant(
            actor, voen, eservice_code=operation.eservice_code,
            authority_type=operation.authority_type, card_number=operation.card_number,
            asan_phone=operation.asan_phone, asan_user_id=operation.asan_user_id,
            fin=operation.fin, valid_from=operation.valid_from, valid_to=operation.valid_to,
            trusted=operation.trusted,
        )
    if isinstance(operation, RevokeOperation):
        return authorities.revoke(actor, voen, operation.authority_id, operation.reason)
    if isinstance(operation, CorrectionOperation):
        return registration.correct(
            actor, voen, operation.fin, operation.actual_address, operation.contacts,
            actual_address_differs=operation.actual_address_differs,
        )
    return registration.submit(actor, voen, data=operation.data)


# --- helpers ---------------------------------------------------------------------------------


def _text(parent: etree._Element, local: str, value: str) -> None:
    etree.SubElement(parent, f"{{{TNS}}}{local}").text = value


def _opt(parent: etree._Element, local: str, value: str | None) -> None:
    if value:
        _text(parent, local, value)


def _address(parent: etree._Element, local: str, address: Address | None) -> None:
    if address is None:
        return
    el = etree.SubElement(parent, f"{{{TNS}}}{local}")
    for attr, name in _ADDRESS_FIELDS:
        _opt(el, name, getattr(address, attr))


def _contacts(parent: etree._Element, contacts: Contacts | None) -> None:
    if contacts is None or contacts.is_empty():
        return
    el = etree.SubElement(parent, f"{{{TNS}}}contacts")
    for attr, name in _CONTACT_FIELDS:
        _opt(el, name, getattr(contacts, attr))


def _find(parent: etree._Element, local: str) -> str | None:
    return parent.findtext(f"{{{TNS}}}{local}")


def _get(parent: etree._Element, local: str) -> str:
    value = _find(parent, local)
    if not value:
        raise ValidationFailed(f"the signed document has no {local}",
                               code="Client.Validation.MobileOperation")
    return value


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _read_address(parent: etree._Element, local: str) -> Address | None:
    el = parent.find(f"{{{TNS}}}{local}")
    if el is None:
        return None
    values = {attr: _find(el, name) for attr, name in _ADDRESS_FIELDS}
    return Address(
        region=values["region"] or "", city_or_district=values["city_or_district"] or "",
        street=values["street"] or "", house=values["house"] or "",
        apartment=values["apartment"], postal_code=values["postal_code"],
    )


def _read_contacts(parent: etree._Element) -> Contacts | None:
    el = parent.find(f"{{{TNS}}}contacts")
    if el is None:
        return None
    values = {attr: _find(el, name) for attr, name in _CONTACT_FIELDS}
    return Contacts(**values)
