"""A :class:`~signing.signer.Signer` over a private key held in memory (PEM or PKCS#12 file).

For the gateway's own response key when no HSM is configured, for the test PKI and for tools.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from signing.algorithms import (
    KeyAlgorithm,
    SignatureMethod,
    check_method_fits_key,
    ecdsa_der_to_raw,
    key_algorithm_of,
)
from signing.errors import ConfigurationError, KeyAccessError, SignatureCreationError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class SoftwareSigner:
    """Signs with an RSA or EC private key object from ``cryptography``."""

    def __init__(
        self,
        private_key: PrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
    ) -> None:
        if not isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ConfigurationError(
                f"unsupported private key type {type(private_key).__name__} (RSA or EC only)"
            )
        if private_key.public_key() != certificate.public_key():
            raise ConfigurationError(
                "the private key does not belong to the certificate "
                f"{certificate.subject.rfc4514_string()}"
            )
        self._key = private_key
        self._certificate = certificate
        self._chain = tuple(chain)

    # --- constructors ---------------------------------------------------------------------------

    @classmethod
    def from_pem(
        cls,
        key_path: str | Path,
        cert_path: str | Path,
        chain_paths: Sequence[str | Path] = (),
        password: bytes | None = None,
    ) -> SoftwareSigner:
        """Load a PEM (or DER) private key, its PEM certificate and PEM CA certificates."""
        key_bytes = _read(key_path, "private key")
        try:
            if key_bytes.lstrip().startswith(b"-----"):
                key = serialization.load_pem_private_key(key_bytes, password=password)
            else:
                key = serialization.load_der_private_key(key_bytes, password=password)
        except TypeError as exc:
            # cryptography: "Password was not given but private key is encrypted" and v.v.
            raise KeyAccessError(f"private key {Path(key_path).name}: {exc}") from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyAccessError(
                f"private key {Path(key_path).name} cannot be loaded (wrong password or not a key)"
            ) from exc
        certificate = _load_certificates(cert_path)[0]
        chain = [c for path in chain_paths for c in _load_certificates(path)]
        return cls(_check_key_type(key), certificate, chain)

    @classmethod
    def from_pkcs12(cls, path: str | Path, password: bytes | None) -> SoftwareSigner:
        """Load a PKCS#12 (.p12/.pfx) bundle: key, certificate and any CA certificates in it."""
        data = _read(path, "PKCS#12 file")
        try:
            bundle = pkcs12.load_pkcs12(data, password)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyAccessError(
                f"PKCS#12 file {Path(path).name} cannot be opened (wrong password or corrupt)"
            ) from exc
        if bundle.key is None or bundle.cert is None:
            raise ConfigurationError(f"PKCS#12 file {Path(path).name} lacks a key or certificate")
        chain = [c.certificate for c in bundle.additional_certs]
        return cls(_check_key_type(bundle.key), bundle.cert.certificate, chain)

    # --- Signer -----------------------------------------------------------------------------------

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def chain(self) -> Sequence[x509.Certificate]:
        return self._chain

    def public_key(self) -> CertificatePublicKeyTypes:
        return self._certificate.public_key()

    def sign(self, data: bytes, method: SignatureMethod) -> bytes:
        method = SignatureMethod(method)
        check_method_fits_key(method, self._key)
        try:
            if isinstance(self._key, rsa.RSAPrivateKey):
                return self._key.sign(data, method.rsa_padding(), method.hash_algorithm())
            der = self._key.sign(data, ec.ECDSA(method.hash_algorithm()))
            return ecdsa_der_to_raw(der, self._key.curve.key_size)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SignatureCreationError(f"{method.name} signing failed: {exc}") from exc

    @property
    def key_algorithm(self) -> KeyAlgorithm:
        return key_algorithm_of(self._key)

    def __repr__(self) -> str:
        return f"SoftwareSigner(subject={self._certificate.subject.rfc4514_string()!r})"


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror}") from exc


def _load_certificates(path: str | Path) -> list[x509.Certificate]:
    data = _read(path, "certificate file")
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise ConfigurationError(f"{Path(path).name} holds no readable certificate") from exc
    return certs


def _check_key_type(key: object) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key
    raise ConfigurationError(f"unsupported private key type {type(key).__name__} (RSA or EC only)")
