"""Errors of the signing library.

Every error carries a ``code``: the SOAP fault code the gateway answers with, so the mapping to
faults is one table lookup and each refusal is distinguishable by a client (and by a test).

    SigningError                        -- root; nothing else leaves this package
    ├── KeyAccessError                  -- a key could not be used
    │   ├── TokenNotFound               -- no PKCS#11 token with that label/serial
    │   ├── KeyNotFound                 -- no key/certificate with that label on the token
    │   ├── PinIncorrect                -- wrong PIN (the card counts down)
    │   ├── PinLocked                   -- PIN blocked: only the PUK/issuer can unlock
    │   └── TokenError                  -- any other PKCS#11 failure, translated
    ├── SignatureCreationError          -- signing itself failed (remote signer refused, ...)
    │   └── RemoteSignerRefused         -- a remote (mobile) signer answered with a refusal
    ├── ConfigurationError              -- bad key/trust configuration
    └── VerificationError               -- a message or signature is refused
        ├── XmlError                    -- the bytes are not acceptable XML
        │   ├── XmlMalformed            -- Client.Xml.Malformed
        │   ├── XmlForbidden            -- Client.Xml.Forbidden (DTD, entities, PIs)
        │   ├── XmlTooLarge             -- Client.Xml.TooLarge
        │   └── XmlTooDeep              -- Client.Xml.TooDeep
        ├── SignatureMissing            -- Client.Signature.Missing
        ├── SecurityHeaderMalformed     -- Client.Signature.Malformed
        │   └── TokenLimitExceeded      -- Client.Signature.TokenLimit (too many / too large
        │                                  BinarySecurityTokens, refused before any parsing)
        ├── SignatureWrapping           -- Client.Signature.Wrapping
        ├── AlgorithmNotAllowed         -- Client.Signature.Algorithm (SHA-1, MD5, HMAC, ...)
        ├── TransformNotAllowed         -- Client.Signature.Transform (XSLT, XPath, Manifest, ...)
        ├── SignatureInvalid            -- Client.Signature.Invalid (digest or value mismatch)
        ├── TimestampExpired            -- Client.Signature.Expired
        ├── TimestampInFuture           -- Client.Signature.Future
        ├── ReplayDetected              -- Client.Signature.Replay
        └── CertificateError            -- the signer's certificate is refused
            ├── CertificateUntrusted    -- Client.Certificate.Untrusted (no path to the trust list)
            ├── CertificateExpired      -- Client.Certificate.Expired
            ├── CertificateNotYetValid  -- Client.Certificate.NotYetValid
            ├── CertificateRevoked      -- Client.Certificate.Revoked
            ├── RevocationUnknown       -- Client.Certificate.RevocationUnknown (no fresh CRL)
            │   └── RevocationSourceUnusable -- Client.Certificate.RevocationUnusable (a CRL with
            │                                   an unprocessable critical extension, RFC 5280)
            ├── KeyUsageNotAllowed      -- Client.Certificate.KeyUsage
            └── WeakKey                 -- Client.Certificate.WeakKey (RSA < 2048, ...)
"""

from __future__ import annotations


class SigningError(Exception):
    """Root of every error raised by :mod:`signing`."""

    code: str = "Server.Signing"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Named values for a user-facing text (a caller's message catalogue may use them).
        self.params: dict[str, object] = {}
        if code is not None:
            self.code = code


class KeyAccessError(SigningError):
    code = "Server.Signing.KeyAccess"


class TokenNotFound(KeyAccessError):
    code = "Server.Signing.TokenNotFound"


class KeyNotFound(KeyAccessError):
    code = "Server.Signing.KeyNotFound"


class PinIncorrect(KeyAccessError):
    code = "Client.Signing.PinIncorrect"


class PinLocked(KeyAccessError):
    code = "Client.Signing.PinLocked"


class TokenError(KeyAccessError):
    code = "Server.Signing.Token"


class SignatureCreationError(SigningError):
    code = "Server.Signing.Failed"


class RemoteSignerRefused(SignatureCreationError):
    """A remote signer (mobile signature service) refused; ``reason`` is its status name."""

    code = "Client.MobileSignature.Refused"

    def __init__(self, message: str, *, reason: str, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.reason = reason


class ConfigurationError(SigningError):
    code = "Server.Configuration"


class VerificationError(SigningError, ValueError):
    """A message, signature or certificate is refused. Also a ValueError, like signxml's."""

    code = "Client.Signature"


class XmlError(VerificationError):
    code = "Client.Xml"


class XmlMalformed(XmlError):
    code = "Client.Xml.Malformed"


class XmlForbidden(XmlError):
    code = "Client.Xml.Forbidden"


class XmlTooLarge(XmlError):
    code = "Client.Xml.TooLarge"


class XmlTooDeep(XmlError):
    code = "Client.Xml.TooDeep"


class SignatureMissing(VerificationError):
    code = "Client.Signature.Missing"


class SecurityHeaderMalformed(VerificationError):
    code = "Client.Signature.Malformed"


class TokenLimitExceeded(SecurityHeaderMalformed):
    code = "Client.Signature.TokenLimit"


class SignatureWrapping(VerificationError):
    code = "Client.Signature.Wrapping"


class AlgorithmNotAllowed(VerificationError):
    code = "Client.Signature.Algorithm"


class TransformNotAllowed(VerificationError):
    code = "Client.Signature.Transform"


class SignatureInvalid(VerificationError):
    code = "Client.Signature.Invalid"


class TimestampExpired(VerificationError):
    code = "Client.Signature.Expired"


class TimestampInFuture(VerificationError):
    code = "Client.Signature.Future"


class ReplayDetected(VerificationError):
    code = "Client.Signature.Replay"


class CertificateError(VerificationError):
    code = "Client.Certificate"


class CertificateUntrusted(CertificateError):
    code = "Client.Certificate.Untrusted"


class CertificateExpired(CertificateError):
    code = "Client.Certificate.Expired"


class CertificateNotYetValid(CertificateError):
    code = "Client.Certificate.NotYetValid"


class CertificateRevoked(CertificateError):
    code = "Client.Certificate.Revoked"


class RevocationUnknown(CertificateError):
    code = "Client.Certificate.RevocationUnknown"


class RevocationSourceUnusable(RevocationUnknown):
    """The revocation data exists but may not be used (RFC 5280 §5.2: a CRL carrying a critical
    extension we cannot process), so the status is unknown: refused, with a code that tells the
    operator to look at the CA's CRL rather than at the caller."""

    code = "Client.Certificate.RevocationUnusable"


class KeyUsageNotAllowed(CertificateError):
    code = "Client.Certificate.KeyUsage"


class WeakKey(CertificateError):
    code = "Client.Certificate.WeakKey"
