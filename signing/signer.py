"""The one signing abstraction: a key that can sign, with the certificate that names it.

Implemented by :class:`signing.software.SoftwareSigner` (a key in memory),
:class:`signing.pkcs11.Pkcs11Signer` (an e-imza card or HSM) and, asynchronously, by
:class:`signing.remote.RemoteSigner` (Asan İmza); :func:`signing.keyadapter.as_private_key` lets
signxml sign with any of the synchronous ones, as pyHanko's ``Signer`` does for its backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from signing.algorithms import SignatureMethod


@runtime_checkable
class Signer(Protocol):
    """A private key and its certificate.

    ``sign`` returns the signature value exactly as ``ds:SignatureValue`` carries it (before
    base64): PKCS#1 v1.5 or PSS bytes for RSA, the raw ``r || s`` concatenation for ECDSA (not
    DER). Errors are :class:`signing.errors.SigningError` subclasses, never third-party ones.
    """

    @property
    def certificate(self) -> x509.Certificate:
        """The signer's own certificate (the one that goes into the BinarySecurityToken)."""
        ...

    @property
    def chain(self) -> Sequence[x509.Certificate]:
        """Issuing CA certificates, nearest first; may be empty."""
        ...

    def sign(self, data: bytes, method: SignatureMethod) -> bytes:
        """Hash ``data`` with ``method``'s digest and sign it."""
        ...

    def public_key(self) -> CertificatePublicKeyTypes:
        """The certificate's public key."""
        ...
