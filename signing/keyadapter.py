"""Expose any :class:`~signing.signer.Signer` as a ``cryptography`` private key, for signxml.

signxml 5.2's ``XMLSigner.sign`` (``signxml/signer.py``) uses the key like this -- and only this:

* RSA:  ``key.sign(signed_info_c14n, padding=PKCS1v15(), algorithm=hash)`` and, for the
  ``...#sha256-rsa-MGF1`` URIs, ``padding=PSS(mgf=MGF1(hash), salt_length=hash.digest_size)``;
* ECDSA: ``key.sign(signed_info_c14n, signature_algorithm=ec.ECDSA(hash))``, then it decodes the
  **DER** result with ``decode_dss_signature`` and re-encodes ``r || s`` padded to
  ``key.key_size`` -- so the adapter must return DER (our signers return raw ``r || s``);
* ``key.public_key()`` (and ``key.curve.name``) only when it writes a ``KeyValue`` -- i.e. when
  no certificate is given or ``always_add_key_value=True``.

It makes no ``isinstance`` check on the key, but other code may (zeep, user code), so the
adapters subclass ``RSAPrivateKey`` / ``EllipticCurvePrivateKey``. Everything that would reveal
or use the private key otherwise (``private_numbers``, ``private_bytes``, ``decrypt``,
``exchange``) raises :class:`~signing.errors.KeyAccessError`: the key may sit on a card.
These objects cannot be handed to ``cryptography``'s own Rust code (e.g. certificate builders).
"""

from __future__ import annotations

from typing import Any, NoReturn

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from signing.algorithms import (
    DigestMethod,
    KeyAlgorithm,
    SignatureMethod,
    ecdsa_raw_to_der,
    method_for,
)
from signing.errors import ConfigurationError, KeyAccessError
from signing.signer import Signer

_DIGEST_BY_NAME = {
    "sha256": DigestMethod.SHA256,
    "sha384": DigestMethod.SHA384,
    "sha512": DigestMethod.SHA512,
}


def as_private_key(signer: Signer) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """A private-key object that signs through ``signer`` (for signxml's ``XMLSigner.sign``)."""
    public = signer.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        return SignerRsaKey(signer, public)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return SignerEcKey(signer, public)
    raise ConfigurationError(f"cannot adapt a {type(public).__name__} signer (RSA or EC only)")


def _digest_of(algorithm: Any) -> DigestMethod:
    if isinstance(algorithm, Prehashed):
        raise ConfigurationError("pre-hashed input is not supported: pass the data to sign")
    name = getattr(algorithm, "name", None)
    try:
        return _DIGEST_BY_NAME[str(name)]
    except KeyError:
        raise ConfigurationError(f"hash {name} is not allowed by the profile") from None


def _no_private_material() -> NoReturn:
    raise KeyAccessError("the private key is held by a signer and cannot be exported or used "
                         "for anything but signing")


class SignerRsaKey(rsa.RSAPrivateKey):
    """An ``RSAPrivateKey`` whose ``sign`` goes to a :class:`~signing.signer.Signer`."""

    def __init__(self, signer: Signer, public: rsa.RSAPublicKey) -> None:
        self.signer = signer
        self._public = public

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        padding: rsa_padding.AsymmetricPadding,
        algorithm: Any,
    ) -> bytes:
        digest = _digest_of(algorithm)
        if isinstance(padding, rsa_padding.PKCS1v15):
            method = method_for(KeyAlgorithm.RSA, digest)
        elif isinstance(padding, rsa_padding.PSS):
            mgf = padding.mgf
            mgf_hash = getattr(mgf, "_algorithm", None)
            salt = getattr(padding, "_salt_length", None)
            if not isinstance(mgf, rsa_padding.MGF1) or getattr(mgf_hash, "name", None) != (
                algorithm.name
            ):
                raise ConfigurationError("RSA-PSS here uses MGF1 with the signature's own hash")
            if salt not in (digest.digest_size, rsa_padding.PSS.DIGEST_LENGTH):
                raise ConfigurationError("RSA-PSS here uses a salt as long as the digest")
            method = method_for(KeyAlgorithm.RSA, digest, pss=True)
        else:
            raise ConfigurationError(f"RSA padding {type(padding).__name__} is not supported")
        return self.signer.sign(bytes(data), method)

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def decrypt(self, ciphertext: bytes, padding: rsa_padding.AsymmetricPadding) -> bytes:
        _no_private_material()

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _no_private_material()

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        _no_private_material()

    def __copy__(self) -> SignerRsaKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SignerRsaKey:
        return self

    def __repr__(self) -> str:
        return f"SignerRsaKey({self.signer!r})"


class SignerEcKey(ec.EllipticCurvePrivateKey):
    """An ``EllipticCurvePrivateKey`` whose ``sign`` goes to a Signer and returns DER."""

    def __init__(self, signer: Signer, public: ec.EllipticCurvePublicKey) -> None:
        self.signer = signer
        self._public = public

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise ConfigurationError("only ECDSA signatures are supported")
        digest = _digest_of(signature_algorithm.algorithm)
        method = SignatureMethod[f"ECDSA_{digest.name}"]
        return ecdsa_raw_to_der(self.signer.sign(bytes(data), method))

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.curve.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def exchange(
        self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey
    ) -> bytes:
        _no_private_material()

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _no_private_material()

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        _no_private_material()

    def __copy__(self) -> SignerEcKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SignerEcKey:
        return self

    def __repr__(self) -> str:
        return f"SignerEcKey({self.signer!r})"


__all__ = ["SignerEcKey", "SignerRsaKey", "as_private_key"]
