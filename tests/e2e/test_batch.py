"""SubmitRegistrationBatch end to end: one result per item, each item on its own."""

from __future__ import annotations

import uuid
from pathlib import Path

from zeep.exceptions import Fault

from gateway.domain.ssn import SsnFormat
from tests.e2e.conftest import (
    DEMO_VOEN,
    OTHER_VOEN,
    TNS,
    Stack,
    fault_code,
    response_fault_code,
    sibling_stack,
    signed_request,
)
from tests.e2e.test_registration_flow import service


def item(ref: str, fin: str, **extra: object) -> dict[str, object]:
    return {"clientRef": ref, "documentType": "ID_CARD", "fin": fin,
            "actualAddressDiffers": False, **extra}


def test_batch_gives_one_result_per_item(stack: Stack) -> None:
    svc = service(stack)
    answer = svc.SubmitRegistrationBatch(voen=DEMO_VOEN, item=[
        item("emp-1", "6TY2U8P", contacts={"mobilePhone": "+994501112233"}),
        item("emp-2", "9QW3E5R"),
        item("emp-3", "0NF7ND0"),
    ])
    results = {r.clientRef: r for r in answer.result}
    assert [r.clientRef for r in answer.result] == ["emp-1", "emp-2", "emp-3"]

    new = results["emp-1"]
    assert new.outcome == "REGISTERED"
    assert new.faultCode is None
    settings = stack.gateway.settings
    assert SsnFormat(settings.ssn_prefix, settings.ssn_serial_digits).is_valid(new.ssn)
    detail = svc.GetApplication(voen=DEMO_VOEN, applicationId=new.applicationId)
    assert (detail.application.summary.ssn, detail.application.summary.surname) == (
        new.ssn, "Cəfərli")
    assert detail.application.contacts.mobilePhone == "+994501112233"

    exists = results["emp-2"]
    assert (exists.outcome, exists.faultCode) == ("SSN_EXISTS", "Client.Conflict.SsnExists")
    assert exists.applicationId is None and "Rzayev" in exists.message

    unknown = results["emp-3"]
    assert (unknown.outcome, unknown.faultCode) == ("FAILED", "Client.Person.NotFound")
    assert unknown.message

    # Only the registered item left an application behind.
    assert svc.SearchApplications(voen=DEMO_VOEN).total == 1


def test_duplicate_fin_in_one_batch_fails_that_item(stack: Stack) -> None:
    svc = service(stack)
    answer = svc.SubmitRegistrationBatch(voen=DEMO_VOEN, item=[
        item("a", "5GH3J7K"),
        item("b", "5GH3J7K"),
        item("c", "6TY2U8P", contacts={"mobilePhone": "+994124987654"}),  # a landline
    ])
    outcomes = [(r.clientRef, r.outcome, r.faultCode) for r in answer.result]
    assert outcomes == [
        ("a", "REGISTERED", None),
        ("b", "FAILED", "Client.Validation.DuplicateInBatch"),
        ("c", "FAILED", "Client.Validation.Phone"),
    ]


def test_batch_for_another_insurer_is_refused_as_a_whole(stack: Stack) -> None:
    svc = service(stack, "director_b", OTHER_VOEN)
    try:
        svc.SubmitRegistrationBatch(voen=DEMO_VOEN, item=[item("a", "5GH3J7K")])
    except Fault as fault:
        assert fault_code(fault) == "Client.NotAuthorized.OtherInsurer"
    else:
        raise AssertionError("a batch for another insurer was accepted")


def test_batch_size_is_limited_by_settings_and_by_the_contract(stack: Stack,
                                                               tmp_path: Path) -> None:
    with sibling_stack(stack, tmp_path / "small", max_batch_items=2) as small:
        svc = service(small)
        try:
            svc.SubmitRegistrationBatch(voen=DEMO_VOEN, item=[
                item("a", "5GH3J7K"), item("b", "6TY2U8P"), item("c", "8LV4N2X")])
        except Fault as fault:
            assert fault_code(fault) == "Client.Validation.BatchTooLarge"
        else:
            raise AssertionError("a batch over max_batch_items was accepted")
        assert svc.SearchApplications(voen=DEMO_VOEN).total == 0

    # Over the contract's 500: the schema refuses it before any handler runs.
    items = "".join(
        f"<t:item><t:clientRef>r{n}</t:clientRef><t:documentType>ID_CARD</t:documentType>"
        f"<t:fin>5GH3J7K</t:fin><t:actualAddressDiffers>false</t:actualAddressDiffers></t:item>"
        for n in range(501)
    )
    payload = (f'<t:SubmitRegistrationBatch xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
               f'{items}</t:SubmitRegistrationBatch>')
    response = stack.post(signed_request(stack.pki.signer("director"), "SubmitRegistrationBatch",
                                         payload, message_id=str(uuid.uuid4())))
    assert response.status_code == 500
    assert response_fault_code(response) == "Client.Validation.Schema"
