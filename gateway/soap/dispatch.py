"""Calling spyne in-process on a Body that was already parsed, verified and validated.

spyne's own WSGI server would parse the request again from bytes and would see the whole,
untrusted envelope. Here spyne gets only the payload element taken from the *signed* Body, so
it deserialises exactly what was verified ("act only on what was signed"), and the XML is parsed
once. Errors raised by our operation code pass through spyne unchanged (spyne would otherwise
wrap them in its own InternalError and lose the fault code).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from lxml import etree
from spyne import MethodContext
from spyne.descriptor import BODY_STYLE_BARE
from spyne.server import ServerBase

from gateway.domain.errors import GatewayError, InternalError
from gateway.soap.reader import RequestReader
from gateway.soap.writer import AnswerWriter

#: The operations whose requests and answers are worth reading and writing without spyne's
#: generic machinery (issue #10): the signed request path's two hot ones. Every other request
#: and answer is spyne's.
HOT_OPERATIONS = ("FindPerson", "SubmitRegistration")


class Scope(Protocol):
    """What the spyne service methods call: ``ctx.udc.dispatch(name, request)``."""

    error: BaseException | None

    def dispatch(self, operation: str, request: Any) -> Any: ...


class SpyneDispatcher:
    def __init__(self, application: Any, hot_operations: Iterable[str] = HOT_OPERATIONS) -> None:
        self._server = ServerBase(application)
        self._protocol = application.in_protocol
        self._out = application.out_protocol
        interface = application.interface
        tns = interface.get_tns()
        descriptors = [
            descriptor
            for name in hot_operations
            for descriptor in interface.service_method_map.get(f"{{{tns}}}{name}", ())
            if descriptor.body_style is BODY_STYLE_BARE
        ]
        self.reader = RequestReader(self._protocol, [d.in_message for d in descriptors])
        self.writer = AnswerWriter(self._out, [d.out_message for d in descriptors],
                                   interface.nsmap, tns)

    def call(self, payload: etree._Element, scope: Scope) -> etree._Element:
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
        self._out.serialize(ctx, message=self._out.RESPONSE)
        if ctx.out_error is not None:
            raise InternalError(f"response cannot be serialised: {ctx.out_error!r}")
        body = ctx.out_body_doc
        response: etree._Element = body[0]
        return response
