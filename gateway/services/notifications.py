"""The notice about an application (bildiriş, "Bildirişi yüklə" in the registry, manual §3.3).

One notice, two renderings: an XML document in its own namespace (``urn:az:dsmf:notification:v1``)
signed by the gateway with an enveloped XML-DSig (exclusive C14N, the certificate in ``KeyInfo``),
so it can be checked years later without us; and a PDF of the same content for people. A draft
gets a notice too, marked as a draft in both (``kind="DRAFT"``, and a banner in the PDF): it
proves what was saved, not that anything was registered.

Who may download it is decided exactly as for the detailed view (``RegistrationService.get``):
the insurer's own applications only, another insurer's are "not found".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Final, Protocol

from lxml import etree

from gateway.config import project_root
from gateway.domain.calendar import baku_time
from gateway.domain.errors import InternalError, UpstreamUnavailable
from gateway.domain.model import (
    Actor,
    Application,
    ApplicationStatus,
    PersonRecord,
)
from gateway.domain.values import Address, Contacts, DocumentType
from gateway.messages import notes
from gateway.services.ports import Clock, UnitOfWorkFactory
from gateway.services.registration import RegistrationService
from signing.signer import Signer
from signing.wsse import sign_document

NOTIFICATION_NS: Final = "urn:az:dsmf:notification:v1"
NOTIFICATION_VERSION: Final = "1"
#: The notice is for the Fund's and the insurer's files: always Azerbaijani.
NOTICE_LOCALE: Final = "az"
NOTICE_SCHEMA: Final = project_root() / "xsd" / "notification.xsd"

ApplicationReader = Callable[[Actor | None, str, str], Application]
"""``(actor, voen, application_id) -> Application``, authorizing as the detailed view does."""


@dataclass(frozen=True, slots=True)
class Notice:
    """What ``GetNotification`` returns: the signed XML, its PDF rendering, the PDF's name."""

    xml: bytes
    pdf: bytes
    file_name: str

    @property
    def xml_file_name(self) -> str:
        return self.file_name.removesuffix(".pdf") + ".xml"


@dataclass(frozen=True, slots=True)
class NoticeContent:
    """Everything a notice shows, for the renderers."""

    application: Application
    insurer_voen: str
    insurer_name: str
    issued_at: datetime

    @property
    def is_draft(self) -> bool:
        return self.application.status is ApplicationStatus.DRAFT


class PdfRenderer(Protocol):
    def __call__(self, content: NoticeContent) -> bytes: ...


class NotificationService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        signer: Signer,
        clock: Clock,
        pdf_renderer: PdfRenderer,
        *,
        applications: ApplicationReader | None = None,
    ) -> None:
        self.uow = uow
        self.signer = signer
        self.clock = clock
        self.pdf_renderer = pdf_renderer
        # The registry's detailed view decides who may see an application; reading it through
        # the same handler keeps one ownership rule. Reading needs no population registry.
        self.applications = applications or RegistrationService(
            uow, _NoPopulationRegistry(), clock
        ).get

    def notice(self, actor: Actor | None, voen: str, application_id: str) -> Notice:
        app = self.applications(actor, voen, application_id)
        with self.uow() as uow:
            insurer = uow.insurers.get(app.insurer_voen)
        content = NoticeContent(
            application=app,
            insurer_voen=app.insurer_voen,
            insurer_name=insurer.full_name if insurer is not None else app.insurer_voen,
            issued_at=baku_time(self.clock()),
        )
        document = notice_document(content)
        # The notice's own contract (xsd/notification.xsd): nothing unchecked gets signed.
        validate_notice(document)
        sign_document(document, self.signer)
        xml = etree.tostring(document, xml_declaration=True, encoding="UTF-8")
        stem = f"bildiris-{app.application_id}" + ("-qaralama" if content.is_draft else "")
        return Notice(xml=xml, pdf=self.pdf_renderer(content), file_name=f"{stem}.pdf")


def notice_document(content: NoticeContent) -> etree._Element:
    """The unsigned notice as an XML document (root ``n:Notification``)."""
    app = content.application
    root = etree.Element(
        _q("Notification"), nsmap={"n": NOTIFICATION_NS},
        version=NOTIFICATION_VERSION, kind="DRAFT" if content.is_draft else "NOTICE",
    )
    _text(root, "issuedAt", _datetime(content.issued_at))

    application = etree.SubElement(root, _q("application"))
    _text(application, "applicationId", app.application_id)
    _text(application, "applicationType", app.application_type.value)
    _text(application, "status", app.status.value)
    _text(application, "applicationDate", _datetime(app.created_at))
    _text(application, "certificateStatus", app.certificate_status.value)
    if app.draft_reason:
        _text(application, "draftReason", notes.reason(app.draft_reason, NOTICE_LOCALE))

    insurer = etree.SubElement(root, _q("insurer"))
    _text(insurer, "voen", content.insurer_voen)
    _text(insurer, "name", content.insurer_name)

    person = etree.SubElement(root, _q("insuredPerson"))
    _text(person, "fin", app.fin)
    _text(person, "documentType", app.document_type.value)
    if app.person is not None:
        _person(person, app.person)
    if app.ssn:
        _text(person, "ssn", app.ssn)
    if app.ssn_date:
        _text(person, "ssnDate", _date(app.ssn_date))

    if app.registration_address is not None:
        _address(root, "registrationAddress", app.registration_address)
    _text(root, "actualAddressDiffers", "true" if app.actual_address_differs else "false")
    if app.actual_address is not None:
        _address(root, "actualAddress", app.actual_address)
    if app.contacts is not None and not app.contacts.is_empty():
        _contacts(root, app.contacts)
    if app.signed_by is not None:
        signed = etree.SubElement(root, _q("signedBy"))
        if app.signed_by.fin:
            _text(signed, "fin", app.signed_by.fin)
        _text(signed, "name", app.signed_by.name)
        _text(signed, "credentialType", credential_type(app.signed_by.credential))
        _text(signed, "credential", app.signed_by.credential)

    history = etree.SubElement(root, _q("statusHistory"))
    for change in app.history:
        entry = etree.SubElement(history, _q("statusChange"))
        _text(entry, "status", change.status.value)
        _text(entry, "at", _datetime(change.at))
        if change.actor_fin:
            _text(entry, "actorFin", change.actor_fin)
        if change.note:
            _text(entry, "note", notes.note(change.note, NOTICE_LOCALE))
    # Indented before signing: the digest covers exactly the bytes the caller receives.
    etree.indent(root, space="  ")
    return root


# -- Azerbaijani labels, shared by the PDF ------------------------------------------------------

APPLICATION_TYPE_AZ: Final = {
    "INITIAL_REGISTRATION": "İlkin uçot",
    "CORRECTION": "Düzəliş",
}
STATUS_AZ: Final = {
    "DRAFT": "Qaralama",
    "SUBMITTED": "Göndərilib (baxılır)",
    "REGISTERED": "Uçota alınıb",
    "REJECTED": "İmtina edilib",
}
CERTIFICATE_STATUS_AZ: Final = {
    "NOT_ISSUED": "Verilməyib",
    "ISSUED": "Verilib",
    "ANNULLED": "Ləğv edilib",
}
DOCUMENT_TYPE_AZ: Final = {
    DocumentType.ID_CARD.value: "Şəxsiyyət vəsiqəsi",
    DocumentType.TEMPORARY_RESIDENCE_PERMIT.value: "Müvəqqəti yaşamaq icazəsi",
    DocumentType.PERMANENT_RESIDENCE_PERMIT.value: "Daimi yaşamaq icazəsi",
}


# -- helpers ------------------------------------------------------------------------------------


class _NoPopulationRegistry:
    """Stands in for the population registry where only stored applications are read."""

    def find_person(self, document_type: DocumentType, fin: str) -> PersonRecord:
        raise UpstreamUnavailable("the notice service does not call the population registry")

    def ping(self) -> None:
        raise UpstreamUnavailable("the notice service does not call the population registry")


def _q(local: str) -> str:
    return f"{{{NOTIFICATION_NS}}}{local}"


def _text(parent: etree._Element, local: str, value: str) -> etree._Element:
    element = etree.SubElement(parent, _q(local))
    element.text = value
    return element


def _person(parent: etree._Element, person: PersonRecord) -> None:
    _text(parent, "surname", person.surname)
    _text(parent, "name", person.name)
    if person.patronymic:
        _text(parent, "patronymic", person.patronymic)
    _text(parent, "birthDate", _date(person.birth_date))
    _text(parent, "sex", person.sex.value)
    _text(parent, "citizenship", person.citizenship)
    doc = person.document
    document = etree.SubElement(parent, _q("identityDocument"))
    if doc.series:
        _text(document, "series", doc.series)
    _text(document, "number", doc.number)
    _text(document, "issueDate", _date(doc.issue_date))
    _text(document, "issuer", doc.issuer)


def _address(parent: etree._Element, local: str, address: Address) -> None:
    element = etree.SubElement(parent, _q(local))
    _text(element, "region", address.region)
    _text(element, "cityOrDistrict", address.city_or_district)
    _text(element, "street", address.street)
    _text(element, "house", address.house)
    if address.apartment:
        _text(element, "apartment", address.apartment)
    if address.postal_code:
        _text(element, "postalCode", address.postal_code)


def _contacts(parent: etree._Element, contacts: Contacts) -> None:
    element = etree.SubElement(parent, _q("contacts"))
    if contacts.mobile_phone:
        _text(element, "mobilePhone", contacts.mobile_phone)
    if contacts.landline_phone:
        _text(element, "landlinePhone", contacts.landline_phone)
    if contacts.email:
        _text(element, "email", contacts.email)


def _datetime(moment: datetime) -> str:
    """Baku time with its offset (``2026-12-06T09:49:30+04:00``), as in every answer."""
    return baku_time(moment).replace(microsecond=0).isoformat()


_PHONE: Final = re.compile(r"^\+994[0-9]{9}$")


def credential_type(credential: str) -> str:
    """``ASAN_IMZA`` when the signer's credential is an Asan İmza phone (E.164), otherwise
    ``E_SIGNATURE_CARD`` (the card number); a phone is never labelled as a certificate."""
    return "ASAN_IMZA" if _PHONE.match(credential) else "E_SIGNATURE_CARD"


def _date(day: date) -> str:
    return day.isoformat()


@cache
def _notice_schema() -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(NOTICE_SCHEMA), parser))


def validate_notice(document: etree._Element) -> None:
    """Refuse to sign a notice that does not match ``xsd/notification.xsd`` (our bug, not the
    caller's: Server.Internal)."""
    schema = _notice_schema()
    if not schema.validate(document):
        raise InternalError(f"the notice does not match its schema: {schema.error_log}")
