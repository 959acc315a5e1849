"""Replay protection and idempotency on the X-Road message id, shared by every worker.

Built from the two stores: ``SqlReplayCache`` decides, by the database's primary key, which
request first used an id (in every process at once); ``idempotency`` keeps the signed response
of that request. A later request with the same id is a retry when it is byte-identical to the
first (same request hash) and the first has finished: it gets the stored signed response again,
so nothing is done twice (never a second SSN). Anything else with a known id is a replay.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from persistence.db import Database
from persistence.stores import SqlReplayCache
from signing.errors import ReplayDetected

_PURGE_EVERY = 500


class SqlMessageGuard:
    def __init__(self, database: Database, *, ttl: timedelta = timedelta(days=1)) -> None:
        self.database = database
        self.ttl = ttl
        self.replay = SqlReplayCache(database, purge_every=_PURGE_EVERY)
        self._completions = itertools.count(1)

    def claim(self, message_id: str, request_digest: str, expires_at: datetime) -> bytes | None:
        if self.replay.remember(message_id, expires_at):
            return None
        with self.database.unit_of_work() as uow:
            stored_digest = uow.idempotency.get_request_hash(message_id)
            response = uow.idempotency.get_response(message_id)
        if stored_digest is None:
            raise ReplayDetected(f"message id {message_id!r} is already being processed")
        if stored_digest != request_digest or response is None:
            raise ReplayDetected(f"message id {message_id!r} was already used for another request")
        return response

    def complete(self, message_id: str, request_digest: str, response: bytes) -> None:
        with self.database.unit_of_work() as uow:
            if next(self._completions) % _PURGE_EVERY == 0:
                uow.idempotency.purge(datetime.now(UTC) - self.ttl)
            uow.idempotency.put_response(message_id, request_digest, response)
            uow.commit()

