"""A system certificate (e.g. the e-gov portal) acting for a person named in X-Road userId:
read-only, and only when the system is configured as trusted (DESIGN.md §1)."""

from __future__ import annotations

import uuid
from pathlib import Path

from lxml import etree

from gateway.client.wsse import XRoadMember, add_xroad_headers
from gateway.domain.model import REGISTRATION_ESERVICE
from signing.wsse import sign_envelope
from tests.e2e.conftest import (
    DEMO_VOEN,
    SOAP_ENV,
    TNS,
    Stack,
    call,
    find_person_payload,
    response_fault_code,
    sibling_stack,
)

SAVE_DRAFT = (f'<t:SaveDraft xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
              "<t:documentType>ID_CARD</t:documentType><t:fin>6TY2U8P</t:fin>"
              "<t:actualAddressDiffers>false</t:actualAddressDiffers></t:SaveDraft>")


def system_request(stack: Stack, operation: str, payload: str,
                   user_id: str | None, member: str = "1500000001") -> etree._Element:
    envelope = etree.fromstring(
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Header/>'
        f"<soapenv:Body>{payload}</soapenv:Body></soapenv:Envelope>".encode()
    )
    add_xroad_headers(envelope[0], client=XRoadMember("AZ", "GOV", member, "portal"),
                      service=XRoadMember("AZ", "GOV", "1500000011", "insured-registration"),
                      operation=operation, message_id=str(uuid.uuid4()), user_id=user_id)
    return sign_envelope(envelope, stack.pki.signer("system"))


def grant_deputy(stack: Stack) -> None:
    client, _ = stack.client("director")
    call(client, "GrantAuthority", voen=DEMO_VOEN, eServiceCode=REGISTRATION_ESERVICE,
         authorityType="E_SIGNATURE_CARD", cardNumber=stack.pki.identity("deputy").card_number,
         fin="3HN8B5Q", trusted=True)


def test_trusted_system_reads_for_a_person_with_authority(stack: Stack) -> None:
    grant_deputy(stack)
    response = stack.post(system_request(stack, "FindPerson", find_person_payload("5GH3J7K"),
                                         "AZ3HN8B5Q"))
    assert response.status_code == 200
    assert "Nəsibova" in response.content.decode()


def test_system_reads_only_what_the_person_in_user_id_may_read(stack: Stack) -> None:
    grant_deputy(stack)
    # Someone without an authority from this insurer (here: another insurer's director).
    response = stack.post(system_request(stack, "FindPerson", find_person_payload("5GH3J7K"),
                                         "AZ2RT5Y8U"))
    assert response_fault_code(response) == "Client.NotAuthorized.NoAuthority"
    # The deputy's authority is for this insurer only.
    other = find_person_payload("5GH3J7K", voen="1700345671")
    response = stack.post(system_request(stack, "FindPerson", other, "AZ3HN8B5Q"))
    assert response_fault_code(response) == "Client.NotAuthorized.NoAuthority"


def test_system_cannot_change_state(stack: Stack) -> None:
    grant_deputy(stack)
    response = stack.post(system_request(stack, "SaveDraft", SAVE_DRAFT, "AZ3HN8B5Q"))
    assert response_fault_code(response) == "Client.NotAuthorized.SystemCannotChange"


def test_system_request_must_name_the_person(stack: Stack) -> None:
    response = stack.post(system_request(stack, "FindPerson", find_person_payload("5GH3J7K"),
                                         None))
    assert response_fault_code(response) == "Client.Header.UserId"


def test_untrusted_system_is_refused(stack: Stack, tmp_path: Path) -> None:
    # The same database and PKI, but a gateway configured with no trusted systems.
    grant_deputy(stack)
    with sibling_stack(stack, tmp_path / "strict", trusted_systems=()) as strict:
        envelope = system_request(stack, "FindPerson", find_person_payload("5GH3J7K"),
                                  "AZ3HN8B5Q")
        response = strict.post(envelope)
        assert response_fault_code(response) == "Client.NotAuthorized.UntrustedSystem"
