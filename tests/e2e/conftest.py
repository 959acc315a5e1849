"""End-to-end fixtures: the real gateway and the upstream simulators on loopback ports.

Nothing is mocked: a test PKI is generated, the simulators run as spyne apps over HTTP, the
gateway is built by the same composition root as ``dsmf-gateway serve`` and served by a real
HTTP server, and clients are zeep (with our signing plugin) or raw HTTP for crafted messages.
"""

from __future__ import annotations

import logging
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import zeep
from lxml import etree
from zeep.exceptions import Fault
from zeep.helpers import serialize_object

from gateway.bootstrap import Gateway, build_gateway
from gateway.client.wsse import GatewayIdentity, SigningPlugin, XRoadMember, add_xroad_headers
from gateway.config import Settings
from gateway.wsgi_server import body_cap, serve_in_thread
from persistence.seed import load_demo_data
from signing.parser import serialize
from signing.signer import Signer
from signing.testpki import TestPki, build_test_pki
from signing.wsse import sign_envelope
from simulators.runner import Simulators, start_simulators

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "urn:az:dsmf:insured-registration:v1"
DEMO_VOEN = "1403567891"
OTHER_VOEN = "1700345671"

logging.getLogger("spyne").setLevel(logging.CRITICAL)


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return build_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def simulators(test_pki: TestPki) -> Iterator[Simulators]:
    sims = start_simulators(test_pki.directory, approve_delay=0.2, transaction_timeout=3.0)
    yield sims
    sims.stop()


@dataclass
class Stack:
    url: str
    gateway: Gateway
    pki: TestPki
    simulators: Simulators

    @property
    def wsdl(self) -> str:
        return f"{self.url}?wsdl"

    @property
    def gateway_identity(self) -> GatewayIdentity:
        """The answers' signer as a client pins it: the gateway's own certificate."""
        return GatewayIdentity.pinned(self.pki.identity("gateway").certificate)

    def client(self, identity: str = "director", *, voen: str = DEMO_VOEN,
               user_id: str | None = None, signer: Signer | None = None,
               sign: bool = True) -> tuple[Any, SigningPlugin]:
        used = signer if signer is not None else (self.pki.signer(identity) if sign else None)
        plugin = SigningPlugin(
            used, client=XRoadMember("AZ", "COM", voen, "erp"), user_id=user_id,
            verify_with=self.pki.trust_store(), gateway=self.gateway_identity,
        )
        return zeep.Client(self.wsdl, plugins=[plugin]), plugin

    def post(self, envelope: etree._Element | bytes) -> requests.Response:
        data = envelope if isinstance(envelope, bytes) else serialize(envelope)
        return requests.post(self.url, data=data, timeout=10,
                             headers={"Content-Type": "text/xml; charset=utf-8"})


def make_settings(database_url: str, data_dir: Path, pki: TestPki, sims: Simulators,
                  **changes: Any) -> Settings:
    gw = pki.identity("gateway")
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "trust_anchors": tuple(pki.trust_anchor_paths),
        "crls": (pki.crl_path,),
        "signing_key_file": gw.key_path,
        "signing_cert_file": gw.cert_path,
        "population_url": sims.population_url,
        "mobile_url": sims.mobile_url,
        "trusted_systems": ("TINAZ-1500000001",),
        "upstream_timeout_seconds": 2.0,
        "upstream_retries": 1,
    }
    values.update(changes)
    return Settings.from_mapping(values)


@contextmanager
def serve_gateway(settings: Settings, pki: TestPki, simulators: Simulators, *,
                  demo_data: bool = True, **build: Any) -> Iterator[Stack]:
    """A gateway built by the composition root from ``settings`` (``build``: its other
    arguments, e.g. ``clock``), served on a loopback port until the block ends."""
    gateway = build_gateway(settings, **build)
    try:
        if demo_data:
            load_demo_data(gateway.database)
        server = serve_in_thread(gateway.app,
                                 max_body_bytes=body_cap(settings.max_message_bytes),
                                 on_http_error=gateway.app.http_error_answer)
        try:
            yield Stack(url=server.url.rstrip("/") + "/soap", gateway=gateway, pki=pki,
                        simulators=simulators)
        finally:
            server.stop()
    finally:
        gateway.close()


@contextmanager
def sibling_stack(stack: Stack, data_dir: Path, *, build: dict[str, Any] | None = None,
                  **changes: Any) -> Iterator[Stack]:
    """A second gateway on the same database as ``stack``, with other settings."""
    settings = make_settings(stack.gateway.settings.effective_database_url, data_dir, stack.pki,
                             stack.simulators, **changes)
    with serve_gateway(settings, stack.pki, stack.simulators, demo_data=False,
                       migrate=False, **(build or {})) as sibling:
        yield sibling


@pytest.fixture
def stack(database_url: str, tmp_path: Path, test_pki: TestPki,
          simulators: Simulators) -> Iterator[Stack]:
    settings = make_settings(database_url, tmp_path, test_pki, simulators)
    with serve_gateway(settings, test_pki, simulators) as running:
        yield running


class Bodies:
    """``client.service`` answering with the response body: the binding declares the X-Road
    headers on responses too, so zeep answers ``{header, body}``."""

    def __init__(self, service: Any) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        operation = getattr(self._service, name)

        def invoke(*args: Any, **kwargs: Any) -> Any:
            answer = operation(*args, **kwargs)
            values = getattr(answer, "__values__", None)
            if isinstance(values, dict) and set(values) == {"header", "body"}:
                return answer.body
            return answer

        return invoke


def call(client: Any, operation: str, **kwargs: Any) -> Any:
    """Call an operation through zeep and return the response body (the WSDL declares output
    headers, so zeep answers with {header, body})."""
    result = getattr(client.service, operation)(**kwargs)
    return result.body if hasattr(result, "body") else result


def fault_code(fault: Fault) -> str:
    """The fault code without its namespace prefix ("soapenv:Client.X" -> "Client.X")."""
    code = fault.code or ""
    return code.split(":", 1)[1] if ":" in code else code


def response_fault_code(response: requests.Response) -> str | None:
    root = etree.fromstring(response.content)
    code = root.findtext(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault/faultcode")
    if code is None:
        return None
    return code.split(":", 1)[1] if ":" in code else code


def request_envelope(operation: str, payload: str, *, message_id: str = "msg-1",
                     voen: str = DEMO_VOEN) -> etree._Element:
    """A request envelope with X-Road headers around ``payload`` (XML text in tns)."""
    envelope = etree.fromstring(
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Header/>'
        f'<soapenv:Body>{payload}</soapenv:Body></soapenv:Envelope>'.encode()
    )
    header = envelope[0]
    add_xroad_headers(header, client=XRoadMember("AZ", "COM", voen, "erp"),
                      service=XRoadMember("AZ", "GOV", "1500000011", "insured-registration"),
                      operation=operation, message_id=message_id)
    return envelope


def signed_request(signer: Signer, operation: str, payload: str, **kw: Any) -> etree._Element:
    return sign_envelope(request_envelope(operation, payload, **kw), signer)


def find_person_payload(fin: str, doc: str = "ID_CARD", voen: str = DEMO_VOEN) -> str:
    return (f'<t:FindPerson xmlns:t="{TNS}"><t:voen>{voen}</t:voen>'
            f'<t:documentType>{doc}</t:documentType><t:fin>{fin}</t:fin></t:FindPerson>')


def plain(value: Any) -> Any:
    """A zeep value as a plain dict without the absent (None) fields."""
    return {k: v for k, v in serialize_object(value, dict).items() if v is not None}


def fault_of(call: Any, *args: Any, **kwargs: Any) -> str:
    """The fault code a zeep call is refused with (fails the test if it is not refused)."""
    with pytest.raises(Fault) as info:
        call(*args, **kwargs)
    return fault_code(info.value)


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    """A notice PDF read back with pdftotext."""
    path = tmp_path / f"notice-{uuid.uuid4().hex}.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                          check=True, timeout=30)
    return done.stdout.decode("utf-8")
