"""The zeep/requests edge shared by the upstream clients.

* :func:`zeep_settings` -- strict parsing, no huge trees, no DTDs, entities or external
  references;
* :class:`BoundedTransport` -- a zeep transport over a small pool of kept-alive ``http.client``
  connections per peer address, with separate connect/read timeouts, a deadline for the whole
  answer (a peer that drips bytes cannot hold a worker), a cap on the answer's size, no
  redirects, proxies, compression or retries, and contracts loaded from local files only: the
  WSDL is ours, never fetched from the peer;
* :func:`load_client` -- a zeep client from a local WSDL, bound to the configured endpoint;
* :class:`PreparedCall` -- one operation's request as zeep builds it, built once, each call
  filling its values into a copy (the hot registry lookup);
* :func:`translate` -- any zeep/requests/lxml exception → the most specific
  :mod:`gateway.upstream.errors` error; SOAP faults go through a service-specific mapper first.
"""

from __future__ import annotations

import copy
import http.client
import io
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.wsdl.utils import etree_to_string

from gateway.upstream.errors import (
    UpstreamConfigurationError,
    UpstreamError,
    UpstreamFault,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = [
    "BoundedTransport",
    "FaultMapper",
    "PreparedCall",
    "check_endpoint",
    "fault_detail",
    "load_client",
    "translate",
    "zeep_settings",
]

DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
_MAX_ROUTES = 8

#: Maps a SOAP fault to a specific error, or returns None for "no better name than a fault".
FaultMapper = Callable[[zeep.exceptions.Fault], UpstreamError | None]


def zeep_settings() -> zeep.Settings:
    return zeep.Settings(
        strict=True,
        xml_huge_tree=False,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )


class _ResponseTooLarge(requests.exceptions.RequestException):
    pass


class _UnsupportedEncoding(requests.exceptions.RequestException):
    """The answer is compressed or otherwise encoded although we asked for none."""


class _Route:
    """One peer address: where to connect, what to ask for, and its idle kept-alive
    connections (most recently used last)."""

    __slots__ = ("host", "idle", "lock", "path", "port", "tls")

    def __init__(self, address: str) -> None:
        parsed = urlparse(address)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise UpstreamConfigurationError(f"cannot post to {address!r}: not an http(s) URL")
        self.tls = parsed.scheme == "https"
        self.host = parsed.hostname
        try:
            self.port = parsed.port or (443 if self.tls else 80)
        except ValueError as exc:
            raise UpstreamConfigurationError(f"cannot post to {address!r}: {exc}") from exc
        self.path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
        self.idle: list[_Connection] = []
        self.lock = threading.Lock()


class _Connection:
    """A kept-alive HTTP connection, the poller that tells whether its peer closed it, and the
    deadline of the answer being read on it.

    The answer is read through :class:`_DeadlineReader` (http.client asks its "socket" for a
    file to read the answer from: this object is that socket), so the deadline holds from the
    status line on: a peer that drips its headers meets it as one that drips its body does."""

    __slots__ = ("deadline", "http", "poller")

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        assert conn.sock is not None
        self.http = conn
        self.deadline = 0.0
        self.poller = select.poll()
        self.poller.register(conn.sock, select.POLLIN)
        conn.response_class = cast(Any, self._response)

    def _response(self, sock: socket.socket, debuglevel: int = 0, method: str | None = None,
                  url: str | None = None) -> http.client.HTTPResponse:
        return _FinalResponse(cast(Any, _AnswerSource(sock, self)), debuglevel, method, url)

    def close(self) -> None:
        self.http.close()


class _FinalResponse(http.client.HTTPResponse):
    """The final answer to the request. http.client skips only ``100 Continue`` and would take
    any other interim answer (``102 Processing``, ``103 Early Hints``) for the final one: an
    empty answer, and the connection back in the pool with the real answer still to come, for
    the next call (another person's lookup) to read as its own. Interim answers are skipped
    here, each with its headers, within the call's deadline; ``101`` (we never ask to switch
    protocols) ends the exchange as an error."""

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if status == http.client.SWITCHING_PROTOCOLS:
                raise http.client.HTTPException("the peer switched protocols unasked")
            if status == http.client.CONTINUE or not 100 <= status < 200:
                return version, status, reason  # 100: begin() skips it as before
            http.client._read_headers(self.fp)  # type: ignore[attr-defined]


class _AnswerSource:
    """What ``HTTPResponse`` asks of its socket: a file to read the answer from."""

    __slots__ = ("connection", "sock")

    def __init__(self, sock: socket.socket, connection: _Connection) -> None:
        self.sock = sock
        self.connection = connection

    def makefile(self, mode: str) -> io.BufferedReader:
        # The socket's own unbuffered file keeps the socket open while the answer is read
        # even after http.client closes the connection (it does when the peer will close).
        return io.BufferedReader(_DeadlineReader(self.sock.makefile("rb", buffering=0),
                                                 self.connection))


class _DeadlineReader(io.RawIOBase):
    """The socket as an answer is read from it: no read starts after the call's deadline, and
    each waits at most the read timeout (the socket's)."""

    def __init__(self, raw: Any, connection: _Connection) -> None:
        self._raw = raw
        self._connection = connection

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if time.monotonic() > self._connection.deadline:
            raise requests.exceptions.ReadTimeout("answer not complete before deadline")
        return int(self._raw.readinto(buffer))

    def close(self) -> None:
        self._raw.close()
        super().close()


#: What a kept-alive connection the peer closed looks like when it is used: the send fails, or
#: the answer ends before its status line. Timeouts are not among them (a slow peer is not a
#: stale connection).
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
          ConnectionAbortedError)


class BoundedTransport(zeep.Transport):  # type: ignore[misc]
    """zeep transport with connect/read timeouts, a whole-answer deadline and a size cap.

    Posts go over a small pool of kept-alive ``http.client`` connections per peer address
    (thread-safe), not through ``requests`` or urllib3: requests' per-call session merging,
    hooks and cookie handling, and then urllib3's own request machinery (retry and timeout
    objects, header dicts, its response wrapper), cost more CPU than the exchange itself
    (issue #10). No proxies from the environment, no redirects, no compression, no retries
    here (the caller's ``Resilience`` decides) but one: a kept-alive connection the peer closed
    while it was idle is noticed before reuse and, if the peer closes it in the moment between,
    the request is sent once more on a fresh connection when ``resend_stale`` allows it.
    Errors become the ``requests`` errors :func:`translate` knows, as requests would have
    raised them. HTTPS verifies the peer's certificate and host name against the system's
    trust store (``ssl.create_default_context``, TLS 1.2 at least, as urllib3 did)."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        pool_size: int = 8,
        resend_stale: bool = False,
    ) -> None:
        session = requests.Session()
        session.trust_env = False  # zeep's own session: used for nothing but its defaults
        super().__init__(
            timeout=read_timeout,
            operation_timeout=(connect_timeout, read_timeout),
            session=session,
        )
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_response_bytes = max_response_bytes
        self.pool_size = pool_size
        self.resend_stale = resend_stale
        self._tls_context: ssl.SSLContext | None = None
        # One route per peer address, found by a dict lookup (no URL parsing per post). A
        # transport serves the one service address its client is bound to; the bound below
        # only stops a misconfiguration from growing it.
        self._routes: dict[str, _Route] = {}
        self._routes_lock = threading.Lock()

    def _route(self, address: str) -> _Route:
        route = self._routes.get(address)
        if route is not None:
            return route
        with self._routes_lock:
            route = self._routes.get(address)
            if route is None:
                if len(self._routes) >= _MAX_ROUTES:
                    raise UpstreamConfigurationError(
                        f"a transport posts to at most {_MAX_ROUTES} addresses")
                route = _Route(address)
                if route.tls and self._tls_context is None:
                    self._tls_context = _tls_context()
                self._routes[address] = route
            return route

    def post(self, address: str, message: bytes | str, headers: dict[str, str]) -> Any:
        deadline = time.monotonic() + self.connect_timeout + self.read_timeout
        body = message.encode() if isinstance(message, str) else message
        headers = {"User-Agent": "dsmf-gateway", **headers}
        route = self._route(address)
        conn = self._checkout(route)
        reused = conn is not None
        response: http.client.HTTPResponse | None = None
        try:
            if conn is None:
                conn = self._connect(route)
            try:
                response = _exchange(conn, deadline, route.path, body, headers)
            except _STALE:
                # The peer closed a kept-alive connection between our check and our request
                # (an idle timeout racing us): the send failed, or the connection ended before
                # a whole status line came back, so no answer was read. Sent again, once, only
                # when resend_stale says the operations on this transport are read-only
                # lookups (the population registry's): there a second request changes nothing
                # even if the peer did see the first, while an error would fail an honest call
                # and count against the circuit breaker. Not for a service where a request
                # starts something (a mobile signature). A fresh connection that fails is an
                # error like any other.
                if not (reused and self.resend_stale):
                    raise
                conn.close()
                conn = None
                conn = self._connect(route)
                response = _exchange(conn, deadline, route.path, body, headers)
            content = self._read_body(response)
        except BaseException as exc:
            # Never reuse a connection whose exchange did not end cleanly (the response holds
            # the socket when the peer said it would close).
            if response is not None:
                response.close()
            if conn is not None:
                conn.close()
            if isinstance(exc, requests.exceptions.RequestException):
                raise  # ours already (requests' errors are OSErrors too)
            if isinstance(exc, OSError | http.client.HTTPException):
                raise _as_requests_error(exc) from exc
            raise
        if response.will_close or conn.http.sock is None:
            conn.close()
        else:
            self._checkin(route, conn)
        if response.status >= 300 and not _is_soap_envelope(content):
            # A proxy's error page, not the peer's SOAP answer; zeep would call it a "Fault".
            raise zeep.exceptions.TransportError(
                f"HTTP {response.status} without a SOAP envelope",
                status_code=response.status,
            )
        return _Answer(response.status, content, response.headers)

    def _checkout(self, route: _Route) -> _Connection | None:
        """A kept-alive connection the peer has not closed, if there is one."""
        while True:
            with route.lock:
                if not route.idle:
                    return None
                conn = route.idle.pop()
            # An idle HTTP connection has nothing to read: if it is readable, the peer closed
            # it (or sent what no request asked for). Either way it is not reused.
            if not conn.poller.poll(0):
                return conn
            conn.close()

    def _checkin(self, route: _Route, conn: _Connection) -> None:
        with route.lock:
            if len(route.idle) < self.pool_size:
                route.idle.append(conn)
                return
        conn.close()  # as many as pool_size are kept; more were only for a burst

    def _connect(self, route: _Route) -> _Connection:
        conn: http.client.HTTPConnection
        if route.tls:
            conn = http.client.HTTPSConnection(route.host, route.port,
                                               timeout=self.connect_timeout,
                                               context=self._tls_context)
        else:
            conn = http.client.HTTPConnection(route.host, route.port,
                                              timeout=self.connect_timeout)
        conn.auto_open = 0  # a closed connection is an error here, never a silent reconnect
        try:
            conn.connect()  # TCP (and the TLS handshake) within the connect timeout
            assert conn.sock is not None
            conn.sock.settimeout(self.read_timeout)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, ssl.SSLError | ssl.CertificateError):
                raise requests.exceptions.SSLError(str(exc)) from exc
            if isinstance(exc, TimeoutError):
                raise requests.exceptions.ConnectTimeout(str(exc)) from exc
            if isinstance(exc, OSError):
                raise requests.exceptions.ConnectionError(str(exc)) from exc
            raise
        return _Connection(conn)

    def _read_body(self, response: http.client.HTTPResponse) -> bytes:
        encoding = response.getheader("Content-Encoding", "identity").strip().lower()
        if encoding not in ("identity", ""):
            # We send no Accept-Encoding but identity; anything else would be parsed as garbage.
            raise _UnsupportedEncoding(f"answer in Content-Encoding {encoding!r}")
        if response.length is not None and response.length > self.max_response_bytes:
            raise _ResponseTooLarge(f"answer declares {response.length} bytes,"
                                    f" more than {self.max_response_bytes}")
        chunks: list[bytes] = []
        size = 0
        while True:
            # read1 returns what has arrived, so a peer that drips bytes meets the deadline
            # (checked by the _DeadlineReader before each read from the socket).
            chunk = response.read1(64 * 1024)
            if not chunk:
                if response.length:  # http.client's read1 ends a cut-off answer quietly
                    raise http.client.IncompleteRead(b"".join(chunks), response.length)
                response.close()  # read to its end: the connection may carry the next one
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_response_bytes:
                raise _ResponseTooLarge(f"answer larger than {self.max_response_bytes} bytes")
            chunks.append(chunk)

    def load(self, url: str) -> bytes:
        """Contracts come from local files only, never from the network."""
        parsed = urlparse(url)
        if parsed.scheme not in ("", "file"):
            raise UpstreamConfigurationError(f"refusing to fetch {url}: contracts are local")
        return Path(parsed.path if parsed.scheme == "file" else url).read_bytes()


def _exchange(conn: _Connection, deadline: float, path: str, body: bytes,
              headers: dict[str, str]) -> http.client.HTTPResponse:
    conn.deadline = deadline
    conn.http.request("POST", path, body=body, headers=headers)  # never follows a redirect
    return conn.http.getresponse()


def _tls_context() -> ssl.SSLContext:
    """What urllib3 used by default: the system's trust store, certificate and host name
    verified, TLS 1.2 at least, no compression, no session tickets."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_TICKET
    context.hostname_checks_common_name = False
    return context


class _Answer:
    """What zeep reads of an HTTP answer (``requests.Response``'s names)."""

    __slots__ = ("content", "headers", "status_code")
    encoding = None

    def __init__(self, status: int, content: bytes, headers: Any) -> None:
        self.status_code = status
        self.content = content
        self.headers = headers  # http.client's HTTPMessage: case-insensitive, as zeep expects


def _as_requests_error(exc: OSError | http.client.HTTPException,
                       ) -> requests.exceptions.RequestException:
    """The error ``requests`` raises for a failure once connected, for :func:`translate`."""
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return requests.exceptions.SSLError(str(exc))
    if isinstance(exc, TimeoutError):  # connected, the answer did not come in time
        return requests.exceptions.ReadTimeout(str(exc))
    return requests.exceptions.ConnectionError(str(exc))  # reset, cut off, not HTTP


_SOAP_ENVELOPES = frozenset(
    {
        "{http://schemas.xmlsoap.org/soap/envelope/}Envelope",
        "{http://www.w3.org/2003/05/soap-envelope}Envelope",
    }
)


def _is_soap_envelope(body: bytes) -> bool:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        return etree.fromstring(body, parser).tag in _SOAP_ENVELOPES
    except etree.LxmlError:
        return False


def check_endpoint(endpoint: str) -> str:
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UpstreamConfigurationError(f"upstream endpoint must be an http(s) URL: {endpoint!r}")
    return endpoint


def load_client(wsdl_path: Path, transport: BoundedTransport) -> zeep.Client:
    try:
        return zeep.Client(str(wsdl_path), transport=transport, settings=zeep_settings())
    except (OSError, zeep.exceptions.Error, etree.LxmlError) as exc:
        raise UpstreamConfigurationError(f"cannot load {wsdl_path}: {exc}") from exc


class PreparedCall:
    """One operation's request as zeep builds it, built once; each call fills its values into a
    copy of it.

    zeep is still the door: at start-up it builds the operation's envelope and HTTP headers
    from the contract, exactly as its service proxy would send them, with a unique marker as
    each value. A client that adds per-message headers (WS-Security, plugins, WS-Addressing)
    is refused: those must be new on every call. A call copies that
    envelope, sets each value as the text of the element that held its marker (lxml escapes
    it when serialising) and posts it through the client's transport, as zeep's own send would
    (issue #10: zeep's per-call proxy, binding and serialisation cost more CPU than the HTTP
    exchange). Only string values that zeep writes as element text can be prepared: anything
    else (a marker zeep transformed, put in an attribute, or wrote twice) is refused when
    preparing, so a prepared call never sends what zeep would not have sent."""

    __slots__ = ("_slots", "_template", "_transport", "address", "headers", "operation")

    def __init__(self, client: zeep.Client, service: Any, operation: str,
                 fields: Sequence[str]) -> None:
        self.operation = operation
        try:
            found = service._binding.get(operation)
        except (zeep.exceptions.Error, ValueError) as exc:
            raise UpstreamConfigurationError(f"cannot prepare {operation}: {exc}") from exc
        if client.wsse or client.plugins or (found is not None and found.abstract.wsa_action):
            # What these add (a Timestamp, a nonce, a message id) must be new on every call;
            # a request built once would resend it.
            raise UpstreamConfigurationError(f"cannot prepare {operation}: the client adds"
                                             " per-message headers (WS-Security, plugins,"
                                             " WS-Addressing)")
        markers = {f"dsmf-prepared-{uuid.uuid4().hex}": name for name in fields}
        try:
            envelope, headers = service._binding._create(  # what Client.create_message uses
                operation, (), {name: marker for marker, name in markers.items()},
                client=client, options=service._binding_options,
            )
        except (zeep.exceptions.Error, TypeError, ValueError) as exc:
            raise UpstreamConfigurationError(f"cannot prepare {operation}: {exc}") from exc
        slots: dict[str, tuple[int, ...]] = {}
        for element in envelope.iter():
            leftovers = [element.tail, *element.attrib.values()]
            if any(value and "dsmf-prepared-" in value for value in leftovers):
                raise UpstreamConfigurationError(f"cannot prepare {operation}: a value is not"
                                                 " the text of an element")
            name = markers.get(element.text or "")
            if name is None:
                if element.text and "dsmf-prepared-" in element.text:
                    raise UpstreamConfigurationError(f"cannot prepare {operation}: zeep"
                                                     " transforms a value")
                continue
            if name in slots or len(element):
                raise UpstreamConfigurationError(f"cannot prepare {operation}: {name} is"
                                                 " not written once as an element's text")
            slots[name] = _path(element)
        if set(slots) != set(fields):
            raise UpstreamConfigurationError(f"cannot prepare {operation}: zeep does not write"
                                             f" {sorted(set(fields) - set(slots))}")
        self._template = envelope
        self._slots = tuple(slots.items())
        self._transport = client.transport
        self.address: str = service._binding_options["address"]
        self.headers: dict[str, str] = dict(headers)

    def message(self, **values: str) -> bytes:
        """The request zeep would serialise for these values (every prepared field, a str)."""
        if len(values) != len(self._slots):
            raise TypeError(f"{self.operation} takes {[name for name, _ in self._slots]}")
        envelope = copy.deepcopy(self._template)
        for name, path in self._slots:
            value = values[name]
            if not isinstance(value, str):
                raise TypeError(f"{self.operation}: {name} must be a str")
            element = envelope
            for index in path:
                element = element[index]
            element.text = value  # lxml refuses what XML cannot hold, as zeep's would
        return bytes(etree_to_string(envelope))

    def post(self, **values: str) -> Any:
        """Sends the request and returns the raw answer (zeep's ``raw_response``)."""
        return self._transport.post(self.address, self.message(**values), self.headers)


def _path(element: etree._Element) -> tuple[int, ...]:
    path: list[int] = []
    parent = element.getparent()
    while parent is not None:
        path.append(parent.index(element))
        element, parent = parent, parent.getparent()
    return tuple(reversed(path))


def service_proxy(
    wsdl_path: Path,
    binding: str,
    endpoint: str,
    *,
    timeout: float,
    connect_timeout: float | None,
    max_response_bytes: int,
) -> Any:
    """The zeep service of ``binding`` in the local WSDL, pointed at ``endpoint``, over a
    bounded transport (``connect_timeout`` defaults to ``timeout``)."""
    transport = BoundedTransport(
        connect_timeout=connect_timeout if connect_timeout is not None else timeout,
        read_timeout=timeout,
        max_response_bytes=max_response_bytes,
    )
    return load_client(wsdl_path, transport).create_service(binding, endpoint)


def fault_detail(fault: zeep.exceptions.Fault, namespace: str, name: str) -> Any | None:
    """The first ``{namespace}name`` element inside the fault's ``detail``, if any."""
    detail = fault.detail
    if detail is None:
        return None
    if detail.tag == f"{{{namespace}}}{name}":
        return detail
    return detail.find(f".//{{{namespace}}}{name}")


def translate(error: BaseException, what: str, map_fault: FaultMapper) -> UpstreamError:
    """The gateway error for a failed call to ``what`` (a service name for messages)."""
    if isinstance(error, UpstreamError):
        return error
    if isinstance(error, zeep.exceptions.Fault):
        mapped = map_fault(error)
        if mapped is not None:
            return mapped
        return UpstreamFault(f"{what} answered with a fault: {error.code} {error.message}")
    if isinstance(error, zeep.exceptions.TransportError):
        status = error.status_code or 0
        if status >= 500:
            return UpstreamUnavailable(f"{what} answered HTTP {status} without a SOAP answer")
        return UpstreamFault(f"{what} answered HTTP {status}")
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return UpstreamUnavailable(f"{what} could not be reached in time")
    if isinstance(error, requests.exceptions.Timeout):
        return UpstreamTimeout(f"{what} did not answer in time")
    if isinstance(error, requests.exceptions.ConnectionError):
        return UpstreamUnavailable(f"{what} is unreachable: {_root_cause(error)}")
    if isinstance(error, _ResponseTooLarge):
        return UpstreamFault(f"{what} sent an oversized answer")
    if isinstance(error, _UnsupportedEncoding):
        return UpstreamFault(f"{what} sent an answer in an encoding we did not ask for: {error}")
    if isinstance(error, requests.exceptions.RequestException):
        return UpstreamUnavailable(f"{what} broke off the exchange: {type(error).__name__}")
    if isinstance(error, zeep.exceptions.Error | etree.LxmlError | ValueError | TypeError):
        return UpstreamFault(f"{what} sent an answer that does not match its contract: {error}")
    return UpstreamFault(f"{what} call failed: {type(error).__name__}")


def _root_cause(error: BaseException) -> str:
    while error.__context__ is not None and error.__context__ is not error:
        error = error.__context__
    return type(error).__name__
