"""What both simulators share: serving the authored WSDL, per-instance state, quiet faults.

Each simulator is one spyne application (built once per process) behind a small WSGI wrapper:

* ``GET <path>?wsdl`` answers the *authored* contract from ``wsdl/upstream/``, with its
  ``soap:address`` rewritten to the URL it was fetched from; spyne's generated WSDL is never
  served (the authored file is the contract, spyne's models mirror it);
* ``POST <path>`` goes to spyne, with this instance's state in the WSGI environ, so several
  simulators (one per test) can share one spyne application;
* anything else is 404 / 405.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.util import request_uri

from lxml import etree
from spyne import Fault

from gateway.wsgi_server import WsgiApp

__all__ = [
    "STATE_KEY",
    "ContractServingApp",
    "ScriptedFault",
    "install_fault_filter",
    "state_of",
]

STATE_KEY = "dsmf.simulator.state"
_WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
_MAX_REQUEST_BYTES = 256 * 1024


class ScriptedFault(Fault):  # type: ignore[misc]
    """A fault the simulator answers on purpose: not logged as a server error."""


class _DropScriptedFaults(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ScriptedFault):
            return False
        return not (isinstance(record.msg, ScriptedFault))


_FILTER = _DropScriptedFaults()


def install_fault_filter() -> None:
    """spyne logs every Fault with its traceback; scripted ones are expected, so drop those."""
    for name in ("spyne.application", "spyne.application.client", "spyne.application.server"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def state_of(ctx: Any) -> Any:
    """The simulator instance's state inside a spyne method (``ctx``: spyne's MethodContext)."""
    return ctx.transport.req_env[STATE_KEY]


def _local_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )


class ContractServingApp:
    """WSGI app: the authored WSDL on ``?wsdl``, SOAP POSTs to spyne with ``state`` attached."""

    def __init__(self, wsdl_path: Path, soap_app: WsgiApp, state: object, path: str) -> None:
        self._wsdl = etree.parse(str(wsdl_path), _local_parser())
        self._soap_app = soap_app
        self._state = state
        self.path = "/" + path.strip("/")

    def wsdl_for(self, address: str) -> bytes:
        """The authored WSDL with every ``soap:address/@location`` set to ``address``."""
        doc = copy.deepcopy(self._wsdl)
        for element in doc.iter(f"{{{_SOAP_NS}}}address"):
            element.set("location", address)
        return bytes(etree.tostring(doc, xml_declaration=True, encoding="UTF-8"))

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if environ.get("PATH_INFO", "/").rstrip("/") != self.path.rstrip("/"):
            return _plain(start_response, "404 Not Found", "no such endpoint\n")
        if method == "GET" and environ.get("QUERY_STRING", "").lower() in ("wsdl", "wsdl="):
            body = self.wsdl_for(request_uri(environ, include_query=False))
            start_response(
                "200 OK",
                [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if method != "POST":
            return _plain(start_response, "405 Method Not Allowed", "POST SOAP or GET ?wsdl\n")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_REQUEST_BYTES:
            return _plain(start_response, "413 Content Too Large", "request too large\n")
        environ[STATE_KEY] = self._state
        return self._soap_app(environ, start_response)


def _plain(start_response: Callable[..., Any], status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]
