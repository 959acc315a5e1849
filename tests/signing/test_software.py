"""SoftwareSigner: loading from PEM and PKCS#12, signing with every method of the profile."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from signing.algorithms import (
    KeyAlgorithm,
    SignatureMethod,
    default_method_for,
    ecdsa_raw_to_der,
)
from signing.errors import ConfigurationError, KeyAccessError
from signing.signer import Signer
from signing.software import SoftwareSigner
from signing.testpki import P12_PASSWORD, TestPki

DATA = b"<ds:SignedInfo>canonical bytes</ds:SignedInfo>"
RSA_METHODS = [m for m in SignatureMethod if m.key_algorithm is KeyAlgorithm.RSA]
EC_METHODS = [m for m in SignatureMethod if m.key_algorithm is KeyAlgorithm.EC]


def verify(signer: Signer, signature: bytes, method: SignatureMethod, data: bytes = DATA) -> None:
    """Verify with the certificate's public key only (raises InvalidSignature)."""
    key = signer.certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, method.rsa_padding(), method.hash_algorithm())
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(ecdsa_raw_to_der(signature), data, ec.ECDSA(method.hash_algorithm()))


def test_from_pem(pki: TestPki) -> None:
    issued = pki.identities["director"]
    signer = SoftwareSigner.from_pem(issued.key_path, issued.cert_path, issued.chain_paths)
    assert isinstance(signer, Signer)
    assert signer.certificate == issued.certificate
    assert list(signer.chain) == [pki.issuing, pki.root]
    assert signer.public_key() == issued.certificate.public_key()


def test_from_pkcs12(pki: TestPki) -> None:
    issued = pki.identities["employee"]
    signer = SoftwareSigner.from_pkcs12(issued.p12_path, P12_PASSWORD)
    assert signer.certificate == issued.certificate
    assert set(signer.chain) == {pki.issuing, pki.root}
    verify(signer, signer.sign(DATA, SignatureMethod.RSA_SHA256), SignatureMethod.RSA_SHA256)


def test_pkcs12_wrong_password(pki: TestPki) -> None:
    with pytest.raises(KeyAccessError) as info:
        SoftwareSigner.from_pkcs12(pki.identities["employee"].p12_path, b"wrong")
    assert info.value.code == "Server.Signing.KeyAccess"


def test_missing_file_is_configuration_error(tmp_path: Path, pki: TestPki) -> None:
    with pytest.raises(ConfigurationError):
        SoftwareSigner.from_pem(tmp_path / "nope.pem", pki.identities["director"].cert_path)


def test_key_must_match_certificate(pki: TestPki) -> None:
    with pytest.raises(ConfigurationError):
        SoftwareSigner.from_pem(
            pki.identities["director"].key_path, pki.identities["deputy"].cert_path
        )


@pytest.mark.parametrize("method", RSA_METHODS, ids=lambda m: m.name)
def test_rsa_methods(pki: TestPki, method: SignatureMethod) -> None:
    signer = pki.signer("director")
    verify(signer, signer.sign(DATA, method), method)


@pytest.mark.parametrize("method", EC_METHODS, ids=lambda m: m.name)
def test_ecdsa_methods_give_raw_r_s(pki: TestPki, method: SignatureMethod) -> None:
    signer = pki.signer("gateway")
    signature = signer.sign(DATA, method)
    assert len(signature) == 64  # P-256: 32-byte r || 32-byte s, not DER
    verify(signer, signature, method)


def test_method_must_fit_the_key(pki: TestPki) -> None:
    with pytest.raises(ConfigurationError):
        pki.signer("gateway").sign(DATA, SignatureMethod.RSA_SHA256)
    with pytest.raises(ConfigurationError):
        pki.signer("director").sign(DATA, SignatureMethod.ECDSA_SHA256)


def test_default_methods(pki: TestPki) -> None:
    assert default_method_for(pki.signer("director").public_key()) is SignatureMethod.RSA_SHA256
    assert default_method_for(pki.signer("gateway").public_key()) is SignatureMethod.ECDSA_SHA256


def test_repr_names_the_subject_only(pki: TestPki) -> None:
    assert "Əliyev" in repr(pki.signer("director"))
