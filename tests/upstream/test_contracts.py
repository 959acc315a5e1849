"""The authored upstream contracts: they load in zeep, the simulators serve them on ?wsdl, and
what the simulators answer is valid against them (spyne's models mirror the WSDL)."""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree
from zeep.plugins import HistoryPlugin

from gateway.upstream.mobile import BINDING as MOBILE_BINDING
from gateway.upstream.population import BINDING as POPULATION_BINDING
from gateway.upstream.transport import zeep_settings
from gateway.wsgi_server import RunningServer, WsgiApp
from signing.testpki import TestPki
from simulators.mobile import MobileSignatureSimulator, create_mobile_app
from simulators.runner import Simulators

from .conftest import AP_ID, MOBILE_WSDL, POPULATION_WSDL, WSDL_DIR

WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP_BINDING = "http://schemas.xmlsoap.org/wsdl/soap/"
XS = "http://www.w3.org/2001/XMLSchema"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
POP = "urn:az:iamas:population-registry:v1"
MSS = "http://uri.etsi.org/TS102204/v1.1.2#"


def _schema(wsdl: Path) -> etree.XMLSchema:
    root = etree.parse(str(wsdl)).getroot()
    schemas = root.findall(f"{{{WSDL}}}types/{{{XS}}}schema")
    assert len(schemas) == 1
    return etree.XMLSchema(copy.deepcopy(schemas[0]))


def _client(wsdl: Path) -> tuple[zeep.Client, HistoryPlugin]:
    history = HistoryPlugin()
    return zeep.Client(str(wsdl), settings=zeep_settings(), plugins=[history]), history


def _received(history: HistoryPlugin) -> etree._Element:
    assert history.last_received is not None
    return _body_child(history.last_received["envelope"])


def _sent(history: HistoryPlugin) -> etree._Element:
    assert history.last_sent is not None
    return _body_child(history.last_sent["envelope"])


def _body_child(envelope: etree._Element) -> etree._Element:
    body = envelope.find(f"{{{SOAP_ENV}}}Body")
    assert body is not None and len(body) == 1
    return body[0]


@pytest.mark.parametrize("wsdl", [POPULATION_WSDL, MOBILE_WSDL], ids=lambda p: p.name)
def test_every_upstream_wsdl_loads_in_zeep_with_strict_safe_settings(wsdl: Path) -> None:
    client = zeep.Client(str(wsdl), settings=zeep_settings())
    assert len(client.wsdl.bindings) == 1
    binding = next(iter(client.wsdl.bindings.values()))
    assert binding.__class__.__name__ == "Soap11Binding"
    assert binding.name.text in (POPULATION_BINDING, MOBILE_BINDING)


@pytest.mark.parametrize("wsdl", [POPULATION_WSDL, MOBILE_WSDL], ids=lambda p: p.name)
def test_wsdl_is_document_literal(wsdl: Path) -> None:
    root = etree.parse(str(wsdl)).getroot()
    assert {b.get("style") for b in root.iter(f"{{{SOAP_BINDING}}}binding")} == {"document"}
    assert {b.get("use") for b in root.iter(f"{{{SOAP_BINDING}}}body")} == {"literal"}
    assert {b.get("use") for b in root.iter(f"{{{SOAP_BINDING}}}fault")} == {"literal"}
    # WS-I BP: message parts are elements, never types.
    for part in root.iter(f"{{{WSDL}}}part"):
        assert part.get("element") and not part.get("type")


@pytest.mark.parametrize(
    ("which", "wsdl"),
    [("population", POPULATION_WSDL), ("mobile", MOBILE_WSDL)],
)
def test_running_simulator_serves_the_authored_wsdl_with_its_address(
    simulators: Simulators, which: str, wsdl: Path
) -> None:
    endpoint = getattr(simulators, f"{which}_url")
    served_url = getattr(simulators, f"{which}_wsdl_url")
    response = requests.get(served_url, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    served = etree.fromstring(response.content)
    authored = etree.parse(str(wsdl)).getroot()
    addresses = served.findall(f".//{{{SOAP_BINDING}}}address")
    assert [a.get("location") for a in addresses] == [endpoint]
    for element in (served, authored):
        for address in element.iter(f"{{{SOAP_BINDING}}}address"):
            address.set("location", "X")
    assert etree.tostring(served, method="c14n") == etree.tostring(authored, method="c14n")
    # ... and zeep can use what was served.
    zeep.Client(served_url, settings=zeep_settings())


def test_simulators_refuse_other_paths_and_methods(simulators: Simulators) -> None:
    base = simulators.population_url.rsplit("/", 1)[0]
    assert requests.get(base + "/nothing-here", timeout=5).status_code == 404
    assert requests.get(simulators.population_url, timeout=5).status_code == 405
    too_big = b"<x>" + b" " * 300_000 + b"</x>"
    answer = requests.post(simulators.mobile_url, data=too_big, timeout=5)
    assert answer.status_code == 413


def test_population_answers_are_valid_against_the_authored_schema(
    simulators: Simulators,
) -> None:
    schema = _schema(POPULATION_WSDL)
    client, history = _client(POPULATION_WSDL)
    service = client.create_service(POPULATION_BINDING, simulators.population_url)

    service.GetPersonByDocument(documentType="TEMPORARY_RESIDENCE_PERMIT", fin="A1B2C")
    schema.assertValid(_received(history))
    schema.assertValid(_sent(history))

    service.Ping(echo="salam")
    schema.assertValid(_received(history))

    for fin, code in (("0NF7ND0", "PERSON_NOT_FOUND"), ("1EX9PR3", "DOCUMENT_INVALID")):
        with pytest.raises(zeep.exceptions.Fault) as caught:
            service.GetPersonByDocument(documentType="ID_CARD", fin=fin)
        detail = caught.value.detail
        assert detail is not None
        (registry_fault,) = detail.findall(f"{{{POP}}}RegistryFault")
        schema.assertValid(registry_fault)
        assert registry_fault.findtext(f"{{{POP}}}code") == code


def test_mobile_answers_are_valid_against_the_authored_schema(
    serve: Callable[[WsgiApp], RunningServer], pki: TestPki
) -> None:
    # A private simulator on a clock the test moves: outstanding, then signed, no waiting.
    now = [0.0]
    mssp = MobileSignatureSimulator.from_test_pki(
        pki.directory, approve_delay=5.0, clock=lambda: now[0]
    )
    server = serve(create_mobile_app(WSDL_DIR, mssp))
    schema = _schema(MOBILE_WSDL)
    client, history = _client(MOBILE_WSDL)
    service = client.create_service(MOBILE_BINDING, server.url.rstrip("/") + "/mobile-signature")
    ap_info = {"AP_ID": AP_ID, "AP_TransID": "T1", "Instant": datetime.now(UTC)}
    digest = hashlib.sha256(b"contract").digest()
    answer = service.MSS_Signature(
        AP_Info=ap_info,
        MSSP_Info={"MSSP_ID": {}},
        MobileUser={"UserIdentifier": "100001", "MSISDN": "+994501234567"},
        DataToBeSigned={"_value_1": base64.b64encode(digest).decode(), "Encoding": "base64"},
        MajorVersion=1,
        MinorVersion=1,
        MessagingMode="asynchClientServer",
    )
    schema.assertValid(_sent(history))
    schema.assertValid(_received(history))
    assert answer.Status.StatusCode.Value == 100

    status_request = {
        "AP_Info": ap_info,
        "MSSP_Info": {"MSSP_ID": {}},
        "MajorVersion": 1,
        "MinorVersion": 1,
        "MSSP_TransID": answer.MSSP_TransID,
    }
    outstanding = service.MSS_StatusQuery(**status_request)
    assert outstanding.Status.StatusCode.Value == 504
    schema.assertValid(_received(history))

    now[0] += 5.0
    signed = service.MSS_StatusQuery(**status_request)
    assert signed.Status.StatusCode.Value == 502
    schema.assertValid(_received(history))

    with pytest.raises(zeep.exceptions.Fault) as caught:
        service.MSS_StatusQuery(**{**status_request, "MSSP_TransID": "MSSPnonexistent"})
    detail = caught.value.detail
    assert detail is not None
    (fault_detail,) = detail.findall(f"{{{MSS}}}MSS_FaultDetail")
    schema.assertValid(fault_detail)
    assert fault_detail.find(f"{{{MSS}}}StatusCode").get("Value") == "101"
