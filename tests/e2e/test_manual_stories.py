"""The manual's stories that did not do what it says (issue #11), end to end over SOAP.

zeep with our signing plugin (or raw signed envelopes where zeep cannot send the message)
→ the gateway → the population-registry simulator → the database. Each refusal asserts its
exact fault code and that nothing was written.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from lxml import etree
from zeep.exceptions import Fault
from zeep.helpers import serialize_object

from gateway.domain import calendar
from gateway.domain.model import REGISTRATION_ESERVICE
from gateway.services.notifications import NOTIFICATION_NS
from signing.software import SoftwareSigner
from tests.e2e.conftest import (
    DEMO_VOEN,
    OTHER_VOEN,
    TNS,
    Bodies,
    Stack,
    fault_code,
    response_fault_code,
    sibling_stack,
    signed_request,
)
from tests.e2e.test_authorities import ShiftedGateway
from tests.e2e.test_system_certificate import system_request

N = {"n": NOTIFICATION_NS}

LENKERAN = {  # 5GH3J7K's registration address in the population registry
    "region": "Lənkəran şəhəri",
}
BAKU = {
    "region": "Bakı şəhəri", "cityOrDistrict": "Yasamal rayonu", "street": "Şərifzadə küçəsi",
    "house": "207", "apartment": "15", "postalCode": "AZ1012",
}
INVENTED = (
    "<t:registrationAddress><t:region>Bakı şəhəri</t:region>"
    "<t:cityOrDistrict>Nəsimi rayonu</t:cityOrDistrict><t:street>Uydurma küçəsi</t:street>"
    "<t:house>1</t:house></t:registrationAddress>"
)


def service(stack: Stack, identity: str = "director", voen: str = DEMO_VOEN) -> Any:
    return Bodies(stack.client(identity, voen=voen)[0].service)


def plain(value: Any) -> Any:
    return {k: v for k, v in serialize_object(value, dict).items() if v is not None}


def fault_of(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(Fault) as info:
        call(*args, **kwargs)
    return fault_code(info.value)


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / f"notice-{uuid.uuid4().hex}.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                          check=True, timeout=30)
    return done.stdout.decode("utf-8")


def count(svc: Any, voen: str = DEMO_VOEN, **filters: Any) -> int:
    return int(svc.SearchApplications(voen=voen, **filters).total)


# -- 3. The registration address is always the registry's ---------------------------------------


@pytest.mark.parametrize("operation", ["SaveDraft", "SubmitRegistration"])
def test_a_registration_address_in_the_request_is_refused(stack: Stack, operation: str) -> None:
    payload = (f'<t:{operation} xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
               f'<t:documentType>ID_CARD</t:documentType><t:fin>5GH3J7K</t:fin>{INVENTED}'
               f'<t:actualAddressDiffers>false</t:actualAddressDiffers></t:{operation}>')
    answer = stack.post(signed_request(stack.pki.signer("director"), operation, payload))
    assert answer.status_code == 500
    assert response_fault_code(answer) == "Client.Validation.Schema"
    assert b"registrationAddress" in answer.content  # the fault names the element
    assert count(service(stack), fin="5GH3J7K") == 0


def test_the_registered_address_is_the_registry_s(stack: Stack) -> None:
    svc = service(stack)
    found = svc.FindPerson(voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K")
    registry_address = plain(found.registrationAddress)
    assert registry_address["region"] == LENKERAN["region"]
    draft = svc.SaveDraft(voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K",
                          actualAddressDiffers=False)
    detail = svc.GetApplication(voen=DEMO_VOEN, applicationId=draft.applicationId)
    assert plain(detail.application.registrationAddress) == registry_address
    done = svc.ConfirmDraft(voen=DEMO_VOEN, applicationId=draft.applicationId).result
    assert done.status == "REGISTERED"
    detail = svc.GetApplication(voen=DEMO_VOEN, applicationId=draft.applicationId)
    assert plain(detail.application.registrationAddress) == registry_address
    current = svc.GetInsuredPerson(voen=DEMO_VOEN, fin="5GH3J7K")
    assert plain(current.registrationAddress) == registry_address


# -- 4. Corrections ---------------------------------------------------------------------------


def register(svc: Any, fin: str = "5GH3J7K") -> str:
    result = svc.SubmitRegistration(
        voen=DEMO_VOEN, documentType="ID_CARD", fin=fin, actualAddressDiffers=False,
        contacts={"mobilePhone": "+994501234567", "email": "sehla.nesibova@example.az"},
    ).result
    assert result.status == "REGISTERED"
    return str(result.ssn)


def test_a_correction_changes_only_what_it_names(stack: Stack, tmp_path: Path) -> None:
    svc = service(stack)
    ssn = register(svc)
    before = svc.GetInsuredPerson(voen=DEMO_VOEN, fin="5GH3J7K")
    assert (before.ssn, before.ssnDate) == (ssn, calendar.now().date())
    assert before.actualAddressDiffers is False and before.actualAddress is None
    assert plain(before.contacts) == {"mobilePhone": "+994501234567",
                                      "email": "sehla.nesibova@example.az"}
    assert before.since == calendar.now().date()

    # The actual address only: the contacts stay.
    first = svc.SubmitCorrection(voen=DEMO_VOEN, fin="5GH3J7K", actualAddress=BAKU)
    now = svc.GetInsuredPerson(voen=DEMO_VOEN, fin="5GH3J7K")
    assert now.applicationId == first.applicationId
    assert now.actualAddressDiffers is True and plain(now.actualAddress) == BAKU
    assert plain(now.contacts) == plain(before.contacts)

    # The e-mail only: the mobile number and the corrected actual address stay.
    second = svc.SubmitCorrection(voen=DEMO_VOEN, fin="5GH3J7K",
                                  contacts={"email": "sehla@example.az"})
    now = svc.GetInsuredPerson(voen=DEMO_VOEN, fin="5GH3J7K")
    assert now.applicationId == second.applicationId
    assert now.actualAddressDiffers is True and plain(now.actualAddress) == BAKU
    assert plain(now.contacts) == {"mobilePhone": "+994501234567", "email": "sehla@example.az"}
    detail = svc.GetApplication(voen=DEMO_VOEN, applicationId=second.applicationId)
    assert detail.application.actualAddressDiffers is True
    assert plain(detail.application.actualAddress) == BAKU
    notes = " ".join(h.note or "" for h in detail.history)
    assert "Şərifzadə küçəsi, 207" in notes and "sehla.nesibova@example.az" in notes

    # The notice matches what is stored: the corrected actual address, not "same as".
    notice = svc.GetNotification(voen=DEMO_VOEN, applicationId=second.applicationId)
    document = etree.fromstring(notice.notificationXml)
    assert document.findtext("n:actualAddressDiffers", namespaces=N) == "true"
    assert document.findtext("n:actualAddress/n:house", namespaces=N) == "207"
    assert document.findtext("n:contacts/n:mobilePhone", namespaces=N) == "+994501234567"
    text = pdf_text(notice.pdf, tmp_path)
    assert "Qeydiyyat ünvanı ilə eynidir" not in text
    assert "Şərifzadə küçəsi" in text and "+994501234567" in text

    # Back at the registration address: the actual address is cleared, contacts stay.
    third = svc.SubmitCorrection(voen=DEMO_VOEN, fin="5GH3J7K", actualAddressDiffers=False)
    now = svc.GetInsuredPerson(voen=DEMO_VOEN, fin="5GH3J7K")
    assert now.applicationId == third.applicationId
    assert now.actualAddressDiffers is False and now.actualAddress is None
    assert plain(now.contacts) == {"mobilePhone": "+994501234567", "email": "sehla@example.az"}
    notes = " ".join(h.note or "" for h in svc.GetApplication(
        voen=DEMO_VOEN, applicationId=third.applicationId).history)
    assert "Şərifzadə küçəsi, 207" in notes
    assert count(svc, applicationType="CORRECTION") == 3


@pytest.mark.parametrize(("changes", "code"), [
    ({}, "Client.Validation.Correction"),
    ({"contacts": {}}, "Client.Validation.Correction"),
    ({"actualAddressDiffers": False, "actualAddress": BAKU}, "Client.Validation.ActualAddress"),
    ({"actualAddressDiffers": True}, "Client.Validation.ActualAddress"),
])
def test_a_correction_that_names_nothing_coherent_is_refused(
    stack: Stack, changes: dict[str, Any], code: str
) -> None:
    svc = service(stack)
    register(svc)
    before = plain(svc.GetInsuredPerson(voen=DEMO_VOEN, fin="5GH3J7K"))
    assert fault_of(svc.SubmitCorrection, voen=DEMO_VOEN, fin="5GH3J7K", **changes) == code
    assert plain(svc.GetInsuredPerson(voen=DEMO_VOEN, fin="5GH3J7K")) == before
    assert count(svc, applicationType="CORRECTION") == 0


def test_a_person_without_ssn_has_no_current_data_and_no_correction(stack: Stack) -> None:
    svc = service(stack)
    assert fault_of(svc.GetInsuredPerson, voen=DEMO_VOEN, fin="5GH3J7K") == (
        "Client.NotFound.InsuredPerson")
    assert fault_of(svc.SubmitCorrection, voen=DEMO_VOEN, fin="5GH3J7K",
                    contacts={"email": "a@example.az"}) == "Client.NotFound.InsuredPerson"
    assert count(svc) == 0


def test_the_new_employer_corrects_a_person_insured_through_another(stack: Stack) -> None:
    # 9QW3E5R got the SSN through Gəncə Tekstil (OTHER_VOEN), before any application here.
    ours = service(stack)
    found = ours.FindPerson(voen=DEMO_VOEN, documentType="ID_CARD", fin="9QW3E5R")
    assert found.outcome == "SSN_EXISTS"
    current = ours.GetInsuredPerson(voen=DEMO_VOEN, fin="9QW3E5R")
    assert current.ssn == found.existingInsured.ssn
    assert current.applicationId is None and current.registrationAddress is not None
    assert current.actualAddressDiffers is False and current.contacts is None

    corrected = ours.SubmitCorrection(voen=DEMO_VOEN, fin="9QW3E5R", actualAddress=BAKU,
                                      contacts={"mobilePhone": "+994551112233"})
    assert corrected.status == "REGISTERED"
    # In the correcting insurer's registry, and the person's current data for everyone.
    assert count(ours, applicationType="CORRECTION", fin="9QW3E5R") == 1
    theirs = service(stack, "director_b", OTHER_VOEN)
    seen = theirs.GetInsuredPerson(voen=OTHER_VOEN, fin="9QW3E5R")
    assert seen.applicationId == corrected.applicationId
    assert plain(seen.actualAddress) == BAKU
    assert plain(seen.contacts) == {"mobilePhone": "+994551112233"}
    # The first employer's next correction starts from it.
    theirs.SubmitCorrection(voen=OTHER_VOEN, fin="9QW3E5R", contacts={"email": "e@example.az"})
    seen = ours.GetInsuredPerson(voen=DEMO_VOEN, fin="9QW3E5R")
    assert plain(seen.actualAddress) == BAKU
    assert plain(seen.contacts) == {"mobilePhone": "+994551112233", "email": "e@example.az"}


def test_a_stranger_neither_reads_nor_corrects(stack: Stack) -> None:
    ours = service(stack)
    register(ours)
    before = plain(ours.GetInsuredPerson(voen=DEMO_VOEN, fin="5GH3J7K"))
    # Another insurer's seal holder acting for ours; our employee who holds no authority.
    for identity, voen, code in (
        ("director_b", OTHER_VOEN, "Client.NotAuthorized.OtherInsurer"),
        ("employee", DEMO_VOEN, "Client.NotAuthorized.NoAuthority"),
    ):
        svc = service(stack, identity, voen)
        assert fault_of(svc.GetInsuredPerson, voen=DEMO_VOEN, fin="5GH3J7K") == code
        assert fault_of(svc.SubmitCorrection, voen=DEMO_VOEN, fin="5GH3J7K",
                        contacts={"email": "x@example.az"}) == code
    assert plain(ours.GetInsuredPerson(voen=DEMO_VOEN, fin="5GH3J7K")) == before
    assert count(ours, applicationType="CORRECTION") == 0
    assert count(service(stack, "director_b", OTHER_VOEN), voen=OTHER_VOEN) == 0


# -- 7. Small ones --------------------------------------------------------------------------


def test_one_open_draft_per_fin_and_insurer(stack: Stack) -> None:
    svc = service(stack)
    first = svc.SaveDraft(voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K",
                          actualAddressDiffers=False)
    for call in (svc.SaveDraft, svc.SubmitRegistration):
        with pytest.raises(Fault) as refused:
            call(voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K",
                 actualAddressDiffers=False, contacts={"email": "a@example.az"})
        assert fault_code(refused.value) == "Client.Conflict.DraftExists"
        assert first.applicationId in refused.value.message  # the answer names the draft
    # Another draft may not take over the FIN either.
    other = svc.SaveDraft(voen=DEMO_VOEN, documentType="ID_CARD", fin="6TY2U8P",
                          actualAddressDiffers=False)
    assert fault_of(svc.SaveDraft, voen=DEMO_VOEN, applicationId=other.applicationId,
                    documentType="ID_CARD", fin="5GH3J7K", actualAddressDiffers=False) == (
        "Client.Conflict.DraftExists")
    assert count(svc, fin="5GH3J7K") == 1
    assert svc.GetApplication(voen=DEMO_VOEN, applicationId=first.applicationId
                              ).application.contacts is None
    # The draft itself is changed with its id; another insurer keeps its own draft.
    svc.SaveDraft(voen=DEMO_VOEN, applicationId=first.applicationId, documentType="ID_CARD",
                  fin="5GH3J7K", actualAddressDiffers=False, contacts={"email": "a@example.az"})
    theirs = service(stack, "director_b", OTHER_VOEN)
    theirs.SaveDraft(voen=OTHER_VOEN, documentType="ID_CARD", fin="5GH3J7K",
                     actualAddressDiffers=False)
    assert count(theirs, voen=OTHER_VOEN, fin="5GH3J7K") == 1


def test_batch_ssn_exists_carries_the_ssn(stack: Stack) -> None:
    svc = service(stack)
    ssn = svc.FindPerson(voen=DEMO_VOEN, documentType="ID_CARD", fin="9QW3E5R"
                         ).existingInsured.ssn
    answer = svc.SubmitRegistrationBatch(voen=DEMO_VOEN, item=[
        {"clientRef": "HR-1", "documentType": "ID_CARD", "fin": "9QW3E5R",
         "actualAddressDiffers": False},
    ])
    (result,) = answer.result
    assert (result.outcome, result.ssn, result.faultCode) == (
        "SSN_EXISTS", ssn, "Client.Conflict.SsnExists")


FIND = (f'<t:FindPerson xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
        "<t:documentType>ID_CARD</t:documentType><t:fin>5GH3J7K</t:fin></t:FindPerson>")
SAVE = (f'<t:SaveDraft xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
        "<t:documentType>ID_CARD</t:documentType><t:fin>5GH3J7K</t:fin>"
        "<t:actualAddressDiffers>false</t:actualAddressDiffers></t:SaveDraft>")


@pytest.mark.parametrize(("identity", "member", "payload", "code"), [
    # A third organisation's member code: refused, whatever the operation.
    ("director", "1301234561", SAVE, "Client.NotAuthorized.XRoadClient"),
    ("director", "1301234561", FIND, "Client.NotAuthorized.XRoadClient"),
    # The signer's own organisation, or the insurer acted for: accepted.
    ("director", DEMO_VOEN, SAVE, None),
    ("director_b", OTHER_VOEN, FIND, "Client.NotAuthorized.OtherInsurer"),
])
def test_x_road_client_is_the_signer_s_organisation_or_the_insurer(
    stack: Stack, identity: str, member: str, payload: str, code: str | None
) -> None:
    answer = stack.post(signed_request(stack.pki.signer(identity), "SaveDraft"
                                       if "SaveDraft" in payload else "FindPerson",
                                       payload, voen=member, message_id=str(uuid.uuid4())))
    assert response_fault_code(answer) == code
    expected = 1 if code is None and "SaveDraft" in payload else 0
    assert count(service(stack)) == expected


def test_a_system_names_its_own_x_road_member(stack: Stack) -> None:
    # The portal's certificate (VÖEN 1500000001) claiming to be the insurer's member.
    answer = stack.post(system_request(stack, "FindPerson", FIND, "AZ6ZK4T2P", member=DEMO_VOEN))
    assert response_fault_code(answer) == "Client.NotAuthorized.XRoadClient"


# -- 6. Authority data ------------------------------------------------------------------------


def short_lived_card(stack: Stack, identity: str, tmp_path: Path, days: int) -> SoftwareSigner:
    """``identity``'s key in a new certificate from the test CA that expires in ``days``: a
    card that runs out while its authority is still in the registry."""
    issued = stack.pki.identity(identity)
    ca_key = serialization.load_pem_private_key(
        (stack.pki.directory / "ca" / "issuing-ca.key").read_bytes(), password=None)
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(issued.certificate.subject)
               .issuer_name(stack.pki.issuing.subject)
               .public_key(issued.certificate.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1))
               .not_valid_after(now + timedelta(days=days)))
    for extension in issued.certificate.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    certificate = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    path = tmp_path / f"{identity}-short.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return SoftwareSigner.from_pem(issued.key_path, path, issued.chain_paths)


def authorities_of(svc: Any, voen: str = DEMO_VOEN) -> dict[str, Any]:
    return {a.authorityId: a for a in svc.ListAuthorities(voen=voen).authority}


@pytest.fixture
def three_days_later(stack: Stack, tmp_path: Path) -> Iterator[ShiftedGateway]:
    later = ShiftedGateway(days=3)  # within the test CRL's 30 days, as in test_authorities
    with sibling_stack(stack, tmp_path / "later", build={"clock": later.now}) as shifted:
        later.url = shifted.url
        yield later


def test_card_number_is_normalised_bound_at_first_signature_and_ends_with_the_certificate(
    stack: Stack, tmp_path: Path, three_days_later: ShiftedGateway,
) -> None:
    deputy_card = short_lived_card(stack, "deputy", tmp_path, days=2)
    serial = format(deputy_card.certificate.serial_number, "x")
    typed = "0x" + ":".join(serial[i:i + 2] for i in range(0, len(serial), 2))  # as shown
    director = service(stack)
    granted = director.GrantAuthority(
        voen=DEMO_VOEN, eServiceCode=REGISTRATION_ESERVICE, authorityType="E_SIGNATURE_CARD",
        cardNumber=typed, fin=stack.pki.identity("deputy").fin, trusted=True,
    ).authority
    assert granted.cardNumber == serial.upper().lstrip("0")
    assert granted.boundAt is None and granted.holderCertificateValidTo is None

    # The deputy's first signature binds the card: when, and until when it is valid.
    deputy = Bodies(stack.client(signer=deputy_card)[0].service)
    assert deputy.FindPerson(voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K"
                             ).outcome == "FOUND"
    row = authorities_of(director)[granted.authorityId]
    assert row.boundAt is not None
    assert row.holderCertificateValidTo == deputy_card.certificate.not_valid_after_utc
    assert row.state == "ACTIVE"

    # Three days later the certificate has expired: so has the authority.
    listing = three_days_later.call(
        stack.pki.signer("director"), "ListAuthorities",
        f'<t:ListAuthorities xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen></t:ListAuthorities>')
    states = {a.findtext(f"{{{TNS}}}authorityId"): a.findtext(f"{{{TNS}}}state")
              for a in listing.iter(f"{{{TNS}}}authority")}
    assert states[granted.authorityId] == "EXPIRED"


@pytest.mark.parametrize("card_number", ["not-a-card", "0x", "12 34 ZZ", "1" * 41])
def test_a_card_number_that_is_no_serial_is_refused(stack: Stack, card_number: str) -> None:
    director = service(stack)
    assert fault_of(director.GrantAuthority, voen=DEMO_VOEN,
                    eServiceCode=REGISTRATION_ESERVICE, authorityType="E_SIGNATURE_CARD",
                    cardNumber=card_number, fin=stack.pki.identity("deputy").fin,
                    trusted=True) == "Client.Validation.CardNumber"
    assert authorities_of(director) == {}


def test_revoke_reason_and_asan_user_id_are_returned(stack: Stack) -> None:
    director = service(stack)
    asan = director.GrantAuthority(
        voen=DEMO_VOEN, eServiceCode=REGISTRATION_ESERVICE, authorityType="ASAN_IMZA",
        asanPhone="+994501112233", asanUserId="123456",
        fin=stack.pki.identity("asan_deputy").fin, trusted=True,
    ).authority
    assert asan.asanUserId == "123456"
    revoked = director.RevokeAuthority(voen=DEMO_VOEN, authorityId=asan.authorityId,
                                       reason="işdən çıxıb").authority
    assert (revoked.state, revoked.revokeReason) == ("REVOKED", "işdən çıxıb")
    row = authorities_of(director)[asan.authorityId]
    assert (row.asanUserId, row.revokeReason) == ("123456", "işdən çıxıb")


# -- 5. The portal acts for the insurer's seal holders ------------------------------------------


def test_the_portal_acts_for_a_seal_holder_it_learned_from_their_card(stack: Stack) -> None:
    director_fin = stack.pki.identity("director").fin
    portal = system_request(stack, "FindPerson", FIND, f"AZ{director_fin}")
    # Before the director ever signed with the seal card, the gateway cannot know them.
    answer = stack.post(portal)
    assert response_fault_code(answer) == "Client.NotAuthorized.NoAuthority"
    # One signature with the seal-authority card, then the portal may act for them.
    service(stack).GetInsurer(voen=DEMO_VOEN)
    answer = stack.post(system_request(stack, "FindPerson", FIND, f"AZ{director_fin}"))
    assert response_fault_code(answer) is None
    assert "Nəsibova" in answer.content.decode()
    # A stranger (our employee, no authority, no seal) and another insurer's seal holder are
    # still refused.
    service(stack, "director_b", OTHER_VOEN).GetInsurer(voen=OTHER_VOEN)
    for identity in ("employee", "director_b"):
        fin = stack.pki.identity(identity).fin
        answer = stack.post(system_request(stack, "FindPerson", FIND, f"AZ{fin}"))
        assert response_fault_code(answer) == "Client.NotAuthorized.NoAuthority"


# -- 8. Reference data: the address code list and the local offices ---------------------------


@pytest.mark.parametrize(("region", "district", "code"), [
    ("Moskva", "Tverskoy rayonu", "Client.Validation.Region"),
    ("Bakı şəhəri", "Moskva", "Client.Validation.District"),
    ("Gəncə şəhəri", "Nəsimi rayonu", "Client.Validation.District"),  # Bakı's, not Gəncə's
])
def test_an_address_outside_the_code_list_is_refused(
    stack: Stack, region: str, district: str, code: str
) -> None:
    svc = service(stack)
    address = {**BAKU, "region": region, "cityOrDistrict": district}
    assert fault_of(svc.SaveDraft, voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K",
                    actualAddressDiffers=True, actualAddress=address) == code
    assert fault_of(svc.SubmitRegistration, voen=DEMO_VOEN, documentType="ID_CARD",
                    fin="5GH3J7K", actualAddressDiffers=True, actualAddress=address) == code
    assert count(svc) == 0
    register(svc, "6TY2U8P")
    before = plain(svc.GetInsuredPerson(voen=DEMO_VOEN, fin="6TY2U8P"))
    assert fault_of(svc.SubmitCorrection, voen=DEMO_VOEN, fin="6TY2U8P",
                    actualAddress=address) == code
    assert plain(svc.GetInsuredPerson(voen=DEMO_VOEN, fin="6TY2U8P")) == before


def test_an_address_is_stored_with_the_code_list_names(stack: Stack) -> None:
    svc = service(stack)
    saved = svc.SaveDraft(voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K",
                          actualAddressDiffers=True, actualAddress={
                              **BAKU, "region": "BAKI  ŞƏHƏRİ", "cityOrDistrict": "yasamal rayonu"})
    stored = svc.GetApplication(voen=DEMO_VOEN, applicationId=saved.applicationId)
    assert plain(stored.application.actualAddress) == BAKU
    # A district's settlements are not in the list: any settlement of a listed district.
    other = svc.SaveDraft(voen=DEMO_VOEN, documentType="ID_CARD", fin="6TY2U8P",
                          actualAddressDiffers=True, actualAddress={
                              **BAKU, "region": "Quba rayonu", "cityOrDistrict": "Qırmızı Qəsəbə"})
    assert svc.GetApplication(voen=DEMO_VOEN, applicationId=other.applicationId
                              ).application.actualAddress.region == "Quba rayonu"


def test_list_local_offices(stack: Stack) -> None:
    offices = service(stack).ListLocalOffices()
    codes = [o.code for o in offices.localOffice]
    assert codes == sorted(codes) and len(codes) >= 2
    insurer = service(stack).GetInsurer(voen=DEMO_VOEN).insurer
    assert insurer.localOffice.code in codes


def test_export_the_registry_as_csv_and_pdf(stack: Stack, tmp_path: Path) -> None:
    svc = service(stack)
    register(svc, "5GH3J7K")
    svc.SaveDraft(voen=DEMO_VOEN, documentType="ID_CARD", fin="6TY2U8P",
                  actualAddressDiffers=False)
    # The same filters as the search: only the registered one.
    exported = svc.ExportApplications(voen=DEMO_VOEN, status="REGISTERED", format="CSV")
    assert exported.rows == 1 and exported.fileName.endswith(".csv")
    text = exported.content.decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0].startswith("Ərizənin nömrəsi,Növü,FİN,Soyadı")
    assert len(lines) == 2 and "5GH3J7K" in lines[1] and "Nəsibova" in lines[1]
    assert "Uçota alınıb" in lines[1]  # the status in Azerbaijani

    everything = svc.ExportApplications(voen=DEMO_VOEN, format="PDF")
    assert everything.rows == 2 and everything.content.startswith(b"%PDF")
    printed = pdf_text(everything.content, tmp_path)
    assert "Ərizələrin reyestri" in printed
    assert "Nəsibova" in printed and "6TY2U8P" in printed
    # Another insurer's export has none of ours; one who may not act is refused.
    theirs = service(stack, "director_b", OTHER_VOEN)
    assert theirs.ExportApplications(voen=OTHER_VOEN, format="CSV").rows == 0
    assert fault_of(theirs.ExportApplications, voen=DEMO_VOEN, format="CSV") == (
        "Client.NotAuthorized.OtherInsurer")


def test_an_export_larger_than_the_limit_is_refused(stack: Stack, tmp_path: Path) -> None:
    with sibling_stack(stack, tmp_path / "small", max_export_rows=1) as small:
        svc = service(small)
        register(svc, "5GH3J7K")
        assert svc.ExportApplications(voen=DEMO_VOEN, format="CSV").rows == 1
        svc.SaveDraft(voen=DEMO_VOEN, documentType="ID_CARD", fin="6TY2U8P",
                      actualAddressDiffers=False)
        assert fault_of(svc.ExportApplications, voen=DEMO_VOEN, format="PDF") == (
            "Client.Validation.ExportTooLarge")
