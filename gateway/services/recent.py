"""``Recent``: what this process learnt a few seconds ago, kept for a bounded time and size.

Used on the request path where asking again costs a database transaction or an upstream call
and a few seconds' staleness is harmless: the person a FindPerson fetched, reused by the
insurer's SubmitRegistration that follows; a card whose first signature was already noted.
Per process (each gunicorn worker has its own); never a substitute for a check that decides
whether a request is allowed.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """A map whose entries are forgotten ``ttl_seconds`` after they were put, holding at most
    ``max_entries`` (the oldest go first). ``ttl_seconds <= 0`` keeps nothing."""

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max(1, max_entries)
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def get(self, key: K) -> V | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            return entry[1]

    def pop(self, key: K) -> V | None:
        """The live entry, taken out (for a value meant to be used once)."""
        if self.ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (self._clock() + self.ttl, value)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
