"""Replay protection and idempotency on the X-Road message id, shared by every worker.

``claim`` inserts the id into ``replay_cache`` (primary key): the first request with an id wins,
in every process at once, because the database decides. A later request with the same id is a
retry when it is byte-identical to the first (same request hash) and the first has finished: it
gets the stored signed response again, so nothing is done twice (never a second SSN). Anything
else with a known id is a replay and is refused.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from persistence.db import Database
from persistence.errors import translate
from persistence.tables import IdempotencyRow, ReplayCacheRow
from signing.errors import ReplayDetected

_PURGE_EVERY = 500


class SqlMessageGuard:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._calls = itertools.count()

    def claim(self, message_id: str, request_digest: str, expires_at: datetime) -> bytes | None:
        if next(self._calls) % _PURGE_EVERY == 0:
            self.purge()
        try:
            with self.database.sessions() as session, session.begin():
                session.add(ReplayCacheRow(message_id=message_id, expires_at=expires_at))
            return None
        except IntegrityError:
            pass  # the id is known: a retry or a replay, decided below
        except SQLAlchemyError as error:
            raise translate(error) from error
        with self.database.transaction() as session:
            row = session.get(IdempotencyRow, message_id)
            if row is not None and row.request_hash == request_digest:
                return bytes(row.response)
        if row is None:
            raise ReplayDetected(f"message id {message_id!r} was already used (or is in progress)")
        raise ReplayDetected(f"message id {message_id!r} was already used for another request")

    def complete(self, message_id: str, request_digest: str, response: bytes) -> None:
        with self.database.transaction() as session:
            session.merge(IdempotencyRow(
                message_id=message_id, request_hash=request_digest, response=response,
                created_at=datetime.now(UTC),
            ))

    def purge(self, now: datetime | None = None) -> None:
        moment = now or datetime.now(UTC)
        with self.database.transaction() as session:
            expired = select(ReplayCacheRow.message_id).where(ReplayCacheRow.expires_at < moment)
            session.execute(delete(IdempotencyRow).where(IdempotencyRow.message_id.in_(expired)))
            session.execute(delete(ReplayCacheRow).where(ReplayCacheRow.expires_at < moment))


def ping(database: Database) -> None:
    """Raises a storage error when the database cannot answer (for /health)."""
    from sqlalchemy import text

    with database.transaction() as session:
        session.execute(text("SELECT 1"))
