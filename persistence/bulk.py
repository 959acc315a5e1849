"""Bulk loading of applications: a registry of a million rows in a minute or two (benchmarks).

``bulk_insert_applications`` writes the same rows ``SqlApplicationRepository.add`` writes (the
application with its name columns and its status history), without the per-row statements of
the request path: PostgreSQL gets ``COPY … FROM STDIN``, SQLite one driver ``executemany`` per
batch. It is meant for filling benchmark and test databases, not for the request path: it takes no
locks beyond its own transactions, assumes the ids are new and the insurers exist, and does not
update insured persons (``_on_registered``). Each batch is one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from itertools import islice
from typing import Any

from sqlalchemy import JSON, Table, insert
from sqlalchemy import exc as sa_exc

from gateway.domain.model import Application
from gateway.domain.text import collation_key, fold
from persistence.db import Database
from persistence.errors import translated
from persistence.repositories import _history_values, _state_values
from persistence.tables import ApplicationRow, StatusHistoryRow

__all__ = ["application_columns", "bulk_insert_applications"]

DEFAULT_BATCH = 20_000


def _table(row_class: type[Any]) -> Table:
    table = row_class.__table__
    assert isinstance(table, Table)
    return table


def application_columns(app: Application, *, now: datetime | None = None) -> dict[str, Any]:
    """The ``applications`` row of a new application, as ``SqlApplicationRepository.add``
    writes it (names from ``app.person``)."""
    person = app.person
    names = _name_columns(person.surname, person.name, person.patronymic) if person else _NO_NAMES
    return {
        "application_id": app.application_id,
        "insurer_voen": app.insurer_voen,
        "created_at": app.created_at,
        "updated_at": now or app.created_at,
        "version": 1,
        "previous_values": None,
        **_state_values(app),
        **names,
    }


_NO_NAMES: dict[str, Any] = dict.fromkeys(
    ("surname", "name", "patronymic", "surname_folded", "name_folded", "patronymic_folded",
     "name_sort_key"))


@lru_cache(maxsize=65_536)  # a registry repeats names: folding them once pays in a bulk load
def _name_columns(surname: str, name: str, patronymic: str | None) -> dict[str, Any]:
    return {
        "surname": surname,
        "name": name,
        "patronymic": patronymic,
        "surname_folded": fold(surname),
        "name_folded": fold(name),
        "patronymic_folded": fold(patronymic) if patronymic is not None else None,
        "name_sort_key": collation_key(" ".join(p for p in (surname, name, patronymic) if p)),
    }


@contextmanager
def _driver_errors(database: Database) -> Iterator[None]:
    """The driver's own errors (raised past SQLAlchemy by COPY and executemany) wrapped the way
    SQLAlchemy wraps them, so ``translated`` maps them like any other."""
    dbapi = database.engine.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as error:
        raise sa_exc.DBAPIError.instance(None, None, error, dbapi.Error) from error


def _batches(items: Iterable[Application], size: int) -> Iterator[list[Application]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def bulk_insert_applications(
    database: Database,
    applications: Iterable[Application],
    *,
    batch_size: int = DEFAULT_BATCH,
    defer_indexes: bool = False,
) -> int:
    """Inserts ``applications`` (new ids, existing insurers) with their histories; returns how
    many. Raises ``StorageError`` subclasses like the repositories do.

    ``defer_indexes``: drop the secondary indexes of ``applications`` first and build them again
    at the end (also after an error), which at a million rows is several times faster than
    keeping ten indexes up to date row by row. For an empty or benchmark database only: the
    registry has no search indexes meanwhile."""
    apps = _table(ApplicationRow)
    indexes = sorted(apps.indexes, key=lambda i: str(i.name)) if defer_indexes else []
    with translated(), database.engine.begin() as connection:
        for index in indexes:
            index.drop(connection)
    try:
        return _insert_all(database, applications, max(1, batch_size))
    finally:
        with translated(), database.engine.begin() as connection:
            if indexes and database.dialect == "postgresql":
                connection.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{_PG_INDEX_MEMORY}'")
            for index in indexes:
                index.create(connection)


_PG_INDEX_MEMORY = "256MB"  # per index build (the default 64 MB spills a million rows to disk)


def _insert_all(database: Database, applications: Iterable[Application], batch_size: int) -> int:
    apps, history = _table(ApplicationRow), _table(StatusHistoryRow)
    count = 0
    now = datetime.now(UTC)
    for batch in _batches(applications, batch_size):
        app_rows = [application_columns(a, now=now) for a in batch]
        history_rows = [
            _history_values(a.application_id, seq, change)
            for a in batch
            for seq, change in enumerate(a.history)
        ]
        with translated(), _driver_errors(database):
            if database.dialect == "postgresql":
                _copy(database, apps, app_rows, history, history_rows)
            else:
                _executemany(database, ((apps, app_rows), (history, history_rows)))
        count += len(batch)
    return count


# SQLite's page cache while loading (KiB; the default is 2 MB): the applications table has ten
# indexes with keys in random order, and a cache that holds their hot pages makes the load
# several times faster.
_SQLITE_LOAD_CACHE_KIB = 256 * 1024


def _executemany(database: Database, work: Sequence[tuple[Table, Sequence[dict[str, Any]]]]
                 ) -> None:
    """SQLite: the driver's executemany on values converted by the columns' own types (what a
    Core INSERT would bind), without SQLAlchemy's per-row parameter handling."""
    dialect = database.engine.dialect
    with database.engine.begin() as connection:
        cursor: Any = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(f"PRAGMA cache_size = -{_SQLITE_LOAD_CACHE_KIB}")
        try:
            for table, rows in work:
                if not rows:
                    continue
                columns = [c for c in table.columns if c.name in rows[0]]
                processors = [c.type.bind_processor(dialect) for c in columns]
                names = [c.name for c in columns]
                sql = str(insert(table).compile(dialect=dialect, column_keys=names))
                cursor.executemany(sql, (
                    [p(row[n]) if p is not None else row[n]
                     for n, p in zip(names, processors, strict=True)]
                    for row in rows
                ))
        finally:
            cursor.execute("PRAGMA cache_size = -2000")  # back to SQLite's default
            cursor.close()


def _copy(
    database: Database,
    apps: Table,
    app_rows: Sequence[dict[str, Any]],
    history: Table,
    history_rows: Sequence[dict[str, Any]],
) -> None:
    """Both tables in one transaction through psycopg's COPY (text format: psycopg adapts
    dates, aware datetimes, booleans and bytes; JSON goes as its text)."""
    json_columns = {c.name for c in apps.columns if isinstance(c.type, JSON)}
    raw = database.engine.raw_connection()
    try:
        connection: Any = raw.driver_connection
        with connection.cursor() as cursor:
            for table, rows in ((apps, app_rows), (history, history_rows)):
                if not rows:
                    continue
                columns = [c.name for c in table.columns if c.name in rows[0]]
                encoded = json_columns if table is apps else set()
                listed = ", ".join(columns)
                with cursor.copy(f"COPY {table.name} ({listed}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([
                            json.dumps(row[c]) if c in encoded and row[c] is not None else row[c]
                            for c in columns
                        ])
        connection.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
