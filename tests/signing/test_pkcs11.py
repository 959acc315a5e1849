"""Pkcs11Signer on SoftHSM2: signing, errors, PIN handling, concurrency."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from signing.algorithms import KeyAlgorithm, SignatureMethod
from signing.errors import (
    ConfigurationError,
    KeyAccessError,
    KeyNotFound,
    PinIncorrect,
    SigningError,
    TokenNotFound,
)
from signing.pkcs11 import Pkcs11Config, Pkcs11Signer, _plan
from signing.signer import Signer
from signing.testpki import TestPki
from tests.signing.conftest import SoftHsmToken
from tests.signing.test_software import verify

pytestmark = pytest.mark.softhsm

DATA = b"<SignedInfo xmlns='http://www.w3.org/2000/09/xmldsig#'>...</SignedInfo>"


@pytest.fixture
def director(softhsm_token: SoftHsmToken) -> Pkcs11Signer:
    config, pin = softhsm_token
    with Pkcs11Signer(config, pin=pin) as signer:
        yield signer


@pytest.fixture
def gateway(softhsm_tokens: dict[str, SoftHsmToken]) -> Pkcs11Signer:
    config, pin = softhsm_tokens["gateway"]
    with Pkcs11Signer(config, pin=pin) as signer:
        yield signer


def test_certificate_comes_from_the_token(director: Pkcs11Signer, pki: TestPki) -> None:
    assert isinstance(director, Signer)
    assert director.certificate == pki.identities["director"].certificate
    assert director.public_key() == pki.identities["director"].certificate.public_key()
    assert list(director.chain) == []  # only the leaf is on the token


def test_chain_from_config(softhsm_token: SoftHsmToken, pki: TestPki) -> None:
    config = dataclasses.replace(
        softhsm_token.config,
        chain_paths=tuple(str(p) for p in pki.identities["director"].chain_paths),
    )
    with Pkcs11Signer(config, pin=softhsm_token.pin) as signer:
        assert list(signer.chain) == [pki.issuing, pki.root]


@pytest.mark.parametrize(
    "method", [m for m in SignatureMethod if m.key_algorithm is KeyAlgorithm.RSA],
    ids=lambda m: m.name,
)
def test_rsa_signatures_verify(director: Pkcs11Signer, method: SignatureMethod) -> None:
    verify(director, director.sign(DATA, method), method, DATA)


@pytest.mark.parametrize(
    "method", [m for m in SignatureMethod if m.key_algorithm is KeyAlgorithm.EC],
    ids=lambda m: m.name,
)
def test_ecdsa_signatures_are_raw_and_verify(
    gateway: Pkcs11Signer, method: SignatureMethod
) -> None:
    signature = gateway.sign(DATA, method)
    assert len(signature) == 64
    verify(gateway, signature, method, DATA)


def test_pkcs1_signature_is_deterministic_like_software(
    director: Pkcs11Signer, pki: TestPki
) -> None:
    software = pki.signer("director")
    method = SignatureMethod.RSA_SHA512
    assert director.sign(DATA, method) == software.sign(DATA, method)


@pytest.mark.parametrize(
    "method",
    [SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_PSS_SHA512],
    ids=lambda m: m.name,
)
def test_raw_mechanism_fallback(director: Pkcs11Signer, method: SignatureMethod) -> None:
    """Cards without hash-and-sign mechanisms get the hash (and DigestInfo) made here."""
    import pkcs11

    raw_only = frozenset({pkcs11.Mechanism.RSA_PKCS, pkcs11.Mechanism.RSA_PKCS_PSS})
    mechanism, _, payload = _plan(method, DATA, raw_only)
    assert mechanism in raw_only and payload != DATA
    shared = director._shared
    assert shared is not None
    _ = director.certificate  # open the session first, then restrict what it "supports"
    original = shared._mechanisms
    shared._mechanisms = raw_only
    try:
        verify(director, director.sign(DATA, method), method, DATA)
    finally:
        shared._mechanisms = original


def test_wrong_method_for_the_key(gateway: Pkcs11Signer) -> None:
    with pytest.raises(ConfigurationError):
        gateway.sign(DATA, SignatureMethod.RSA_SHA256)


def test_wrong_pin(softhsm_tokens: dict[str, SoftHsmToken]) -> None:
    config, pin = softhsm_tokens["pin_test"]  # its own token: a wrong PIN counts down there
    secret = "00000000-not-the-pin"
    with Pkcs11Signer(config, pin=secret) as signer:
        with pytest.raises(PinIncorrect) as info:
            signer.sign(DATA, SignatureMethod.RSA_SHA256)
        assert info.value.code == "Client.Signing.PinIncorrect"
        assert isinstance(info.value, KeyAccessError)
        for text in (str(info.value), repr(info.value), repr(signer), str(signer)):
            assert secret not in text
    # The right PIN still works afterwards.
    with Pkcs11Signer(config, pin=pin) as signer:
        verify(signer, signer.sign(DATA, SignatureMethod.RSA_SHA256), SignatureMethod.RSA_SHA256,
               DATA)


def test_pin_never_shown(softhsm_token: SoftHsmToken) -> None:
    config, pin = softhsm_token
    with Pkcs11Signer(config, pin=pin) as signer:
        signer.sign(DATA, SignatureMethod.RSA_SHA256)
        for text in (repr(signer), str(signer), repr(vars(signer))):
            assert pin not in text
    missing = dataclasses.replace(config, key_label="nobody")
    with Pkcs11Signer(missing, pin=pin) as signer, pytest.raises(SigningError) as info:
        signer.sign(DATA, SignatureMethod.RSA_SHA256)
    chain: BaseException | None = info.value
    while chain is not None:
        assert pin not in str(chain) and pin not in repr(chain)
        chain = chain.__cause__ or chain.__context__


def test_missing_key_label(softhsm_token: SoftHsmToken) -> None:
    config = dataclasses.replace(softhsm_token.config, key_label="no-such-key")
    with Pkcs11Signer(config, pin=softhsm_token.pin) as signer:
        with pytest.raises(KeyNotFound) as info:
            signer.sign(DATA, SignatureMethod.RSA_SHA256)
    assert info.value.code == "Server.Signing.KeyNotFound"


def test_missing_token(softhsm_token: SoftHsmToken) -> None:
    config = dataclasses.replace(softhsm_token.config, token_label="no-such-token")
    with Pkcs11Signer(config, pin=softhsm_token.pin) as signer:
        with pytest.raises(TokenNotFound):
            _ = signer.certificate


def test_bad_module_path(softhsm_token: SoftHsmToken, tmp_path: object) -> None:
    config = dataclasses.replace(softhsm_token.config, module_path="/nonexistent/libnothing.so")
    with Pkcs11Signer(config, pin="1") as signer, pytest.raises(ConfigurationError):
        signer.sign(DATA, SignatureMethod.RSA_SHA256)


def test_pin_from_environment(
    softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = dataclasses.replace(softhsm_token.config, pin_env="DSMF_TEST_PKCS11_PIN")
    monkeypatch.setenv("DSMF_TEST_PKCS11_PIN", softhsm_token.pin)
    with Pkcs11Signer(config) as signer:
        verify(signer, signer.sign(DATA, SignatureMethod.RSA_SHA256), SignatureMethod.RSA_SHA256,
               DATA)


def test_no_pin_anywhere(softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch) -> None:
    config = dataclasses.replace(softhsm_token.config, pin_env="DSMF_TEST_PKCS11_PIN")
    monkeypatch.delenv("DSMF_TEST_PKCS11_PIN", raising=False)
    with pytest.raises(KeyAccessError, match="DSMF_TEST_PKCS11_PIN"):
        Pkcs11Signer(config)  # pytest's stdin is not a terminal: no prompt


def test_concurrent_signing_shares_one_session(director: Pkcs11Signer) -> None:
    method = SignatureMethod.RSA_SHA256
    results: dict[tuple[int, int], bytes] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(thread: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(25):
                results[(thread, i)] = director.sign(DATA + f"{thread}/{i}".encode(), method)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert len(results) == 100
    for (thread, i), signature in results.items():
        verify(director, signature, method, DATA + f"{thread}/{i}".encode())


def test_two_signers_on_one_token_share_the_session(softhsm_token: SoftHsmToken) -> None:
    config, pin = softhsm_token
    with Pkcs11Signer(config, pin=pin) as first, Pkcs11Signer(config, pin=pin) as second:
        first.sign(DATA, SignatureMethod.RSA_SHA256)
        second.sign(DATA, SignatureMethod.RSA_SHA256)
        assert first._shared is second._shared
    assert first._shared is None


def test_closed_signer_refuses(softhsm_token: SoftHsmToken) -> None:
    signer = Pkcs11Signer(softhsm_token.config, pin=softhsm_token.pin)
    signer.close()
    signer.close()  # idempotent
    with pytest.raises(KeyAccessError, match="closed"):
        signer.sign(DATA, SignatureMethod.RSA_SHA256)


def test_config_from_mapping() -> None:
    config = Pkcs11Config.from_config(
        {"module_path": "/usr/lib/x.so", "token_label": "card", "key_label": "sign"}
    )
    assert config.token_serial is None and config.pin_env == "DSMF_PKCS11_PIN"
    with pytest.raises(ConfigurationError, match="unknown"):
        Pkcs11Config.from_config({"module_path": "m", "token_label": "t", "key_label": "k",
                                  "pin": "1234"})
    with pytest.raises(ConfigurationError):
        Pkcs11Config.from_config({"module_path": "m", "key_label": "k"})  # no token
    with pytest.raises(ConfigurationError):
        Pkcs11Config.from_config({"token_label": "t", "key_label": "k"})
