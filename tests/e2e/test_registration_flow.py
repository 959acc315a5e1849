"""Registration, correction and the registry end to end (the issue's "Done when" walk).

zeep (with our signing plugin) → gateway → population-registry simulator → database, and back;
raw signed envelopes over HTTP where the test needs the bytes (idempotency) or several processes
(the SSN race). Every refusal asserts its exact fault code.
"""

from __future__ import annotations

import base64
import multiprocessing
import socket
import subprocess
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree
from sqlalchemy import text

from gateway.domain import calendar
from gateway.domain.ssn import SsnFormat
from gateway.services.notifications import NOTIFICATION_NS
from signing.parser import serialize
from signing.testpki import TestPki
from signing.verifier import EnvelopeVerifier
from simulators.runner import Simulators
from tests.e2e.conftest import (
    DEMO_VOEN,
    OTHER_VOEN,
    SOAP_ENV,
    TNS,
    Bodies,
    Stack,
    fault_of,
    make_settings,
    pdf_text,
    plain,
    response_fault_code,
    serve_gateway,
    sibling_stack,
    signed_request,
)

N = {"n": NOTIFICATION_NS}
T = {"t": TNS, "soapenv": SOAP_ENV}

BAKU_ADDRESS = {
    "region": "Bakı şəhəri", "cityOrDistrict": "Nəsimi rayonu", "street": "Şərifzadə küçəsi",
    "house": "12", "apartment": "4", "postalCode": "AZ1000",
}
NEW_BAKU_ADDRESS = {
    "region": "Bakı şəhəri", "cityOrDistrict": "Yasamal rayonu", "street": "Şərifzadə küçəsi",
    "house": "207", "apartment": "15", "postalCode": "AZ1012",
}
CONTACTS = {"mobilePhone": "+994501234567", "email": "sehla.nesibova@example.az"}


def service(stack: Stack, identity: str = "director", voen: str = DEMO_VOEN) -> Any:
    return Bodies(stack.client(identity, voen=voen)[0].service)


def today() -> date:
    return calendar.now().date()  # the gateway's calendar: Baku (UTC+4)


def ssn_format(stack: Stack) -> SsnFormat:
    settings = stack.gateway.settings
    return SsnFormat(prefix=settings.ssn_prefix, serial_digits=settings.ssn_serial_digits)


def ids(answer: Any) -> list[str]:
    return [a.applicationId for a in answer.application]





def xmlsec1_verify(xml: bytes, pki: TestPki, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"notice-{uuid.uuid4().hex}.xml"
    path.write_bytes(xml)
    trusted = [arg for anchor in pki.trust_anchor_paths for arg in ("--trusted-pem", str(anchor))]
    return subprocess.run(["xmlsec1", "--verify", *trusted, str(path)], capture_output=True,
                          text=True, timeout=30, check=False)


def closed_port_url() -> str:
    """A loopback URL nobody listens on: bind a port, then close it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/population"


def submit_payload(fin: str, *, voen: str = DEMO_VOEN, doc: str = "ID_CARD") -> str:
    return (f'<t:SubmitRegistration xmlns:t="{TNS}"><t:voen>{voen}</t:voen>'
            f'<t:documentType>{doc}</t:documentType><t:fin>{fin}</t:fin>'
            f'<t:actualAddressDiffers>false</t:actualAddressDiffers>'
            f'<t:contacts><t:mobilePhone>+994551234567</t:mobilePhone></t:contacts>'
            f'</t:SubmitRegistration>')


def submit_result(content: bytes) -> tuple[str | None, str | None]:
    """(status, ssn) of a SubmitRegistrationResponse."""
    root = etree.fromstring(content)
    result = root.find("soapenv:Body/t:SubmitRegistrationResponse/t:result", T)
    if result is None:
        return None, None
    return result.findtext("t:status", namespaces=T), result.findtext("t:ssn", namespaces=T)


# -- the walk ---------------------------------------------------------------------------------


def test_registration_walk(stack: Stack, tmp_path: Path) -> None:
    client, plugin = stack.client("director")
    svc = Bodies(client.service)

    # §3.1 Search: the identity document and the registration address from the registry.
    found = svc.FindPerson(voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K")
    assert found.outcome == "FOUND"
    assert found.person.surname == "Nəsibova"
    registration_address = plain(found.registrationAddress)
    assert registration_address["region"] == "Lənkəran şəhəri"

    # Save: a draft with an actual address that differs (Bakı) and contacts.
    saved = svc.SaveDraft(
        voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K",
        actualAddressDiffers=True,
        actualAddress=BAKU_ADDRESS, contacts=CONTACTS,
    )
    assert saved.status == "DRAFT"
    app_id = saved.applicationId
    # "Previous" and change: the same draft, updated.
    updated = svc.SaveDraft(
        voen=DEMO_VOEN, applicationId=app_id, documentType="ID_CARD", fin="5GH3J7K",
        actualAddressDiffers=True,
        actualAddress={**BAKU_ADDRESS, "apartment": "5"},
        contacts={**CONTACTS, "landlinePhone": "+994124987654"},
    )
    assert (updated.applicationId, updated.status) == (app_id, "DRAFT")
    draft = svc.GetApplication(voen=DEMO_VOEN, applicationId=app_id)
    assert draft.application.summary.status == "DRAFT"
    assert draft.application.actualAddress.apartment == "5"
    assert draft.application.contacts.landlinePhone == "+994124987654"
    assert [h.status for h in draft.history] == ["DRAFT"]

    # A draft has a notice too, marked as one.
    draft_notice = svc.GetNotification(voen=DEMO_VOEN, applicationId=app_id)
    assert "qaralama" in draft_notice.fileName
    assert etree.fromstring(draft_notice.notificationXml).get("kind") == "DRAFT"
    assert "QARALAMA" in pdf_text(draft_notice.pdf, tmp_path)

    # Confirm (sign) the draft: registered, SSN issued.
    confirmed = svc.ConfirmDraft(voen=DEMO_VOEN, applicationId=app_id).result
    assert confirmed.applicationId == app_id
    assert confirmed.status == "REGISTERED"
    ssn = confirmed.ssn
    assert ssn is not None and ssn.isdigit()
    assert ssn_format(stack).is_valid(ssn)
    assert confirmed.ssnDate == today()
    # The response was signed by the gateway and checked by the plugin.
    assert plugin.last_response is not None
    assert plugin.last_response.certificate == stack.pki.identity("gateway").certificate

    # Two more applications, so that every filter has something not to match: a registered one
    # through SubmitRegistration of a draft, and a draft of a foreigner (residence permit).
    other = svc.SaveDraft(voen=DEMO_VOEN, documentType="ID_CARD", fin="6TY2U8P",
                          actualAddressDiffers=False, contacts={"mobilePhone": "+994702223344"})
    other_result = svc.SubmitRegistration(voen=DEMO_VOEN, applicationId=other.applicationId)
    assert other_result.result.status == "REGISTERED"
    other_id = other.applicationId
    foreigner = svc.SaveDraft(voen=DEMO_VOEN, documentType="TEMPORARY_RESIDENCE_PERMIT",
                              fin="A1B2C", actualAddressDiffers=False)
    draft_id = foreigner.applicationId

    # §3.3 Search by each of the ten filters.
    def search(**filters: Any) -> list[str]:
        return sorted(ids(svc.SearchApplications(voen=DEMO_VOEN, **filters)))

    mine, registered = [app_id], sorted([app_id, other_id])
    everything = sorted([app_id, other_id, draft_id])
    assert search(applicationType="INITIAL_REGISTRATION") == everything
    assert search(applicationType="CORRECTION") == []
    assert search(fin="5GH3J7K") == mine
    for surname in ("Nəsibova", "NƏSİBOVA", "nəsibova"):
        assert search(surname=surname) == mine, surname
    for name in ("şəhla", "ŞƏHLA", "Şəhla"):
        assert search(name=name) == mine, name
    for patronymic in ("Oqtay qızı", "OQTAY QIZI"):
        assert search(patronymic=patronymic) == mine, patronymic
    assert search(surname="yılmaz", name="AYŞE") == [draft_id]
    assert search(ssn=ssn) == mine
    # Dates: a day either side, so the test holds whatever the business calendar's time zone.
    day = timedelta(days=1)
    assert search(ssnDateFrom=today() - day, ssnDateTo=today() + day) == registered
    assert search(ssnDateFrom=today() - 30 * day, ssnDateTo=today() - 2 * day) == []
    assert search(applicationDateFrom=today() - day, applicationDateTo=today() + day) == (
        everything)
    assert search(applicationDateFrom=today() + 2 * day) == []
    assert search(applicationDateTo=today() - 2 * day) == []
    assert search(certificateStatus="ISSUED") == registered
    assert search(certificateStatus="NOT_ISSUED") == [draft_id]
    assert search(status="REGISTERED") == registered
    assert search(status="DRAFT") == [draft_id]
    # Filters that must not match.
    assert search(surname="Əliyeva") == []
    assert search(fin="5GH3J7K", status="DRAFT") == []
    assert search(name="Şəhla", surname="Cəfərli") == []
    # Paging and sorting.
    pages = [svc.SearchApplications(voen=DEMO_VOEN, paging={"page": n, "pageSize": 1},
                                    sort={"field": "SURNAME", "direction": "ASC"})
             for n in (1, 2, 3, 4)]
    assert [p.total for p in pages] == [3, 3, 3, 3]
    assert [[a.surname for a in p.application] for p in pages] == [
        ["Cəfərli"], ["Nəsibova"], ["Yılmaz"], []]
    by_fin = svc.SearchApplications(voen=DEMO_VOEN, sort={"field": "FIN", "direction": "DESC"})
    assert [a.fin for a in by_fin.application] == ["A1B2C", "6TY2U8P", "5GH3J7K"]
    # Another insurer sees none of them.
    svc_b = service(stack, "director_b", OTHER_VOEN)
    assert ids(svc_b.SearchApplications(voen=OTHER_VOEN, fin="5GH3J7K")) == []

    # Detailed view with the status history.
    detail = svc.GetApplication(voen=DEMO_VOEN, applicationId=app_id)
    application = detail.application
    summary = application.summary
    assert (summary.fin, summary.surname, summary.name, summary.patronymic) == (
        "5GH3J7K", "Nəsibova", "Şəhla", "Oqtay qızı")
    assert (summary.ssn, summary.ssnDate) == (ssn, today())
    assert (summary.status, summary.certificateStatus) == ("REGISTERED", "ISSUED")
    assert summary.applicationType == "INITIAL_REGISTRATION"
    assert plain(application.registrationAddress) == registration_address
    assert application.actualAddressDiffers is True
    assert plain(application.actualAddress) == {**BAKU_ADDRESS, "apartment": "5"}
    assert plain(application.contacts) == {**CONTACTS, "landlinePhone": "+994124987654"}
    assert application.signedBy.fin == stack.pki.identity("director").fin
    assert application.person.document.documentType == "ID_CARD"
    assert [h.status for h in detail.history] == ["DRAFT", "SUBMITTED", "REGISTERED"]
    assert all(h.actorFin == "6ZK4T2P" for h in detail.history)

    # The notice: XML signed by the gateway (xmlsec1 and our verifier agree) and a PDF.
    notice = svc.GetNotification(voen=DEMO_VOEN, applicationId=app_id)
    assert notice.applicationId == app_id
    assert notice.fileName.endswith(".pdf") and "qaralama" not in notice.fileName
    checked = xmlsec1_verify(notice.notificationXml, stack.pki, tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "OK" in checked.stdout + checked.stderr
    document = etree.fromstring(notice.notificationXml)
    verifier = EnvelopeVerifier(stack.pki.trust_store())
    verified = verifier.verify_document(document)
    assert verified.certificate == stack.pki.identity("gateway").certificate
    assert document.tag == f"{{{NOTIFICATION_NS}}}Notification"
    assert document.get("kind") == "NOTICE"
    assert document.findtext("n:application/n:applicationId", namespaces=N) == app_id
    assert document.findtext("n:application/n:status", namespaces=N) == "REGISTERED"
    assert document.findtext("n:insurer/n:voen", namespaces=N) == DEMO_VOEN
    assert document.findtext("n:insurer/n:name", namespaces=N) == "Xəzər Tikinti MMC"
    assert document.findtext("n:insuredPerson/n:ssn", namespaces=N) == ssn
    assert document.findtext("n:insuredPerson/n:surname", namespaces=N) == "Nəsibova"
    assert document.findtext("n:actualAddress/n:street", namespaces=N) == "Şərifzadə küçəsi"
    assert document.findtext("n:contacts/n:mobilePhone", namespaces=N) == "+994501234567"
    assert [s.text for s in document.iterfind("n:statusHistory/n:statusChange/n:status", N)] == [
        "DRAFT", "SUBMITTED", "REGISTERED"]
    # Tampering is caught by xmlsec1 too.
    tampered = notice.notificationXml.replace(ssn.encode(), b"1" * len(ssn))
    assert xmlsec1_verify(tampered, stack.pki, tmp_path).returncode != 0
    text = pdf_text(notice.pdf, tmp_path)
    assert "Nəsibova Şəhla Oqtay qızı" in text
    assert ssn in text
    assert "Xəzər Tikinti MMC" in text
    assert "QARALAMA" not in text

    # §3.2 Correction: new actual address and contacts; the old values stay in the history.
    corrected = svc.SubmitCorrection(
        voen=DEMO_VOEN, fin="5GH3J7K", actualAddress=NEW_BAKU_ADDRESS,
        contacts={"mobilePhone": "+994775556677", "email": "sehla@example.az"},
    )
    assert corrected.status == "REGISTERED"
    assert corrected.applicationId != app_id
    correction = svc.GetApplication(voen=DEMO_VOEN, applicationId=corrected.applicationId)
    assert correction.application.summary.applicationType == "CORRECTION"
    assert correction.application.summary.ssn == ssn
    assert plain(correction.application.actualAddress) == NEW_BAKU_ADDRESS
    assert correction.application.contacts.mobilePhone == "+994775556677"
    assert correction.application.contacts.email == "sehla@example.az"
    notes = " ".join(h.note or "" for h in correction.history)
    assert "Şərifzadə küçəsi, 12, m. 5" in notes
    assert "+994501234567" in notes
    # The original application is not rewritten.
    original = svc.GetApplication(voen=DEMO_VOEN, applicationId=app_id)
    assert plain(original.application.actualAddress) == {**BAKU_ADDRESS, "apartment": "5"}
    assert search(applicationType="CORRECTION") == [corrected.applicationId]

    # Delete from drafts: only drafts, only the insurer's own.
    assert fault_of(svc.DeleteDraft, voen=DEMO_VOEN, applicationId=app_id) == (
        "Client.Conflict.NotDraft")
    # director_b is a seal holder of another insurer: acting for ours is refused outright...
    assert fault_of(svc_b.DeleteDraft, voen=DEMO_VOEN, applicationId=draft_id) == (
        "Client.NotAuthorized.OtherInsurer")
    # ...and for its own insurer our draft does not exist.
    assert fault_of(svc_b.DeleteDraft, voen=OTHER_VOEN, applicationId=draft_id) == (
        "Client.NotFound.Application")
    assert fault_of(svc_b.GetNotification, voen=OTHER_VOEN, applicationId=app_id) == (
        "Client.NotFound.Application")
    deleted = svc.DeleteDraft(voen=DEMO_VOEN, applicationId=draft_id)
    assert (deleted.applicationId, deleted.deleted) == (draft_id, True)
    assert fault_of(svc.GetApplication, voen=DEMO_VOEN, applicationId=draft_id) == (
        "Client.NotFound.Application")
    assert fault_of(svc.DeleteDraft, voen=DEMO_VOEN, applicationId=draft_id) == (
        "Client.NotFound.Application")


# -- refusals -----------------------------------------------------------------------------------


def test_person_with_ssn_cannot_be_registered_again(stack: Stack) -> None:
    svc = service(stack)
    found = svc.FindPerson(voen=DEMO_VOEN, documentType="ID_CARD", fin="9QW3E5R")
    assert found.outcome == "SSN_EXISTS"
    assert (found.existingInsured.surname, found.existingInsured.name) == ("Rzayev", "Elçin")
    assert fault_of(svc.SubmitRegistration, voen=DEMO_VOEN, documentType="ID_CARD",
                    fin="9QW3E5R", actualAddressDiffers=False) == "Client.Conflict.SsnExists"
    assert fault_of(svc.SaveDraft, voen=DEMO_VOEN, documentType="ID_CARD", fin="9QW3E5R",
                    actualAddressDiffers=False) == "Client.Conflict.SsnExists"
    assert svc.SearchApplications(voen=DEMO_VOEN, fin="9QW3E5R").total == 0


def test_a_new_application_meets_the_ssn_first_then_the_insurers_open_one(
        stack: Stack, tmp_path: Path) -> None:
    """The checks before a new application (one read: InsuredPersonRepository.standing): an
    SSN refuses before an open draft or submission of the insurer does; the draft being saved
    is not in its own way; another insurer's open application is not in the way."""
    svc = service(stack)
    new = {"voen": DEMO_VOEN, "documentType": "ID_CARD", "actualAddressDiffers": False,
           "contacts": CONTACTS}

    def count(fin: str) -> int:
        return int(svc.SearchApplications(voen=DEMO_VOEN, fin=fin).total)

    draft = svc.SaveDraft(fin="5GH3J7K", **new).applicationId
    for call in (svc.SaveDraft, svc.SubmitRegistration):
        assert fault_of(call, fin="5GH3J7K", **new) == "Client.Conflict.DraftExists"
    assert svc.SaveDraft(applicationId=draft, fin="5GH3J7K", **new).applicationId == draft
    with sibling_stack(stack, tmp_path / "down", population_url=closed_port_url()) as down:
        assert service(down).SubmitRegistration(fin="8LV4N2X", **new).result.status == (
            "SUBMITTED")
    for call in (svc.SaveDraft, svc.SubmitRegistration):
        assert fault_of(call, fin="8LV4N2X", **new) == "Client.Conflict.AlreadySubmitted"
    assert (count("5GH3J7K"), count("8LV4N2X")) == (1, 1)

    # Another insurer registers the person: its SSN now comes first, for the open draft too.
    other = service(stack, "director_b", OTHER_VOEN)
    assert other.SubmitRegistration(**{**new, "voen": OTHER_VOEN},
                                    fin="5GH3J7K").result.status == "REGISTERED"
    for call in (svc.SaveDraft, svc.SubmitRegistration):
        assert fault_of(call, fin="5GH3J7K", **new) == "Client.Conflict.SsnExists"
    assert fault_of(svc.SaveDraft, applicationId=draft, fin="5GH3J7K",
                    **new) == "Client.Conflict.SsnExists"
    assert count("5GH3J7K") == 1
    assert [h.status for h in svc.GetApplication(voen=DEMO_VOEN,
                                                 applicationId=draft).history] == ["DRAFT"]


@pytest.mark.parametrize(("contacts", "code"), [
    ({"mobilePhone": "+994124987654"}, "Client.Validation.Phone"),     # a Bakı landline
    ({"landlinePhone": "+994000000000"}, "Client.Validation.Phone"),   # no such number
    ({"email": "sehla.example.az"}, "Client.Validation.Email"),        # no @: the XSD refuses
    ({"email": "sehla@-bad-.az"}, "Client.Validation.Email"),         # the XSD lets it through
])
def test_bad_contacts_are_refused(stack: Stack, contacts: dict[str, str], code: str) -> None:
    svc = service(stack)
    for call in (svc.SaveDraft, svc.SubmitRegistration):
        assert fault_of(call, voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K",
                        actualAddressDiffers=False, contacts=contacts) == code
    assert svc.SearchApplications(voen=DEMO_VOEN, fin="5GH3J7K").total == 0


def test_actual_address_only_when_it_differs(stack: Stack) -> None:
    svc = service(stack)
    assert fault_of(svc.SaveDraft, voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K",
                    actualAddressDiffers=True) == "Client.Validation.ActualAddress"
    assert fault_of(svc.SaveDraft, voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K",
                    actualAddressDiffers=False, actualAddress=BAKU_ADDRESS) == (
        "Client.Validation.ActualAddress")


def test_the_configured_ssn_format_numbers_the_persons(
        database_url: str, tmp_path: Path, test_pki: TestPki, simulators: Simulators) -> None:
    """ssn_prefix and ssn_serial_digits are the format of the SSNs the gateway issues (SQLite
    formats in Python, PostgreSQL in the insert's SQL), not only a validated setting."""
    configured = SsnFormat("07", 5)
    settings = make_settings(database_url, tmp_path, test_pki, simulators, ssn_prefix="07",
                             ssn_serial_digits=5)
    with serve_gateway(settings, test_pki, simulators) as stack:
        answer = service(stack).SubmitRegistration(
            voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K", actualAddressDiffers=False,
            contacts=CONTACTS).result
        assert answer.status == "REGISTERED"
        assert configured.is_valid(answer.ssn), answer.ssn
        assert answer.ssn.startswith("07") and len(answer.ssn) == configured.length


def _next_serial_is(stack: Stack, serial: int) -> None:
    """The SSN serial the gateway takes next: PostgreSQL's sequence, SQLite's counter."""
    with stack.gateway.database.transaction() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT setval('ssn_serial_seq', :n, false)"), {"n": serial})
        else:
            session.execute(text("INSERT INTO ssn_counter (id, last_serial) VALUES (1, :n)"
                                 " ON CONFLICT (id) DO UPDATE SET last_serial = :n"),
                            {"n": serial - 1})


def test_a_full_ssn_format_refuses_the_registration_and_writes_nothing(
        database_url: str, tmp_path: Path, test_pki: TestPki, simulators: Simulators) -> None:
    """The last serial the configured format holds is issued; the next registration gets
    Server.Storage.SsnExhausted (the operator must widen ssn_serial_digits), and keeps
    nothing, on both databases."""
    configured = SsnFormat("07", 4)
    settings = make_settings(database_url, tmp_path, test_pki, simulators, ssn_prefix="07",
                             ssn_serial_digits=4)
    with serve_gateway(settings, test_pki, simulators) as stack:
        svc = service(stack)
        _next_serial_is(stack, 9999)
        last = svc.SubmitRegistration(voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K",
                                      actualAddressDiffers=False, contacts=CONTACTS).result
        assert (last.status, last.ssn) == ("REGISTERED", configured.format(9999))
        for _ in range(2):  # and it stays so
            assert fault_of(svc.SubmitRegistration, voen=DEMO_VOEN, documentType="ID_CARD",
                            fin="6TY2U8P", actualAddressDiffers=False,
                            contacts=CONTACTS) == "Server.Storage.SsnExhausted"
        assert svc.SearchApplications(voen=DEMO_VOEN, fin="6TY2U8P").total == 0
        assert fault_of(svc.GetInsuredPerson, voen=DEMO_VOEN, fin="6TY2U8P") == \
            "Client.NotFound.InsuredPerson"


# -- idempotency ----------------------------------------------------------------------------------


def test_same_signed_envelope_twice_gives_the_same_answer_and_one_ssn(stack: Stack) -> None:
    signer = stack.pki.signer("director")
    envelope = serialize(signed_request(signer, "SubmitRegistration", submit_payload("6TY2U8P"),
                                        message_id=str(uuid.uuid4())))
    first = stack.post(envelope)
    second = stack.post(envelope)
    assert first.status_code == second.status_code == 200, first.text
    assert first.content == second.content
    status, ssn = submit_result(first.content)
    assert status == "REGISTERED" and ssn is not None and ssn_format(stack).is_valid(ssn)

    # A new message (new id, new signature) for the same person is a new request: refused.
    again = stack.post(signed_request(signer, "SubmitRegistration", submit_payload("6TY2U8P"),
                                      message_id=str(uuid.uuid4())))
    assert again.status_code == 500
    assert response_fault_code(again) == "Client.Conflict.SsnExists"

    svc = service(stack)
    found = svc.SearchApplications(voen=DEMO_VOEN, fin="6TY2U8P")
    assert found.total == 1
    assert [a.ssn for a in found.application] == [ssn]


# -- the population registry is down ----------------------------------------------------------


def test_registry_down_accepts_as_submitted_and_finishes_later(stack: Stack,
                                                               tmp_path: Path) -> None:
    with sibling_stack(stack, tmp_path / "down", population_url=closed_port_url()) as down:
        svc = service(down)
        accepted = svc.SubmitRegistration(
            voen=DEMO_VOEN, documentType="ID_CARD", fin="6TY2U8P", actualAddressDiffers=True,
            actualAddress=BAKU_ADDRESS, contacts=CONTACTS,
        ).result
        assert accepted.status == "SUBMITTED"
        assert accepted.ssn is None
        # The answer says why it is not registered yet and what happens next.
        assert "Əhali reyestri cavab vermədiyi vaxt qəbul edildi" in accepted.message
        assert "avtomatik" in accepted.message
        app_id = accepted.applicationId
        pending = svc.GetApplication(voen=DEMO_VOEN, applicationId=app_id)
        assert pending.application.summary.status == "SUBMITTED"
        assert plain(pending.application.contacts) == CONTACTS
        assert pending.history[-1].status == "SUBMITTED"
        assert "Əhali reyestri" in (pending.history[-1].note or "")
        # Still down: nothing changes, nothing is lost.
        assert down.gateway.services.registration.finish_submitted() == 0

    # The registry is back (a gateway with the real simulator URL, on the same database).
    assert stack.gateway.services.registration.finish_submitted() == 1
    svc = service(stack)
    done = svc.GetApplication(voen=DEMO_VOEN, applicationId=app_id)
    summary = done.application.summary
    assert summary.status == "REGISTERED"
    assert summary.ssn is not None and ssn_format(stack).is_valid(summary.ssn)
    assert (summary.surname, summary.name) == ("Cəfərli", "Gülşən")
    assert plain(done.application.actualAddress) == BAKU_ADDRESS
    assert [h.status for h in done.history] == ["DRAFT", "SUBMITTED", "REGISTERED"]
    assert done.history[-1].actorFin is None  # finished by the gateway, not by a person
    assert summary.ssn in (done.history[-1].note or "")
    assert stack.gateway.services.registration.finish_submitted() == 0


# -- the SSN race across processes ----------------------------------------------------------------


def _race_submit(url: str, envelope: bytes, barrier: Any, results: Any) -> None:
    """Child process: wait for the others, then post one signed SubmitRegistration."""
    try:
        barrier.wait(timeout=60)
        response = requests.post(url, data=envelope, timeout=60,
                                 headers={"Content-Type": "text/xml; charset=utf-8"})
        results.put((response.status_code, response.content))
    except Exception as exc:
        results.put((-1, repr(exc).encode()))


def test_concurrent_submissions_issue_exactly_one_ssn(stack: Stack) -> None:
    envelopes = [
        serialize(signed_request(stack.pki.signer(identity), "SubmitRegistration",
                                 submit_payload("8LV4N2X", voen=voen),
                                 message_id=f"race-{n}-{uuid.uuid4()}", voen=voen))
        for n, (identity, voen) in enumerate([("director", DEMO_VOEN),
                                              ("director_b", OTHER_VOEN),
                                              ("director", DEMO_VOEN)])
    ]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(envelopes))
    results = ctx.Queue()
    processes = [ctx.Process(target=_race_submit, args=(stack.url, e, barrier, results),
                             daemon=True) for e in envelopes]
    for p in processes:
        p.start()
    try:
        answers = [results.get(timeout=120) for _ in processes]
    finally:
        for p in processes:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    outcomes = []
    for status_code, content in answers:
        assert status_code in (200, 500), content
        if status_code == 200:
            outcomes.append(submit_result(content))
        else:
            outcomes.append((fault_code_in(content), None))
    registered = [ssn for status, ssn in outcomes if status == "REGISTERED"]
    refused = [status for status, _ in outcomes if status != "REGISTERED"]
    assert len(registered) == 1, outcomes
    assert registered[0] is not None and ssn_format(stack).is_valid(registered[0])
    assert refused == ["Client.Conflict.SsnExists"] * 2, outcomes

    svc = service(stack)
    mine = svc.SearchApplications(voen=DEMO_VOEN, fin="8LV4N2X", status="REGISTERED").total
    theirs = service(stack, "director_b", OTHER_VOEN).SearchApplications(
        voen=OTHER_VOEN, fin="8LV4N2X", status="REGISTERED").total
    assert mine + theirs == 1
    assert svc.FindPerson(voen=DEMO_VOEN, documentType="ID_CARD",
                          fin="8LV4N2X").existingInsured.ssn == registered[0]


def fault_code_in(content: bytes) -> str | None:
    code = etree.fromstring(content).findtext("soapenv:Body/soapenv:Fault/faultcode", namespaces=T)
    return code.split(":", 1)[-1] if code else None


def test_notification_xml_is_base64_on_the_wire(stack: Stack) -> None:
    """The raw answer carries the notice base64-encoded (xs:base64Binary), signed inside."""
    svc = service(stack)
    app_id = svc.SaveDraft(voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K",
                           actualAddressDiffers=False).applicationId
    payload = (f'<t:GetNotification xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
               f'<t:applicationId>{app_id}</t:applicationId></t:GetNotification>')
    response = stack.post(signed_request(stack.pki.signer("director"), "GetNotification",
                                         payload, message_id=str(uuid.uuid4())))
    assert response.status_code == 200, response.text
    root = etree.fromstring(response.content)
    encoded = root.findtext("soapenv:Body/t:GetNotificationResponse/t:notificationXml",
                            namespaces=T)
    assert encoded is not None
    xml = base64.b64decode(encoded)
    assert xml.startswith(b"<?xml")
    assert etree.fromstring(xml).get("kind") == "DRAFT"
