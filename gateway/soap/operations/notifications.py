"""§3.3 "Bildirişi yüklə": the notice of an application, as signed XML and as PDF."""

from __future__ import annotations

from typing import Any

from gateway.domain.errors import NotImplementedOperation
from gateway.soap import models as m
from gateway.soap.endpoint import Operation, RequestScope


def operations(services: Any) -> dict[str, Operation]:
    def get_notification(scope: RequestScope, r: Any) -> m.GetNotificationResponse:
        notifications = services.notifications
        if notifications is None:
            raise NotImplementedOperation("notices are not configured on this gateway")
        notice = notifications.notice(scope.actor, r.voen, r.applicationId)
        return m.GetNotificationResponse(
            applicationId=r.applicationId, notificationXml=notice.xml, pdf=notice.pdf,
            fileName=notice.file_name,
        )

    return {"GetNotification": get_notification}
