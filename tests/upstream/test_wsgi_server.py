"""gateway.wsgi_server: bound before return, threaded, stoppable, loopback by default."""

from __future__ import annotations

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
