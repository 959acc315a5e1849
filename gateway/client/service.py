"""The gateway as ``dsmf-client`` sees it: zeep with the signing plugin (:mod:`gateway.client.wsse`)
over HTTP, every answer verified against the trust list before it is read.

Two ways to call:

* :meth:`Gateway.call` — an ordinary signed call with a fresh X-Road message id (reads);
* :meth:`Gateway.prepare` + :meth:`Gateway.send` — the signed request is built first, kept by the
  caller (the journal) and sent as those exact bytes, as often as needed: a retry of the same
  bytes gets the gateway's stored answer instead of being done twice.

Each thread gets its own zeep client and plugin (the plugin remembers the last request and
answer, which must not mix between threads); the signer is shared (the PKCS#11 signer is
thread-safe behind its token lock). Errors leave as :mod:`gateway.client.errors`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import requests
import zeep
import zeep.exceptions
from cryptography import x509
from lxml import etree
from zeep.cache import InMemoryCache
from zeep.transports import Transport

from gateway.client.errors import AnswerNotTrusted, ClientError, GatewayFault, TransportError
from gateway.client.messages import fault_text, text
from gateway.client.wsse import TNS, GatewayIdentity, SigningPlugin, XRoadMember
from signing.errors import SigningError, VerificationError
from signing.signer import Signer
from signing.trust import TrustStore


@dataclass(frozen=True)
class PreparedRequest:
    """A signed request ready to send (and to send again, byte for byte)."""

    operation: str
    message_id: str
    body: bytes
    http_headers: dict[str, str]


class Gateway:
    def __init__(
        self,
        wsdl: str,
        signer: Signer,
        *,
        voen: str,
        trust: TrustStore,
        gateway: GatewayIdentity,
        subsystem: str = "erp",
        timeout: float = 120.0,
    ) -> None:
        self.wsdl = wsdl
        self.signer = signer
        self.voen = voen
        self.member = XRoadMember("AZ", "COM", voen, subsystem)
        self.trust = trust
        self.gateway = gateway
        self.timeout = timeout
        self._cache = InMemoryCache()  # the WSDL and schemas are fetched once, not per thread
        self._local = threading.local()

    # --- the per-thread zeep client -------------------------------------------------------

    def _client(self) -> tuple[Any, SigningPlugin]:
        client = getattr(self._local, "client", None)
        if client is None:
            plugin = SigningPlugin(self.signer, client=self.member, verify_with=self.trust,
                                   gateway=self.gateway)
            transport = Transport(cache=self._cache, timeout=self.timeout,
                                  operation_timeout=self.timeout)
            try:
                client = zeep.Client(self.wsdl, plugins=[plugin], transport=transport)
            except (requests.RequestException, OSError) as exc:
                raise TransportError(text("net.wsdl", url=self.wsdl, detail=exc)) from exc
            except Exception as exc:  # zeep raises many kinds for a bad WSDL: one sentence
                raise TransportError(text("net.wsdl", url=self.wsdl, detail=exc)) from exc
            self._local.client, self._local.plugin = client, plugin
        return client, self._local.plugin

    # --- calls ----------------------------------------------------------------------------

    def call(self, operation: str, **arguments: Any) -> Any:
        """A signed call with a fresh message id; returns the verified answer's body."""
        client, _plugin = self._client()
        try:
            answer = getattr(client.service, operation)(**arguments)
        except Exception as exc:  # every failure below is mapped to one of our errors
            raise _translate(exc, client.service._binding_options["address"]) from exc
        return _body(answer)

    def last_answer_signer(self) -> x509.Certificate | None:
        """The certificate that signed this thread's last verified answer (the gateway's)."""
        plugin = getattr(self._local, "plugin", None)
        verified = plugin.last_response if plugin is not None else None
        return verified.certificate if verified is not None else None

    def prepare(self, operation: str, message_id: str, **arguments: Any) -> PreparedRequest:
        """Build and sign ``operation`` under ``message_id`` without sending it."""
        client, plugin = self._client()
        binding = client.service._binding
        fresh_ids, plugin.message_ids = plugin.message_ids, lambda: message_id
        try:
            # zeep builds the envelope and runs the plugin (X-Road headers, signature) on it.
            _envelope, http_headers = binding._create(operation, (), arguments, client=client)
        except SigningError as exc:
            from gateway.client.card import card_error

            raise card_error(exc) from exc
        finally:
            plugin.message_ids = fresh_ids  # every other call gets a new id
        assert plugin.last_request is not None and plugin.last_message_id == message_id
        return PreparedRequest(operation, message_id, plugin.last_request,
                               {str(k): str(v) for k, v in http_headers.items()})

    def send(self, request: PreparedRequest) -> Any:
        """Post exactly ``request.body``; the verified answer's body, or one of our errors."""
        client, plugin = self._client()
        address = client.service._binding_options["address"]
        binding = client.service._binding
        # What the plugin checks an answer against is the request that was really sent.
        plugin.last_request, plugin.last_message_id = request.body, request.message_id
        try:
            response = client.transport.post(address, request.body, request.http_headers)
            answer = binding.process_reply(client, binding.get(request.operation), response)
        except Exception as exc:  # every failure below is mapped to one of our errors
            raise _translate(exc, address) from exc
        return _body(answer)


def _body(answer: Any) -> Any:
    # The WSDL declares the X-Road headers on answers too, so zeep answers {header, body}.
    values = getattr(answer, "__values__", None)
    if isinstance(values, dict) and set(values) == {"header", "body"}:
        return answer.body
    return answer


def _translate(exc: Exception, address: str) -> ClientError:
    if isinstance(exc, ClientError):
        return exc
    if isinstance(exc, zeep.exceptions.Fault):
        code = exc.code or "Server"
        code = code.split(":", 1)[1] if ":" in code else code
        correlation_id = None
        if exc.detail is not None:
            correlation_id = exc.detail.findtext(f".//{{{TNS}}}correlationId")
        return GatewayFault(fault_text(code, exc.message or ""), code=code,
                            server_message=exc.message or "", correlation_id=correlation_id)
    if isinstance(exc, VerificationError):
        return AnswerNotTrusted(text("answer.untrusted", code=exc.code, detail=exc.message),
                                code=exc.code)
    if isinstance(exc, SigningError):
        from gateway.client.card import card_error

        return card_error(exc)
    if isinstance(exc, requests.RequestException | OSError | zeep.exceptions.TransportError
                  | etree.XMLSyntaxError):
        return TransportError(text("net.unreachable", url=address, detail=exc))
    return TransportError(text("net.unreachable", url=address, detail=repr(exc)))
