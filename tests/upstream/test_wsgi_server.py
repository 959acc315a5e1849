"""gateway.wsgi_server: bound before return, threaded, stoppable, loopback by default; HTTP/1.1
keep-alive, chunked request bodies de-chunked before the application, the body cap, refusals
answered by the caller's handler."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import requests

from gateway.wsgi_server import serve_in_thread


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"salam"]


def test_socket_is_bound_before_return_and_closed_after_stop() -> None:
    server = serve_in_thread(hello)
    assert server.host == "127.0.0.1" and server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/"
    # No sleep, no polling: the first request works.
    assert requests.get(server.url, timeout=5).text == "salam"
    server.stop()
    server.stop()  # a second stop (e.g. a context manager's exit after stop()) does nothing
    with pytest.raises(ConnectionRefusedError), socket.create_connection(
        ("127.0.0.1", server.port), timeout=2
    ):
        pass


def test_requests_are_served_concurrently() -> None:
    barrier = threading.Barrier(2, timeout=5)

    def meet(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        barrier.wait()  # only passes when two requests are inside the app at once
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    with serve_in_thread(meet) as server:
        results: list[str] = []

        def fetch() -> None:
            results.append(requests.get(server.url, timeout=10).text)

        threads = [threading.Thread(target=fetch) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert results == ["ok", "ok"]


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = serve_in_thread(hello, host="::1")
    except OSError:
        pytest.skip("IPv6 loopback not configured")
    with server:
        assert server.url == f"http://[::1]:{server.port}/"
        assert requests.get(server.url, timeout=5).text == "salam"


def echo_length(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("CONTENT_LENGTH"):
        data = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
    else:
        assert environ.get("wsgi.input_terminated") is True
        data = environ["wsgi.input"].read()
    body = f"{len(data)} {environ.get('HTTP_TRANSFER_ENCODING', '-')}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def test_http11_connections_are_kept_alive() -> None:
    with serve_in_thread(hello) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            connection.request("GET", "/")
            first = connection.getresponse()
            assert (first.version, first.read(), first.will_close) == (11, b"salam", False)
            sock = connection.sock
            connection.request("GET", "/")
            assert connection.getresponse().read() == b"salam"
            assert connection.sock is sock and sock is not None
        finally:
            connection.close()


def test_chunked_body_arrives_whole_with_its_length() -> None:
    with serve_in_thread(echo_length) as server:
        chunks = (b"x" * 1000 for _ in range(10))
        answer = requests.post(server.url, data=chunks, timeout=10)
        # The server de-chunked it: the application sees a Content-Length, no Transfer-Encoding.
        assert answer.text == "10000 -"
        assert requests.post(server.url, data=b"abc", timeout=10).text == "3 -"


def test_declared_length_over_the_cap_is_413_without_reading_it() -> None:
    with serve_in_thread(echo_length, max_body_bytes=1000) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        # Announces 10 MB, sends nothing of it: the answer comes at once.
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_a_kept_alive_chunked_connection_does_not_hold_a_worker() -> None:
    # One worker. Client A sends a chunked body and keeps its connection open; the trailer's
    # CRLF must be consumed, or the worker waits on A for a next request (the idle timeout)
    # and B is never answered.
    with serve_in_thread(echo_length, threads=1) as server:
        a = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            a.request("POST", "/", body=iter([b"x" * 100, b"y" * 100]), encode_chunked=True)
            assert a.getresponse().read() == b"200 -"
            b = requests.post(server.url, data=b"abc", timeout=5)
            assert b.text == "3 -"
            # A's connection still works too.
            a.request("POST", "/", body=b"abcd")
            assert a.getresponse().read() == b"4 -"
        finally:
            a.close()


def test_a_chunked_body_past_the_cap_is_413() -> None:
    with serve_in_thread(echo_length, max_body_bytes=1000) as server:
        chunks = (b"x" * 500 for _ in range(4))
        answer = requests.post(server.url, data=chunks, timeout=10)
    assert answer.status_code == 413


def refusal_page(code: int, reason: str,
                 environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    body = f"{code}|{environ.get('HTTP_ACCEPT_LANGUAGE')}|{reason}".encode()
    return "500 Internal Server Error", [("Content-Type", "text/plain"),
                                         ("Content-Length", "999")], body


def raw_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_server_refusals_are_answered_by_the_handler_and_close_the_connection() -> None:
    with serve_in_thread(echo_length, max_body_bytes=1000, on_http_error=refusal_page) as server:
        broken = raw_exchange(server.port, b"POST / HTTP/1.1\r\nHost: x\r\nAccept-Language: en\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
        too_large = raw_exchange(server.port, b"POST / HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Length: 5000\r\n\r\n")
    head, _, body = broken.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 Internal Server Error")
    assert body.startswith(b"400|en|")
    # The handler's own length is replaced by the server's, and the connection closes (the
    # reads above end only because the server closed).
    assert f"Content-Length: {len(body)}".encode() in head
    assert b"Connection: close" in head
    head, _, body = too_large.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 ") and body.startswith(b"413|None|")


def test_without_a_handler_refusals_keep_the_plain_page() -> None:
    with serve_in_thread(echo_length) as server:
        broken = raw_exchange(server.port, b"POST / HTTP/1.1\r\nHost: x\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
    assert broken.startswith(b"HTTP/1.1 400 Bad Request")


def test_a_slow_client_holds_no_worker() -> None:
    # One worker. Client A sends half a request and goes quiet (slowloris); B is answered all
    # the same, because the I/O thread buffers A's request until it is whole.
    with serve_in_thread(echo_length, threads=1) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as a:
        a.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        assert requests.post(server.url, data=b"xyz", timeout=5).text == "3 -"
        a.sendall(b"defghij")  # A finishes: answered too
        received = b""
        while not received.endswith(b"10 -") and (chunk := a.recv(65536)):
            received += chunk  # the head and the body may come in separate segments
        assert received.startswith(b"HTTP/1.1 200 ") and received.endswith(b"10 -")
