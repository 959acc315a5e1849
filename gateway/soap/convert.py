"""Conversions between the contract's spyne models and the domain's dataclasses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.domain import model as dm
from gateway.domain.calendar import baku_time, business_date
from gateway.domain.values import Address, Contacts
from gateway.messages import DEFAULT_LOCALE, notes
from gateway.services.registration import outcome_message
from gateway.soap import models as m
from gateway.soap.instances import builder

# The hot answers' objects, built as spyne's constructor builds them but without its per-field
# machinery (gateway.soap.instances; issue #10).
_Address = builder(m.Address)
_Person = builder(m.Person)
_IdentityDocument = builder(m.IdentityDocument)
_ApplicationResult = builder(m.ApplicationResult)


def to_address(value: Any) -> Address | None:
    if value is None:
        return None
    return Address(
        region=value.region,
        city_or_district=value.cityOrDistrict,
        street=value.street,
        house=value.house,
        apartment=value.apartment,
        postal_code=value.postalCode,
    )


def from_address(value: Address | None) -> m.Address | None:
    if value is None:
        return None
    return _Address(
        region=value.region,
        cityOrDistrict=value.city_or_district,
        street=value.street,
        house=value.house,
        apartment=value.apartment,
        postalCode=value.postal_code,
    )


def to_contacts(value: Any) -> Contacts | None:
    if value is None:
        return None
    return Contacts(
        mobile_phone=value.mobilePhone, landline_phone=value.landlinePhone, email=value.email
    )


def from_contacts(value: Contacts | None) -> m.Contacts | None:
    if value is None:
        return None
    return m.Contacts(
        mobilePhone=value.mobile_phone, landlinePhone=value.landline_phone, email=value.email
    )


def from_person(person: dm.PersonRecord | None) -> m.Person | None:
    if person is None:
        return None
    doc = person.document
    return _Person(
        fin=person.fin,
        surname=person.surname,
        name=person.name,
        patronymic=person.patronymic,
        birthDate=person.birth_date,
        birthPlace=person.birth_place,
        sex=person.sex.value,
        citizenship=person.citizenship,
        document=_IdentityDocument(
            documentType=doc.document_type.value,
            series=doc.series,
            number=doc.number,
            issueDate=doc.issue_date,
            issuer=doc.issuer,
            expiryDate=doc.expiry_date,
        ),
    )


def answer_time(value: datetime) -> datetime:
    """A dateTime of an answer: Baku time, +04:00 (naive values are UTC instants)."""
    return baku_time(value)


def application_result(app: dm.Application, message: str | None = None,
                       locale: str = DEFAULT_LOCALE) -> m.ApplicationResult:
    return _ApplicationResult(
        applicationId=app.application_id,
        status=app.status.value,
        ssn=app.ssn,
        ssnDate=app.ssn_date,
        message=message if message is not None else outcome_text(app, locale),
    )


def outcome_text(app: dm.Application, locale: str = DEFAULT_LOCALE) -> str | None:
    """Why an application is not REGISTERED and what happens next, in the caller's language."""
    said = outcome_message(app)
    return notes.note(said, locale) if said is not None else None


def application_summary(app: dm.Application) -> m.ApplicationSummary:
    person = app.person
    return m.ApplicationSummary(
        applicationId=app.application_id,
        applicationType=app.application_type.value,
        fin=app.fin,
        surname=person.surname if person else None,
        name=person.name if person else None,
        patronymic=person.patronymic if person else None,
        ssn=app.ssn,
        ssnDate=app.ssn_date,
        applicationDate=business_date(app.created_at),
        status=app.status.value,
        certificateStatus=app.certificate_status.value,
    )


def application_detail(app: dm.Application, locale: str = DEFAULT_LOCALE) -> m.ApplicationDetail:
    signed = app.signed_by
    return m.ApplicationDetail(
        summary=application_summary(app),
        documentType=app.document_type.value,
        registrationAddress=from_address(app.registration_address),
        actualAddressDiffers=app.actual_address_differs,
        actualAddress=from_address(app.actual_address),
        contacts=from_contacts(app.contacts),
        signedBy=m.Signatory(
            fin=signed.fin,
            name=signed.name,
            # The stored credential tells its kind: an Asan phone is E.164 ("+994…"), a card
            # number is the certificate serial in hex.
            credentialType=(
                dm.AuthorityType.E_SIGNATURE_CARD.value
                if not signed.credential.startswith("+")
                else dm.AuthorityType.ASAN_IMZA.value
            ),
            credential=signed.credential,
        ) if signed is not None and signed.fin else None,
        draftReason=(notes.reason(app.draft_reason, locale, with_code=True)
                     if app.draft_reason else None),
        person=from_person(app.person),
    )


def status_change(change: dm.StatusChange, locale: str = DEFAULT_LOCALE) -> m.StatusChange:
    """A history line; its note in the caller's language (stored notes are fixed English
    forms, shown through the catalogue: ``gateway.messages.notes``)."""
    return m.StatusChange(
        status=change.status.value, at=answer_time(change.at), actorFin=change.actor_fin,
        note=notes.note(change.note, locale) if change.note else None,
    )


def authority(a: dm.Authority, eservice_name: str, today: Any) -> m.Authority:
    return m.Authority(
        authorityId=a.authority_id,
        eServiceCode=a.eservice_code,
        eServiceName=eservice_name,
        authorityType=a.authority_type.value,
        cardNumber=a.card_number,
        asanPhone=a.asan_phone,
        fin=a.fin,
        surname=a.surname,
        name=a.name,
        patronymic=a.patronymic,
        validFrom=a.valid_from,
        validTo=a.valid_to,
        state=a.state(today).value,
        grantedAt=answer_time(a.granted_at),
        grantedByFin=a.granted_by_fin,
        revokedAt=answer_time(a.revoked_at) if a.revoked_at else None,
        revokedByFin=a.revoked_by_fin,
        revokeReason=a.revoke_reason,
        asanUserId=a.asan_user_id,
        boundAt=answer_time(a.bound_at) if a.bound_at else None,
        holderCertificateValidTo=answer_time(a.holder_not_after) if a.holder_not_after else None,
    )
