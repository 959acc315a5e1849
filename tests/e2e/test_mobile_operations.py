"""Asan İmza for every operation the manual allows with it (issue #11, story 1): grant and
revoke authority (§2.2), correction (§3.2) and registration with its data (§3.1), end to end:
zeep → gateway → the MSSP simulator's scripted phones → the gateway executes exactly what the
phone signed. Refusals (at the start, on the phone, or when executing) write nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from zeep.exceptions import Fault

from gateway.domain.model import REGISTRATION_ESERVICE
from tests.e2e.conftest import DEMO_VOEN, OTHER_VOEN, Stack, fault_code
from tests.e2e.test_mobile import (
    ASAN_PHONE,
    ASAN_USER,
    DEPUTY_PHONE,
    DEPUTY_USER,
    card_client,
    grant_asan_authority,
    login,
    unsigned_client,
    wait_for,
)

CANCEL_PHONE, CANCEL_USER = "+994701111111", "100003"  # the simulator's phone that cancels


def asan_session(stack: Stack) -> Any:
    """The Asan seal holder of OTHER_VOEN ("asan", 4PD6W1S), signed in with the phone."""
    _, done = login(stack)
    assert done.state == "DONE"
    return unsigned_client(stack, token=done.sessionToken)


def grant_op(stack: Stack, identity: str = "employee") -> dict[str, Any]:
    return {"grantAuthority": {
        "voen": OTHER_VOEN, "eServiceCode": REGISTRATION_ESERVICE,
        "authorityType": "E_SIGNATURE_CARD",
        "cardNumber": stack.pki.identity(identity).card_number,
        "fin": stack.pki.identity(identity).fin, "trusted": True,
    }}


def sign(svc: Any, operation: dict[str, Any], phone: str = ASAN_PHONE,
         user_id: str = ASAN_USER, voen: str = OTHER_VOEN) -> Any:
    started = svc.StartMobileSigning(voen=voen, operation=operation, phone=phone,
                                     userId=user_id)
    assert len(started.verificationCode) == 4
    return started


def authorities(stack: Stack) -> list[Any]:
    return list(card_client(stack).ListAuthorities(voen=OTHER_VOEN).authority)


def test_seal_holder_grants_and_revokes_with_asan_imza(stack: Stack) -> None:
    svc = asan_session(stack)
    started = sign(svc, grant_op(stack))
    done = wait_for(svc, started.transactionId)
    assert done.state == "DONE", done
    granted = done.authority
    assert (granted.fin, granted.state, granted.grantedByFin) == (
        stack.pki.identity("employee").fin, "ACTIVE", "4PD6W1S")
    assert [a.authorityId for a in authorities(stack)] == [granted.authorityId]
    # The phone signed exactly the grant: its content is in the signed document.
    signed = stack.gateway.services.mobile.signed_document(started.transactionId)
    assert signed is not None
    assert b"GrantAuthority" in signed and granted.cardNumber.encode() in signed

    started = sign(svc, {"revokeAuthority": {
        "voen": OTHER_VOEN, "authorityId": granted.authorityId, "reason": "müqavilə bitib"}})
    done = wait_for(svc, started.transactionId)
    assert done.state == "DONE", done
    assert (done.authority.state, done.authority.revokeReason) == ("REVOKED", "müqavilə bitib")
    (row,) = authorities(stack)
    assert (row.state, row.revokedByFin) == ("REVOKED", "4PD6W1S")


def test_asan_registration_with_data_and_correction(stack: Stack) -> None:
    svc = asan_session(stack)
    started = sign(svc, {"submitRegistration": {
        "voen": OTHER_VOEN, "documentType": "ID_CARD", "fin": "6TY2U8P",
        "actualAddressDiffers": False, "contacts": {"mobilePhone": "+994702223344"}}})
    done = wait_for(svc, started.transactionId)
    assert done.state == "DONE", done
    assert done.result.status == "REGISTERED" and done.result.ssn

    started = sign(svc, {"submitCorrection": {
        "voen": OTHER_VOEN, "fin": "6TY2U8P", "contacts": {"email": "gulsen@example.az"}}})
    done = wait_for(svc, started.transactionId)
    assert done.state == "DONE", done
    assert done.result.status == "REGISTERED"
    current = card_client(stack).GetInsuredPerson(voen=OTHER_VOEN, fin="6TY2U8P")
    assert (current.contacts.mobilePhone, current.contacts.email) == (
        "+994702223344", "gulsen@example.az")
    assert current.applicationId == done.result.applicationId
    # Later polls give the same result.
    again = svc.GetMobileSigningStatus(transactionId=started.transactionId)
    assert again.state == "DONE" and again.result.applicationId == done.result.applicationId


def test_a_delegate_cannot_start_a_grant_and_nothing_is_written(stack: Stack) -> None:
    grant_asan_authority(stack)
    _, done = login(stack, DEPUTY_PHONE, DEPUTY_USER, voen=DEMO_VOEN)
    svc = unsigned_client(stack, token=done.sessionToken, voen=DEMO_VOEN)
    operation = grant_op(stack)
    operation["grantAuthority"]["voen"] = DEMO_VOEN
    with pytest.raises(Fault) as refused:
        sign(svc, operation, DEPUTY_PHONE, DEPUTY_USER, voen=DEMO_VOEN)
    assert fault_code(refused.value) == "Client.NotAuthorized.NotSealHolder"
    rows = stack.client("director")[0].service.ListAuthorities(voen=DEMO_VOEN)
    assert len(rows.body.authority) == 1  # only the delegate's own authority


def test_a_refused_phone_keeps_unsaved_registration_data_as_a_draft(stack: Stack) -> None:
    """§3.1 with Asan İmza: signing fails after Confirm on data never saved: it is a draft."""
    card = card_client(stack)  # director_b of OTHER_VOEN starts it for the cancelling phone
    started = sign(card, {"submitRegistration": {
        "voen": OTHER_VOEN, "documentType": "ID_CARD", "fin": "6TY2U8P",
        "actualAddressDiffers": False, "contacts": {"mobilePhone": "+994702223344"}}},
        CANCEL_PHONE, CANCEL_USER)
    answer = wait_for(unsigned_client(stack), started.transactionId)
    assert (answer.state, answer.reason) == ("REFUSED", "USER_CANCEL")
    (row,) = card.SearchApplications(voen=OTHER_VOEN).application
    kept = card.GetApplication(voen=OTHER_VOEN, applicationId=row.applicationId)
    assert kept.application.summary.status == "DRAFT"
    assert "USER_CANCEL" in kept.application.draftReason
    assert kept.application.contacts.mobilePhone == "+994702223344"
    assert kept.history[-1].actorFin == stack.pki.identity("director_b").fin


def test_a_refused_phone_grants_nothing(stack: Stack) -> None:
    card = card_client(stack)
    started = sign(card, grant_op(stack), CANCEL_PHONE, CANCEL_USER)
    answer = wait_for(unsigned_client(stack), started.transactionId)
    assert (answer.state, answer.reason) == ("REFUSED", "USER_CANCEL")
    assert authorities(stack) == []
    assert card.SearchApplications(voen=OTHER_VOEN).total == 0


def test_an_operation_refused_when_executed_writes_nothing(stack: Stack) -> None:
    svc = asan_session(stack)
    first = wait_for(svc, sign(svc, grant_op(stack)).transactionId)
    assert first.state == "DONE"
    again = sign(svc, grant_op(stack))
    with pytest.raises(Fault) as refused:
        wait_for(svc, again.transactionId)
    assert fault_code(refused.value) == "Client.Conflict.DuplicateAuthority"
    assert len(authorities(stack)) == 1


@pytest.mark.parametrize("request_", [
    {"applicationId": "a" * 36, "operation": {"revokeAuthority": {
        "voen": OTHER_VOEN, "authorityId": "x"}}},
    {"operation": {}},
    {"operation": {"revokeAuthority": {"voen": DEMO_VOEN, "authorityId": "x"}}},
])
def test_what_to_sign_must_be_one_operation_of_this_insurer(
    stack: Stack, request_: dict[str, Any]
) -> None:
    svc = asan_session(stack)
    with pytest.raises(Fault) as refused:
        svc.StartMobileSigning(voen=OTHER_VOEN, phone=ASAN_PHONE, userId=ASAN_USER, **request_)
    assert fault_code(refused.value) == "Client.Validation.MobileOperation"
