"""§3.1: "if signing fails after Confirm, the application is put into the Registry as a draft".

A card whose certificate has lapsed (expired / not yet valid) is refused with its own fault code,
the draft stays a DRAFT and records why; a later Confirm with a valid card registers it.
Signatures that identify nobody (untrusted CA) or someone without authority change nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from gateway.domain.model import REGISTRATION_ESERVICE, Authority, AuthorityType
from tests.e2e.conftest import (
    DEMO_VOEN,
    TNS,
    Stack,
    call,
    response_fault_code,
    signed_request,
)


def new_draft(stack: Stack) -> str:
    client, _ = stack.client("director")
    answer = call(client, "SaveDraft", voen=DEMO_VOEN, documentType="ID_CARD", fin="6TY2U8P",
                  actualAddressDiffers=False)
    return str(answer.applicationId)


def confirm_with(stack: Stack, identity: str, application_id: str) -> str | None:
    payload = (f'<t:ConfirmDraft xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
               f"<t:applicationId>{application_id}</t:applicationId></t:ConfirmDraft>")
    envelope = signed_request(stack.pki.signer(identity), "ConfirmDraft", payload,
                              message_id=str(uuid.uuid4()))
    return response_fault_code(stack.post(envelope))


def details(stack: Stack, application_id: str) -> object:
    client, _ = stack.client("director")
    return call(client, "GetApplication", voen=DEMO_VOEN, applicationId=application_id)


def grant_directly(stack: Stack, identity: str) -> None:
    """The director's grant to this card, stored as GrantAuthority would store it (the lapsed
    test certificates belong to people the population simulator does not know)."""
    issued = stack.pki.identity(identity)
    with stack.gateway.database.unit_of_work() as uow:
        uow.authorities.add(Authority(
            authority_id=str(uuid.uuid4()), insurer_voen=DEMO_VOEN,
            eservice_code=REGISTRATION_ESERVICE, authority_type=AuthorityType.E_SIGNATURE_CARD,
            fin=issued.fin or "", surname="Test", name="Lapsed", patronymic=None,
            granted_at=datetime.now(UTC), granted_by_fin="6ZK4T2P",
            card_number=issued.card_number,
        ))
        uow.commit()


@pytest.mark.parametrize(("identity", "code"), [
    ("expired", "Client.Certificate.Expired"),
    ("not_yet_valid", "Client.Certificate.NotYetValid"),
])
def test_lapsed_card_keeps_the_draft_with_the_reason(stack: Stack, identity: str,
                                                      code: str) -> None:
    application_id = new_draft(stack)
    grant_directly(stack, identity)
    assert confirm_with(stack, identity, application_id) == code
    kept = details(stack, application_id)
    assert kept.application.summary.status == "DRAFT"
    assert code in kept.application.draftReason
    assert kept.history[-1].status == "DRAFT" and "İmzalama alınmadı" in kept.history[-1].note
    assert kept.history[-1].actorFin == stack.pki.identity(identity).fin
    # Later, a valid card confirms the kept draft.
    assert confirm_with(stack, "director", application_id) is None
    done = details(stack, application_id)
    assert done.application.summary.status == "REGISTERED"
    assert done.application.summary.ssn
    assert done.application.draftReason is None


@pytest.mark.parametrize(("identity", "code"), [
    ("foreign", "Client.Certificate.Untrusted"),       # identifies nobody
    ("revoked", "Client.Certificate.Revoked"),         # key compromised: identifies nobody
    ("expired", "Client.Certificate.Expired"),         # no authority for this insurer
])
def test_unattributable_failures_change_nothing(stack: Stack, identity: str, code: str) -> None:
    application_id = new_draft(stack)
    assert confirm_with(stack, identity, application_id) == code
    kept = details(stack, application_id)
    assert kept.application.summary.status == "DRAFT"
    assert kept.application.draftReason is None
    assert [h.status for h in kept.history] == ["DRAFT"]


def confirm_envelope(stack: Stack, identity: str, application_id: str, *,
                     service_code: str = "ConfirmDraft") -> bytes:
    from signing.parser import serialize

    payload = (f'<t:ConfirmDraft xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
               f"<t:applicationId>{application_id}</t:applicationId></t:ConfirmDraft>")
    # The X-Road service code is signed: FindPerson here names another operation than the
    # payload's, which every signed request is refused for (Client.Header.ServiceMismatch).
    envelope = signed_request(stack.pki.signer(identity), service_code, payload,
                              message_id=str(uuid.uuid4()))
    return serialize(envelope)


def test_lapsed_card_request_posted_three_times_is_kept_once(stack: Stack) -> None:
    """The lapsed-card path goes through the replay guard: the same bytes again get the same
    refusal and write nothing more (before: one history entry per post)."""
    application_id = new_draft(stack)
    grant_directly(stack, "expired")
    data = confirm_envelope(stack, "expired", application_id)
    answers = [stack.post(data) for _ in range(3)]
    assert [response_fault_code(a) for a in answers] == ["Client.Certificate.Expired"] * 3
    assert answers[1].content == answers[0].content == answers[2].content
    kept = details(stack, application_id)
    assert [h.status for h in kept.history] == ["DRAFT", "DRAFT"]


def test_lapsed_card_request_with_mismatched_service_code_writes_nothing(stack: Stack) -> None:
    """The lapsed-card path checks the signed X-Road headers like every signed request."""
    application_id = new_draft(stack)
    grant_directly(stack, "expired")
    data = confirm_envelope(stack, "expired", application_id, service_code="FindPerson")
    assert response_fault_code(stack.post(data)) == "Client.Certificate.Expired"
    kept = details(stack, application_id)
    assert kept.application.draftReason is None
    assert [h.status for h in kept.history] == ["DRAFT"]


def submit_data_with(stack: Stack, identity: str) -> str | None:
    payload = (f'<t:SubmitRegistration xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
               "<t:documentType>ID_CARD</t:documentType><t:fin>6TY2U8P</t:fin>"
               "<t:actualAddressDiffers>false</t:actualAddressDiffers>"
               "<t:contacts><t:mobilePhone>+994551234567</t:mobilePhone></t:contacts>"
               "</t:SubmitRegistration>")
    envelope = signed_request(stack.pki.signer(identity), "SubmitRegistration", payload,
                              message_id=str(uuid.uuid4()))
    return response_fault_code(stack.post(envelope))


def drafts_for(stack: Stack, fin: str) -> list[str]:
    client, _ = stack.client("director")
    answer = call(client, "SearchApplications", voen=DEMO_VOEN, fin=fin)
    return [a.applicationId for a in answer.application]


def test_lapsed_card_keeps_unsaved_data_as_a_draft(stack: Stack) -> None:
    """Confirm without saving first, and the signature fails: the data is the draft."""
    grant_directly(stack, "expired")
    assert submit_data_with(stack, "expired") == "Client.Certificate.Expired"
    (kept_id,) = drafts_for(stack, "6TY2U8P")
    kept = details(stack, kept_id)
    assert kept.application.summary.status == "DRAFT"
    assert "Client.Certificate.Expired" in kept.application.draftReason
    assert kept.application.contacts.mobilePhone == "+994551234567"
    assert kept.application.registrationAddress is not None  # the registry's
    assert [h.status for h in kept.history] == ["DRAFT"]
    assert "İmzalama alınmadı" in kept.history[-1].note
    assert kept.history[-1].actorFin == stack.pki.identity("expired").fin
    # A second failed attempt keeps the same draft, not a second one.
    assert submit_data_with(stack, "expired") == "Client.Certificate.Expired"
    assert drafts_for(stack, "6TY2U8P") == [kept_id]
    # A valid card confirms it later.
    assert confirm_with(stack, "director", kept_id) is None
    assert details(stack, kept_id).application.summary.status == "REGISTERED"


@pytest.mark.parametrize(("identity", "code"), [
    ("foreign", "Client.Certificate.Untrusted"),
    ("revoked", "Client.Certificate.Revoked"),
    ("expired", "Client.Certificate.Expired"),         # no authority for this insurer
])
def test_unsaved_data_of_an_unattributable_failure_is_not_kept(
    stack: Stack, identity: str, code: str
) -> None:
    assert submit_data_with(stack, identity) == code
    assert drafts_for(stack, "6TY2U8P") == []
