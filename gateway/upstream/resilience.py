"""Timeouts are the transport's; this module adds bounded retries and a circuit breaker.

:class:`CircuitBreaker` -- closed → open after ``failure_threshold`` consecutive failed calls;
open → half-open after ``reset_timeout`` seconds, when exactly one trial call goes through;
the trial's success closes the circuit, its failure opens it again for another cool-down.

:class:`Resilience` runs one logical call: breaker check, then (for idempotent reads only) up to
``retries`` more attempts with exponential backoff and jitter on transient errors
(:class:`UpstreamUnavailable` / :class:`UpstreamTimeout`), then records the outcome once. Any
answer from the peer, a SOAP fault included, counts as a success for the breaker: the peer is up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from gateway.upstream.errors import CircuitOpen, UpstreamTimeout, UpstreamUnavailable

__all__ = ["CircuitBreaker", "CircuitState", "Resilience", "is_transient"]

T = TypeVar("T")


class CircuitState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class CircuitBreaker:
    """Thread-safe consecutive-failure circuit breaker; share one per upstream service."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_timeout <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_timeout > 0")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> CircuitState:
        with self._lock:
            if self._state is CircuitState.OPEN and self._cooled_down():
                return CircuitState.HALF_OPEN
            return self._state

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.reset_timeout

    def before_call(self) -> None:
        """Raises CircuitOpen unless a call may go through now."""
        with self._lock:
            if self._state is CircuitState.CLOSED:
                return
            if self._state is CircuitState.OPEN and self._cooled_down():
                self._state = CircuitState.HALF_OPEN
                self._trial_running = False
            if self._state is CircuitState.HALF_OPEN and not self._trial_running:
                self._trial_running = True
                return
            raise CircuitOpen(
                f"{self.name} is unavailable (circuit open after {self._failures} failures)"
            )

    def record_success(self) -> None:
        with self._lock:
            self._state = CircuitState.CLOSED
            self._failures = 0
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._state is CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
                self._state = CircuitState.OPEN
                self._opened_at = self._clock()


def is_transient(error: BaseException) -> bool:
    """Worth another attempt (and a failure for the breaker): the peer did not answer."""
    return isinstance(error, UpstreamUnavailable | UpstreamTimeout) and not isinstance(
        error, CircuitOpen
    )


class Resilience:
    """Breaker + bounded retries around one upstream call whose errors are already translated."""

    def __init__(
        self,
        breaker: CircuitBreaker,
        *,
        retries: int = 2,
        backoff: float = 0.1,
        max_backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff must be >= 0")
        self.breaker = breaker
        self.retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep

    def call(self, attempt: Callable[[], T], *, idempotent: bool) -> T:
        """Runs ``attempt`` (retried only when ``idempotent``); records the outcome once."""
        self.breaker.before_call()
        try:
            try:
                # The first attempt runs without tenacity's machinery (issue #10: 0.01 ms a
                # call, and nearly every call succeeds first time). Only a transient failure
                # that may be retried hands over to tenacity, which sees that attempt fail
                # with that same error as its own first one: the same waits, the same count.
                result = attempt()
            except BaseException as first:
                if not (idempotent and self.retries and is_transient(first)):
                    raise
                result = self._retry_after(first, attempt)
        except BaseException as error:
            if is_transient(error):
                self.breaker.record_failure()
            else:
                self.breaker.record_success()
            raise
        self.breaker.record_success()
        return result

    def _retry_after(self, first: BaseException, attempt: Callable[[], T]) -> T:
        failed: list[BaseException] = [first]

        def again() -> T:
            if failed:
                raise failed.pop()  # tenacity's attempt 1: the one that already failed
            return attempt()

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_random_exponential(multiplier=self._backoff, max=self._max_backoff),
            retry=retry_if_exception(is_transient),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(again)
