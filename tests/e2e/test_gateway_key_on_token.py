"""The gateway's own signing key on a PKCS#11 token (SoftHSM2 standing in for an HSM): the
composition root loads it from the pkcs11_* settings, and clients verify the answers with it.

Runs the gateway in a child process: a PKCS#11 module reads SOFTHSM2_CONF once per process, and
the token must exist before the module is first loaded."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from lxml import etree

from signing.parser import serialize
from signing.testpki import load_into_softhsm, write_softhsm_config
from signing.verifier import EnvelopeVerifier
from tests.e2e.conftest import Stack, find_person_payload, signed_request

PIN = "8642"

CHILD = textwrap.dedent("""
    import base64, json, sys
    from gateway.bootstrap import build_gateway
    from gateway.config import Settings
    args = json.loads(sys.argv[1])
    settings = Settings.from_mapping(args["settings"])
    gateway = build_gateway(settings, migrate=False)
    outcome = gateway.app.handle(base64.b64decode(args["request"]))
    print(json.dumps({"status": outcome.status,
                      "body": base64.b64encode(outcome.body).decode()}))
""")


@pytest.mark.softhsm
def test_responses_are_signed_with_the_key_on_the_token(
    stack: Stack, softhsm_module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = write_softhsm_config(tmp_path / "hsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    load_into_softhsm(stack.pki, "gateway", module_path=softhsm_module, token_label="gw-hsm",
                      so_pin="97531", user_pin=PIN)
    settings = stack.gateway.settings
    child_settings = {
        "database_url": settings.effective_database_url,
        "data_dir": str(settings.data_dir),
        "trust_anchors": [str(p) for p in settings.trust_anchors],
        "crls": [str(p) for p in settings.crls],
        "population_url": settings.population_url,
        "pkcs11_module": softhsm_module,
        "pkcs11_token_label": "gw-hsm",
        "pkcs11_key_label": "gateway",
    }
    request = signed_request(stack.pki.signer("director"), "FindPerson",
                             find_person_payload("5GH3J7K"), message_id=str(uuid.uuid4()))
    env = {**os.environ, "SOFTHSM2_CONF": str(conf), "DSMF_PKCS11_PIN": PIN}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps({
            "settings": child_settings,
            "request": base64.b64encode(serialize(request)).decode(),
        })],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == "200 OK"
    body = base64.b64decode(answer["body"])
    verified = EnvelopeVerifier(stack.pki.trust_store()).verify(etree.fromstring(body))
    assert verified.certificate == stack.pki.identity("gateway").certificate
    assert "Nəsibova" in body.decode()
    assert PIN not in result.stdout + result.stderr
