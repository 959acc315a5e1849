"""The WSGI endpoint: where a request enters, is checked, dispatched and answered.

POST (SOAP 1.1), in this order — each step refuses with its own fault code:
  read at most ``max_message_bytes`` (chunked or not; a gzip body inflated to at most as much,
  ``gateway.soap.http``) → hardened parse (once) → envelope shape (SOAP 1.1, else
  VersionMismatch; no unknown mustUnderstand header, else MustUnderstand) and operation →
  X-Road headers → signature verification (``signing.verifier``: structure, certificate path,
  signature, timestamp) → the signer becomes the ``Actor`` → replay / idempotency on the X-Road
  message id → schema validation of the *signed* payload → spyne dispatch → response envelope
  with the X-Road headers echoed and ``requestHash`` → signed with the gateway's key.
Every request and response, refusals included, goes to the hash-chained message log.

GET: ``?wsdl`` (the authored WSDL, address rewritten), ``?xsd=NAME``, ``?faults`` (the fault
catalogue), ``?certs`` (the answer key's certificate and chain, PEM), ``/health``, ``/metrics``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from lxml import etree
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.domain.errors import GatewayError, ValidationFailed
from gateway.domain.model import Actor
from gateway.logging_config import correlation
from gateway.messages import DEFAULT_LOCALE, negotiate
from gateway.messages.tools import faults_xml
from gateway.services.ports import (
    Exchange,
    RequestClaim,
    RequestLedger,
    RequestRecord,
    StoredAnswer,
)
from gateway.soap.contract import Contract
from gateway.soap.dispatch import SpyneDispatcher
from gateway.soap.errors import HeaderNotUnderstood, HttpBodyMalformed, VersionMismatch
from gateway.soap.faults import SOAP_ENV, TNS, FaultInfo, build_fault_envelope, describe
from gateway.soap.http import answer, read_request_body
from gateway.soap.ratelimit import CallerRateLimiter, caller_of
from gateway.soap.xroad import (
    ECHOED,
    XROAD_NS,
    XRoadHeaders,
    echo_into,
    read_headers,
    request_hash,
    require_headers,
)
from signing.errors import (
    CertificateExpired,
    CertificateNotYetValid,
    ReplayDetected,
    SignatureMissing,
    SignatureWrapping,
    SigningError,
    XmlMalformed,
    XmlTooLarge,
)
from signing.parser import ParserLimits, parse_xml, serialize
from signing.signer import Signer
from signing.verifier import EnvelopeVerifier, VerifiedMessage
from signing.wsse import sign_envelope

log = logging.getLogger("gateway.soap")

WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_ID = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}Id"
XML_CONTENT_TYPE = 'text/xml; charset="utf-8"'
MUST_UNDERSTAND = f"{{{SOAP_ENV}}}mustUnderstand"
ACTOR = f"{{{SOAP_ENV}}}actor"
ACTOR_NEXT = "http://schemas.xmlsoap.org/soap/actor/next"
#: The request header blocks this service processes: the signature, the X-Road headers, the
#: Asan İmza session. Any other one marked mustUnderstand="1" is refused (MustUnderstand).
UNDERSTOOD_HEADERS = frozenset(
    {f"{{{WSSE_NS}}}Security", f"{{{TNS}}}sessionToken"}
    | {f"{{{XROAD_NS}}}{name}" for name in (*ECHOED, "requestHash")}
)


class ActorResolver(Protocol):
    def __call__(
        self, verified: VerifiedMessage, headers: XRoadHeaders, operation: str
    ) -> Actor: ...


class SessionResolver(Protocol):
    """The actor of an unsigned request with a ``tns:sessionToken`` (an Asan İmza session);
    raises when the session is unknown or expired, or the operation needs a signature."""

    def __call__(self, token: str, operation: str) -> Actor: ...


class LapsedSignatureKeeper(Protocol):
    """Keeps what a card whose certificate has lapsed signed (``gateway.soap.lapsed``)."""

    def attribute(self, envelope: etree._Element) -> VerifiedMessage: ...

    def actor(self, verified: VerifiedMessage, operation: str) -> Actor: ...

    def keep(
        self, payload: etree._Element, operation: str, actor: Actor, error: SigningError
    ) -> None: ...


Operation = Callable[["RequestScope", Any], Any]


@dataclass
class RequestScope:
    """One request as the operations see it (``ctx.udc`` in the spyne service)."""

    operation: str
    correlation_id: str
    received_at: datetime
    headers: XRoadHeaders
    actor: Actor | None
    request_bytes: bytes
    operations: dict[str, Operation]
    session_token: str | None = None
    error: BaseException | None = None
    #: The caller's language for texts in the answer (``gateway.messages``).
    locale: str = DEFAULT_LOCALE

    def dispatch(self, operation: str, request: Any) -> Any:
        try:
            return self.operations[operation](self, request)
        except BaseException as exc:
            # Kept so it survives spyne's own exception handling with its code intact.
            self.error = exc
            raise


@dataclass(frozen=True)
class HealthCheck:
    """A readiness probe; a failing non-critical one only makes the service "degraded"."""

    name: str
    probe: Callable[[], None]
    critical: bool = True


@dataclass
class Outcome:
    status: str
    body: bytes
    operation: str | None


class SoapEndpoint:
    def __init__(
        self,
        *,
        contract: Contract,
        dispatcher: SpyneDispatcher,
        operations: dict[str, Operation],
        verifier: EnvelopeVerifier,
        resolve_actor: ActorResolver,
        response_signer: Signer,
        ledger: RequestLedger,
        limits: ParserLimits,
        unsigned_operations: Iterable[str] = ("listMethods",),
        idempotency_ttl: timedelta = timedelta(days=1),
        public_url: str = "",
        health_checks: Iterable[HealthCheck] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        resolve_session: SessionResolver | None = None,
        on_lapsed_signature: LapsedSignatureKeeper | None = None,
        rate_limiter: CallerRateLimiter | None = None,
        rate_limited_operations: Iterable[str] = (),
        caller_header: str = "",
    ) -> None:
        self.contract = contract
        self.dispatcher = dispatcher
        self.operations = operations
        self.verifier = verifier
        self.resolve_actor = resolve_actor
        self.signer = response_signer
        self.certificate_chain_pem = b"".join(
            c.public_bytes(serialization.Encoding.PEM)
            for c in (response_signer.certificate, *response_signer.chain)
        )
        self.ledger = ledger
        self.limits = limits
        self.unsigned = frozenset(unsigned_operations)
        self.idempotency_ttl = idempotency_ttl
        self.public_url = public_url
        self.health_checks = tuple(health_checks)
        self.clock = clock
        self.resolve_session = resolve_session
        self.on_lapsed_signature = on_lapsed_signature
        self.rate_limiter = rate_limiter
        self.rate_limited = frozenset(rate_limited_operations)
        self.caller_header = caller_header
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "dsmf_requests", "SOAP requests by operation and outcome",
            ["operation", "outcome"], registry=self.registry,
        )
        self._seconds = Histogram(
            "dsmf_request_seconds", "Time to answer a SOAP request", ["operation"],
            registry=self.registry,
        )

    # -- WSGI ------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "") or "/"
        query = environ.get("QUERY_STRING", "")
        if method == "GET":
            return self._get(environ, path, query, start_response)
        if method != "POST":
            return _plain(start_response, "405 Method Not Allowed", b"POST a SOAP 1.1 request\n")
        try:
            body: bytes | None = read_request_body(environ, self.limits.max_bytes)
            refused: Exception | None = None
        except (GatewayError, SigningError) as exc:
            body, refused = None, exc
        outcome = self.handle(body, locale=negotiate(environ.get("HTTP_ACCEPT_LANGUAGE")),
                              caller=caller_of(environ, self.caller_header), refused=refused)
        data, headers = answer(environ, outcome.body, XML_CONTENT_TYPE)
        start_response(outcome.status, headers)
        return [data]

    def http_error_answer(self, code: int, reason: str,
                          environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        """The answer to a request the HTTP server refused before it reached us (``code``
        413: the body passed the server's cap; 400/501: broken chunk framing, an unknown
        transfer coding): the same SOAP fault, in the client's language, and the same log
        entry, as when this endpoint refuses the body itself."""
        refused: GatewayError | SigningError
        if code == 413:
            refused = XmlTooLarge(f"the request is larger than {self.limits.max_bytes} bytes")
        else:
            refused = HttpBodyMalformed(f"the HTTP request is malformed: {reason.strip()}")
        outcome = self.handle(None, locale=negotiate(environ.get("HTTP_ACCEPT_LANGUAGE")),
                              caller=caller_of(environ, self.caller_header), refused=refused)
        data, headers = answer(environ, outcome.body, XML_CONTENT_TYPE)
        return outcome.status, headers, data

    def _get(
        self, environ: dict[str, Any], path: str, query: str, start_response: Callable[..., Any]
    ) -> list[bytes]:
        url = self.public_url or _request_url(environ)
        if query.lower() == "wsdl":
            return _xml(environ, start_response, self.contract.wsdl_for(url))
        if query.lower() == "certs":
            # The answer key's certificate and its chain (PEM), for verifiers that cannot build
            # a path from the tokens in an answer (xmlsec1, zeep) or want the CAs pinned.
            return _pem(start_response, self.certificate_chain_pem)
        if query.lower() == "faults":
            # The fault catalogue (docs/faults.md as XML): every code, meaning and action.
            return _xml(environ, start_response, faults_xml())
        if query.startswith("xsd="):
            doc = self.contract.xsd_for(query[4:], url)
            if doc is None:
                return _plain(start_response, "404 Not Found", b"no such schema\n")
            return _xml(environ, start_response, doc)
        if path.rstrip("/") in ("/health/live", "/livez"):
            # Liveness: the process answers. Nothing else, or a restart loop would follow
            # every database hiccup.
            return _json(start_response, "200 OK", {"status": "ok"})
        if path.rstrip("/") in ("/health", "/healthz", "/health/ready", "/readyz"):
            return self._health(start_response)
        if path.rstrip("/") == "/metrics":
            data = generate_latest(self.registry)
            start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
            return [data]
        return _plain(start_response, "404 Not Found", b"see ?wsdl\n")

    def _health(self, start_response: Callable[..., Any]) -> list[bytes]:
        """Readiness: 200 ``ok`` or ``degraded`` (a non-critical dependency is down, e.g. the
        population registry: submissions are still accepted), 503 ``unavailable`` when a
        critical one (the database, the signing key) fails."""
        checks: dict[str, str] = {}
        status = "ok"
        for check in self.health_checks:
            try:
                check.probe()
                checks[check.name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure counts against the check
                checks[check.name] = describe(exc).message if isinstance(
                    exc, GatewayError | SigningError) else f"{type(exc).__name__}"
                if check.critical:
                    status = "unavailable"
                elif status == "ok":
                    status = "degraded"
        code = "503 Service Unavailable" if status == "unavailable" else "200 OK"
        return _json(start_response, code, {"status": status, "checks": checks})

    # -- one SOAP request ------------------------------------------------------------------

    def handle(
        self, request: bytes | None, *, locale: str = DEFAULT_LOCALE, caller: str | None = None,
        refused: Exception | None = None,
    ) -> Outcome:
        """``locale``: the language of fault messages and of texts in answers (``az``/``en``);
        ``refused``: what the HTTP layer refused the request for (the body is then None).

        One request, one transaction: the handler's writes, the ledger row of (sender, id)
        with the final answer, and the message-log entries commit together, and the answer
        leaves only after that commit (DESIGN §5). A transient ``Server.*`` failure keeps
        nothing but its log entry, so the client's retry runs again."""
        started = time.perf_counter()
        correlation_id = uuid.uuid4().hex
        with correlation(correlation_id), self.ledger.begin() as record:
            request_state = _RequestState()
            try:
                if refused is not None:
                    raise refused
                status, response, outcome = self._process(
                    request, correlation_id, request_state, locale, caller)
            except Exception as exc:
                info = describe(exc)
                if info.code == "Server.Internal":
                    log.exception("internal error, correlation id %s", correlation_id)
                else:
                    log.info("refused %s: %s %s (%s)", request_state.operation, info.code,
                             info.message, correlation_id)
                response = self._fault(info, correlation_id, request_state.headers, request,
                                       locale)
                status, outcome = _FAULT_STATUS, info.code
            if request_state.replayed is None:
                status, response, outcome = self._commit(
                    record, request, request_state, correlation_id, status, response, outcome,
                    locale)
            else:
                status, response = request_state.replayed
                self._commit_log_only(record, request, request_state, correlation_id, response)
        self._observe(request_state.operation, outcome, started)
        return Outcome(status, response, request_state.operation)

    def _process(
        self, request: bytes | None, correlation_id: str, state: _RequestState, locale: str,
        caller: str | None,
    ) -> tuple[str, bytes, str]:
        if request is None:
            raise XmlTooLarge(f"the request is larger than {self.limits.max_bytes} bytes")
        envelope = parse_xml(request, self.limits)
        header_el, body_el = _split_envelope(envelope)
        _refuse_headers_not_understood(header_el)
        signed = _has_security(header_el)
        session_token = _session_token(header_el)
        verified: VerifiedMessage | None = None
        if signed:
            # Verify before reading anything from the message: the operation, the headers
            # and the payload are taken from what the signature covers, nothing else.
            try:
                verified = self.verifier.verify(envelope)
            except (CertificateExpired, CertificateNotYetValid) as lapsed:
                if self.on_lapsed_signature is not None:
                    state.replayed = self._keep_lapsed(
                        envelope, read_headers(header_el), lapsed, state, request)
                    if state.replayed is not None:
                        # The same lapsed request again: its stored refusal, nothing rewritten.
                        return state.replayed[0], state.replayed[1], "replayed"
                raise
            # X-Road headers need not be signed (stock zeep and node-soap sign only Body and
            # Timestamp; docs/integration.md): nothing security-relevant rests on an unsigned
            # one. The actor's userId comes only from a signed header, and replay protection
            # keys on the signature when the id is not signed.
            state.headers = read_headers(header_el)
            payload = _payload_of(verified.body)
        else:
            state.headers = read_headers(header_el)
            payload = _payload_of(body_el)
        headers = state.headers
        state.operation = operation = _operation_of(payload, self.operations)
        if self.rate_limiter is not None and caller and operation in self.rate_limited:
            # Before anything reaches a service or a phone: unsigned calls per caller.
            self.rate_limiter.check(caller)
        actor: Actor | None = None
        if signed:
            require_headers(headers, operation)
        elif operation in self.unsigned:
            pass
        elif session_token and self.resolve_session is not None:
            require_headers(headers, operation)
            actor = self.resolve_session(session_token, operation)
        else:
            raise SignatureMissing("the request must carry a wsse:Security signature")
        if verified is not None:
            actor = self.resolve_actor(verified, headers, operation)
        state.actor = actor
        message_id = verified.replay_id if verified is not None else headers.message_id
        if actor is not None and message_id:
            # Signed and session requests alike. Ids are unique per sender, not across
            # senders: key on both. The same content again (even re-signed with a fresh
            # Timestamp) is a retry; other content under a used id is a replay.
            state.claim = RequestClaim(
                key=_replay_key(actor.credential_kind, actor.credential, message_id),
                content_digest=_content_digest(payload, headers),
                expires_at=self.clock() + self.idempotency_ttl,
            )
            stored = self.ledger.lookup(state.claim.key)
            if stored is not None:
                state.replayed = self._answer_again(stored, state.claim, message_id, headers,
                                                    request)
                if state.replayed is not None:
                    return state.replayed[0], state.replayed[1], "replayed"
        self.contract.validate(payload)
        scope = RequestScope(
            operation=operation,
            correlation_id=correlation_id,
            received_at=self.clock(),
            headers=headers,
            actor=actor,
            request_bytes=request,
            operations=self.operations,
            session_token=session_token,
            locale=locale,
        )
        result = self.dispatcher.call(payload, scope)
        return "200 OK", self._respond(result, headers, request), "ok"

    def _keep_lapsed(
        self, envelope: etree._Element, headers: XRoadHeaders, lapsed: SigningError,
        state: _RequestState, request: bytes,
    ) -> tuple[str, bytes] | None:
        """The lapsed-card path (manual §3.1: the draft keeps the reason), through the same
        checks as every signed request: signed headers naming the operation, then the request
        ledger on (signer, message id). Returns the stored refusal of the same request seen
        before; otherwise keeps the draft (in this request's transaction, with the ledger row
        and the log) and returns None. The refusal itself always stands."""
        keeper = self.on_lapsed_signature
        assert keeper is not None
        try:
            verified = keeper.attribute(envelope)
            payload = _payload_of(verified.body)
            operation = _operation_of(payload, self.operations)
            require_headers(headers, operation)
            actor = keeper.actor(verified, operation)
            claim = RequestClaim(
                key=_replay_key(actor.credential_kind, actor.credential, verified.replay_id),
                content_digest=_content_digest(payload, headers),
                expires_at=self.clock() + self.idempotency_ttl,
            )
            stored = self.ledger.lookup(claim.key)
        except (GatewayError, SigningError) as exc:
            log.info("lapsed signature not attributed: %s", getattr(exc, "code", exc))
            return None
        state.headers, state.operation, state.actor = headers, operation, actor
        if stored is not None:
            if stored.content_digest != claim.content_digest or stored.response is None:
                return None  # another request under this id: refused, nothing kept
            return _status_line(stored.http_status), self._bound_to(stored.response, headers,
                                                                    request)
        state.claim = claim
        try:
            keeper.keep(payload, operation, actor, lapsed)
        except (GatewayError, SigningError) as exc:
            # Not allowed: the refusal stands and nothing is written.
            log.info("lapsed signature: draft not kept: %s", getattr(exc, "code", exc))
        except Exception:
            log.exception("lapsed signature: keeping the draft failed")
        return None

    def _answer_again(
        self, stored: StoredAnswer, claim: RequestClaim, message_id: str,
        headers: XRoadHeaders, request: bytes | None,
    ) -> tuple[str, bytes] | None:
        """The stored answer for a retry of the same content; None when the same content
        stored no answer (a read: it simply runs again). Other content is a replay."""
        if stored.content_digest != claim.content_digest:
            replay = ReplayDetected(
                f"message id {message_id!r} was already used for another request")
            replay.params = {"id": message_id}
            raise replay
        if stored.response is None:
            return None
        return _status_line(stored.http_status), self._bound_to(stored.response, headers, request)

    def _bound_to(self, stored: bytes, headers: XRoadHeaders, request: bytes | None) -> bytes:
        """The stored answer for the request at hand. A byte-identical resend gets the stored
        bytes; a re-signed retry gets the same Body in a new envelope that echoes *its*
        headers and ``requestHash``, signed afresh, so a client that binds answers to what
        it sent (``gateway.client.wsse``) accepts it."""
        if request is None:
            return stored
        envelope = parse_xml(stored, self.limits)
        echoed = envelope.findtext(f"{{{SOAP_ENV}}}Header/{{{XROAD_NS}}}requestHash")
        if echoed == request_hash(request):
            return stored
        body = envelope.find(f"{{{SOAP_ENV}}}Body")
        assert body is not None
        rebound = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV})
        echo_into(etree.SubElement(rebound, f"{{{SOAP_ENV}}}Header"), headers, request)
        new_body = etree.SubElement(rebound, f"{{{SOAP_ENV}}}Body")
        for child in body:
            new_body.append(deepcopy(child))
        return serialize(sign_envelope(rebound, self.signer, must_understand=False))

    def _commit(
        self,
        record: RequestRecord,
        request: bytes | None,
        state: _RequestState,
        correlation_id: str,
        status: str,
        response: bytes,
        outcome: str,
        locale: str,
    ) -> tuple[str, bytes, str]:
        transient = outcome in _TRANSIENT or outcome.startswith("Server.")
        # Only a request that changed state keeps its answer for retries; a transient failure
        # keeps nothing (not even what the handler wrote), so the retry runs again.
        answer = (response, _status_code(status)) if record.wrote and not transient else None
        try:
            winner = record.commit(
                self._exchange(request, response, state, correlation_id),
                claim=None if transient else state.claim,
                answer=answer,
                keep_writes=not transient,
            )
        except Exception as exc:
            info = describe(exc)
            log.error("commit failed (%s): %s", correlation_id, info.code,
                      exc_info=info.code == "Server.Internal")
            if not info.code.startswith("Server."):
                info = FaultInfo("Server.Storage.Unavailable", "the request could not be stored")
            fault = self._fault(info, correlation_id, state.headers, request, locale)
            return _FAULT_STATUS, fault, info.code
        if winner is None:
            return status, response, outcome
        # Another copy of this request committed first: ours is discarded; answer as it did.
        assert state.claim is not None
        message_id = state.headers.message_id or ""
        try:
            again = self._answer_again(winner, state.claim, message_id, state.headers, request)
        except ReplayDetected as exc:
            info = describe(exc)
            response = self._fault(info, correlation_id, state.headers, request, locale)
            self._commit_log_only(record, request, state, correlation_id, response)
            return _FAULT_STATUS, response, info.code
        if again is not None:
            status, response = again
            outcome = "replayed"
        self._commit_log_only(record, request, state, correlation_id, response)
        return status, response, outcome

    def _commit_log_only(
        self,
        record: RequestRecord,
        request: bytes | None,
        state: _RequestState,
        correlation_id: str,
        response: bytes,
    ) -> None:
        try:
            record.commit(self._exchange(request, response, state, correlation_id),
                          keep_writes=False)
        except Exception:
            log.exception("message log append failed (%s)", correlation_id)

    @staticmethod
    def _exchange(
        request: bytes | None, response: bytes, state: _RequestState, correlation_id: str
    ) -> Exchange:
        actor = state.actor
        return Exchange(
            request=request,
            response=response,
            message_id=state.headers.message_id,
            correlation_id=correlation_id,
            actor_fin=actor.fin if actor else None,
            voen=actor.voen if actor else None,
            operation=state.operation,
        )

    def _respond(self, result: etree._Element, headers: XRoadHeaders, request: bytes) -> bytes:
        envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV})
        header = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Header")
        echo_into(header, headers, request)
        body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
        body.append(result)
        return serialize(sign_envelope(envelope, self.signer, must_understand=False))

    def _fault(
        self, info: FaultInfo, correlation_id: str, headers: XRoadHeaders, request: bytes | None,
        locale: str,
    ) -> bytes:
        envelope = build_fault_envelope(info, correlation_id, locale)
        header = envelope.find(f"{{{SOAP_ENV}}}Header")
        assert header is not None
        try:
            echo_into(header, headers, request)
            return serialize(sign_envelope(envelope, self.signer, must_understand=False))
        except Exception:
            log.exception("cannot sign fault %s (%s)", info.code, correlation_id)
            return serialize(build_fault_envelope(info, correlation_id, locale))

    def _observe(self, operation: str | None, outcome: str, started: float) -> None:
        op = operation or "unknown"
        self._requests.labels(op, outcome).inc()
        self._seconds.labels(op).observe(time.perf_counter() - started)


_FAULT_STATUS = "500 Internal Server Error"
# Client-side codes that mean "try again", never a final answer.
_TRANSIENT = frozenset({"Client.Conflict.Concurrent"})


@dataclass
class _RequestState:
    """What the pipeline learnt about a request so far (for the fault, the log, the ledger)."""

    headers: XRoadHeaders = field(default_factory=lambda: XRoadHeaders({}))
    operation: str | None = None
    actor: Actor | None = None
    claim: RequestClaim | None = None
    replayed: tuple[str, bytes] | None = None


def _status_code(status: str) -> int:
    return int(status.split(" ", 1)[0])


def _status_line(code: int | None) -> str:
    return _FAULT_STATUS if code == 500 else "200 OK"


def _content_digest(payload: etree._Element, headers: XRoadHeaders) -> str:
    """SHA-256 over what a retry must repeat: the exclusive canonical form of the signed
    payload and of the X-Road headers other than the id (who calls, which service, for whom).
    The Timestamp and the signature are not part of it, so a re-signed retry matches."""
    digest = hashlib.sha256()
    for name in sorted(headers.elements):
        if name in ("id", "requestHash"):
            continue
        digest.update(name.encode() + b"\0")
        digest.update(_canonical_without_ids(headers.elements[name]))
    digest.update(b"\0body\0")
    digest.update(_canonical_without_ids(payload))
    return digest.hexdigest()


def _canonical_without_ids(element: etree._Element) -> bytes:
    """Exclusive C14N without the ``wsu:Id`` / ``Id`` attributes a signer adds afresh to every
    element it references (they name the reference, they are not content)."""
    if not any(WSU_ID in el.attrib or "Id" in el.attrib for el in element.iter()):
        return etree.tostring(element, method="c14n", exclusive=True)
    copy = deepcopy(element)
    for el in copy.iter():
        for name in (WSU_ID, "Id"):
            if name in el.attrib:
                del el.attrib[name]
    return etree.tostring(copy, method="c14n", exclusive=True)


def _split_envelope(envelope: etree._Element) -> tuple[etree._Element | None, etree._Element]:
    if envelope.tag != f"{{{SOAP_ENV}}}Envelope":
        if etree.QName(envelope).localname == "Envelope":
            # SOAP 1.1 §4.4.1: an Envelope in another namespace (SOAP 1.2's, most often) is a
            # version mismatch, answered with a SOAP 1.1 fault that names the version we speak.
            raise VersionMismatch(
                f"only SOAP 1.1 envelopes ({SOAP_ENV}) are accepted, "
                f"not {etree.QName(envelope).namespace or 'no namespace'}"
            )
        raise XmlMalformed("not a SOAP 1.1 Envelope")
    headers = [c for c in envelope if c.tag == f"{{{SOAP_ENV}}}Header"]
    bodies = [c for c in envelope if c.tag == f"{{{SOAP_ENV}}}Body"]
    if len(bodies) != 1 or len(headers) > 1:
        # A second Body or Header is the classic signature-wrapping move; refuse it as such.
        raise SignatureWrapping("a SOAP Envelope has one Body and at most one Header")
    if headers and envelope.index(headers[0]) > envelope.index(bodies[0]):
        raise SignatureWrapping("the SOAP Header must come before the Body")
    if any(isinstance(c.tag, str) for c in envelope if c not in headers and c not in bodies):
        raise SignatureWrapping("only Header and Body may stand in a SOAP Envelope")
    return (headers[0] if headers else None), bodies[0]


def _refuse_headers_not_understood(header: etree._Element | None) -> None:
    """SOAP 1.1 §4.2.3: a header block meant for us (no actor, or the "next" actor) with
    ``mustUnderstand="1"`` that we do not process is refused, before anything else is done."""
    if header is None:
        return
    for block in header:
        if not isinstance(block.tag, str) or block.tag in UNDERSTOOD_HEADERS:
            continue
        if block.get(MUST_UNDERSTAND, "0").strip() not in ("1", "true"):
            continue
        if block.get(ACTOR, ACTOR_NEXT).strip() != ACTOR_NEXT:
            continue
        raise HeaderNotUnderstood(
            f"the header {block.tag} is marked mustUnderstand and this service does not "
            f"process it", field=etree.QName(block).localname,
        )


def _replay_key(kind: str, credential: str, message_id: str) -> str:
    return hashlib.sha256(f"{kind}\n{credential}\n{message_id}".encode()).hexdigest()


def _operation_of(payload: etree._Element, operations: dict[str, Operation]) -> str:
    name = etree.QName(payload)
    if name.namespace != TNS or name.localname not in operations:
        raise ValidationFailed(f"unknown operation {payload.tag}", code="Client.Operation.Unknown")
    return str(name.localname)


def _payload_of(body: etree._Element) -> etree._Element:
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise ValidationFailed(
            "the SOAP Body must hold exactly one element", code="Client.Validation.Schema",
            field="Body", params={"rule": "other"},
        )
    return children[0]


def _has_security(header: etree._Element | None) -> bool:
    return header is not None and header.find(f"{{{WSSE_NS}}}Security") is not None


def _session_token(header: etree._Element | None) -> str | None:
    if header is None:
        return None
    token = header.findtext(f"{{{TNS}}}sessionToken")
    return token.strip() if token else None


def _request_url(environ: dict[str, Any]) -> str:
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    path = environ.get("SCRIPT_NAME", "") + (environ.get("PATH_INFO", "") or "/")
    return f"{scheme}://{host}{path}"


def _json(start_response: Callable[..., Any], status: str, document: Any) -> list[bytes]:
    data = json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
    return [data]


def _pem(start_response: Callable[..., Any], data: bytes) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/pem-certificate-chain"),
                              ("Content-Length", str(len(data)))])
    return [data]


def _xml(environ: dict[str, Any], start_response: Callable[..., Any], data: bytes) -> list[bytes]:
    sent, headers = answer(environ, data, XML_CONTENT_TYPE)
    start_response("200 OK", headers)
    return [sent]


def _plain(start_response: Callable[..., Any], status: str, data: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]
