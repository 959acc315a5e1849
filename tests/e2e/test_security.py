"""Every known attack sent to the running gateway: each refused with its exact fault code, and
nothing written.

The crafted messages come from tests/signing/attacks.py (the verifier's own attack corpus), built
around a real state-changing request (SaveDraft by the demo director), so a message that slipped
through would create an application.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from gateway.services.ports import ApplicationQuery
from signing.testpki import TestPki
from simulators.runner import Simulators
from tests.e2e.conftest import (
    DEMO_VOEN,
    TNS,
    Stack,
    make_settings,
    response_fault_code,
    serve_gateway,
)
from tests.signing import attacks
from tests.signing.attacks import ATTACKS, Sender

SAVE_DRAFT = (
    f'<t:SaveDraft xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
    "<t:documentType>ID_CARD</t:documentType><t:fin>6TY2U8P</t:fin>"
    "<t:actualAddressDiffers>false</t:actualAddressDiffers></t:SaveDraft>"
).encode()


def base_request() -> etree._Element:
    envelope = attacks.request_envelope(payload=SAVE_DRAFT)
    code = envelope.find(".//{http://x-road.eu/xsd/identifiers}serviceCode")
    assert code is not None
    code.text = "SaveDraft"
    return envelope


@pytest.fixture(scope="module")
def sqlite_stack(tmp_path_factory: pytest.TempPathFactory, test_pki: TestPki,
                 simulators: Simulators) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("security")
    settings = make_settings(f"sqlite:///{tmp / 'gw.db'}", tmp, test_pki, simulators,
                             max_message_bytes=200_000, max_xml_depth=40)
    with serve_gateway(settings, test_pki, simulators) as running:
        yield running


def applications_written(stack: Stack) -> int:
    with stack.gateway.database.unit_of_work() as uow:
        return uow.applications.search(ApplicationQuery(insurer_voen=DEMO_VOEN)).total


def refused_with(stack: Stack, data: bytes, code: str) -> None:
    response = stack.post(data)
    assert response.status_code == 500, response.text[:300]
    assert response_fault_code(response) == code
    assert applications_written(stack) == 0


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_refused(sqlite_stack: Stack, name: str) -> None:
    attack = ATTACKS[name]
    sender = Sender.from_identity(sqlite_stack.pki.identity("director"))
    data = attack.craft(sender, base=base_request)
    refused_with(sqlite_stack, data, attack.expected.code)


@pytest.mark.parametrize(("identity", "code"), [
    ("expired", "Client.Certificate.Expired"),
    ("not_yet_valid", "Client.Certificate.NotYetValid"),
    ("revoked", "Client.Certificate.Revoked"),
    ("wrong_usage", "Client.Certificate.KeyUsage"),
    ("foreign", "Client.Certificate.Untrusted"),
    ("rsa1024", "Client.Certificate.WeakKey"),
])
def test_bad_certificate_is_refused(sqlite_stack: Stack, identity: str, code: str) -> None:
    sender = Sender.from_identity(sqlite_stack.pki.identity(identity))
    data = attacks.serialize(attacks.signed(sender, base=base_request))
    refused_with(sqlite_stack, data, code)


@pytest.mark.parametrize(("shift", "lifetime", "code"), [
    (timedelta(minutes=-10), timedelta(minutes=5), "Client.Signature.Expired"),
    (timedelta(minutes=10), timedelta(minutes=5), "Client.Signature.Future"),
    (timedelta(0), timedelta(hours=2), "Client.Signature.Expired"),  # over the max lifetime
])
def test_stale_or_future_timestamp_is_refused(
    sqlite_stack: Stack, shift: timedelta, lifetime: timedelta, code: str
) -> None:
    sender = Sender.from_identity(sqlite_stack.pki.identity("director"))
    envelope = attacks.signed(sender, now=datetime.now(UTC) + shift, lifetime=lifetime,
                              base=base_request)
    refused_with(sqlite_stack, attacks.serialize(envelope), code)


def test_unsigned_request_is_refused(sqlite_stack: Stack) -> None:
    refused_with(sqlite_stack, attacks.serialize(base_request()), "Client.Signature.Missing")


def test_replayed_message_id_with_other_content_is_refused(sqlite_stack: Stack) -> None:
    sender = Sender.from_identity(sqlite_stack.pki.identity("director"))
    message_id = str(uuid.uuid4())
    find = (f'<t:FindPerson xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
            "<t:documentType>ID_CARD</t:documentType><t:fin>5GH3J7K</t:fin></t:FindPerson>")

    def request(fin: str) -> bytes:
        env = attacks.request_envelope(message_id=message_id,
                                       payload=find.replace("5GH3J7K", fin).encode())
        code = env.find(".//{http://x-road.eu/xsd/identifiers}serviceCode")
        assert code is not None
        code.text = "FindPerson"
        return attacks.serialize(attacks.signed(sender, base=lambda: env))

    first = request("5GH3J7K")
    ok = sqlite_stack.post(first)
    assert ok.status_code == 200
    # The identical bytes again: a retry of a read, which stores no answer and runs again.
    again = sqlite_stack.post(first)
    assert again.status_code == 200
    assert _body(again.content) == _body(ok.content)
    # The same id on another request: a replay.
    refused_with(sqlite_stack, request("8LV4N2X"), "Client.Signature.Replay")


@pytest.mark.parametrize(("data", "code"), [
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "Client.Xml.Forbidden"),
    (b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>', "Client.Xml.Forbidden"),
    (b"<a>" * 60 + b"</a>" * 60, "Client.Xml.TooDeep"),
    (b"<x>" + b"a" * 300_000 + b"</x>", "Client.Xml.TooLarge"),
    (b"<not-xml", "Client.Xml.Malformed"),
    (b'<?xml-stylesheet href="x"?><x/>', "Client.Xml.Forbidden"),
])
def test_hostile_xml_is_refused(sqlite_stack: Stack, data: bytes, code: str) -> None:
    refused_with(sqlite_stack, data, code)


def test_confused_deputy_is_refused(sqlite_stack: Stack) -> None:
    """A valid signature by insurer B's director over a body naming insurer A."""
    sender = Sender.from_identity(sqlite_stack.pki.identity("director_b"))
    data = attacks.serialize(attacks.signed(sender, base=base_request))
    refused_with(sqlite_stack, data, "Client.NotAuthorized.OtherInsurer")


def test_message_ids_are_unique_per_sender_not_globally(sqlite_stack: Stack) -> None:
    """Two senders that happen to use the same X-Road id do not collide."""
    message_id = str(uuid.uuid4())
    find = (f'<t:FindPerson xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
            "<t:documentType>ID_CARD</t:documentType><t:fin>5GH3J7K</t:fin></t:FindPerson>")
    for identity in ("director", "deputy"):
        sender = Sender.from_identity(sqlite_stack.pki.identity(identity))
        env = attacks.request_envelope(message_id=message_id, payload=find.encode())
        code = env.find(".//{http://x-road.eu/xsd/identifiers}serviceCode")
        assert code is not None
        code.text = "FindPerson"
        signed = attacks.signed(sender, base=lambda env=env: env)  # type: ignore[misc]
        response = sqlite_stack.post(attacks.serialize(signed))
        # The deputy holds no authority: refused for that, not as a replay.
        expected = None if identity == "director" else "Client.NotAuthorized.NoAuthority"
        assert response_fault_code(response) == expected


def test_blank_message_id_is_refused(sqlite_stack: Stack) -> None:
    """Replay protection hangs on the X-Road id: a blank one must not switch it off."""
    sender = Sender.from_identity(sqlite_stack.pki.identity("director"))

    def blank_id() -> etree._Element:
        env = base_request()
        xid = env.find(".//{http://x-road.eu/xsd/xroad.xsd}id")
        assert xid is not None
        xid.text = " "
        return env

    data = attacks.serialize(attacks.signed(sender, base=blank_id))
    refused_with(sqlite_stack, data, "Client.Header.Missing")


def test_negative_content_length_is_refused_without_reading(sqlite_stack: Stack) -> None:
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(sqlite_stack.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    connection.putrequest("POST", url.path)
    connection.putheader("Content-Type", "text/xml")
    connection.putheader("Content-Length", "-1")
    connection.endheaders()
    connection.send(b"<x/>" * 10)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    # Malformed HTTP, refused by the server before the gateway reads anything (README, "HTTP and
    # the SOAP envelope"); the connection is closed, so the bytes sent are never parsed.
    assert response.status == 500
    assert b"<faultcode>soapenv:Client.Http.Malformed</faultcode>" in body
    assert response.will_close


def _body(envelope: bytes) -> bytes:
    root = etree.fromstring(envelope)
    payload = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body/*")
    assert payload is not None
    return etree.tostring(payload, method="c14n", exclusive=True)
