"""The contract's golden envelopes sent to the running gateway, signed by the demo director.

Valid ones must get past the schema (whatever the business answer); invalid ones must be refused
with exactly the fault code and field listed in golden/invalid/expected.json.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from lxml import etree

from signing.wsse import sign_envelope
from tests.e2e.conftest import TNS, Stack, response_fault_code

GOLDEN = Path(__file__).resolve().parents[1] / "contract" / "golden"
XROAD_ID = "{http://x-road.eu/xsd/xroad.xsd}id"
XROAD_CLIENT = "{http://x-road.eu/xsd/xroad.xsd}client"
XROAD_MEMBER_CODE = "{http://x-road.eu/xsd/identifiers}memberCode"
EXPECTED = json.loads((GOLDEN / "invalid" / "expected.json").read_text())


def _signed(stack: Stack, path: Path) -> etree._Element:
    envelope = etree.fromstring(path.read_bytes())
    header = envelope[0]
    for el in header.iter(XROAD_ID):
        el.text = str(uuid.uuid4())  # each send is a new message, never a replay
    # The X-Road client is the member that sends: here the director's organisation (the
    # gateway refuses a client header naming a third one, Client.NotAuthorized.XRoadClient).
    for el in header.iter(XROAD_CLIENT):
        el.find(XROAD_MEMBER_CODE).text = stack.pki.identity("director").voen
    return sign_envelope(envelope, stack.pki.signer("director"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_golden_envelope_is_refused_with_its_code(stack: Stack, name: str) -> None:
    response = stack.post(_signed(stack, GOLDEN / "invalid" / name))
    assert response.status_code == 500
    assert response_fault_code(response) == EXPECTED[name]["code"]
    field = etree.fromstring(response.content).findtext(f".//{{{TNS}}}FaultDetail/{{{TNS}}}field")
    assert field == EXPECTED[name]["field"]


@pytest.mark.parametrize("name", sorted(p.name for p in (GOLDEN / "valid").glob("*.xml")))
def test_valid_golden_envelope_passes_the_schema(stack: Stack, name: str) -> None:
    response = stack.post(_signed(stack, GOLDEN / "valid" / name))
    code = response_fault_code(response)
    assert code is None or not code.startswith(("Client.Validation.Schema", "Client.Xml",
                                                  "Client.Signature", "Client.Header")), code
