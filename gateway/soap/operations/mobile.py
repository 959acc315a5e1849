"""§1.2 Asan İmza: mobile sign-in, mobile signing of a draft, and the status of either.

These three run unsigned (``Settings.unsigned_operations``): the holder's confirmation on the
phone is what protects them, and nothing changes until the returned signature is verified.
"""

from __future__ import annotations

from typing import Any

from gateway.services.mobile import MobileService
from gateway.soap import convert
from gateway.soap import models as m
from gateway.soap.endpoint import Operation, RequestScope


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
        started = mobile.start_signing(scope.actor, r.voen, r.applicationId, r.phone, r.userId)
        return m.StartMobileSigningResponse(
            transactionId=started.transaction_id,
            verificationCode=started.verification_code,
            expiresAt=convert.answer_time(started.expires_at),
        )

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
        )

    return {
        "StartMobileLogin": start_login,
        "StartMobileSigning": start_signing,
        "GetMobileSigningStatus": status,
    }

