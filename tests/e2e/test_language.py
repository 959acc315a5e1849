"""Refusals speak Azerbaijani (English on request), with their catalogue code and contract field;
answers and the notice are in Baku time; the notice is Azerbaijani only. Against the running
gateway and the simulators on loopback.
"""

from __future__ import annotations

import re
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from lxml import etree

from gateway.domain.calendar import baku_time
from gateway.messages import fault_action, fault_message
from gateway.services.ports import ApplicationQuery
from signing.testpki import TestPki
from simulators.runner import Simulators
from tests.e2e.conftest import (
    DEMO_VOEN,
    SOAP_ENV,
    TNS,
    Bodies,
    Stack,
    find_person_payload,
    make_settings,
    request_envelope,
    serve_gateway,
    signed_request,
)
from tests.signing import attacks
from tests.signing.attacks import Sender

REPO = Path(__file__).resolve().parents[2]
FIN_RULE_AZ = ("FİN 7 simvoldur (yaşayış vəsiqəsində 5-7 simvol): latın böyük hərfləri və "
               "rəqəmlər, I və O istifadə olunmur.")


@pytest.fixture(scope="module")
def lang_stack(tmp_path_factory: pytest.TempPathFactory, test_pki: TestPki,
               simulators: Simulators) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("language")
    settings = make_settings(f"sqlite:///{tmp / 'gw.db'}", tmp, test_pki, simulators)
    with serve_gateway(settings, test_pki, simulators) as running:
        yield running


def _closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/population"


def _post(stack: Stack, data: bytes, language: str | None) -> requests.Response:
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if language is not None:
        headers["Accept-Language"] = language
    return requests.post(stack.url, data=data, headers=headers, timeout=10)


def _fault(response: requests.Response) -> dict[str, str | None]:
    assert response.status_code == 500, response.text[:300]
    root = etree.fromstring(response.content)
    fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None
    detail = fault.find(f"detail/{{{TNS}}}FaultDetail")
    assert detail is not None
    assert fault.findtext("faultstring") == detail.findtext(f"{{{TNS}}}message")
    return {"code": detail.findtext(f"{{{TNS}}}code"),
            "field": detail.findtext(f"{{{TNS}}}field"),
            "message": detail.findtext(f"{{{TNS}}}message")}


def _applications(stack: Stack) -> int:
    with stack.gateway.database.unit_of_work() as uow:
        return uow.applications.search(ApplicationQuery(insurer_voen=DEMO_VOEN)).total


def _signed(stack: Stack, identity: str, operation: str, payload: str) -> bytes:
    envelope = signed_request(stack.pki.signer(identity), operation, payload,
                              message_id=str(uuid.uuid4()))
    return bytes(etree.tostring(envelope))


def _save_draft(fin: str, mobile: str) -> str:
    return (f'<t:SaveDraft xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
            f"<t:documentType>ID_CARD</t:documentType><t:fin>{fin}</t:fin>"
            "<t:actualAddressDiffers>false</t:actualAddressDiffers>"
            f"<t:contacts><t:mobilePhone>{mobile}</t:mobilePhone></t:contacts></t:SaveDraft>")


def _certificate_refusal(stack: Stack) -> bytes:
    sender = Sender.from_identity(stack.pki.identity("expired"))
    return attacks.serialize(attacks.signed(sender, base=lambda: request_envelope(
        "FindPerson", find_person_payload("5GH3J7K"), message_id=str(uuid.uuid4()))))


def _tampered(stack: Stack) -> bytes:
    data = _signed(stack, "director", "FindPerson", find_person_payload("5GH3J7K"))
    return data.replace(b"5GH3J7K", b"8LV4N2X")


#: (kind, request builder, code, field, params of the message)
REFUSALS: list[tuple[str, Callable[[Stack], bytes], str, str | None, dict[str, str]]] = [
    ("schema", lambda s: _signed(s, "director", "FindPerson", find_person_payload("5GH3J7O")),
     "Client.Validation.Fin", "fin", {}),
    ("domain", lambda s: _signed(s, "director", "FindPerson", find_person_payload("5GH3J")),
     "Client.Validation.Fin", "fin", {}),
    ("domain", lambda s: _signed(s, "director", "SaveDraft", _save_draft("5GH3J7K",
                                                                         "012 498 76 54")),
     "Client.Validation.Phone", "contacts/mobilePhone", {"field": "contacts/mobilePhone"}),
    ("authorization", lambda s: _signed(s, "director_b", "FindPerson",
                                        find_person_payload("5GH3J7K")),
     "Client.NotAuthorized.OtherInsurer", None, {}),
    ("signature", _tampered, "Client.Signature.Invalid", "wsse:Security/ds:Signature", {}),
    ("signature", lambda s: bytes(etree.tostring(request_envelope(
        "FindPerson", find_person_payload("5GH3J7K"), message_id=str(uuid.uuid4())))),
     "Client.Signature.Missing", "wsse:Security", {}),
    ("certificate", _certificate_refusal, "Client.Certificate.Expired",
     "wsse:Security/wsse:BinarySecurityToken", {}),
]


@pytest.mark.parametrize(("kind", "build", "code", "field", "params"), REFUSALS,
                         ids=[f"{r[0]}-{r[2]}" for r in REFUSALS])
def test_refusal_speaks_azerbaijani_and_english_when_asked(
    lang_stack: Stack, kind: str, build: Callable[[Stack], bytes], code: str,
    field: str | None, params: dict[str, str],
) -> None:
    before = _applications(lang_stack)
    az = _fault(_post(lang_stack, build(lang_stack), None))
    also_az = _fault(_post(lang_stack, build(lang_stack), "az-AZ,az;q=0.9,en;q=0.5"))
    en = _fault(_post(lang_stack, build(lang_stack), "en-GB,en;q=0.9"))
    for answer in (az, also_az, en):
        assert answer["code"] == code
        assert answer["field"] == field
    values = {"field": field or "—", **params}
    assert az["message"] == also_az["message"] == fault_message(code, "az", values)
    assert en["message"] == fault_message(code, "en", values)
    assert az["message"] != en["message"]
    assert _applications(lang_stack) == before  # nothing written


def test_a_malformed_fin_names_the_rule_whichever_check_sees_it(lang_stack: Stack) -> None:
    by_schema = _fault(_post(lang_stack, _signed(
        lang_stack, "director", "FindPerson", find_person_payload("5gh3j7k!")), None))
    by_domain = _fault(_post(lang_stack, _signed(
        lang_stack, "director", "FindPerson", find_person_payload("5GH3J")), None))
    assert by_schema == by_domain == {"code": "Client.Validation.Fin", "field": "fin",
                                      "message": FIN_RULE_AZ}


def test_upstream_refusal_speaks_azerbaijani(tmp_path: Path, test_pki: TestPki,
                                             simulators: Simulators) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'gw.db'}", tmp_path, test_pki, simulators,
                             population_url=_closed_port_url(), upstream_retries=0)
    with serve_gateway(settings, test_pki, simulators) as down:
        az = _fault(_post(down, _signed(down, "director", "FindPerson",
                                        find_person_payload("5GH3J7K")), None))
        en = _fault(_post(down, _signed(down, "director", "FindPerson",
                                        find_person_payload("5GH3J7K")), "en"))
    assert az["code"] == en["code"] == "Server.Upstream.Unavailable"
    assert az["message"] == "Dövlət reyestri hazırda əlçatan deyil."
    assert en["message"] == "A state registry is not available right now."


@pytest.mark.parametrize("phone", ["+79161234567", "+99470111223", "012 498 76 54"])
def test_a_phone_the_schema_lets_through_is_refused_with_the_same_code(
    lang_stack: Stack, phone: str
) -> None:
    """The contract accepts phones as people type them; the domain then refuses a foreign,
    short or landline number for a mobile field with the code a schema refusal would use."""
    payload = (f'<t:StartMobileLogin xmlns:t="{TNS}"><t:phone>{phone}</t:phone>'
               f"<t:userId>123456</t:userId><t:voen>{DEMO_VOEN}</t:voen></t:StartMobileLogin>")
    envelope = request_envelope("StartMobileLogin", payload, message_id=str(uuid.uuid4()))
    refused = _fault(_post(lang_stack, bytes(etree.tostring(envelope)), None))
    assert (refused["code"], refused["field"]) == ("Client.Validation.Phone", "phone")


def test_the_fault_catalogue_is_served(lang_stack: Stack) -> None:
    response = requests.get(f"{lang_stack.url}?faults", timeout=10)
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    ns = {"f": "urn:az:dsmf:insured-registration:faults:v1"}
    fin = root.find("f:fault[@code='Client.Validation.Fin']", ns)
    assert fin is not None
    xml_lang = "{http://www.w3.org/XML/1998/namespace}lang"
    texts = {(el.tag.split("}")[1], el.get(xml_lang)): el.text for el in fin}
    assert texts[("meaning", "az")] == FIN_RULE_AZ
    assert texts[("action", "en")] == fault_action("Client.Validation.Fin", "en")


def test_phones_typed_as_people_write_them_are_stored_in_e164(lang_stack: Stack) -> None:
    client, _ = lang_stack.client()
    svc = Bodies(client.service)
    draft = svc.SaveDraft(voen=DEMO_VOEN, documentType="ID_CARD", fin="6TY2U8P",
                          actualAddressDiffers=False,
                          contacts={"mobilePhone": " 050 123 45 67 ",
                                    "landlinePhone": "(012) 498-76-54"})
    stored = svc.GetApplication(voen=DEMO_VOEN, applicationId=draft.applicationId)
    assert stored.application.contacts.mobilePhone == "+994501234567"
    assert stored.application.contacts.landlinePhone == "+994124987654"
    # Answers are in Baku time: +04:00, never +00:00.
    assert draft.savedAt.utcoffset() == timedelta(hours=4)
    assert all(h.at.utcoffset() == timedelta(hours=4) for h in stored.history)


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / f"notice-{uuid.uuid4().hex}.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                          check=True, timeout=30)
    return done.stdout.decode("utf-8")


ENGLISH = re.compile(r"\b(signing|failed|corrected|previous|address|contacts|issued|UTC|the|"
                     r"population|registry|unavailable|Sertifikat)\b")


def test_the_notice_is_azerbaijani_in_baku_time(lang_stack: Stack, tmp_path: Path) -> None:
    client, _ = lang_stack.client()
    svc = Bodies(client.service)
    registered = svc.SubmitRegistration(
        voen=DEMO_VOEN, documentType="ID_CARD", fin="5GH3J7K", actualAddressDiffers=False,
        contacts={"mobilePhone": "+994501234567"}).result
    corrected = svc.SubmitCorrection(voen=DEMO_VOEN, fin="5GH3J7K",
                                     contacts={"mobilePhone": "055 765 43 21"})
    for application_id in (registered.applicationId, corrected.applicationId):
        notice = svc.GetNotification(voen=DEMO_VOEN, applicationId=application_id)
        stored = svc.GetApplication(voen=DEMO_VOEN, applicationId=application_id)
        text = _pdf_text(notice.pdf, tmp_path)
        assert "Bakı vaxtı" in text
        assert not ENGLISH.search(text), text
        for change in stored.history:
            assert baku_time(change.at).strftime("%d.%m.%Y %H:%M:%S") in text
        # The XML notice: its own schema, Baku offsets, the same Azerbaijani notes.
        xml = etree.fromstring(notice.notificationXml)
        schema = etree.XMLSchema(etree.parse(str(REPO / "xsd" / "notification.xsd")))
        assert schema.validate(xml), schema.error_log
        ns = {"n": "urn:az:dsmf:notification:v1"}
        for moment in xml.xpath("//n:issuedAt|//n:at|//n:applicationDate", namespaces=ns):
            assert moment.text.endswith("+04:00")
        notes = " ".join(xml.xpath("//n:note/text()", namespaces=ns))
        assert not ENGLISH.search(notes), notes
        assert xml.findtext("n:signedBy/n:credentialType", namespaces=ns) == "E_SIGNATURE_CARD"
    flowing = " ".join(text.split())  # table cells wrap
    assert "Düzəliş edildi" in flowing
    assert "Əvvəlki faktiki" in flowing and "əvvəlki əlaqə vasitələri" in flowing, flowing


def test_baku_date_across_the_utc_evening() -> None:
    """20:00 UTC is midnight in Baku: the date changes there, not at UTC midnight."""
    from gateway.domain.calendar import business_date

    before = datetime(2026, 12, 6, 19, 59, 59, tzinfo=UTC)
    after = datetime(2026, 12, 6, 20, 0, 0, tzinfo=UTC)
    assert business_date(before).isoformat() == "2026-12-06"
    assert business_date(after).isoformat() == "2026-12-07"
    assert baku_time(after).isoformat() == "2026-12-07T00:00:00+04:00"
    assert baku_time(after.replace(tzinfo=None)) == baku_time(after)  # naive = UTC
