"""§3.1 Initial registration (İlkin uçot) and §3.2 correction (Düzəliş)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from gateway.domain.errors import ValidationFailed
from gateway.domain.values import Address, Contacts, DocumentType
from gateway.services.registration import PersonFound, RegistrationData
from gateway.soap import convert
from gateway.soap import models as m
from gateway.soap.endpoint import Operation, RequestScope
from gateway.soap.faults import TNS
from gateway.soap.instances import builder

# The hot answers, built without spyne's per-field constructor (gateway.soap.instances).
_FindPersonResponse = builder(m.FindPersonResponse)
_ExistingInsured = builder(m.ExistingInsured)
_SubmitRegistrationResponse = builder(m.SubmitRegistrationResponse)


def registration_data(request: Any) -> RegistrationData:
    return RegistrationData(
        document_type=DocumentType(request.documentType),
        fin=request.fin,
        actual_address_differs=bool(request.actualAddressDiffers),
        actual_address=convert.to_address(request.actualAddress),
        contacts=convert.to_contacts(request.contacts),
    )


def registration_data_from_xml(payload: etree._Element) -> RegistrationData:
    """The same data from a schema-valid ``SubmitRegistration`` element (lxml), for paths that
    have the verified payload but no spyne object (a refused signature whose data is kept)."""

    def text(parent: etree._Element, name: str) -> str | None:
        value = parent.findtext(f"{{{TNS}}}{name}")
        return value.strip() if value is not None else None

    def address(name: str) -> Address | None:
        el = payload.find(f"{{{TNS}}}{name}")
        if el is None:
            return None
        return Address(
            region=text(el, "region") or "", city_or_district=text(el, "cityOrDistrict") or "",
            street=text(el, "street") or "", house=text(el, "house") or "",
            apartment=text(el, "apartment"), postal_code=text(el, "postalCode"),
        )

    contacts = payload.find(f"{{{TNS}}}contacts")
    kind = text(payload, "documentType")
    if kind not in {d.value for d in DocumentType}:
        raise ValidationFailed("give documentType and fin", code="Client.Validation.Application")
    return RegistrationData(
        document_type=DocumentType(kind),
        fin=text(payload, "fin") or "",
        actual_address_differs=text(payload, "actualAddressDiffers") in ("true", "1"),
        actual_address=address("actualAddress"),
        contacts=Contacts(
            mobile_phone=text(contacts, "mobilePhone"),
            landline_phone=text(contacts, "landlinePhone"), email=text(contacts, "email"),
        ) if contacts is not None else None,
    )


def operations(services: Any) -> dict[str, Operation]:
    reg = services.registration

    def find_person(scope: RequestScope, request: Any) -> m.FindPersonResponse:
        found = reg.find_person(
            scope.actor, request.voen, DocumentType(request.documentType), request.fin
        )
        if isinstance(found, PersonFound):
            return _FindPersonResponse(
                outcome="FOUND",
                person=convert.from_person(found.person),
                registrationAddress=convert.from_address(found.person.registration_address),
            )
        insured = found.insured
        return _FindPersonResponse(
            outcome="SSN_EXISTS",
            existingInsured=_ExistingInsured(
                surname=insured.surname, name=insured.name, patronymic=insured.patronymic,
                ssn=insured.ssn,
            ),
        )

    def save_draft(scope: RequestScope, request: Any) -> m.SaveDraftResponse:
        app = reg.save_draft(
            scope.actor, request.voen, registration_data(request), request.applicationId
        )
        return m.SaveDraftResponse(
            applicationId=app.application_id, status=app.status.value,
            savedAt=convert.answer_time(scope.received_at),
        )

    def delete_draft(scope: RequestScope, request: Any) -> m.DeleteDraftResponse:
        reg.delete_draft(scope.actor, request.voen, request.applicationId)
        return m.DeleteDraftResponse(applicationId=request.applicationId, deleted=True)

    def submit(scope: RequestScope, request: Any) -> m.SubmitRegistrationResponse:
        if request.applicationId is not None:
            app = reg.submit(scope.actor, request.voen, application_id=request.applicationId)
        else:
            if request.documentType is None or request.fin is None:
                raise ValidationFailed(
                    "give either an applicationId of a draft or documentType and fin",
                    code="Client.Validation.Application",
                )
            app = reg.submit(scope.actor, request.voen, data=registration_data(request))
        return _SubmitRegistrationResponse(
            result=convert.application_result(app, locale=scope.locale))

    def confirm(scope: RequestScope, request: Any) -> m.ConfirmDraftResponse:
        app = reg.submit(scope.actor, request.voen, application_id=request.applicationId)
        return m.ConfirmDraftResponse(
            result=convert.application_result(app, locale=scope.locale))

    def correct(scope: RequestScope, request: Any) -> m.SubmitCorrectionResponse:
        app = reg.correct(
            scope.actor, request.voen, request.fin,
            convert.to_address(request.actualAddress), convert.to_contacts(request.contacts),
            actual_address_differs=request.actualAddressDiffers,
        )
        return m.SubmitCorrectionResponse(
            applicationId=app.application_id, status=app.status.value,
            correctedAt=convert.answer_time(app.created_at),
        )

    def insured_person(scope: RequestScope, request: Any) -> m.GetInsuredPersonResponse:
        current = reg.current_data(scope.actor, request.voen, request.fin)
        insured = current.insured
        return m.GetInsuredPersonResponse(
            fin=insured.fin, surname=insured.surname, name=insured.name,
            patronymic=insured.patronymic, ssn=insured.ssn, ssnDate=insured.ssn_date,
            registrationAddress=convert.from_address(current.registration_address),
            actualAddressDiffers=current.actual_address_differs,
            actualAddress=convert.from_address(current.actual_address),
            contacts=convert.from_contacts(current.contacts),
            since=current.since, applicationId=current.application_id,
        )

    return {
        "FindPerson": find_person,
        "GetInsuredPerson": insured_person,
        "SaveDraft": save_draft,
        "DeleteDraft": delete_draft,
        "SubmitRegistration": submit,
        "ConfirmDraft": confirm,
        "SubmitCorrection": correct,
    }
