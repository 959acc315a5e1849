"""Signature and digest algorithms of the message-security profile, named by their W3C URIs.

The enum values *are* the URIs that appear in ``ds:SignatureMethod/@Algorithm`` and
``ds:DigestMethod/@Algorithm`` (as in signxml's ``algorithms`` module), so parsing an algorithm is
``SignatureMethod(uri)`` and a URI outside the profile raises ``ValueError`` at that point.
Only what the profile allows is listed: no SHA-1, no MD5, no HMAC, no DSA.
"""

from __future__ import annotations

from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from signing.errors import ConfigurationError


class KeyAlgorithm(StrEnum):
    """The key family a signature method needs."""

    RSA = "RSA"
    EC = "EC"


class DigestMethod(StrEnum):
    """``ds:DigestMethod`` algorithms allowed by the profile."""

    SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
    SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
    SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"

    def hash_algorithm(self) -> hashes.HashAlgorithm:
        """A fresh ``cryptography`` hash object for this digest."""
        return _HASHES[self]()

    @property
    def digest_size(self) -> int:
        return self.hash_algorithm().digest_size


class SignatureMethod(StrEnum):
    """``ds:SignatureMethod`` algorithms allowed by the profile (RFC 6931 / RFC 9231 URIs)."""

    RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
    RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
    RSA_PSS_SHA256 = "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"
    RSA_PSS_SHA384 = "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1"
    RSA_PSS_SHA512 = "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1"
    ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
    ECDSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
    ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"

    @property
    def digest(self) -> DigestMethod:
        """The digest this signature method hashes the signed data with."""
        return _SIGNATURE_DIGEST[self]

    def hash_algorithm(self) -> hashes.HashAlgorithm:
        """A fresh ``cryptography`` hash object for this method's digest."""
        return self.digest.hash_algorithm()

    @property
    def key_algorithm(self) -> KeyAlgorithm:
        return KeyAlgorithm.EC if self.name.startswith("ECDSA_") else KeyAlgorithm.RSA

    @property
    def is_pss(self) -> bool:
        return self.name.startswith("RSA_PSS_")

    def rsa_padding(self) -> padding.AsymmetricPadding:
        """The RSA padding of this method.

        PSS uses MGF1 with the same hash and a salt as long as the digest: what RFC 9231 §2.3.10
        defines for these URIs without explicit ``RSAPSSParams`` and what signxml and xmlsec1 use.
        """
        if self.key_algorithm is not KeyAlgorithm.RSA:
            raise ConfigurationError(f"{self.name} is not an RSA signature method")
        if self.is_pss:
            hash_alg = self.hash_algorithm()
            return padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
        return padding.PKCS1v15()


_HASHES: dict[DigestMethod, type[hashes.HashAlgorithm]] = {
    DigestMethod.SHA256: hashes.SHA256,
    DigestMethod.SHA384: hashes.SHA384,
    DigestMethod.SHA512: hashes.SHA512,
}

_SIGNATURE_DIGEST: dict[SignatureMethod, DigestMethod] = {
    SignatureMethod.RSA_SHA256: DigestMethod.SHA256,
    SignatureMethod.RSA_SHA384: DigestMethod.SHA384,
    SignatureMethod.RSA_SHA512: DigestMethod.SHA512,
    SignatureMethod.RSA_PSS_SHA256: DigestMethod.SHA256,
    SignatureMethod.RSA_PSS_SHA384: DigestMethod.SHA384,
    SignatureMethod.RSA_PSS_SHA512: DigestMethod.SHA512,
    SignatureMethod.ECDSA_SHA256: DigestMethod.SHA256,
    SignatureMethod.ECDSA_SHA384: DigestMethod.SHA384,
    SignatureMethod.ECDSA_SHA512: DigestMethod.SHA512,
}

#: The curves the profile accepts, by ``cryptography`` curve name, with their natural hash.
ALLOWED_CURVES: dict[str, SignatureMethod] = {
    "secp256r1": SignatureMethod.ECDSA_SHA256,
    "secp384r1": SignatureMethod.ECDSA_SHA384,
    "secp521r1": SignatureMethod.ECDSA_SHA512,
}


def hash_for(method: SignatureMethod | DigestMethod) -> hashes.HashAlgorithm:
    """The ``cryptography`` hash object of a signature or digest method."""
    return method.hash_algorithm()


def method_for(
    key_algorithm: KeyAlgorithm, digest: DigestMethod, *, pss: bool = False
) -> SignatureMethod:
    """The signature method combining a key family and a digest (PSS only for RSA)."""
    if key_algorithm is KeyAlgorithm.EC:
        if pss:
            raise ConfigurationError("PSS is an RSA padding; it does not apply to EC keys")
        prefix = "ECDSA_"
    else:
        prefix = "RSA_PSS_" if pss else "RSA_"
    return SignatureMethod[prefix + digest.name]


def key_algorithm_of(public_key: object) -> KeyAlgorithm:
    """The key family of a ``cryptography`` public (or private) key; others are refused."""
    if isinstance(public_key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return KeyAlgorithm.RSA
    if isinstance(public_key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return KeyAlgorithm.EC
    raise ConfigurationError(f"unsupported key type {type(public_key).__name__} (RSA or EC only)")


def default_method_for(public_key: object) -> SignatureMethod:
    """The signature method we use for a key: RSA-SHA256, or ECDSA with the curve's own hash."""
    if key_algorithm_of(public_key) is KeyAlgorithm.RSA:
        return SignatureMethod.RSA_SHA256
    assert isinstance(public_key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey)
    try:
        return ALLOWED_CURVES[public_key.curve.name]
    except KeyError:
        raise ConfigurationError(f"EC curve {public_key.curve.name} is not allowed") from None


def check_method_fits_key(method: SignatureMethod, public_key: object) -> None:
    """Refuse a signature method that cannot be made with this key (RSA method on an EC key...)."""
    family = key_algorithm_of(public_key)
    if method.key_algorithm is not family:
        raise ConfigurationError(f"{method.name} cannot be made with an {family.value} key")


def ecdsa_der_to_raw(der_signature: bytes, key_size_bits: int) -> bytes:
    """DER ``ECDSA-Sig-Value`` (what OpenSSL/cryptography produce) → XML-DSig's ``r || s``.

    Each integer is left-padded to the curve's byte length (66 bytes for P-521), RFC 4050 /
    XML-DSig 1.1 §6.4.3.
    """
    r, s = decode_dss_signature(der_signature)
    size = (key_size_bits + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def ecdsa_raw_to_der(raw_signature: bytes) -> bytes:
    """XML-DSig's ``r || s`` (what PKCS#11 ``CKM_ECDSA`` returns) → DER ``ECDSA-Sig-Value``."""
    if not raw_signature or len(raw_signature) % 2:
        raise ValueError("a raw ECDSA signature has two halves of equal length")
    half = len(raw_signature) // 2
    return encode_dss_signature(
        int.from_bytes(raw_signature[:half], "big"), int.from_bytes(raw_signature[half:], "big")
    )
