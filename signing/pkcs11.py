"""A :class:`~signing.signer.Signer` on a PKCS#11 token: an e-imza smart card, an HSM, SoftHSM2.

The only module that imports python-pkcs11. Design (after pyHanko's ``PKCS11Signer`` and
python-pkcs11's concurrency notes):

* **One session per token per process**, opened lazily on first use and shared by every
  :class:`Pkcs11Signer` on that token; every operation on it runs under the token's lock, so any
  number of threads can share one card. (PKCS#11 login state is per application and token, not
  per session, so sharing the session loses nothing.) ``close()`` releases it when the last user
  is done. A session is process-bound: create and use signers after a fork (gunicorn workers),
  never in the parent.
* **The PIN** comes from the argument, else the environment variable named by
  ``Pkcs11Config.pin_env``, else an interactive prompt when stdin is a terminal; else
  :class:`~signing.errors.KeyAccessError`. It never appears in logs, ``repr()`` or error text.
* **PKCS#11 errors are translated** at this boundary into :mod:`signing.errors`
  (``raise PinIncorrect(...) from exc``). A session-level failure (card pulled, session closed)
  drops the session; the next call opens a new one.
* **Mechanisms**: RSA PKCS#1 v1.5 with the hash on the token (``CKM_SHA256_RSA_PKCS``...), or, on
  cards without those, the DigestInfo built here and raw ``CKM_RSA_PKCS``; RSA-PSS likewise
  (``CKM_SHA256_RSA_PKCS_PSS`` or ``CKM_RSA_PKCS_PSS`` over our hash; MGF1 with the same hash,
  salt = digest length); ECDSA as ``CKM_ECDSA`` over the hash computed here. PKCS#11 already
  returns ECDSA signatures as raw ``r || s`` -- the XML-DSig format.
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import pkcs11
import pkcs11.exceptions as p11
from asn1crypto.core import OctetString
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from signing.algorithms import DigestMethod, KeyAlgorithm, SignatureMethod, check_method_fits_key
from signing.errors import (
    ConfigurationError,
    KeyAccessError,
    KeyNotFound,
    PinIncorrect,
    PinLocked,
    SignatureCreationError,
    SigningError,
    TokenError,
    TokenNotFound,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pkcs11Config:
    """Where the key is: module, token (by label and/or serial), key label.

    ``cert_path`` is a fallback for tokens that hold the key but not its certificate;
    ``chain_paths`` add issuing CA certificates (CA certificates found on the token are added
    automatically).
    """

    module_path: str
    token_label: str | None
    token_serial: str | None
    key_label: str
    pin_env: str | None = "DSMF_PKCS11_PIN"
    cert_path: str | None = None
    chain_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.module_path:
            raise ConfigurationError("pkcs11 module_path is required")
        if not self.key_label:
            raise ConfigurationError("pkcs11 key_label is required")
        if not self.token_label and not self.token_serial:
            raise ConfigurationError("pkcs11 needs token_label or token_serial")
        if isinstance(self.chain_paths, str):
            raise ConfigurationError("pkcs11 chain_paths must be a list")
        object.__setattr__(self, "chain_paths", tuple(self.chain_paths))

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any]) -> Pkcs11Config:
        """From a configuration mapping; unknown keys are refused (a typo must not silently
        select another token)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ConfigurationError(f"unknown pkcs11 configuration keys: {', '.join(unknown)}")
        for key in ("module_path", "key_label"):
            if key not in mapping:
                raise ConfigurationError(f"pkcs11 {key} is required")
        for key, value in mapping.items():
            if key == "chain_paths":
                if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                    raise ConfigurationError("pkcs11 chain_paths must be a list of paths")
            elif value is not None and not isinstance(value, str):
                raise ConfigurationError(f"pkcs11 {key} must be a string")
        values = dict(mapping)
        values.setdefault("token_label", None)
        values.setdefault("token_serial", None)
        return cls(**values)

    def describe(self) -> str:
        token = self.token_label or ""
        if self.token_serial:
            token += f" (serial {self.token_serial})"
        return f"key {self.key_label!r} on token {token.strip()!r}"


class _Pin:
    """Holds the PIN; prints as a placeholder so it cannot leak through repr or logging."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<PIN hidden>"

    __str__ = __repr__


def _resolve_pin(config: Pkcs11Config, pin: str | None) -> _Pin:
    if pin is not None:
        return _Pin(pin)
    if config.pin_env:
        from_env = os.environ.get(config.pin_env)
        if from_env:
            return _Pin(from_env)
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            return _Pin(getpass.getpass(f"PIN for {config.describe()}: "))
        except (EOFError, KeyboardInterrupt) as exc:
            raise KeyAccessError("no PIN entered") from exc
    where = f" or set {config.pin_env}" if config.pin_env else ""
    raise KeyAccessError(f"no PIN for {config.describe()}: pass one{where}")


# --------------------------------------------------------------------------------------------
# one shared session per token
# --------------------------------------------------------------------------------------------

_TokenKey = tuple[str, str | None, str | None]

#: Failures after which the session cannot be trusted any more: reopen on next use.
_SESSION_LOST = (
    p11.SessionClosed,
    p11.SessionHandleInvalid,
    p11.DeviceRemoved,
    p11.TokenNotPresent,
    p11.DeviceError,
    p11.UserNotLoggedIn,
    p11.KeyHandleInvalid,
    p11.ObjectHandleInvalid,
)


class _TokenSession:
    """A lazily opened, logged-in session on one token, shared and lock-protected."""

    def __init__(self, key: _TokenKey) -> None:
        self.key = key
        self.lock = threading.RLock()
        self.users = 0
        self.generation = 0  # bumped on every (re)open: cached object handles are per session
        self._session: pkcs11.Session | None = None
        self._mechanisms: frozenset[Mechanism] | None = None

    def session(self, pin: _Pin, describe: str) -> pkcs11.Session:
        """The open session (opening and logging in if needed). Call under ``lock``."""
        if self._session is not None:
            return self._session
        module_path, label, serial = self.key
        try:
            lib = pkcs11.lib(module_path)
        except p11.PKCS11Error as exc:
            raise ConfigurationError(f"cannot load PKCS#11 module {module_path}") from exc
        token = _call(lambda: lib.get_token(
            token_label=label, token_serial=serial.encode() if serial else None
        ), describe)
        try:
            session = token.open(rw=False, user_pin=pin.reveal())
        except p11.UserAlreadyLoggedIn:
            # Another session of this process is logged in (login is per application):
            # a fresh session shares that login.
            session = _call(lambda: token.open(rw=False), describe)
        except p11.PKCS11Error as exc:
            raise _translate(exc, describe) from exc
        try:
            self._mechanisms = frozenset(
                m for m in token.slot.get_mechanisms() if isinstance(m, Mechanism)
            )
        except p11.PKCS11Error:
            self._mechanisms = frozenset()
        self._session = session
        self.generation += 1
        return session

    @property
    def mechanisms(self) -> frozenset[Mechanism]:
        return self._mechanisms or frozenset()

    def drop(self) -> None:
        """Forget the session (after a session-level failure, or on close)."""
        session, self._session = self._session, None
        if session is not None:
            try:
                session.close()
            except p11.PKCS11Error:
                log.debug("closing a broken PKCS#11 session failed", exc_info=True)


_registry: dict[_TokenKey, _TokenSession] = {}
_registry_lock = threading.Lock()


def _acquire(key: _TokenKey) -> _TokenSession:
    with _registry_lock:
        shared = _registry.get(key)
        if shared is None:
            shared = _registry[key] = _TokenSession(key)
        shared.users += 1
        return shared


def _release(shared: _TokenSession) -> None:
    with _registry_lock:
        shared.users -= 1
        if shared.users > 0:
            return
        if _registry.get(shared.key) is shared:
            del _registry[shared.key]
    with shared.lock:
        shared.drop()


# --------------------------------------------------------------------------------------------
# the signer
# --------------------------------------------------------------------------------------------

_HASH_MECHANISM = {
    DigestMethod.SHA256: Mechanism.SHA256,
    DigestMethod.SHA384: Mechanism.SHA384,
    DigestMethod.SHA512: Mechanism.SHA512,
}
_MGF = {
    DigestMethod.SHA256: pkcs11.MGF.SHA256,
    DigestMethod.SHA384: pkcs11.MGF.SHA384,
    DigestMethod.SHA512: pkcs11.MGF.SHA512,
}
_RSA_PKCS_WITH_HASH = {
    DigestMethod.SHA256: Mechanism.SHA256_RSA_PKCS,
    DigestMethod.SHA384: Mechanism.SHA384_RSA_PKCS,
    DigestMethod.SHA512: Mechanism.SHA512_RSA_PKCS,
}
_RSA_PSS_WITH_HASH = {
    DigestMethod.SHA256: Mechanism.SHA256_RSA_PKCS_PSS,
    DigestMethod.SHA384: Mechanism.SHA384_RSA_PKCS_PSS,
    DigestMethod.SHA512: Mechanism.SHA512_RSA_PKCS_PSS,
}
#: DER DigestInfo prefixes (RFC 8017 §9.2 note 1), for cards that only do raw CKM_RSA_PKCS.
_DIGEST_INFO_PREFIX = {
    DigestMethod.SHA256: bytes.fromhex("3031300d060960864801650304020105000420"),
    DigestMethod.SHA384: bytes.fromhex("3041300d060960864801650304020205000430"),
    DigestMethod.SHA512: bytes.fromhex("3051300d060960864801650304020305000440"),
}


class Pkcs11Signer:
    """Signs with a private key on a PKCS#11 token. Thread-safe; see the module docstring."""

    def __init__(self, config: Pkcs11Config, pin: str | None = None) -> None:
        self._config = config
        self.__pin = _resolve_pin(config, pin)
        self._describe = config.describe()
        self._shared: _TokenSession | None = _acquire(
            (config.module_path, config.token_label, config.token_serial)
        )
        self._key: pkcs11.SignMixin | None = None
        self._key_generation = -1
        self._key_type: KeyType | None = None
        self._certificate: x509.Certificate | None = None
        self._chain: tuple[x509.Certificate, ...] = ()

    # --- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Release this signer's hold on the token session (closed when nobody else uses it)."""
        shared, self._shared = self._shared, None
        if shared is not None:
            _release(shared)

    def __enter__(self) -> Pkcs11Signer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        token = self._config.token_label or self._config.token_serial
        state = "closed" if self._shared is None else "open"
        return (f"Pkcs11Signer(module={Path(self._config.module_path).name!r}, "
                f"token={token!r}, key={self._config.key_label!r}, {state})")

    __str__ = __repr__

    @property
    def config(self) -> Pkcs11Config:
        return self._config

    # --- Signer -----------------------------------------------------------------------------------

    @property
    def certificate(self) -> x509.Certificate:
        if self._certificate is None:
            self._with_session(lambda session: self._load_key(session))
        assert self._certificate is not None
        return self._certificate

    @property
    def chain(self) -> Sequence[x509.Certificate]:
        if self._certificate is None:
            _ = self.certificate
        return self._chain

    def public_key(self) -> CertificatePublicKeyTypes:
        return self.certificate.public_key()

    def sign(self, data: bytes, method: SignatureMethod) -> bytes:
        method = SignatureMethod(method)
        check_method_fits_key(method, self.public_key())

        def operation(session: pkcs11.Session) -> bytes:
            key = self._load_key(session)
            assert self._shared is not None
            mechanism, param, payload = _plan(method, data, self._shared.mechanisms)
            return key.sign(payload, mechanism=mechanism, mechanism_param=param)

        signature = self._with_session(operation)
        if method.key_algorithm is KeyAlgorithm.EC:
            key = self.public_key()
            assert isinstance(key, ec.EllipticCurvePublicKey)
            expected = 2 * ((key.curve.key_size + 7) // 8)
            if len(signature) != expected:
                raise SignatureCreationError(
                    f"token returned a {len(signature)}-byte ECDSA signature, "
                    f"expected {expected} (r || s)"
                )
        return signature

    # --- internals --------------------------------------------------------------------------------

    def _with_session(self, operation: Callable[[pkcs11.Session], T]) -> T:
        shared = self._shared
        if shared is None:
            raise KeyAccessError(f"{self._describe}: the signer is closed")
        with shared.lock:
            session = shared.session(self.__pin, self._describe)
            try:
                return operation(session)
            except SigningError:
                raise
            except _SESSION_LOST as exc:
                shared.drop()
                raise _translate(exc, self._describe) from exc
            except p11.PKCS11Error as exc:
                raise _translate(exc, self._describe) from exc

    def _load_key(self, session: pkcs11.Session) -> pkcs11.SignMixin:
        """Find the private key (and, the first time, its certificate). Under the lock."""
        assert self._shared is not None
        if self._key is not None and self._key_generation == self._shared.generation:
            return self._key
        label = self._config.key_label
        try:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        except p11.NoSuchKey as exc:
            raise KeyNotFound(f"no private key labelled {label!r} on the token") from exc
        except p11.MultipleObjectsReturned as exc:
            raise ConfigurationError(
                f"more than one private key labelled {label!r}: label them uniquely"
            ) from exc
        if not isinstance(key, pkcs11.PrivateKey) or not isinstance(key, pkcs11.SignMixin):
            raise KeyNotFound(f"the object labelled {label!r} is not a signing key")
        self._key_type = key.key_type
        if self._certificate is None:
            self._certificate, self._chain = self._load_certificates(session, key)
        self._check_key_matches(key)
        self._key, self._key_generation = key, self._shared.generation
        return key

    def _load_certificates(
        self, session: pkcs11.Session, key: pkcs11.PrivateKey
    ) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
        on_token = [
            x509.load_der_x509_certificate(obj[Attribute.VALUE])
            for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE})
        ]
        by_label = [
            x509.load_der_x509_certificate(obj[Attribute.VALUE])
            for obj in session.get_objects({
                Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: self._config.key_label,
            })
        ]
        candidates = by_label
        if not candidates:
            try:
                key_id = key[Attribute.ID]
            except p11.PKCS11Error:
                key_id = b""
            if key_id:
                candidates = [
                    x509.load_der_x509_certificate(obj[Attribute.VALUE])
                    for obj in session.get_objects({
                        Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: key_id,
                    })
                ]
        if not candidates and self._config.cert_path:
            candidates = _load_pem_certificates(self._config.cert_path)[:1]
        if not candidates:
            raise KeyNotFound(f"no certificate for {self._describe} (token or cert_path)")
        matching = [c for c in candidates if _same_key(c, key)]
        if not matching:
            raise ConfigurationError(f"the certificate of {self._describe} is not its key's")
        certificate = matching[0]
        extra = [c for p in self._config.chain_paths for c in _load_pem_certificates(p)]
        return certificate, _chain_for(certificate, on_token + extra)

    def _check_key_matches(self, key: pkcs11.PrivateKey) -> None:
        assert self._certificate is not None
        if not _same_key(self._certificate, key):
            raise ConfigurationError(f"the certificate of {self._describe} is not its key's")


def _plan(
    method: SignatureMethod, data: bytes, available: frozenset[Mechanism]
) -> tuple[Mechanism, Any, bytes]:
    """Mechanism, its parameter and the bytes to hand the token for ``method`` over ``data``.

    Prefers hash-and-sign mechanisms on the token; falls back to hashing here when the token
    lists only the raw ones (``available`` empty = unknown: assume the hash-and-sign ones).
    """
    digest = method.digest
    if method.key_algorithm is KeyAlgorithm.EC:
        return Mechanism.ECDSA, None, _hash(method.hash_algorithm(), data)
    if method.is_pss:
        param = (_HASH_MECHANISM[digest], _MGF[digest], digest.digest_size)
        combined = _RSA_PSS_WITH_HASH[digest]
        if not available or combined in available or Mechanism.RSA_PKCS_PSS not in available:
            return combined, param, data
        return Mechanism.RSA_PKCS_PSS, param, _hash(method.hash_algorithm(), data)
    combined = _RSA_PKCS_WITH_HASH[digest]
    if not available or combined in available or Mechanism.RSA_PKCS not in available:
        return combined, None, data
    digest_info = _DIGEST_INFO_PREFIX[digest] + _hash(method.hash_algorithm(), data)
    return Mechanism.RSA_PKCS, None, digest_info


def _hash(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _same_key(certificate: x509.Certificate, key: pkcs11.PrivateKey) -> bool:
    public = certificate.public_key()
    if key.key_type == KeyType.RSA:
        if not isinstance(public, rsa.RSAPublicKey):
            return False
        try:
            modulus = int.from_bytes(key[Attribute.MODULUS], "big")
        except p11.PKCS11Error:
            return True  # the token will not tell: the signature check downstream will
        return modulus == public.public_numbers().n
    if key.key_type == KeyType.EC:
        if not isinstance(public, ec.EllipticCurvePublicKey):
            return False
        # CKA_EC_POINT lives on the public key object, not the private one.
        point = public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        try:
            stored = [
                obj[Attribute.EC_POINT]
                for obj in key.session.get_objects({
                    Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: key.label,
                })
            ]
        except p11.PKCS11Error:
            return True  # the token will not tell: the signature check downstream will
        if not stored:
            return True
        return any(point in (raw, _unwrap_octet_string(raw)) for raw in stored)
    return False


def _unwrap_octet_string(raw: bytes) -> bytes:
    try:
        return bytes(OctetString.load(raw).native)
    except (ValueError, TypeError):
        return b""


def _chain_for(
    leaf: x509.Certificate, pool: Sequence[x509.Certificate]
) -> tuple[x509.Certificate, ...]:
    chain: list[x509.Certificate] = []
    current = leaf
    for _ in range(8):
        if current.issuer == current.subject:
            break
        issuer = next((c for c in pool if c.subject == current.issuer and c not in chain
                       and c != leaf), None)
        if issuer is None:
            break
        chain.append(issuer)
        current = issuer
    return tuple(chain)


def _load_pem_certificates(path: str) -> list[x509.Certificate]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read certificate {path}: {exc.strerror}") from exc
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise ConfigurationError(f"{path} holds no readable certificate") from exc


def _call(operation: Callable[[], T], describe: str) -> T:
    try:
        return operation()
    except p11.PKCS11Error as exc:
        raise _translate(exc, describe) from exc


def _translate(exc: p11.PKCS11Error, describe: str) -> SigningError:
    """The most specific :mod:`signing.errors` class for a python-pkcs11 error. The message
    names the key and the PKCS#11 error class -- never the PIN."""
    kind = type(exc).__name__
    if isinstance(exc, p11.PinIncorrect):
        return PinIncorrect(f"wrong PIN for {describe}")
    if isinstance(exc, p11.PinLocked):
        return PinLocked(f"the PIN of {describe} is blocked; unblock it with the PUK")
    if isinstance(exc, p11.PinLenRange | p11.PinInvalid):
        return PinIncorrect(f"the PIN for {describe} has an invalid length or characters")
    if isinstance(exc, p11.PinExpired):
        return KeyAccessError(f"the PIN of {describe} has expired and must be changed")
    if isinstance(exc, p11.NoSuchToken | p11.TokenNotPresent | p11.TokenNotRecognised
                  | p11.DeviceRemoved | p11.SlotIDInvalid):
        return TokenNotFound(f"token for {describe} not found ({kind})")
    if isinstance(exc, p11.MultipleTokensReturned):
        return ConfigurationError(f"more than one token matches {describe}: add token_serial")
    if isinstance(exc, p11.NoSuchKey):
        return KeyNotFound(f"{describe} not found")
    if isinstance(exc, p11.MultipleObjectsReturned):
        return ConfigurationError(f"more than one object matches {describe}")
    if isinstance(exc, p11.MechanismInvalid | p11.FunctionNotSupported
                  | p11.KeyTypeInconsistent | p11.MechanismParamInvalid):
        return TokenError(f"the token cannot make this signature with {describe} ({kind})")
    return TokenError(f"PKCS#11 error on {describe}: {kind}")
