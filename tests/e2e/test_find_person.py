"""FindPerson end to end: zeep (from the served WSDL) → gateway → zeep → simulator → answer."""

from __future__ import annotations

import uuid

import pytest
from zeep.exceptions import Fault

from gateway.soap.service import OPERATIONS
from tests.e2e.conftest import (
    Stack,
    call,
    fault_code,
    find_person_payload,
    response_fault_code,
    signed_request,
)


def test_served_wsdl_lists_every_operation(stack: Stack) -> None:
    client, _ = stack.client()
    ops = set()
    for service in client.wsdl.services.values():
        for port in service.ports.values():
            ops |= set(port.binding._operations)
    assert ops == set(OPERATIONS)
    # The address is rewritten to where the gateway runs.
    assert client.service._binding_options["address"] == stack.url


def test_seeded_person_is_found_with_azerbaijani_letters(stack: Stack) -> None:
    client, plugin = stack.client("director")
    answer = call(client, "FindPerson", voen="1403567891", documentType="ID_CARD", fin="5GH3J7K")
    assert answer.outcome == "FOUND"
    assert (answer.person.surname, answer.person.name, answer.person.patronymic) == (
        "Nəsibova", "Şəhla", "Oqtay qızı")
    assert answer.registrationAddress is not None
    # The answer was signed by the gateway and verified against the trust list by the plugin.
    assert plugin.last_response is not None
    assert plugin.last_response.certificate == stack.pki.identity("gateway").certificate


@pytest.mark.parametrize(("fin", "doc"), [
    ("A1B2C", "TEMPORARY_RESIDENCE_PERMIT"),
    ("Z9Y8X7", "PERMANENT_RESIDENCE_PERMIT"),
    ("K4M7P2Q", "PERMANENT_RESIDENCE_PERMIT"),
])
def test_residence_permit_fins_are_found(stack: Stack, fin: str, doc: str) -> None:
    client, _ = stack.client("director")
    answer = call(client, "FindPerson", voen="1403567891", documentType=doc, fin=fin)
    assert answer.outcome == "FOUND"
    assert answer.person.fin == fin
    assert answer.person.document.documentType == doc


def test_unknown_fin_is_a_specific_fault(stack: Stack) -> None:
    client, _ = stack.client("director")
    with pytest.raises(Fault) as info:
        call(client, "FindPerson", voen="1403567891", documentType="ID_CARD", fin="0NF7ND0")
    assert fault_code(info.value) == "Client.Person.NotFound"


def test_expired_document_is_refused(stack: Stack) -> None:
    client, _ = stack.client("director")
    with pytest.raises(Fault) as info:
        call(client, "FindPerson", voen="1403567891", documentType="ID_CARD", fin="1EX9PR3")
    assert fault_code(info.value) == "Client.Person.DocumentInvalid"


def test_person_with_ssn_gets_the_warning(stack: Stack) -> None:
    client, _ = stack.client("director")
    answer = call(client, "FindPerson", voen="1403567891", documentType="ID_CARD", fin="9QW3E5R")
    assert answer.outcome == "SSN_EXISTS"
    assert answer.existingInsured.surname == "Rzayev"
    assert answer.existingInsured.ssn
    assert answer.person is None


# One code per rule: the schema (alphabet, 5-7) and the domain (7 on an ID card) both say
# Client.Validation.Fin, field "fin".
@pytest.mark.parametrize(("fin", "doc", "code"), [
    ("5GH3J7I", "ID_CARD", "Client.Validation.Fin"),   # I is not in the FIN alphabet
    ("5GH3O7K", "ID_CARD", "Client.Validation.Fin"),   # nor O
    ("5GH3J7KX", "ID_CARD", "Client.Validation.Fin"),  # 8 characters
    ("5GH3J7", "ID_CARD", "Client.Validation.Fin"),    # 6 is only for residence permits
    ("5gh3j7k", "ID_CARD", "Client.Validation.Fin"),   # lower case
])
def test_malformed_fin_is_refused(stack: Stack, fin: str, doc: str, code: str) -> None:
    # Raw HTTP: zeep might refuse to send these itself; the gateway must refuse them anyway.
    envelope = signed_request(stack.pki.signer("director"), "FindPerson",
                              find_person_payload(fin, doc), message_id=str(uuid.uuid4()))
    response = stack.post(envelope)
    assert response.status_code == 500
    assert response_fault_code(response) == code
