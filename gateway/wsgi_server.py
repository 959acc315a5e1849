"""A small threaded WSGI server for loopback use: simulators, test peers, the embedded demo.

Not for production traffic (that is gunicorn's job): it is the standard library's ``wsgiref``
with one daemon thread per connection, no request logging and no reverse DNS lookups. The
listening socket is bound before :func:`serve_in_thread` returns, so callers can connect at
once without sleeping or polling.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

__all__ = ["RunningServer", "WsgiApp", "serve_in_thread"]

_log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.client_address[0], *args)

    def address_string(self) -> str:
        return str(self.client_address[0])  # never a reverse DNS lookup


class _ThreadingWsgiServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can stall for seconds.
        # socketserver.TCPServer.server_bind binds; the rest is what WSGIServer needs.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("error while serving %s", client_address, exc_info=True)


def _server_class(host: str) -> type[_ThreadingWsgiServer]:
    if ":" not in host:
        return _ThreadingWsgiServer

    class _V6(_ThreadingWsgiServer):
        address_family = socket.AF_INET6

    return _V6


@dataclass
class RunningServer:
    """A WSGI server serving in a daemon thread until :meth:`stop`."""

    host: str
    port: int
    _server: _ThreadingWsgiServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def stop(self, timeout: float = 5.0) -> None:
        """Stops accepting connections and closes the socket; in-flight requests are abandoned."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(app: WsgiApp, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Binds ``host:port`` (port 0: any free port) and serves ``app`` in a daemon thread."""
    server = _server_class(host)((host, port), _QuietHandler)
    server.set_app(app)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name=f"wsgi-{host}:{server.server_port}",
        daemon=True,
    )
    thread.start()
    return RunningServer(host=host, port=server.server_port, _server=server, _thread=thread)
