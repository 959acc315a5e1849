"""Algorithm enums: URIs, hashes, key families, ECDSA encodings."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from signing.algorithms import (
    DigestMethod,
    KeyAlgorithm,
    SignatureMethod,
    default_method_for,
    ecdsa_der_to_raw,
    ecdsa_raw_to_der,
    method_for,
)
from signing.errors import ConfigurationError


def test_values_are_w3c_uris() -> None:
    assert SignatureMethod("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256") is (
        SignatureMethod.RSA_SHA256
    )
    assert SignatureMethod.RSA_PSS_SHA384 == (
        "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1"
    )
    assert SignatureMethod.ECDSA_SHA512 == "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
    assert DigestMethod.SHA384 == "http://www.w3.org/2001/04/xmldsig-more#sha384"
    assert DigestMethod("http://www.w3.org/2001/04/xmlenc#sha512") is DigestMethod.SHA512
    assert str(DigestMethod.SHA256) == "http://www.w3.org/2001/04/xmlenc#sha256"


def test_sha1_is_not_in_the_profile() -> None:
    with pytest.raises(ValueError):
        SignatureMethod("http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    with pytest.raises(ValueError):
        DigestMethod("http://www.w3.org/2000/09/xmldsig#sha1")


def test_hashes_and_families() -> None:
    assert isinstance(SignatureMethod.RSA_SHA512.hash_algorithm(), hashes.SHA512)
    assert SignatureMethod.ECDSA_SHA384.digest is DigestMethod.SHA384
    assert SignatureMethod.ECDSA_SHA256.key_algorithm is KeyAlgorithm.EC
    assert SignatureMethod.RSA_PSS_SHA256.is_pss and not SignatureMethod.RSA_SHA256.is_pss
    assert DigestMethod.SHA512.digest_size == 64
    pss = SignatureMethod.RSA_PSS_SHA256.rsa_padding()
    assert pss == padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    assert isinstance(SignatureMethod.RSA_SHA256.rsa_padding(), padding.PKCS1v15)
    with pytest.raises(ConfigurationError):
        SignatureMethod.ECDSA_SHA256.rsa_padding()


def test_method_for() -> None:
    assert method_for(KeyAlgorithm.RSA, DigestMethod.SHA384) is SignatureMethod.RSA_SHA384
    assert method_for(KeyAlgorithm.RSA, DigestMethod.SHA256, pss=True) is (
        SignatureMethod.RSA_PSS_SHA256
    )
    assert method_for(KeyAlgorithm.EC, DigestMethod.SHA512) is SignatureMethod.ECDSA_SHA512
    with pytest.raises(ConfigurationError):
        method_for(KeyAlgorithm.EC, DigestMethod.SHA256, pss=True)


@pytest.mark.parametrize(
    ("curve", "expected"),
    [
        (ec.SECP256R1(), SignatureMethod.ECDSA_SHA256),
        (ec.SECP384R1(), SignatureMethod.ECDSA_SHA384),
        (ec.SECP521R1(), SignatureMethod.ECDSA_SHA512),
    ],
)
def test_default_method_per_curve(curve: ec.EllipticCurve, expected: SignatureMethod) -> None:
    assert default_method_for(ec.generate_private_key(curve).public_key()) is expected


def test_curve_outside_the_profile() -> None:
    with pytest.raises(ConfigurationError):
        default_method_for(ec.generate_private_key(ec.SECP256K1()).public_key())


def test_ecdsa_encodings_round_trip() -> None:
    key = ec.generate_private_key(ec.SECP521R1())
    der = key.sign(b"x", ec.ECDSA(hashes.SHA512()))
    raw = ecdsa_der_to_raw(der, key.curve.key_size)
    assert len(raw) == 132  # 2 × 66 bytes for P-521
    assert ecdsa_raw_to_der(raw) == der
    key.public_key().verify(ecdsa_raw_to_der(raw), b"x", ec.ECDSA(hashes.SHA512()))
