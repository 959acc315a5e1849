"""Calling spyne in-process on a Body that was already parsed, verified and validated.

spyne's own WSGI server would parse the request again from bytes and would see the whole,
untrusted envelope. Here spyne gets only the payload element taken from the *signed* Body, so
it deserialises exactly what was verified ("act only on what was signed"), and the XML is parsed
once. Errors raised by our operation code pass through spyne unchanged (spyne would otherwise
wrap them in its own InternalError and lose the fault code).

The hot operations (``HOT_OPERATIONS``) whose request the compiled reader reads skip spyne's
per-call machinery altogether (issue #10: MethodContext, the call handles, ``get_out_object``,
``call_wrapper`` and its events, about a third of spyne's share of a FindPerson): the service
method itself (``InsuredRegistrationService.FindPerson``, which hands the request to
``ctx.udc.dispatch``) is called with a context that carries only ``udc``, as spyne calls it;
an error it raises propagates as it is, which is what the spyne path does too (it re-raises
``scope.error``). No event listener is registered on the application or the service (they
would not run on this path); an answer the writer does not write goes through spyne's
serializer as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from lxml import etree
from spyne import MethodContext
from spyne.descriptor import BODY_STYLE_BARE
from spyne.server import ServerBase
from spyne.service import ServiceBase

from gateway.domain.errors import GatewayError, InternalError
from gateway.soap.reader import RequestReader
from gateway.soap.writer import AnswerWriter

#: The operations whose requests and answers are worth reading and writing without spyne's
#: generic machinery (issue #10): the signed request path's two hot ones. Every other request
#: and answer is spyne's.
HOT_OPERATIONS = ("FindPerson", "SubmitRegistration")


_PLAIN_CALL_WRAPPER = ServiceBase.call_wrapper.__func__  # type: ignore[attr-defined]


class Scope(Protocol):
    """What the spyne service methods call: ``ctx.udc.dispatch(name, request)``."""

    error: BaseException | None

    def dispatch(self, operation: str, request: Any) -> Any: ...


class _CallContext:
    """What a service method reads of its context: ``udc`` (the request scope), nothing else."""

    __slots__ = ("udc",)

    def __init__(self, udc: Scope) -> None:
        self.udc = udc


class SpyneDispatcher:
    def __init__(self, application: Any, hot_operations: Iterable[str] = HOT_OPERATIONS) -> None:
        self._server = ServerBase(application)
        self._protocol = application.in_protocol
        self._out = application.out_protocol
        interface = application.interface
        tns = interface.get_tns()
        # spyne finds a request's method by the payload's tag in service_method_map.
        by_tag = [
            (tag, descriptor)
            for tag in (f"{{{tns}}}{name}" for name in hot_operations)
            for descriptor in interface.service_method_map.get(tag, ())
            if descriptor.body_style is BODY_STYLE_BARE
        ]
        descriptors = [descriptor for _, descriptor in by_tag]
        self.reader = RequestReader(self._protocol, [d.in_message for d in descriptors])
        self.writer = AnswerWriter(self._out, [d.out_message for d in descriptors],
                                   interface.nsmap, tns)
        # The payload's tag → its descriptor, for the hot operations whose service method spyne
        # calls plainly: a bare @rpc method of a service class (no @mrpc, no header, no
        # custom call_wrapper) with a context, whose request the reader reads, and no event
        # listener (spyne fires method_call / method_return_object around the call).
        self._direct: dict[str, Any] = {
            tag: descriptor
            for tag, descriptor in by_tag
            if len(interface.service_method_map[tag]) == 1
            and descriptor.in_message in self.reader.messages
            and descriptor.no_self and not descriptor.no_ctx
            and descriptor.in_header is None and descriptor.function is not None
            and descriptor.service_class is not None
            and descriptor.service_class.call_wrapper.__func__ is _PLAIN_CALL_WRAPPER
            and not application.event_manager.handlers
            and not any(manager.handlers for manager in descriptor.event_managers)
        }

    @property
    def direct_operations(self) -> frozenset[str]:
        """The payload tags whose service method is called without spyne's machinery."""
        return frozenset(self._direct)

    def call(self, payload: etree._Element, scope: Scope) -> etree._Element:
        descriptor = self._direct.get(payload.tag)  # type: ignore[arg-type]
        if descriptor is not None:
            read = self.reader.read(descriptor.in_message, payload)
            if read is not None:
                try:
                    result = descriptor.function(_CallContext(scope), read)
                except Exception as exc:
                    if scope.error is exc:
                        raise  # the operation's own error, as the spyne path re-raises it
                    raise InternalError(f"operation failed: {exc!r}") from exc
                written = self.writer.write(descriptor.out_message, result)
                if written is not None:
                    return written
                return self._serialize(descriptor, result)
        return self._call_through_spyne(payload, scope)

    def _serialize(self, descriptor: Any, result: Any) -> etree._Element:
        """An answer the writer does not write, by spyne's serializer (as ``get_out_object``
        leaves it: a bare method's result in a one-element list)."""
        ctx = MethodContext(self._server, MethodContext.SERVER)
        ctx.descriptor = descriptor
        ctx.out_object = [result]
        return self._spyne_writes(ctx)

    def _call_through_spyne(self, payload: etree._Element, scope: Scope) -> etree._Element:
        ctx = MethodContext(self._server, MethodContext.SERVER)
        ctx.udc = scope
        ctx.in_document = payload
        ctx.in_header_doc = None
        ctx.in_body_doc = payload
        ctx.method_request_string = payload.tag
        handles = self._protocol.get_call_handles(ctx)
        if not handles:
            raise GatewayError("unknown operation", code="Client.Operation.Unknown")
        ctx.descriptor = handles[0]
        read = self.reader.read(ctx.descriptor.in_message, payload)
        if read is not None:
            ctx.in_object = read  # what spyne's deserialize would have set
        else:
            self._server.get_in_object(ctx)
        if ctx.in_error is not None:
            raise GatewayError(
                f"request cannot be read: {getattr(ctx.in_error, 'faultstring', ctx.in_error)}",
                code="Client.Validation.Schema", field=etree.QName(payload).localname,
                params={"rule": "other"},
            )
        self._server.get_out_object(ctx)
        if scope.error is not None:
            raise scope.error
        if ctx.out_error is not None:
            raise InternalError(f"operation failed: {ctx.out_error!r}")
        written = self.writer.write(ctx.descriptor.out_message, ctx.out_object[0])
        if written is not None:
            return written
        return self._spyne_writes(ctx)

    def _spyne_writes(self, ctx: Any) -> etree._Element:
        self._out.serialize(ctx, message=self._out.RESPONSE)
        if ctx.out_error is not None:
            raise InternalError(f"response cannot be serialised: {ctx.out_error!r}")
        body = ctx.out_body_doc
        response: etree._Element = body[0]
        return response
