"""The embedded HTTP/1.1 server: ``serve`` (the embedded default), the simulators, test peers.

It is cheroot (CherryPy's WSGI server) with a pool of worker threads: HTTP/1.1 keep-alive
(idle connections wait in a selector, not in a worker), chunked request bodies handed to the
application as a terminated ``wsgi.input`` (``wsgi.input_terminated``, as gunicorn does), and
no reverse DNS lookups. The listening socket is bound before :func:`serve_in_thread` returns,
so callers can connect at once without sleeping or polling.

Request bodies are capped at ``max_body_bytes`` by the server itself, before the application:
a declared ``Content-Length`` above the cap is answered ``413`` without reading it, and a chunked
body stops being read there. Applications with their own, smaller limit (the gateway's
``max_message_bytes``) answer bodies between the two themselves; the cap only bounds what a
request can make the server read and hold (cheroot reads a chunk whole, so without a cap one
chunk header could announce gigabytes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cheroot import wsgi as cheroot_wsgi
from cheroot.workers import threadpool

__all__ = ["DEFAULT_MAX_BODY_BYTES", "RunningServer", "WsgiApp", "body_cap", "serve_in_thread"]

_log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: The server's own cap on a request body, for applications that do not name one.
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


def body_cap(message_limit: int) -> int:
    """The server cap for an application that refuses bodies over ``message_limit`` itself:
    room for chunk framing above the limit, so the application's own refusal (a SOAP fault)
    answers every body a reasonable client chunks, and the server's 413 only the absurd."""
    return 2 * message_limit + 64 * 1024


class _Gateway(cheroot_wsgi.Gateway_10):  # type: ignore[misc]
    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Any:
        # An application may answer before reading a chunked body to its end (a refusal of an
        # oversize body does). What is left of it would be parsed as the next request on this
        # connection, so the connection closes after this answer ("Connection: close").
        # Bodies with a Content-Length are drained by cheroot itself, bounded by the cap.
        req = self.req
        if req.chunked_read and not getattr(req.rfile, "closed", True):
            req.close_connection = True
        return super().start_response(status, headers, exc_info)

    def respond(self) -> None:
        super().respond()
        # A chunked body read to its last chunk still has its trailer section on the wire (at
        # least the final CRLF); cheroot leaves it there, so the kept-alive connection looks
        # readable and a worker waits on it for a next request up to the idle timeout. Enough
        # such clients would hold every worker: read the trailer now, or close.
        req = self.req
        rfile = req.rfile
        if req.chunked_read and not req.close_connection and getattr(rfile, "closed", False):
            try:
                for _line in rfile.read_trailer_lines():
                    pass
            except (ValueError, OSError):
                req.close_connection = True


class _DaemonThreadPool(threadpool.ThreadPool):  # type: ignore[misc]
    # Workers are daemon threads, like the serving thread: a server never stopped (a failed
    # start, a test that forgot) must not keep the process from exiting.
    def _spawn_worker(self) -> threadpool.WorkerThread:
        worker = threadpool.WorkerThread(self.server)
        worker.name = f"http-worker-{worker.name}"
        worker.daemon = True
        worker.start()
        return worker


class _Server(cheroot_wsgi.Server):  # type: ignore[misc]
    def error_log(self, msg: str = "", level: int = 20, traceback: bool = False) -> None:
        # cheroot prints to stderr; a client hanging up mid-request is not worth more than debug.
        _log.debug("%s", msg, exc_info=traceback)


@dataclass
class RunningServer:
    """A WSGI server serving in a daemon thread until :meth:`stop`."""

    host: str
    port: int
    _server: _Server
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def stop(self, timeout: float = 1.0) -> None:
        """Stops accepting connections and closes the socket and the idle kept-alive ones;
        workers get ``timeout`` seconds to finish, then their connections are shut down (a
        worker may be waiting for the next request line of a client that keeps its connection
        open: that is not worth waiting the whole idle timeout for)."""
        self._server.shutdown_timeout = timeout
        self._server.stop()
        self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(
    app: WsgiApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    threads: int = 10,
    idle_timeout: int = 10,
) -> RunningServer:
    """Binds ``host:port`` (port 0: any free port) and serves ``app`` in a daemon thread.

    ``threads`` workers answer requests; ``idle_timeout`` is how long a kept-alive connection
    (or a slow client) may stay silent before it is closed.
    """
    server = _Server(
        (host, port), app, numthreads=threads, timeout=idle_timeout,
        request_queue_size=128,  # the listen backlog; cheroot's default of 5 is small for bursts
        server_name="dsmf-embedded",
    )
    server.gateway = _Gateway
    server.requests = _DaemonThreadPool(server, min=threads, max=-1)
    server.max_request_body_size = max_body_bytes
    # How often the connection loop wakes to expire idle connections; stop() waits for it.
    server.expiration_interval = 0.1
    server.prepare()  # binds and listens: connections are accepted from here on
    bound_port = int(server.bind_addr[1])
    thread = threading.Thread(target=server.serve, name=f"http-{host}:{bound_port}",
                              daemon=True)
    thread.start()
    return RunningServer(host=host, port=bound_port, _server=server, _thread=thread)
