"""Fixtures of the signing tests.

``pki``            -- the whole test PKI (signing.testpki), built once per session (and worker)
``softhsm_tokens`` -- SoftHSM2 tokens holding test-PKI keys, by name: 'director' (RSA-2048),
                      'gateway' (ECDSA P-256) and 'pin_test' (a throw-away token for wrong PINs)
``softhsm_token``  -- (Pkcs11Config, PIN) of the token holding 'director'
``xmlsec1``        -- path of the xmlsec1 tool

SoftHSM2's module: ``DSMF_SOFTHSM2_MODULE`` or /usr/lib/softhsm/libsofthsm2.so. Without it the
tests that need it are skipped -- or fail when ``DSMF_TEST_REQUIRE_ALL=1`` (CI).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, NoReturn

import pytest

from signing.pkcs11 import Pkcs11Config
from signing.testpki import TestPki, build_test_pki, load_into_softhsm, write_softhsm_config

DEFAULT_SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SO_PIN = "97531"


def _missing(reason: str) -> NoReturn:
    if os.environ.get("DSMF_TEST_REQUIRE_ALL") == "1":
        pytest.fail(f"{reason} (DSMF_TEST_REQUIRE_ALL=1, so this is an error, not a skip)")
    pytest.skip(reason)


class SoftHsmToken(NamedTuple):
    config: Pkcs11Config
    pin: str


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """The test PKI, generated for this session (static certificates would expire)."""
    return build_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def softhsm_module_path() -> str:
    path = os.environ.get("DSMF_SOFTHSM2_MODULE") or DEFAULT_SOFTHSM2_MODULE
    if not Path(path).is_file():
        _missing(f"SoftHSM2 module {path} not found (Debian package softhsm2)")
    if shutil.which("softhsm2-util") is None:
        _missing("softhsm2-util not found (Debian package softhsm2)")
    return path


@pytest.fixture(scope="session")
def softhsm_tokens(
    pki: TestPki, softhsm_module_path: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, SoftHsmToken]]:
    """Every token this session needs, created up front.

    A PKCS#11 module reads SOFTHSM2_CONF and its slot list when first initialised in a process,
    so the configuration is set and all tokens exist before any signer opens a session. If the
    module was initialised earlier in this process, it is re-initialised once here.
    """
    import pkcs11

    conf = write_softhsm_config(tmp_path_factory.mktemp("softhsm"))
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    tokens: dict[str, SoftHsmToken] = {}
    for name, identity in (("director", "director"), ("gateway", "gateway"),
                           ("pin_test", "employee")):
        label = f"dsmf-{name}"
        pin = f"{len(name)}4{len(label)}8-{name}"
        load_into_softhsm(pki, identity, module_path=softhsm_module_path, token_label=label,
                          so_pin=SO_PIN, user_pin=pin)
        config = Pkcs11Config(module_path=softhsm_module_path, token_label=label,
                              token_serial=None, key_label=identity, pin_env=None)
        tokens[name] = SoftHsmToken(config, pin)
    loaded = getattr(pkcs11, "_loaded", {}).get(softhsm_module_path)
    if loaded is not None:
        loaded.reinitialize()
    try:
        yield tokens
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture(scope="session")
def xmlsec1() -> str:
    """Path of the xmlsec1 command-line tool (Debian package xmlsec1)."""
    path = shutil.which("xmlsec1")
    if path is None:
        _missing("xmlsec1 not found (Debian package xmlsec1)")
    return path


@pytest.fixture(scope="session")
def softhsm_token(softhsm_tokens: dict[str, SoftHsmToken]) -> SoftHsmToken:
    """(Pkcs11Config, PIN) of a SoftHSM2 token holding the 'director' key and certificate."""
    return softhsm_tokens["director"]
