"""§1.2 Asan İmza: mobile sign-in, mobile signing of a draft, and the status of either.

These three run unsigned (``Settings.unsigned_operations``): the holder's confirmation on the
phone is what protects them, and nothing changes until the returned signature is verified.
"""

from __future__ import annotations

from typing import Any

from gateway.domain.calendar import business_date
from gateway.domain.errors import ValidationFailed
from gateway.domain.model import Authority, AuthorityType
from gateway.services.mobile import MobileService
from gateway.services.mobile_operations import (
    CorrectionOperation,
    GrantOperation,
    MobileOperation,
    RegistrationOperation,
    RevokeOperation,
)
from gateway.soap import convert
from gateway.soap import models as m
from gateway.soap.endpoint import Operation, RequestScope
from gateway.soap.operations.registration import registration_data


def operations(services: Any) -> dict[str, Operation]:
    service: MobileService | None = getattr(services, "mobile", None)
    if service is None:
        return {}
    mobile = service

    def start_login(scope: RequestScope, r: Any) -> m.StartMobileLoginResponse:
        started = mobile.start_login(r.phone, r.userId, r.voen)
        return m.StartMobileLoginResponse(
            transactionId=started.transaction_id,
            verificationCode=started.verification_code,
            expiresAt=convert.answer_time(started.expires_at),
        )

    def start_signing(scope: RequestScope, r: Any) -> m.StartMobileSigningResponse:
        if (r.applicationId is None) == (r.operation is None):
            raise ValidationFailed(
                "give either the applicationId of a draft or one operation to sign",
                code="Client.Validation.MobileOperation",
            )
        if r.applicationId is not None:
            started = mobile.start_signing(
                scope.actor, r.voen, r.applicationId, r.phone, r.userId)
        else:
            started = mobile.start_operation(
                scope.actor, r.voen, _operation(r.voen, r.operation), r.phone, r.userId)
        return m.StartMobileSigningResponse(
            transactionId=started.transaction_id,
            verificationCode=started.verification_code,
            expiresAt=convert.answer_time(started.expires_at),
        )

    def authority_row(authority: Authority, scope: RequestScope) -> m.Authority:
        names = {e.code: e.name for e in services.insurers.list_eservices()}
        return convert.authority(authority, names.get(authority.eservice_code,
                                                      authority.eservice_code),
                                 business_date(scope.received_at))

    def status(scope: RequestScope, r: Any) -> m.GetMobileSigningStatusResponse:
        progress = mobile.status(r.transactionId)
        app = progress.application
        return m.GetMobileSigningStatusResponse(
            state=progress.state,
            reason=progress.reason,
            sessionToken=progress.session_token,
            sessionExpiresAt=(convert.answer_time(progress.session_expires_at)
                              if progress.session_expires_at else None),
            result=convert.application_result(app) if app is not None else None,
            authority=authority_row(progress.authority, scope) if progress.authority else None,
        )

    return {
        "StartMobileLogin": start_login,
        "StartMobileSigning": start_signing,
        "GetMobileSigningStatus": status,
    }



def _operation(voen: str, op: Any) -> MobileOperation:
    """The one operation in ``tns:operation``, for the insurer the request names."""
    given = [(name, getattr(op, name)) for name in (
        "grantAuthority", "revokeAuthority", "submitCorrection", "submitRegistration")
        if getattr(op, name) is not None]
    if len(given) != 1:
        raise ValidationFailed("operation holds exactly one operation to sign",
                               code="Client.Validation.MobileOperation", field="operation")
    name, r = given[0]
    if r.voen != voen:
        raise ValidationFailed("the operation acts for another insurer than the request",
                               code="Client.Validation.MobileOperation", field="operation")
    if name == "grantAuthority":
        return GrantOperation(
            eservice_code=r.eServiceCode, authority_type=AuthorityType(r.authorityType),
            fin=r.fin, card_number=r.cardNumber, asan_phone=r.asanPhone,
            asan_user_id=r.asanUserId, valid_from=r.validFrom, valid_to=r.validTo,
            trusted=bool(r.trusted),
        )
    if name == "revokeAuthority":
        return RevokeOperation(authority_id=r.authorityId, reason=r.reason)
    if name == "submitCorrection":
        return CorrectionOperation(
            fin=r.fin, actual_address_differs=r.actualAddressDiffers,
            actual_address=convert.to_address(r.actualAddress),
            contacts=convert.to_contacts(r.contacts),
        )
    if r.applicationId is not None or r.documentType is None or r.fin is None:
        raise ValidationFailed(
            "a registration to sign carries its data (documentType, fin, ...); a saved draft"
            " is signed by its applicationId", code="Client.Validation.MobileOperation",
            field="operation",
        )
    return RegistrationOperation(registration_data(r))
