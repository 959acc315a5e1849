"""The zeep/requests edge shared by the upstream clients.

* :func:`zeep_settings` -- strict parsing, no huge trees, no DTDs, entities or external
  references;
* :class:`BoundedTransport` -- a zeep transport over a urllib3 connection pool with separate
  connect/read timeouts, a deadline for the whole answer (a peer that drips bytes cannot hold a
  worker), a cap on the answer's size, and contracts loaded from local files only: the WSDL is
  ours, never fetched from the peer;
* :func:`load_client` -- a zeep client from a local WSDL, bound to the configured endpoint;
* :func:`translate` -- any zeep/requests/lxml exception → the most specific
  :mod:`gateway.upstream.errors` error; SOAP faults go through a service-specific mapper first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
import urllib3
import zeep
import zeep.exceptions
from lxml import etree

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
    "check_endpoint",
    "fault_detail",
    "load_client",
    "translate",
    "zeep_settings",
]

DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024

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


class BoundedTransport(zeep.Transport):  # type: ignore[misc]
    """zeep transport with connect/read timeouts, a whole-answer deadline and a size cap.

    Posts go straight to a urllib3 connection pool (kept-alive connections, thread-safe), not
    through ``requests``: requests' per-call session merging, hooks and cookie handling cost
    more CPU than the rest of the call (issue #10: 1.5 ms of zeep call against 0.3 ms for a
    lean http.client one). No proxies from the environment, no redirects, no retries here (the
    caller's ``Resilience`` decides); urllib3's errors become the ``requests`` errors
    :func:`translate` knows, as requests would have raised them."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        pool_size: int = 8,
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
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=pool_size, block=False, retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            headers={"User-Agent": "dsmf-gateway"},
        )

    def post(self, address: str, message: bytes | str, headers: dict[str, str]) -> Any:
        deadline = time.monotonic() + self.connect_timeout + self.read_timeout
        body = message.encode() if isinstance(message, str) else message
        try:
            response = self._pool.urlopen(
                "POST", address, body=body, headers={"User-Agent": "dsmf-gateway", **headers},
                redirect=False,  # a SOAP peer answers where it was asked
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise _as_requests_error(exc) from exc
        try:
            content = self._read_body(response, deadline)
        except BaseException:
            response.close()
            response.release_conn()
            raise
        response.release_conn()
        if response.status >= 300 and not _is_soap_envelope(content):
            # A proxy's error page, not the peer's SOAP answer; zeep would call it a "Fault".
            raise zeep.exceptions.TransportError(
                f"HTTP {response.status} without a SOAP envelope",
                status_code=response.status,
            )
        return _Answer(response.status, content, response.headers)

    def _read_body(self, response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                if time.monotonic() > deadline:
                    raise requests.exceptions.ReadTimeout("answer not complete before deadline")
                # read1 returns what has arrived, so a peer that drips bytes meets the deadline.
                chunk = response.read1(64 * 1024, decode_content=True)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise _ResponseTooLarge(f"answer larger than {self.max_response_bytes} bytes")
                chunks.append(chunk)
        except urllib3.exceptions.HTTPError as exc:
            raise _as_requests_error(exc) from exc

    def load(self, url: str) -> bytes:
        """Contracts come from local files only, never from the network."""
        parsed = urlparse(url)
        if parsed.scheme not in ("", "file"):
            raise UpstreamConfigurationError(f"refusing to fetch {url}: contracts are local")
        return Path(parsed.path if parsed.scheme == "file" else url).read_bytes()


class _Answer:
    """What zeep reads of an HTTP answer (``requests.Response``'s names)."""

    __slots__ = ("content", "headers", "status_code")
    encoding = None

    def __init__(self, status: int, content: bytes, headers: Any) -> None:
        self.status_code = status
        self.content = content
        self.headers = headers  # case-insensitive, as zeep expects


def _as_requests_error(exc: urllib3.exceptions.HTTPError) -> requests.exceptions.RequestException:
    """The error ``requests`` raises for ``exc`` (its adapter's mapping), for :func:`translate`."""
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # before ConnectTimeoutError:
        return requests.exceptions.ConnectionError(str(exc))   # it subclasses it
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return requests.exceptions.ConnectTimeout(str(exc))
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return requests.exceptions.ReadTimeout(str(exc))
    if isinstance(exc, urllib3.exceptions.SSLError):
        return requests.exceptions.SSLError(str(exc))
    if isinstance(exc, urllib3.exceptions.ProtocolError | urllib3.exceptions.DecodeError):
        return requests.exceptions.ConnectionError(str(exc))
    return requests.exceptions.ConnectionError(str(exc))


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
    if isinstance(error, requests.exceptions.RequestException):
        return UpstreamUnavailable(f"{what} broke off the exchange: {type(error).__name__}")
    if isinstance(error, zeep.exceptions.Error | etree.LxmlError | ValueError | TypeError):
        return UpstreamFault(f"{what} sent an answer that does not match its contract: {error}")
    return UpstreamFault(f"{what} call failed: {type(error).__name__}")


def _root_cause(error: BaseException) -> str:
    while error.__context__ is not None and error.__context__ is not error:
        error = error.__context__
    return type(error).__name__
