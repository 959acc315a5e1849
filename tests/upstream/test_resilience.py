"""Timeouts, bounded retries and the circuit breaker, against small misbehaving peers on
loopback that count what they receive."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.errors import (
    PersonNotFoundUpstream,
    UpstreamFault,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.domain.values import DocumentType
from gateway.upstream.errors import CircuitOpen, UpstreamConfigurationError
from gateway.upstream.mobile import ZeepMobileSignatureService
from gateway.upstream.population import ZeepPopulationRegistry
from gateway.upstream.resilience import CircuitBreaker, CircuitState, Resilience
from gateway.wsgi_server import RunningServer, WsgiApp

from .conftest import AP_ID, MOBILE_WSDL, POPULATION_WSDL

Serve = Callable[[WsgiApp], RunningServer]

POP = "urn:az:iamas:population-registry:v1"
ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>{}</s:Body>'
    "</s:Envelope>"
)
PING_OK = ENVELOPE.format(
    f'<p:PingResponse xmlns:p="{POP}"><p:status>OK</p:status>'
    "<p:serverTime>2026-01-01T00:00:00Z</p:serverTime></p:PingResponse>"
)
NOT_FOUND = ENVELOPE.format(
    "<s:Fault><faultcode>s:Client</faultcode><faultstring>not found</faultstring><detail>"
    f'<p:RegistryFault xmlns:p="{POP}"><p:code>PERSON_NOT_FOUND</p:code>'
    "<p:message>not found</p:message></p:RegistryFault></detail></s:Fault>"
)
SERVER_FAULT = ENVELOPE.format(
    "<s:Fault><faultcode>s:Server</faultcode><faultstring>boom</faultstring></s:Fault>"
)


class Peer:
    """A WSGI peer that answers a fixed response and counts requests (thread-safe)."""

    def __init__(
        self, status: str = "200 OK", body: str | bytes = PING_OK, *, delay: float = 0.0
    ) -> None:
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.delay = delay
        self.count = 0
        self._lock = threading.Lock()
        self.release = threading.Event()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(length)
        with self._lock:
            self.count += 1
        if self.delay:
            self.release.wait(self.delay)
        content_type = "text/xml; charset=utf-8" if self.body.startswith(b"<") else "text/html"
        start_response(
            self.status, [("Content-Type", content_type), ("Content-Length", str(len(self.body)))]
        )
        return [self.body]


def _url(server: RunningServer) -> str:
    return server.url.rstrip("/") + "/population-registry"


def _registry(url: str, **options: Any) -> ZeepPopulationRegistry:
    options.setdefault("backoff", 0.01)
    return ZeepPopulationRegistry(POPULATION_WSDL, url, **options)


@pytest.fixture
def slow_peer(serve: Serve) -> Iterator[tuple[Peer, RunningServer]]:
    peer = Peer(delay=5.0)
    server = serve(peer)
    yield peer, server
    peer.release.set()  # let the sleeping handler threads finish


# -- registry down / slow ---------------------------------------------------------------------


def test_registry_down_is_unavailable(dead_url: str) -> None:
    registry = _registry(dead_url, timeout=1.0, retries=1)
    with pytest.raises(UpstreamUnavailable) as caught:
        registry.find_person(DocumentType.ID_CARD, "6ZK4T2P")
    assert caught.value.code == "Server.Upstream.Unavailable"
    with pytest.raises(UpstreamUnavailable):
        registry.ping()


def test_unknown_host_is_unavailable() -> None:
    registry = _registry("http://registry.invalid/population", timeout=1.0, retries=0)
    with pytest.raises(UpstreamUnavailable):
        registry.find_person(DocumentType.ID_CARD, "6ZK4T2P")


def test_registry_slow_is_a_bounded_timeout(slow_peer: tuple[Peer, RunningServer]) -> None:
    peer, server = slow_peer
    registry = _registry(_url(server), timeout=0.3, retries=1)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as caught:
        registry.find_person(DocumentType.ID_CARD, "6ZK4T2P")
    elapsed = time.monotonic() - started
    assert caught.value.code == "Server.Upstream.Timeout"
    assert peer.count == 2  # the first attempt and one retry
    assert elapsed < 2.0


def test_a_peer_that_drips_its_answer_meets_the_deadline(serve: Serve) -> None:
    stop = threading.Event()

    def drip(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/xml")])
        for _ in range(200):
            if stop.wait(0.05):
                return
            yield b" "

    server = serve(drip)
    registry = _registry(_url(server), timeout=0.4, retries=0)
    started = time.monotonic()
    try:
        with pytest.raises(UpstreamTimeout):
            registry.ping()
    finally:
        stop.set()
    assert time.monotonic() - started < 3.0


def test_an_oversized_answer_is_refused(serve: Serve) -> None:
    server = serve(Peer(body=b"<" + b"x" * (2 * 1024 * 1024)))
    with pytest.raises(UpstreamFault, match="oversized"):
        _registry(_url(server), timeout=5.0, retries=0).ping()


# -- retries: bounded, only for transport failures of idempotent reads ------------------------


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_retries_on_5xx_are_bounded(serve: Serve, retries: int) -> None:
    peer = Peer("503 Service Unavailable", b"<html>maintenance</html>")
    server = serve(peer)
    with pytest.raises(UpstreamUnavailable, match="HTTP 503"):
        _registry(_url(server), retries=retries).find_person(DocumentType.ID_CARD, "6ZK4T2P")
    assert peer.count == retries + 1


def test_an_answer_is_never_retried(serve: Serve) -> None:
    peer = Peer("500 Internal Server Error", NOT_FOUND)
    server = serve(peer)
    with pytest.raises(PersonNotFoundUpstream):
        _registry(_url(server), retries=3).find_person(DocumentType.ID_CARD, "6ZK4T2P")
    assert peer.count == 1


def test_a_server_fault_is_an_upstream_fault_not_retried(serve: Serve) -> None:
    peer = Peer("500 Internal Server Error", SERVER_FAULT)
    server = serve(peer)
    with pytest.raises(UpstreamFault) as caught:
        _registry(_url(server), retries=3).find_person(DocumentType.ID_CARD, "6ZK4T2P")
    assert caught.value.code == "Server.Upstream.Fault"
    assert peer.count == 1


@pytest.mark.parametrize(
    "body",
    [
        b"this is not XML",
        ENVELOPE.format("<unexpected/>").encode(),
        PING_OK.encode(),  # a valid envelope, but for another operation
        # An entity-expansion answer: refused by the hardened parser, never expanded.
        b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
        + ENVELOPE.format("<x>&b;</x>").split("?>", 1)[1].encode(),
    ],
)
def test_an_answer_outside_the_contract_is_an_upstream_fault(serve: Serve, body: bytes) -> None:
    peer = Peer("200 OK", body)
    server = serve(peer)
    with pytest.raises(UpstreamFault):
        _registry(_url(server), retries=2).find_person(DocumentType.ID_CARD, "6ZK4T2P")
    assert peer.count == 1


def test_starting_a_mobile_signature_is_never_retried(serve: Serve) -> None:
    peer = Peer("503 Service Unavailable", b"<html>busy</html>")
    server = serve(peer)
    url = server.url.rstrip("/") + "/mobile-signature"
    service = ZeepMobileSignatureService(MOBILE_WSDL, url, ap_id=AP_ID, retries=3, backoff=0.01)
    with pytest.raises(UpstreamUnavailable):
        service.start("+994501234567", "100001", b"\0" * 32, "x")
    assert peer.count == 1
    with pytest.raises(UpstreamUnavailable):
        service.status("MSSPx")  # status queries are reads: retried
    assert peer.count == 1 + 4


# -- circuit breaker ----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_circuit_opens_after_n_failures_then_half_opens(serve: Serve) -> None:
    peer = Peer("503 Service Unavailable", b"<html>down</html>")
    server = serve(peer)
    clock = FakeClock()
    breaker = CircuitBreaker("population registry", failure_threshold=3, reset_timeout=30.0,
                             clock=clock)
    registry = _registry(_url(server), retries=0, breaker=breaker)

    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            registry.ping()
    assert peer.count == 3
    assert breaker.state is CircuitState.OPEN

    # Open: refused at once, nothing sent.
    with pytest.raises(CircuitOpen) as caught:
        registry.find_person(DocumentType.ID_CARD, "6ZK4T2P")
    assert caught.value.code == "Server.Upstream.Unavailable"
    assert peer.count == 3

    # After the cool-down one trial goes through; it fails, so the circuit opens again.
    clock.now += 30.0
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(UpstreamUnavailable):
        registry.ping()
    assert peer.count == 4
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpen):
        registry.ping()
    assert peer.count == 4

    # The registry recovers: the next trial succeeds and closes the circuit.
    peer.status, peer.body = "200 OK", PING_OK.encode()
    clock.now += 30.0
    registry.ping()
    assert breaker.state is CircuitState.CLOSED
    registry.ping()
    assert peer.count == 6


def test_business_answers_do_not_open_the_circuit(serve: Serve) -> None:
    peer = Peer("500 Internal Server Error", NOT_FOUND)
    server = serve(peer)
    breaker = CircuitBreaker("population registry", failure_threshold=2)
    registry = _registry(_url(server), retries=0, breaker=breaker)
    for _ in range(5):
        with pytest.raises(PersonNotFoundUpstream):
            registry.find_person(DocumentType.ID_CARD, "0NF7ND0")
    assert breaker.state is CircuitState.CLOSED
    assert peer.count == 5


def test_breaker_unit_half_open_admits_one_trial_at_a_time() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("x", failure_threshold=2, reset_timeout=10.0, clock=clock)
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.record_success()  # success resets the count: failures must be consecutive
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    clock.now += 9.9
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.now += 0.1
    breaker.before_call()  # the trial
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller while the trial runs
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    breaker.before_call()


def test_resilience_unit_backoff_is_bounded_and_only_idempotent_calls_retry() -> None:
    sleeps: list[float] = []
    resilience = Resilience(
        CircuitBreaker("x", failure_threshold=100), retries=3, backoff=0.5, max_backoff=1.0,
        sleep=sleeps.append,
    )
    calls = 0

    def failing() -> None:
        nonlocal calls
        calls += 1
        raise UpstreamTimeout("slow")

    with pytest.raises(UpstreamTimeout):
        resilience.call(failing, idempotent=True)
    assert calls == 4 and len(sleeps) == 3 and all(0 <= s <= 1.0 for s in sleeps)
    calls = 0
    with pytest.raises(UpstreamTimeout):
        resilience.call(failing, idempotent=False)
    assert calls == 1


def test_resilience_unit_a_retry_after_the_first_attempt_keeps_tenacitys_schedule() -> None:
    # The first attempt runs outside tenacity; the retries that follow it still wait as
    # attempt 1, 2, ... of tenacity's exponential schedule (the first wait at most `backoff`).
    breaker = CircuitBreaker("x", failure_threshold=100)
    sleeps: list[float] = []
    resilience = Resilience(breaker, retries=3, backoff=0.5, max_backoff=4.0,
                            sleep=sleeps.append)
    for _ in range(50):
        calls = 0

        def flaky() -> str:
            nonlocal calls
            calls += 1
            if calls < 3:
                raise UpstreamUnavailable("down")
            return "answer"

        sleeps.clear()
        assert resilience.call(flaky, idempotent=True) == "answer"
        assert calls == 3 and len(sleeps) == 2
        assert 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0
    assert breaker.state is CircuitState.CLOSED and breaker._failures == 0

    def wrong() -> None:
        raise UpstreamFault("not retried")

    sleeps.clear()
    with pytest.raises(UpstreamFault):
        resilience.call(wrong, idempotent=True)
    assert sleeps == []


# -- configuration errors never leak third-party exceptions -----------------------------------


def test_bad_configuration_is_reported_as_ours(tmp_path: Path) -> None:
    with pytest.raises(UpstreamConfigurationError):
        _registry("ftp://registry.example/")
    with pytest.raises(UpstreamConfigurationError):
        ZeepPopulationRegistry(tmp_path / "missing.wsdl", "http://127.0.0.1:9/")
    broken = tmp_path / "broken.wsdl"
    broken.write_text("<wsdl:definitions", encoding="utf-8")
    with pytest.raises(UpstreamConfigurationError):
        ZeepPopulationRegistry(broken, "http://127.0.0.1:9/")
