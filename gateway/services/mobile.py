"""Asan İmza (manual §1.2): mobile sign-in and mobile signing of applications.

The phone signs a SHA-256 hash; the gateway builds the XML-DSig around it. Both flows sign a
small XML document with an enveloped signature (``signing.wsse.prepare_document_signature``):

* **login** — a challenge document (random nonce, phone, user id, time);
* **signing** — the application document (the draft's data as the insurer will have signed it).

The hash sent to the phone is that of the canonical ``SignedInfo`` (RSA-SHA256, the one profile
of the mobile-signature service), and the 4-digit verification code shown to the caller is
derived from it, so the holder can match screen and phone. The holder's certificate is known only
when the phone answers: ``SignedInfo`` does not cover ``KeyInfo``, and for a document signature it
holds nothing that depends on the certificate but the (fixed) algorithm, so the very same
``SignedInfo`` is rebuilt for the returned certificate, checked to hash to what the phone signed,
and completed — ``KeyInfo`` then names the real certificate. The finished document is verified
like any card signature (``EnvelopeVerifier.verify_document``: certificate path, revocation,
key usage, signature) before anything is trusted.

What a completed transaction does:

* login → a session: a random bearer token returned ONCE (only its SHA-256 is stored), bound to
  the FIN, the insurer it acts for and the role (seal holder or delegate), expiring after
  ``session_ttl``. A session may read and keep drafts; it can never submit without a signature.
* signing → ``RegistrationService.submit`` with the Asan holder as actor (credential = phone);
  the signed application document is stored with the transaction for offline verification.

Every refusal (the phone's, the signature's, the certificate's, authorization) ends the
transaction as REFUSED with its reason; a signing refusal keeps the application as a draft with
the reason recorded (manual §3.1).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from gateway.domain.calendar import business_date
from gateway.domain.errors import (
    Conflict,
    GatewayError,
    NotAuthorized,
    NotFound,
    NotImplementedOperation,
    UpstreamError,
    ValidationFailed,
)
from gateway.domain.mobile import MobileKind, MobileState, MobileTransaction
from gateway.domain.model import (
    Actor,
    Application,
    ApplicationStatus,
    Authority,
    CredentialKind,
)
from gateway.domain.values import Voen
from gateway.services import validation
from gateway.services.authorities import AuthorityService
from gateway.services.authorization import authorize
from gateway.services.mobile_operations import (
    DISPLAY,
    NAMES,
    SEAL_OPERATIONS,
    MobileOperation,
    RegistrationOperation,
    execute,
    operation_document,
    read_operation,
)
from gateway.services.ports import (
    Clock,
    MobileOutstanding,
    MobileRefused,
    MobileSignatureService,
    MobileSigned,
    UnitOfWorkFactory,
)
from gateway.services.registration import RegistrationService
from signing.algorithms import DigestMethod, SignatureMethod
from signing.errors import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    RevocationUnknown,
    SignatureMissing,
    SigningError,
)
from signing.identity import IdentityMapping, extract_identity
from signing.parser import ParserLimits, canonicalize, parse_xml, serialize
from signing.remote import verification_code
from signing.verifier import EnvelopeVerifier
from signing.wsse import PendingSignature, complete_signature, prepare_document_signature

__all__ = [
    "SESSION_ALLOWED_OPERATIONS",
    "MobileKind",
    "MobileProgress",
    "MobileService",
    "MobileStarted",
    "MobileState",
    "MobileTransaction",
]

TNS = "urn:az:dsmf:insured-registration:v1"
LOGIN_DISPLAY = "DSMF: sign in"
SIGNING_DISPLAY = "DSMF: sign application"
#: The mobile-signature service's only profile: RSA PKCS#1 v1.5 over a SHA-256 hash.
METHOD = SignatureMethod.RSA_SHA256

#: What a request with a session and no signature may do: read, and keep drafts.
SESSION_ALLOWED_OPERATIONS = frozenset({
    "GetInsurer", "ListEServices", "ListLocalOffices", "ListAuthorities", "FindPerson",
    "GetInsuredPerson", "SearchApplications", "ExportApplications", "GetApplication",
    "GetNotification", "SaveDraft", "DeleteDraft", "listMethods", "StartMobileSigning",
})

#: Refusal reasons of the contract (MobileSigningRefusalReason); others are INTERNAL_ERROR.
REASONS = frozenset({
    "USER_CANCEL", "EXPIRED_TRANSACTION", "NO_CERT_FOUND", "PIN_BLOCKED", "CARD_BLOCKED",
    "SIGNATURE_MISMATCH", "CERTIFICATE_REVOKED", "CERTIFICATE_EXPIRED", "NOT_AUTHORIZED",
    "INTERNAL_ERROR",
})
_REFUSED_AT_START = frozenset({"NO_CERT_FOUND", "PIN_BLOCKED", "CARD_BLOCKED"})
#: How long a signed transaction may stay unfinished before it is reported as failed.
_COMPLETION_GRACE = timedelta(seconds=60)
_LIMITS = ParserLimits(max_bytes=1_000_000, max_depth=32, max_elements=5_000)


# --- records ---------------------------------------------------------------------------------


class TransactionStore(Protocol):
    """``persistence.stores.MobileStore``: one short transaction per call."""

    def create(self, tx: MobileTransaction) -> None: ...
    def get(self, transaction_id: str) -> MobileTransaction | None: ...
    def update(
        self, tx: MobileTransaction, *, expected_state: MobileState | None = None
    ) -> bool: ...
    def count_open(self, phone: str, now: datetime) -> int: ...


class SessionStore(Protocol):
    """``persistence.stores.SessionStore``: only the token's hash is stored."""

    def create(
        self,
        token: str,
        *,
        fin: str,
        voen: str | None,
        name: str,
        credential: str,
        seal_authority: bool,
        expires_at: datetime,
        role: str | None = None,
        created_at: datetime | None = None,
        certificate: str | None = None,
    ) -> Any: ...

    def get(self, token: str) -> Any: ...

    def revoke(self, token: str, at: datetime | None = None) -> bool: ...


#: Validates a certificate at a moment (``TrustStore.validate``); raises a CertificateError.
CertificateCheck = Callable[[x509.Certificate, datetime], object]


@dataclass(frozen=True, slots=True)
class MobileStarted:
    transaction_id: str
    verification_code: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class MobileProgress:
    """``state``: OUTSTANDING, DONE or REFUSED (the contract's MobileSigningState)."""

    state: str
    reason: str | None = None
    session_token: str | None = None
    session_expires_at: datetime | None = None
    application: Application | None = None
    authority: Authority | None = None


class _Refusal(Exception):
    def __init__(self, reason: str, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason if reason in REASONS else "INTERNAL_ERROR"
        self.detail = detail
        self.code = code


# --- the service -----------------------------------------------------------------------------


class MobileService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        transactions: TransactionStore,
        sessions: SessionStore,
        mobile: MobileSignatureService,
        registration: RegistrationService,
        verifier: EnvelopeVerifier,
        mapping: IdentityMapping,
        clock: Clock,
        *,
        session_ttl: timedelta = timedelta(seconds=1800),
        transaction_ttl: timedelta = timedelta(seconds=120),
        max_open_per_phone: int = 3,
        certificate_check: CertificateCheck | None = None,
        authorities: AuthorityService | None = None,
    ) -> None:
        self.authorities = authorities
        self.uow = uow
        self.certificate_check = certificate_check
        self.transactions = transactions
        self.sessions = sessions
        self.mobile = mobile
        self.registration = registration
        self.verifier = verifier
        self.mapping = mapping
        self.clock = clock
        self.session_ttl = session_ttl
        self.transaction_ttl = transaction_ttl
        self.max_open_per_phone = max_open_per_phone

    # -- StartMobileLogin ------------------------------------------------------------------

    def start_login(self, phone: str, user_id: str, voen: str | None = None) -> MobileStarted:
        phone = validation.mobile_number(phone, "phone")
        user_id = _user_id(user_id)
        voen = Voen.parse(voen).value if voen else None
        now = self.clock()
        doc = etree.Element(f"{{{TNS}}}MobileLogin", nsmap={"dsmf": TNS})
        _text(doc, "nonce", secrets.token_hex(16))
        _text(doc, "phone", phone)
        _text(doc, "userId", user_id)
        if voen:
            _text(doc, "voen", voen)
        _text(doc, "requestedAt", _iso(now))
        return self._start(MobileKind.LOGIN, doc, phone, user_id, voen, None, LOGIN_DISPLAY)

    # -- StartMobileSigning ----------------------------------------------------------------

    def start_signing(
        self, actor: Actor | None, voen: str, application_id: str, phone: str, user_id: str
    ) -> MobileStarted:
        """Sends the draft to the phone. The caller must be authenticated (a card signature or
        an Asan session) and may act for the insurer, so that neither the draft's status nor
        the refusals written into it are open to anyone who knows an application id. With a
        session, the phone is the session's own: you sign with the phone you signed in with."""
        voen = Voen.parse(voen).value
        phone = validation.mobile_number(phone, "phone")
        user_id = _user_id(user_id)
        if actor is None:
            raise NotAuthorized("StartMobileSigning needs a signed request or an Asan session",
                                code="Client.Signature.Missing")
        if actor.credential_kind is CredentialKind.SESSION and actor.credential != phone:
            raise NotAuthorized("a session signs only with its own phone",
                                code="Client.NotAuthorized.WrongCredential", field="phone")
        with self.uow() as uow:
            authorize(uow, actor, voen, today=business_date(self.clock()))
            app = uow.applications.get(application_id)
        # Another insurer's application is "not found": its existence is not disclosed.
        if app is None or app.insurer_voen != voen:
            raise NotFound("no such application", code="Client.NotFound.Application",
                           field="applicationId")
        if app.status is not ApplicationStatus.DRAFT:
            raise Conflict(f"the application is {app.status.value}, not a draft",
                           code="Client.Conflict.NotDraft", field="applicationId")
        doc = application_document(app, phone, user_id, self.clock())
        return self._start(
            MobileKind.SIGNING, doc, phone, user_id, voen, app.application_id, SIGNING_DISPLAY,
            started_by=actor.fin,
        )

    def start_operation(
        self, actor: Actor | None, voen: str, operation: MobileOperation, phone: str,
        user_id: str,
    ) -> MobileStarted:
        """Sends an operation (grant, revoke, correction, registration with its data) to the
        phone; when it is signed, exactly the signed operation is executed. The caller is
        checked as for a draft (authenticated, may act for the insurer; grant and revoke: the
        insurer's seal holder), so nobody can push prompts to a phone for an insurer they do
        not act for; the signer is checked again, by the certificate, when it is executed."""
        voen = Voen.parse(voen).value
        phone = validation.mobile_number(phone, "phone")
        user_id = _user_id(user_id)
        if actor is None:
            raise NotAuthorized("StartMobileSigning needs a signed request or an Asan session",
                                code="Client.Signature.Missing")
        if actor.credential_kind is CredentialKind.SESSION and actor.credential != phone:
            raise NotAuthorized("a session signs only with its own phone",
                                code="Client.NotAuthorized.WrongCredential", field="phone")
        if self.authorities is None:
            raise NotImplementedOperation("mobile signing of operations is not configured")
        with self.uow() as uow:
            authorize(uow, actor, voen, today=business_date(self.clock()),
                      require_seal=isinstance(operation, SEAL_OPERATIONS))
        doc = operation_document(operation, voen, phone, user_id, self.clock())
        return self._start(MobileKind.SIGNING, doc, phone, user_id, voen, None,
                           DISPLAY[NAMES[type(operation)]], started_by=actor.fin)

    def _start(
        self,
        kind: MobileKind,
        doc: etree._Element,
        phone: str,
        user_id: str,
        voen: str | None,
        application_id: str | None,
        display: str,
        *,
        started_by: str | None = None,
    ) -> MobileStarted:
        # Each start pushes a request to a person's phone: bound how many may wait at once, so
        # the gateway cannot be used to flood a phone with confirmation prompts.
        if self.transactions.count_open(phone, self.clock()) >= self.max_open_per_phone:
            raise Conflict(
                f"{self.max_open_per_phone} requests already wait on this phone; answer or let "
                "them expire first", code="Client.Mobile.TooManyRequests", field="phone",
            )
        unsigned = serialize(doc)
        digest = _prepare(parse_xml(unsigned, _LIMITS), _template_certificate()).digest
        code = verification_code(digest)
        now = self.clock()
        tx = MobileTransaction(
            transaction_id=str(uuid.uuid4()),
            kind=kind,
            phone=phone,
            user_id=user_id,
            state=MobileState.OUTSTANDING,
            verification_code=code,
            data_hash=digest.hex(),
            created_at=now,
            expires_at=now + self.transaction_ttl,
            application_id=application_id,
            voen=voen,
            # Who asked for the signature, until the phone's certificate names the signer: a
            # refusal's history entry is attributed to them.
            fin=started_by,
            pending=unsigned,
        )
        try:
            upstream_id = self.mobile.start(phone, user_id, digest, display)
        except UpstreamError as exc:
            reason = getattr(exc, "reason", None)
            if reason not in _REFUSED_AT_START:
                raise  # unknown user, bad parameters, service down: the caller's to fix
            # The holder cannot sign at all: the transaction exists and is refused at once,
            # so callers learn every refusal the same way (GetMobileSigningStatus).
            tx = replace(tx, state=MobileState.REFUSED, completed_at=now,
                         fault_code=exc.code, fault_reason=str(reason))
            self.transactions.create(tx)
            self._keep_draft(tx, str(reason), unsaved=True)
            return MobileStarted(tx.transaction_id, code, tx.expires_at)
        self.transactions.create(replace(tx, upstream_id=upstream_id))
        return MobileStarted(tx.transaction_id, code, tx.expires_at)

    # -- GetMobileSigningStatus ------------------------------------------------------------

    def status(self, transaction_id: str) -> MobileProgress:
        tx = self._get(transaction_id)
        if tx.state is MobileState.OUTSTANDING:
            return self._poll(tx)
        return self._final(tx)

    def signed_document(self, transaction_id: str) -> bytes | None:
        """The signed document of a completed transaction (for offline verification)."""
        tx = self._get(transaction_id)
        if tx.state is MobileState.SIGNED and tx.completed_at is not None:
            return tx.pending
        return None

    def _get(self, transaction_id: str) -> MobileTransaction:
        stored = self.transactions.get(transaction_id)
        if stored is None:
            raise NotFound("no such mobile transaction", code="Client.NotFound.Transaction",
                           field="transactionId")
        return stored

    def _final(self, tx: MobileTransaction) -> MobileProgress:
        if tx.state is MobileState.SIGNED:
            if tx.completed_at is None:
                if self.clock() < tx.expires_at + _COMPLETION_GRACE:
                    return MobileProgress("OUTSTANDING")  # another request is completing it
                return MobileProgress("REFUSED", reason="INTERNAL_ERROR")  # it never finished
            application = None
            if tx.kind is MobileKind.SIGNING and tx.application_id:
                with self.uow() as uow:
                    application = uow.applications.get(tx.application_id)
            # The session token was handed out once, to the request that completed the login.
            return MobileProgress("DONE", application=application)
        if tx.state is MobileState.FAILED:
            raise GatewayError(tx.fault_reason or "the mobile transaction failed",
                               code=tx.fault_code or "Server.Internal")
        reason = tx.fault_reason if tx.fault_reason in REASONS else (
            "EXPIRED_TRANSACTION" if tx.state is MobileState.EXPIRED else "INTERNAL_ERROR")
        return MobileProgress("REFUSED", reason=reason)

    def _poll(self, tx: MobileTransaction) -> MobileProgress:
        now = self.clock()
        if now >= tx.expires_at:
            return self._refuse(tx, _Refusal("EXPIRED_TRANSACTION", "no answer in time"),
                                MobileState.EXPIRED)
        assert tx.upstream_id is not None
        answer = self.mobile.status(tx.upstream_id)
        if isinstance(answer, MobileOutstanding):
            return MobileProgress("OUTSTANDING")
        if isinstance(answer, MobileRefused):
            state = (MobileState.EXPIRED if answer.reason == "EXPIRED_TRANSACTION"
                     else MobileState.REFUSED)
            return self._refuse(tx, _Refusal(answer.reason, f"ETSI {answer.etsi_code}"), state)
        assert isinstance(answer, MobileSigned)
        claimed = replace(tx, state=MobileState.SIGNED, signature=answer.signature,
                          certificate=answer.certificate_der)
        if not self.transactions.update(claimed, expected_state=MobileState.OUTSTANDING):
            return self._final(self._get(tx.transaction_id))  # another poller got there first
        try:
            signed_xml, certificate = self._complete(claimed, answer)
            if claimed.kind is MobileKind.LOGIN:
                return self._finish_login(claimed, signed_xml, certificate)
            return self._finish_signing(claimed, signed_xml, certificate)
        except _Refusal as refusal:
            return self._refuse(claimed, refusal, MobileState.REFUSED, expected=None)
        except GatewayError as exc:
            self._keep_draft(claimed, f"{exc.code}: {exc.message}")
            self.transactions.update(replace(
                claimed, state=MobileState.FAILED, completed_at=self.clock(),
                fault_code=exc.code, fault_reason=exc.message,
            ))
            raise

    def _complete(
        self, tx: MobileTransaction, answer: MobileSigned
    ) -> tuple[bytes, x509.Certificate]:
        """The signed document, verified like a card signature, and its certificate."""
        try:
            certificate = x509.load_der_x509_certificate(answer.certificate_der)
        except ValueError as exc:
            raise _Refusal("SIGNATURE_MISMATCH", "the service returned no valid certificate",
                           "Client.Signature.Untrusted") from exc
        assert tx.pending is not None
        doc = parse_xml(tx.pending, _LIMITS)
        try:
            pending = _prepare(doc, certificate)
            if pending.digest.hex() != tx.data_hash:
                raise _Refusal("SIGNATURE_MISMATCH", "the document changed since it was sent")
            complete_signature(pending, answer.signature)
        except SigningError as exc:
            # Not RSA, or the value is not over what was sent to the phone.
            raise _Refusal("SIGNATURE_MISMATCH", str(exc), exc.code) from exc
        signed_xml = serialize(doc)
        try:
            verified = self.verifier.verify_document(parse_xml(signed_xml, _LIMITS),
                                                     at=self.clock())
        except (CertificateRevoked, RevocationUnknown) as exc:
            raise _Refusal("CERTIFICATE_REVOKED", str(exc), exc.code) from exc
        except (CertificateExpired, CertificateNotYetValid) as exc:
            raise _Refusal("CERTIFICATE_EXPIRED", str(exc), exc.code) from exc
        except SigningError as exc:  # untrusted, wrong key usage, weak key, invalid
            raise _Refusal("SIGNATURE_MISMATCH", str(exc), exc.code) from exc
        return signed_xml, verified.certificate

    def _actor(self, tx: MobileTransaction, certificate: x509.Certificate) -> Actor:
        identity = extract_identity(certificate, self.mapping)
        if not identity.fin:
            raise _Refusal("NOT_AUTHORIZED", "the certificate names no person (FIN)")
        return Actor(
            fin=identity.fin,
            voen=identity.voen,
            credential_kind=CredentialKind.ASAN,
            credential=tx.phone,
            seal_authority=identity.seal_authority,
            name=identity.common_name,
            certificate_not_after=certificate.not_valid_after_utc,
        )

    def _finish_login(
        self, tx: MobileTransaction, signed_xml: bytes, certificate: x509.Certificate
    ) -> MobileProgress:
        actor = self._actor(tx, certificate)
        voen = tx.voen or actor.voen
        if voen is None:
            raise _Refusal("NOT_AUTHORIZED", "no insurer to act for")
        now = self.clock()
        try:
            with self.uow() as uow:
                authorize(uow, actor, voen, today=business_date(now))
        except NotAuthorized as exc:
            raise _Refusal("NOT_AUTHORIZED", exc.message, exc.code) from exc
        seal = actor.seal_authority and actor.voen == voen
        expires = now + self.session_ttl
        if actor.certificate_not_after is not None:
            expires = min(expires, actor.certificate_not_after)
        token = secrets.token_urlsafe(32)
        assert actor.fin is not None
        self.sessions.create(
            token, fin=actor.fin, voen=voen, name=actor.name, credential=tx.phone,
            seal_authority=seal, expires_at=expires, role="seal" if seal else "delegate",
            created_at=now,
            certificate=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        )
        self.transactions.update(replace(
            tx, fin=actor.fin, voen=voen, pending=signed_xml, completed_at=now,
        ))
        return MobileProgress("DONE", session_token=token, session_expires_at=expires)

    def _finish_signing(
        self, tx: MobileTransaction, signed_xml: bytes, certificate: x509.Certificate
    ) -> MobileProgress:
        actor = self._actor(tx, certificate)
        if tx.application_id is None:
            return self._finish_operation(tx, actor, signed_xml)
        assert tx.voen is not None and tx.pending is not None
        signed_content = _content(tx.pending)

        def unchanged(current: Application) -> None:
            # The phone signed the draft as it was when the signing started; what gets
            # registered must be exactly that, not an edit made while the phone was asked.
            now_content = _content(serialize(
                application_document(current, tx.phone, tx.user_id, self.clock())))
            if now_content != signed_content:
                raise _Refusal("SIGNATURE_MISMATCH",
                               "the draft changed after it was sent to the phone",
                               "Client.Conflict.DraftChanged")

        try:
            app = self.registration.submit(
                actor, tx.voen, application_id=tx.application_id, check=unchanged
            )
        except NotAuthorized as exc:
            raise _Refusal("NOT_AUTHORIZED", exc.message, exc.code) from exc
        self.transactions.update(replace(
            tx, fin=actor.fin, pending=signed_xml, completed_at=self.clock(),
        ))
        return MobileProgress("DONE", application=app)

    def _finish_operation(
        self, tx: MobileTransaction, actor: Actor, signed_xml: bytes
    ) -> MobileProgress:
        # Read back from the verified document: what is executed is what the phone signed.
        voen, operation = read_operation(parse_xml(signed_xml, _LIMITS))
        if voen != tx.voen or self.authorities is None:
            raise _Refusal("SIGNATURE_MISMATCH", "the signed document is for another insurer")
        try:
            result = execute(operation, actor, voen, self.authorities, self.registration)
        except NotAuthorized as exc:
            raise _Refusal("NOT_AUTHORIZED", exc.message, exc.code) from exc
        application = result if isinstance(result, Application) else None
        self.transactions.update(replace(
            tx, fin=actor.fin, pending=signed_xml, completed_at=self.clock(),
            application_id=application.application_id if application else None,
        ))
        if isinstance(result, Authority):
            return MobileProgress("DONE", authority=result)
        return MobileProgress("DONE", application=application)

    def _refuse(
        self,
        tx: MobileTransaction,
        refusal: _Refusal,
        state: MobileState,
        *,
        expected: MobileState | None = MobileState.OUTSTANDING,
    ) -> MobileProgress:
        ended = replace(tx, state=state, completed_at=self.clock(),
                        fault_code=refusal.code, fault_reason=refusal.reason)
        if not self.transactions.update(ended, expected_state=expected):
            return self._final(self._get(tx.transaction_id))
        self._keep_draft(ended, f"{refusal.reason}: {refusal.detail}", unsaved=True)
        return MobileProgress("REFUSED", reason=refusal.reason)

    def _keep_draft(self, tx: MobileTransaction, reason: str, *, unsaved: bool = False) -> None:
        """Signing failed: a draft keeps the reason (§3.1). With ``unsaved``, registration data
        that was sent to the phone without being saved becomes a draft too, attributed to who
        started the signing (authorized then); not when the signed operation itself was
        refused when executed (that refusal writes nothing)."""
        if unsaved and tx.kind is MobileKind.SIGNING and tx.voen and not tx.application_id \
                and tx.pending is not None:
            try:
                _, operation = read_operation(parse_xml(tx.pending, _LIMITS))
            except (GatewayError, SigningError, ValueError):
                return
            if isinstance(operation, RegistrationOperation):
                self.registration.keep_unsaved_as_draft(
                    None, tx.voen, operation.data, f"Asan İmza signing failed: {reason}",
                    actor_fin=tx.fin,
                )
            return
        if tx.kind is MobileKind.SIGNING and tx.voen and tx.application_id:
            self.registration.keep_as_draft(
                tx.voen, tx.application_id, f"Asan İmza signing failed: {reason}", None,
                actor_fin=tx.fin,
            )

    # -- sessions --------------------------------------------------------------------------

    def resolve_session(self, token: str, operation: str) -> Actor:
        """The actor of an unsigned request carrying a session token (``tns:sessionToken``)."""
        record = self.sessions.get(token)
        if record is None:
            raise NotAuthorized("unknown session", code="Client.NotAuthorized.SessionInvalid")
        now = self.clock()
        if record.revoked_at is not None:
            raise NotAuthorized("the session was ended",
                                code="Client.NotAuthorized.SessionInvalid")
        if now >= record.expires_at:
            raise NotAuthorized("the session has expired: sign in again",
                                code="Client.NotAuthorized.SessionExpired")
        if operation not in SESSION_ALLOWED_OPERATIONS:
            raise SignatureMissing(
                f"{operation} needs the person's signature: a session cannot submit"
            )
        self._recheck_certificate(token, record.certificate, now)
        return Actor(
            fin=record.fin,
            voen=record.voen,
            credential_kind=CredentialKind.SESSION,
            credential=record.credential,
            seal_authority=bool(record.seal_authority),
            name=record.name,
        )


    def _recheck_certificate(self, token: str, pem: str | None, now: datetime) -> None:
        """A session lasts minutes; the certificate it was opened with may be revoked in them.
        Checked on every use (the trust store caches a good answer only while its CRL or OCSP
        answer holds): revoked or expired ends the session; an unknown status refuses this use
        only."""
        if self.certificate_check is None or pem is None:
            return
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
        try:
            self.certificate_check(certificate, now)
        except (CertificateRevoked, CertificateExpired, CertificateNotYetValid):
            self.sessions.revoke(token, now)
            raise


# --- documents -------------------------------------------------------------------------------


def _content(document: bytes) -> bytes:
    """A signed-application document without its time stamp, canonical: what must not change
    between the request to the phone and the registration."""
    root = parse_xml(document, _LIMITS)
    for stamp in root.findall(f"{{{TNS}}}signedAt"):
        root.remove(stamp)
    return canonicalize(root)


def application_document(
    app: Application, phone: str, user_id: str, now: datetime
) -> etree._Element:
    """The application as the insurer signs it with Asan İmza (namespace tns)."""
    doc = etree.Element(f"{{{TNS}}}SignedApplication", nsmap={"dsmf": TNS})
    _text(doc, "applicationId", app.application_id)
    _text(doc, "voen", app.insurer_voen)
    _text(doc, "applicationType", app.application_type.value)
    _text(doc, "documentType", app.document_type.value)
    _text(doc, "fin", app.fin)
    person = app.person
    if person is not None:
        el = etree.SubElement(doc, f"{{{TNS}}}person")
        _text(el, "surname", person.surname)
        _text(el, "name", person.name)
        if person.patronymic:
            _text(el, "patronymic", person.patronymic)
        _text(el, "birthDate", person.birth_date.isoformat())
    for tag, address in (("registrationAddress", app.registration_address),
                         ("actualAddress", app.actual_address)):
        if address is not None:
            el = etree.SubElement(doc, f"{{{TNS}}}{tag}")
            for name in ("region", "city_or_district", "street", "house", "apartment",
                         "postal_code"):
                value = getattr(address, name)
                if value:
                    _text(el, _camel(name), value)
    _text(doc, "actualAddressDiffers", "true" if app.actual_address_differs else "false")
    contacts = app.contacts
    if contacts is not None and not contacts.is_empty():
        el = etree.SubElement(doc, f"{{{TNS}}}contacts")
        for name in ("mobile_phone", "landline_phone", "email"):
            value = getattr(contacts, name)
            if value:
                _text(el, _camel(name), value)
    signer = etree.SubElement(doc, f"{{{TNS}}}signer")
    _text(signer, "phone", phone)
    _text(signer, "userId", user_id)
    _text(doc, "signedAt", _iso(now))
    return doc


def _prepare(doc: etree._Element, certificate: x509.Certificate) -> PendingSignature:
    return prepare_document_signature(doc, certificate, method=METHOD, digest=DigestMethod.SHA256)


@lru_cache(maxsize=1)
def _template_certificate() -> x509.Certificate:
    """Any RSA certificate: ``SignedInfo`` of a document signature depends only on the key
    type, so this stands in for the holder's certificate until the phone returns it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Asan Imza template")])
    start = datetime(2000, 1, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(start).not_valid_after(start + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def _text(parent: etree._Element, local: str, value: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{TNS}}}{local}")
    el.text = value
    return el


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _user_id(value: str) -> str:
    value = (value or "").strip()
    if not (value.isdigit() and value.isascii() and 6 <= len(value) <= 10):
        raise ValidationFailed("userId: the Asan İmza user id is 6 to 10 digits",
                               code="Client.Validation.AsanUserId", field="userId")
    return value

