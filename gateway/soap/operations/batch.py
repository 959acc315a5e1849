"""Bulk initial registration for ERP systems (``SubmitRegistrationBatch``).

Each item is one ``SubmitRegistration`` with its own transaction: it succeeds or fails on its own
and the answer has one result per item, in the request's order. Only what concerns the whole
request fails it as a fault: too many items, or a signer who may not act for the insurer.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from gateway.domain.errors import Conflict, GatewayError, NotAuthorized, ValidationFailed
from gateway.domain.model import ApplicationStatus
from gateway.services.registration import outcome_message
from gateway.soap import models as m
from gateway.soap.endpoint import Operation, RequestScope
from gateway.soap.faults import FaultInfo, describe
from gateway.soap.operations.registration import registration_data

log = logging.getLogger("gateway.batch")

SSN_EXISTS: Final = "Client.Conflict.SsnExists"
DUPLICATE_IN_BATCH: Final = "Client.Validation.DuplicateInBatch"
_MAX_MESSAGE: Final = 2000  # tns:Message


def operations(services: Any) -> dict[str, Operation]:
    reg = services.registration
    limit = min(services.settings.max_batch_items, 500)  # the contract caps it at 500

    def submit_batch(scope: RequestScope, r: Any) -> m.SubmitRegistrationBatchResponse:
        items = list(r.item or ())
        if len(items) > limit:
            raise ValidationFailed(
                f"a batch has at most {limit} items, this one has {len(items)}",
                code="Client.Validation.BatchTooLarge", field="item", params={"limit": limit},
            )
        seen: dict[str, str] = {}
        results = []
        for item in items:
            fin = (item.fin or "").strip().upper()
            if fin in seen:
                results.append(_failed(item, FaultInfo(
                    DUPLICATE_IN_BATCH, f"the FIN {fin} is already in this batch",
                    "fin", {"fin": fin, "item": seen[fin]},
                ), scope.locale))
                continue
            seen[fin] = item.clientRef
            results.append(_submit_one(scope, reg, r.voen, item))
        return m.SubmitRegistrationBatchResponse(result=results)

    return {"SubmitRegistrationBatch": submit_batch}


def _submit_one(scope: RequestScope, reg: Any, voen: str, item: Any) -> m.BatchItemResult:
    try:
        app = reg.submit(scope.actor, voen, data=registration_data(item))
    except NotAuthorized:
        raise  # the same for every item: the whole request is refused
    except Conflict as exc:
        if exc.code == SSN_EXISTS:
            return m.BatchItemResult(
                clientRef=item.clientRef, outcome="SSN_EXISTS", faultCode=exc.code,
                ssn=getattr(exc, "ssn", None),
                message=describe(exc).user_message(scope.locale)[:_MAX_MESSAGE],
            )
        return _failed(item, describe(exc), scope.locale)
    except Exception as exc:  # one item's failure must not lose the others
        info = describe(exc)
        if not isinstance(exc, GatewayError):
            log.exception("batch item %s failed [%s]", item.clientRef, scope.correlation_id)
        return _failed(item, info, scope.locale)
    outcome = "REGISTERED" if app.status is ApplicationStatus.REGISTERED else "SUBMITTED"
    return m.BatchItemResult(
        clientRef=item.clientRef, outcome=outcome, applicationId=app.application_id,
        ssn=app.ssn, message=outcome_message(app),
    )


def _failed(item: Any, info: FaultInfo, locale: str) -> m.BatchItemResult:
    """A failed item: its fault code and the catalogue's message for it, as a fault would."""
    return m.BatchItemResult(
        clientRef=item.clientRef, outcome="FAILED", faultCode=info.code,
        message=info.user_message(locale)[:_MAX_MESSAGE],
    )
