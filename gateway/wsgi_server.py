"""The embedded HTTP/1.1 server: ``serve`` (the embedded default), the simulators, test peers.

It is waitress (the Pylons project's WSGI server): one I/O thread reads and writes every
connection, and a pool of worker threads runs the application only on requests that have
arrived whole. That shape is why it was chosen over cheroot, whose worker threads also wait on
kept-alive connections: with more clients than workers a request could wait for another
connection's idle timeout (cherrypy/cherrypy#1764), which is what we saw under CPU load.

* HTTP/1.1 keep-alive; a connection silent for ``idle_timeout`` seconds is closed.
* Chunked request bodies are de-chunked by the server and reach the application with a
  ``Content-Length``; slow clients (slowloris) cost a buffer in the I/O thread, not a worker.
* Request bodies are capped at ``max_body_bytes`` by the server itself, before the application:
  a declared ``Content-Length`` above the cap is answered ``413`` without reading it, and a
  chunked body is refused once it passes the cap. Applications with their own, smaller limit
  (the gateway's ``max_message_bytes``) answer bodies between the two themselves.
* Request heads are bounded (``max_header_bytes``), open connections too (``max_connections``).
* What the server refuses itself (broken chunk framing, a body past the cap, a transfer coding
  it does not know) is answered by ``on_http_error`` when given: the gateway answers with its
  SOAP fault, in the client's language, and logs the exchange like any other refusal. The
  connection closes after such an answer, as the rest of the stream cannot be trusted.
* The listening socket is bound before :func:`serve_in_thread` returns, so callers can connect
  at once without sleeping or polling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask

__all__ = [
    "DEFAULT_MAX_BODY_BYTES", "HttpErrorAnswer", "RunningServer", "WsgiApp", "body_cap",
    "serve_in_thread",
]

_log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
#: ``(status code, the server's reason, a CGI-style environ of the request's headers)`` ->
#: ``(status line, headers, body)``.
HttpErrorAnswer = Callable[[int, str, dict[str, Any]], tuple[str, list[tuple[str, str]], bytes]]

# The refusals an HTTP error handler answers; others (431: a head too large, 500) keep
# waitress's plain text page.
_ANSWERED_CODES = frozenset({400, 413, 501})

#: The server's own cap on a request body, for applications that do not name one.
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
#: A request line plus headers; SOAP clients send well under 8 kB.
DEFAULT_MAX_HEADER_BYTES = 64 * 1024


def body_cap(message_limit: int) -> int:
    """The server cap for an application that refuses bodies over ``message_limit`` itself:
    room above the limit, so the application's own refusal (a SOAP fault) answers every body a
    reasonable client sends, and the server's 413 only the absurd."""
    return 2 * message_limit + 64 * 1024


class _ErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress's answer to a request it refused itself, given by the server's handler."""

    def execute(self) -> None:
        handler: HttpErrorAnswer | None = getattr(self.channel.server, "dsmf_on_http_error", None)
        error = self.request.error
        if handler is None or error.code not in _ANSWERED_CODES:
            super().execute()
            return
        environ = {f"HTTP_{name}": value for name, value in self.request.headers.items()
                   if name not in ("CONTENT_LENGTH", "CONTENT_TYPE")}
        try:
            status, headers, body = handler(error.code, str(error.body), environ)
        except Exception:  # noqa: BLE001 - a failing handler must still leave an answer
            _log.exception("HTTP error handler failed for %s", error.code)
            super().execute()
            return
        self.status = status
        self.response_headers.extend(
            (name, value) for name, value in headers if name.lower() != "content-length")
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):  # type: ignore[misc]
    error_task_class = _ErrorTask


@dataclass
class RunningServer:
    """A WSGI server serving in a daemon thread until :meth:`stop`."""

    host: str
    port: int
    _server: BaseWSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def stop(self, timeout: float = 1.0) -> None:
        """Closes the listening socket and every connection, kept-alive or not; requests the
        workers are running get ``timeout`` seconds to finish."""
        server = self._server
        done = threading.Event()

        def close_everything() -> None:
            # Runs in the I/O thread (the trigger's thunk), so no connection is touched by two
            # threads at once; with the socket map empty the I/O loop returns.
            try:
                wasyncore.close_all(server._map)
            finally:
                done.set()

        if self._thread.is_alive():
            server.trigger.pull_trigger(close_everything)
            done.wait(timeout)
        self._thread.join(timeout)
        if self._thread.is_alive():  # the loop did not answer: close from here
            wasyncore.close_all(server._map)
        server.task_dispatcher.shutdown(timeout=timeout)

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
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    threads: int = 10,
    idle_timeout: int = 10,
    max_connections: int = 1000,
    on_http_error: HttpErrorAnswer | None = None,
) -> RunningServer:
    """Binds ``host:port`` (port 0: any free port) and serves ``app`` in a daemon thread.

    ``threads`` workers run the application; ``idle_timeout`` is how long a kept-alive
    connection (or a slow client) may stay silent before it is closed; beyond
    ``max_connections`` open connections new ones wait in the listen backlog.
    """
    server = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        channel_timeout=idle_timeout,
        # How often idle connections are looked for: a fraction of the timeout, or they live
        # up to the default 30 s past it.
        cleanup_interval=max(1, idle_timeout // 2),
        max_request_body_size=max_body_bytes,
        max_request_header_size=max_header_bytes,
        connection_limit=max_connections,
        backlog=128,
        # poll(), not select(): select() cannot watch descriptors numbered above 1023.
        asyncore_use_poll=True,
        ident="dsmf-embedded",
        # An error page names the exception class only; the traceback goes to our log.
        expose_tracebacks=False,
        # Nothing stands in front of the embedded server: no proxy header is believed.
        clear_untrusted_proxy_headers=True,
    )
    assert isinstance(server, BaseWSGIServer)  # one listen address: one server, not several
    server.channel_class = _Channel
    server.dsmf_on_http_error = on_http_error
    bound_port = int(server.effective_port)
    thread = threading.Thread(target=server.run, name=f"http-{host}:{bound_port}", daemon=True)
    thread.start()
    return RunningServer(host=host, port=bound_port, _server=server, _thread=thread)

