"""A per-caller limit on operations anyone may call without a signature (``StartMobileLogin``
reaches the mobile-signature service and a person's phone: it must not be a free pump).

The caller is who the connection says it is: the client address, or -- behind a TLS-terminating
proxy -- a header that proxy sets (e.g. the client certificate's fingerprint, or
X-Forwarded-For). Only a header the operator names is believed.

Counts live in the process: with N worker processes a caller gets at most N times the limit.
That bounds abuse without a database write per unauthenticated call; the per-phone limit of
the mobile service (in the database) still holds across workers.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from gateway.domain.errors import RateLimited


class CallerRateLimiter:
    """At most ``max_calls`` per ``window_seconds`` per caller (sliding window), for at most
    ``max_callers`` callers remembered at once (least recently seen forgotten first)."""

    def __init__(
        self,
        max_calls: int,
        window_seconds: float,
        *,
        max_callers: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_calls = max_calls
        self.window = window_seconds
        self.max_callers = max_callers
        self._clock = clock
        self._calls: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, caller: str) -> None:
        """Count one call by ``caller``; raise RateLimited when over the limit (not counted)."""
        now = self._clock()
        with self._lock:
            calls = self._calls.get(caller)
            if calls is None:
                calls = self._calls[caller] = deque()
            self._calls.move_to_end(caller)
            while calls and calls[0] <= now - self.window:
                calls.popleft()
            if len(calls) >= self.max_calls:
                raise RateLimited(
                    f"too many unsigned requests from this caller: at most {self.max_calls} "
                    f"per {self.window:g} s"
                )
            calls.append(now)
            while len(self._calls) > self.max_callers:
                self._calls.popitem(last=False)


def caller_of(environ: dict[str, object], header: str = "") -> str:
    """Who is calling: the named proxy header's first value, else the client address."""
    if header:
        value = environ.get("HTTP_" + header.upper().replace("-", "_"))
        if isinstance(value, str) and value.strip():
            return "header:" + value.split(",")[0].strip()
    return "address:" + str(environ.get("REMOTE_ADDR") or "unknown")
