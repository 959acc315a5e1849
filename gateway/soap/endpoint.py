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

GET: ``?wsdl`` (the authored WSDL, address rewritten), ``?xsd=NAME``, ``/health``, ``/metrics``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from lxml import etree
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.domain.errors import GatewayError, ValidationFailed
from gateway.domain.model import Actor
from gateway.soap.contract import Contract
from gateway.soap.dispatch import SpyneDispatcher
from gateway.soap.errors import HeaderNotUnderstood, VersionMismatch
from gateway.soap.faults import SOAP_ENV, TNS, FaultInfo, build_fault_envelope, describe
from gateway.soap.http import answer, read_request_body
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


class MessageGuard(Protocol):
    """Replay protection and idempotency on the X-Road message id, shared by all workers."""

    def claim(self, message_id: str, request_digest: str, expires_at: datetime) -> bytes | None:
        """None: first time (now claimed). Bytes: the stored response of the same request.
        Raises ReplayDetected for a reused id with other content, or one still in progress."""
        ...

    def complete(self, message_id: str, request_digest: str, response: bytes) -> None: ...


class Journal(Protocol):
    def append_exchange(
        self,
        request: bytes | None,
        response: bytes,
        *,
        message_id: str | None,
        correlation_id: str,
        actor_fin: str | None,
        voen: str | None,
        operation: str | None,
    ) -> list[int]: ...


class ActorResolver(Protocol):
    def __call__(
        self, verified: VerifiedMessage, headers: XRoadHeaders, operation: str
    ) -> Actor: ...


class SessionResolver(Protocol):
    """The actor of an unsigned request with a ``tns:sessionToken`` (an Asan İmza session);
    raises when the session is unknown or expired, or the operation needs a signature."""

    def __call__(self, token: str, operation: str) -> Actor: ...


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

    def dispatch(self, operation: str, request: Any) -> Any:
        try:
            return self.operations[operation](self, request)
        except BaseException as exc:
            # Kept so it survives spyne's own exception handling with its code intact.
            self.error = exc
            raise


@dataclass(frozen=True)
class HealthCheck:
    name: str
    probe: Callable[[], None]


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
        guard: MessageGuard,
        journal: Journal,
        limits: ParserLimits,
        unsigned_operations: Iterable[str] = ("listMethods",),
        idempotency_ttl: timedelta = timedelta(days=1),
        public_url: str = "",
        health_checks: Iterable[HealthCheck] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        resolve_session: SessionResolver | None = None,
        on_lapsed_signature: Callable[[etree._Element, SigningError], None] | None = None,
    ) -> None:
        self.contract = contract
        self.dispatcher = dispatcher
        self.operations = operations
        self.verifier = verifier
        self.resolve_actor = resolve_actor
        self.signer = response_signer
        self.guard = guard
        self.journal = journal
        self.limits = limits
        self.unsigned = frozenset(unsigned_operations)
        self.idempotency_ttl = idempotency_ttl
        self.public_url = public_url
        self.health_checks = tuple(health_checks)
        self.clock = clock
        self.resolve_session = resolve_session
        self.on_lapsed_signature = on_lapsed_signature
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
        outcome = self.handle(body, refused=refused)
        data, headers = answer(environ, outcome.body, XML_CONTENT_TYPE)
        start_response(outcome.status, headers)
        return [data]

    def _get(
        self, environ: dict[str, Any], path: str, query: str, start_response: Callable[..., Any]
    ) -> list[bytes]:
        url = self.public_url or _request_url(environ)
        if query.lower() == "wsdl":
            return _xml(environ, start_response, self.contract.wsdl_for(url))
        if query.startswith("xsd="):
            doc = self.contract.xsd_for(query[4:], url)
            if doc is None:
                return _plain(start_response, "404 Not Found", b"no such schema\n")
            return _xml(environ, start_response, doc)
        if path.rstrip("/") in ("/health", "/healthz"):
            return self._health(start_response)
        if path.rstrip("/") == "/metrics":
            data = generate_latest(self.registry)
            start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
            return [data]
        return _plain(start_response, "404 Not Found", b"see ?wsdl\n")

    def _health(self, start_response: Callable[..., Any]) -> list[bytes]:
        checks: dict[str, str] = {}
        healthy = True
        for check in self.health_checks:
            try:
                check.probe()
                checks[check.name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure makes the service unhealthy
                healthy = False
                checks[check.name] = describe(exc).message if isinstance(
                    exc, GatewayError | SigningError) else f"{type(exc).__name__}"
        body = json.dumps({"status": "ok" if healthy else "unavailable", "checks": checks})
        status = "200 OK" if healthy else "503 Service Unavailable"
        start_response(status, [("Content-Type", "application/json")])
        return [body.encode()]

    # -- one SOAP request ------------------------------------------------------------------

    def handle(self, request: bytes | None, *, refused: Exception | None = None) -> Outcome:
        """One SOAP request; ``refused``: what the HTTP layer refused it for (the body is
        then None)."""
        started = time.perf_counter()
        correlation_id = uuid.uuid4().hex
        headers = XRoadHeaders({})
        operation: str | None = None
        actor: Actor | None = None
        claimed: tuple[str, str] | None = None
        response: bytes
        try:
            if refused is not None:
                raise refused
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
                        self.on_lapsed_signature(envelope, lapsed)
                    raise
                headers = XRoadHeaders(dict(verified.signed_headers))
                payload = _payload_of(verified.body)
            else:
                headers = read_headers(header_el)
                payload = _payload_of(body_el)
            operation = _operation_of(payload, self.operations)
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
            message_id = headers.message_id
            if actor is not None and message_id:
                # Signed and session requests alike: a retry gets the stored answer, a reused
                # id is a replay. Ids are unique per sender, not across senders: key on both.
                key = _replay_key(actor.credential_kind, actor.credential, message_id)
                digest = request_hash(request)
                stored = self.guard.claim(key, digest, self.clock() + self.idempotency_ttl)
                if stored is not None:
                    self._log(request, stored, headers, correlation_id, actor, operation)
                    self._observe(operation, "replayed", started)
                    return Outcome("200 OK", stored, operation)
                claimed = (key, digest)
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
            )
            result = self.dispatcher.call(payload, scope)
            response = self._respond(result, headers, request)
            status, outcome = "200 OK", "ok"
        except Exception as exc:
            info = describe(exc)
            if info.code == "Server.Internal":
                log.exception("internal error, correlation id %s", correlation_id)
            else:
                log.info("refused %s: %s (%s)", operation, info.code, correlation_id)
            response = self._fault(info, correlation_id, headers, request)
            status, outcome = "500 Internal Server Error", info.code
        if claimed is not None:
            try:
                self.guard.complete(*claimed, response)
            except Exception:
                log.exception("storing the response for idempotency failed (%s)", correlation_id)
        self._log(request, response, headers, correlation_id, actor, operation)
        self._observe(operation, outcome, started)
        return Outcome(status, response, operation)

    def _respond(self, result: etree._Element, headers: XRoadHeaders, request: bytes) -> bytes:
        envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV})
        header = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Header")
        echo_into(header, headers, request)
        body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
        body.append(result)
        return serialize(sign_envelope(envelope, self.signer))

    def _fault(
        self, info: FaultInfo, correlation_id: str, headers: XRoadHeaders, request: bytes | None
    ) -> bytes:
        envelope = build_fault_envelope(info, correlation_id)
        header = envelope.find(f"{{{SOAP_ENV}}}Header")
        assert header is not None
        try:
            echo_into(header, headers, request)
            return serialize(sign_envelope(envelope, self.signer))
        except Exception:
            log.exception("cannot sign fault %s (%s)", info.code, correlation_id)
            return serialize(build_fault_envelope(info, correlation_id))

    def _log(
        self,
        request: bytes | None,
        response: bytes,
        headers: XRoadHeaders,
        correlation_id: str,
        actor: Actor | None,
        operation: str | None,
    ) -> None:
        try:
            common: dict[str, Any] = {
                "message_id": headers.message_id,
                "correlation_id": correlation_id,
                "actor_fin": actor.fin if actor else None,
                "voen": actor.voen if actor else None,
                "operation": operation,
            }
            self.journal.append_exchange(request, response, **common)
        except Exception:
            log.exception("message log append failed (%s)", correlation_id)

    def _observe(self, operation: str | None, outcome: str, started: float) -> None:
        op = operation or "unknown"
        self._requests.labels(op, outcome).inc()
        self._seconds.labels(op).observe(time.perf_counter() - started)


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
            "the SOAP Body must hold exactly one element", code="Client.Validation.Schema"
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


def _xml(environ: dict[str, Any], start_response: Callable[..., Any], data: bytes) -> list[bytes]:
    sent, headers = answer(environ, data, XML_CONTENT_TYPE)
    start_response("200 OK", headers)
    return [sent]


def _plain(start_response: Callable[..., Any], status: str, data: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]
