"""The signing key of the person who runs ``dsmf-client``: an e-imza card over PKCS#11, or a key
file, with every card problem turned into one clear sentence (no traceback).

The PIN is asked once per run (``getpass``: never echoed) or taken from ``DSMF_PKCS11_PIN`` for
unattended runs; it lives only inside :class:`signing.pkcs11.Pkcs11Signer`, which keeps it out
of ``repr()``, logs and error text. The card is opened and its certificate read before anything
is sent, so a wrong PIN, a locked card, a missing token or an expired certificate stops the run
at its start.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from gateway.client.errors import CardError, TrustError
from gateway.client.messages import text
from gateway.client.wsse import GatewayIdentity
from signing.errors import (
    ConfigurationError,
    KeyAccessError,
    KeyNotFound,
    PinIncorrect,
    PinLocked,
    SigningError,
    TokenNotFound,
)
from signing.signer import Signer
from signing.trust import TrustStore

PIN_ENV = "DSMF_PKCS11_PIN"
KEY_PASSWORD_ENV = "DSMF_KEY_PASSWORD"  # noqa: S105 - the name of a variable


@dataclass(frozen=True)
class CardSettings:
    """Where the signing key is: a PKCS#11 token (module, token label, key label) or files."""

    pkcs11_module: str | None = None
    token_label: str | None = None
    key_label: str | None = None
    key_file: Path | None = None
    cert_file: Path | None = None
    chain_files: tuple[Path, ...] = ()


def open_signer(settings: CardSettings, *, now: datetime | None = None) -> Signer:
    """The signer, opened and checked: the card is logged in and the certificate is valid now."""
    try:
        signer = _open(settings)
        certificate = signer.certificate  # logs in to the card: PIN problems surface here
    except SigningError as exc:
        if not settings.pkcs11_module and settings.key_file:
            raise CardError(text("card.key_file", detail=exc.message)) from exc
        raise card_error(exc) from exc
    moment = now or datetime.now(UTC)
    if certificate.not_valid_after_utc < moment:
        raise CardError(text("card.expired", date=f"{certificate.not_valid_after_utc:%Y-%m-%d}"))
    if certificate.not_valid_before_utc > moment:
        raise CardError(text("card.not_yet_valid",
                             date=f"{certificate.not_valid_before_utc:%Y-%m-%d}"))
    return signer


def _open(settings: CardSettings) -> Signer:
    if settings.pkcs11_module:
        from signing.pkcs11 import Pkcs11Config, Pkcs11Signer

        config = Pkcs11Config(
            module_path=settings.pkcs11_module, token_label=settings.token_label,
            token_serial=None, key_label=settings.key_label or "", pin_env=PIN_ENV,
        )
        return Pkcs11Signer(config, pin=_pin(config.describe()))
    if settings.key_file and settings.cert_file:
        from signing.software import SoftwareSigner

        password = os.environ.get(KEY_PASSWORD_ENV)
        return SoftwareSigner.from_pem(
            settings.key_file, settings.cert_file, settings.chain_files,
            password=password.encode() if password else None,
        )
    raise CardError(text("card.none"))


def _pin(describe: str) -> str | None:
    """The PIN from the environment, else asked once without echo; None lets the signer refuse
    with its own "no PIN" error when there is no terminal to ask on."""
    from_env = os.environ.get(PIN_ENV)
    if from_env:
        return from_env
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            return getpass.getpass(f"PIN ({describe}): ")
        except (EOFError, KeyboardInterrupt):
            raise CardError(text("card.no_pin")) from None
    raise CardError(text("card.no_pin"))


def card_error(exc: SigningError) -> CardError:
    """One sentence per card problem. The signing library's messages never carry the PIN."""
    detail = exc.message
    if isinstance(exc, PinIncorrect):
        return CardError(text("card.pin_incorrect"))
    if isinstance(exc, PinLocked):
        return CardError(text("card.pin_locked"))
    if isinstance(exc, TokenNotFound):
        return CardError(text("card.no_token", detail=detail))
    if isinstance(exc, KeyNotFound):
        return CardError(text("card.no_key", detail=detail))
    if isinstance(exc, ConfigurationError):
        return CardError(text("card.module", detail=detail))
    if isinstance(exc, KeyAccessError) and "PIN" in detail:
        return CardError(text("card.no_pin"))
    return CardError(text("card.error", detail=detail))


def load_gateway_identity(certificate: Path | None, organization_id: str | None
                          ) -> GatewayIdentity:
    """Who alone may sign the gateway's answers: its pinned certificate, or its
    organizationIdentifier (which survives a renewal of the gateway's key)."""
    if certificate is not None:
        try:
            pem = certificate.read_bytes()
            return GatewayIdentity.pinned(x509.load_pem_x509_certificate(pem))
        except (OSError, ValueError) as exc:
            raise TrustError(text("trust.gateway_unreadable", detail=exc)) from exc
    if organization_id:
        return GatewayIdentity(organization_identifier=organization_id.strip())
    raise TrustError(text("trust.gateway_none"))


def load_trust(anchors: list[Path], crls: list[Path]) -> TrustStore:
    """The trust list the gateway's answers are verified against (never the system store)."""
    if not anchors:
        raise TrustError(text("trust.none"))
    try:
        return TrustStore.from_paths(anchors, crls, require_crl=bool(crls))
    except (SigningError, OSError) as exc:
        raise TrustError(text("trust.unreadable", detail=exc)) from exc
