"""The ERP-style script, as an integrator runs it: zeep + our signing plugin + a SoftHSM2 card,
calling FindPerson on the running gateway and verifying the gateway's signed answer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from signing.testpki import load_into_softhsm, write_softhsm_config
from tests.e2e.conftest import Stack

PIN = "4711"


@pytest.mark.softhsm
def test_erp_script_signs_with_a_card_and_verifies_the_answer(
    stack: Stack, softhsm_module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = write_softhsm_config(tmp_path / "hsm")
    # The token is built in child processes; this test process never loads the module.
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    load_into_softhsm(stack.pki, "director", module_path=softhsm_module, token_label="erp-card",
                      so_pin="10203040", user_pin=PIN)
    env = {**os.environ, "SOFTHSM2_CONF": str(conf), "DSMF_PKCS11_PIN": PIN}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.client.example", "--wsdl", stack.wsdl,
         "--gateway-identity", "gateway",
         "--pki", str(stack.pki.directory), "--fin", "5GH3J7K",
         "--pkcs11-module", softhsm_module, "--token-label", "erp-card",
         "--key-label", "director"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "verified" in result.stdout
    assert "DSMF Insured Registration Gateway" in result.stdout  # the answer's signer
    assert "Nəsibova" in result.stdout
    assert PIN not in result.stdout + result.stderr


@pytest.mark.softhsm
def test_erp_script_with_a_wrong_pin_fails_cleanly(
    stack: Stack, softhsm_module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = write_softhsm_config(tmp_path / "hsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    load_into_softhsm(stack.pki, "director", module_path=softhsm_module, token_label="erp-card",
                      so_pin="10203040", user_pin=PIN)
    env = {**os.environ, "SOFTHSM2_CONF": str(conf), "DSMF_PKCS11_PIN": "0000"}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.client.example", "--wsdl", stack.wsdl,
         "--gateway-identity", "gateway",
         "--pki", str(stack.pki.directory), "--fin", "5GH3J7K",
         "--pkcs11-module", softhsm_module, "--token-label", "erp-card",
         "--key-label", "director"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert result.returncode == 1
    assert "Client.Signing.PinIncorrect" in result.stderr
    assert "Traceback" not in result.stderr
