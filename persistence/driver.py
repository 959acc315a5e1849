"""The request path's hottest statements, compiled once per dialect and run on the driver's
cursor (issue #10).

A Core statement executed through SQLAlchemy costs about 20 µs of Python per execution in a
tight loop and 80-150 µs inside a request (an execution context, events, a result object, its
rows; the caches are cold there), against a few µs for the driver's own ``execute``. For the
handful of statements every signed request runs, :func:`prepared` compiles the statement once
for the engine's dialect and :meth:`Prepared.run` sends the compiled SQL straight to the
DBAPI cursor of the caller's SQLAlchemy ``Connection``, inside its transaction, with the very
bind and result processors of the column types that SQLAlchemy itself would apply: the
rows written and read are the same, on SQLite and PostgreSQL.

What SQLAlchemy does around an execution is kept:

* a driver error goes through the ``Connection``'s own error handling, so it is wrapped in the
  same ``DBAPIError`` subclass (``persistence.errors`` translates it to the same storage
  error), and a lost connection invalidates the connection and the pool as before;
* a statement that writes marks the connection (``WROTE``: the request's transaction is
  held for the endpoint's commit);
* ``Database.watch_statements`` sees every statement sent (benchmarks replay them).

Only statements whose every parameter is given by the caller or is a literal of the statement
can be prepared (``prepared`` refuses one that needs a Python-side column default).
"""

from __future__ import annotations

import re
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect

from persistence.errors import StorageError

WROTE = "dsmf_wrote"  # the same flag as persistence.db.WROTE (db imports it from here)
# Set on a PostgreSQL connection (its ``info``) whose unit of work has sent only plain reads so
# far, in psycopg's autocommit mode: the first other statement begins its transaction
# (``leave_reads_first``; see ``persistence.db.ConnectionSession``).
READS_FIRST = "dsmf_reads_first"
# A statement that may run before its unit of work's BEGIN: a SELECT that only reads. Decided
# by an allow-list, not a deny-list: a SELECT can write or change the session (``SELECT
# set_config(..., true)``, ``nextval``, ``pg_notify``, ``SELECT ... INTO``, ``SELECT 1; DELETE
# ...``), and what this does not recognise as a plain read begins the transaction first, which
# costs a round trip, never correctness.
_LOCKING = re.compile(r"\bFOR\s+(?:UPDATE|SHARE|NO\s+KEY\s+UPDATE|KEY\s+SHARE)\b|\bINTO\b",
                      re.IGNORECASE)
#: A name followed by "(": a function call, a type with a length, or a keyword before a
#: parenthesis; a quoted name before "(" is a call this cannot judge.
_CALL = re.compile(r'([A-Za-z_][A-Za-z0-9_$]*|")\s*\(')
#: The keywords that come before "(" in SQLAlchemy's SELECTs, the types of its casts, and the
#: functions that only compute (aggregates, comparisons, string and date functions).
_PURE = frozenset("""
    select from where and or not in exists any all some as on join using values over filter
    within by case when then else between like ilike is distinct lateral union intersect except
    cast varchar char character numeric decimal timestamp interval integer bigint
    count max min sum avg coalesce nullif greatest least lower upper length char_length
    substr substring trim abs round extract date_trunc row_number rank dense_rank array_agg
    string_agg bool_or bool_and
""".split())


def plain_read(sql: str) -> bool:
    """True for a SELECT that only reads and takes no lock: it reads the same in autocommit as
    in a READ COMMITTED transaction (a snapshot of its own start either way)."""
    if sql.lstrip()[:6].upper() != "SELECT" or ";" in sql or _LOCKING.search(sql):
        return False
    return all(name.lower() in _PURE for name in _CALL.findall(sql))


def leave_reads_first(info: dict[Any, Any], driver_connection: Any) -> None:
    """Before a statement that is not a plain read on a connection in its unit of work's
    reads-first mode: autocommit off, so psycopg sends BEGIN before the statement (a local
    switch: the connection is idle in autocommit mode). psycopg refuses the switch only on a
    connection that is not idle, i.e. broken: it is closed then, so that the statement fails
    as on any lost connection (and the pool discards it) instead of running outside a
    transaction."""
    if info.pop(READS_FIRST, None):
        try:
            driver_connection.autocommit = False
        except Exception:  # noqa: BLE001 - reported by the statement, as a lost connection
            driver_connection.close()

# Per engine: callbacks of Database.watch_statements, called for statements sent here.
_watchers: weakref.WeakKeyDictionary[Engine, list[Callable[[str, Any], None]]] = (
    weakref.WeakKeyDictionary())
# Per dialect (one per engine): statement → its prepared form.
_cache: weakref.WeakKeyDictionary[Dialect, dict[tuple[Any, tuple[str, ...] | None], Prepared]] = (
    weakref.WeakKeyDictionary())


def watch(engine: Engine, callback: Callable[[str, Any], None]) -> None:
    """``callback(statement, parameters)`` for every statement :meth:`Prepared.run` sends on a
    connection of ``engine``."""
    _watchers.setdefault(engine, []).append(callback)


class Prepared:
    """A Core statement compiled for one dialect, with its parameters' and columns' type
    processors; see the module docstring."""

    def __init__(self, statement: Any, dialect: Dialect,
                 keys: Sequence[str] | None = None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        self.sql = compiled.string
        if compiled.insert_prefetch or compiled.update_prefetch:
            # A Python-side column default (or onupdate) is computed by SQLAlchemy per
            # execution; sent from here it would be written as NULL.
            raise StorageError(f"cannot prepare {self.sql!r}: a column default is computed in"
                               " Python")
        self.writes = bool(compiled.isinsert or compiled.isupdate or compiled.isdelete)
        self._begins = self.writes or not plain_read(self.sql)  # see READS_FIRST
        binds = compiled.binds
        names = list(compiled.positiontup) if compiled.positional and compiled.positiontup \
            else list(binds)
        self._positional = bool(compiled.positional)
        given = set(keys or ())
        # (name, parameter key given by the caller or None, literal value, bind processor)
        self._binds: list[tuple[str, str | None, Any, Callable[[Any], Any] | None]] = []
        for name in names:
            bind = binds[name]
            if bind.key in given or name in given:
                source: str | None = name if name in given else bind.key
                value = None
            elif bind.callable is None and not bind.required and not bind.expanding:
                source, value = None, bind.value
            elif not keys and bind.required and not bind.expanding:
                source, value = name, None  # a named bindparam() the caller passes
            else:
                raise StorageError(f"cannot prepare {self.sql!r}: parameter {name!r}")
            self._binds.append((name, source, value,
                                bind.type.dialect_impl(dialect).bind_processor(dialect)))
        columns = list(getattr(statement, "exported_columns", ()) or ()) \
            if compiled.returning or not self.writes else []
        self._row = namedtuple("Row", [c.key for c in columns], rename=True)  # type: ignore[misc]
        self._results = [c.type.dialect_impl(dialect).result_processor(dialect, None)
                         for c in columns]
        self._returns = bool(columns)

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters (a tuple, or a dict for named paramstyles) for ``values``."""
        out = []
        for _name, source, literal, process in self._binds:
            value = values[source] if source is not None else literal
            out.append(process(value) if process is not None else value)
        if self._positional:
            return tuple(out)
        return {name: value for (name, *_), value in zip(self._binds, out, strict=True)}

    def run(self, conn: Connection, values: Mapping[str, Any] | None = None) -> list[Any]:
        """Executes on ``conn``'s driver connection (in its current transaction, if any);
        returns the rows (processed, with attribute access), or ``[]``."""
        return self._run(conn, self.parameters(values or {}), many=False)

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """``executemany`` of a statement that returns nothing."""
        self._run(conn, [self.parameters(v) for v in rows], many=True)

    def _run(self, conn: Connection, params: Any, *, many: bool) -> list[Any]:
        proxied = conn.connection  # checks out (or raises as SQLAlchemy would) when closed
        watchers = _watchers.get(conn.engine)
        if watchers:
            for callback in watchers:
                callback(self.sql, params)
        if self._begins and READS_FIRST in proxied.info:
            leave_reads_first(proxied.info, proxied.driver_connection)
        cursor = proxied.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                cursor.executemany(self.sql, params)
            else:
                cursor.execute(self.sql, params)
            if self.writes:
                # Marked once it ran, as SQLAlchemy's after_cursor_execute would: a failed
                # write does not make its unit of work wait for the request's commit.
                proxied.info[WROTE] = True
            if many or not self._returns:
                return []
            fetched = cursor.fetchall()
        except Exception as error:
            # The Connection's handler wraps it as any statement's error would be (and
            # invalidates the connection and the pool when the driver says it is gone).
            conn._handle_dbapi_exception(error, self.sql, params, cursor, None)
            raise  # not reached: the handler always raises
        finally:
            cursor.close()
        row, processors = self._row, self._results
        return [row(*[p(v) if p is not None else v for p, v in zip(processors, r, strict=True)])
                for r in fetched]


def prepared(statement: Any, dialect: Dialect, keys: Sequence[str] | None = None) -> Prepared:
    """``statement`` prepared for ``dialect`` (once; the statement object is the cache key,
    so build it once too). ``keys``: for an ``insert(table)`` without values, the columns the
    caller gives (SQLAlchemy compiles such an insert for the parameters of each execution)."""
    per_dialect = _cache.get(dialect)
    if per_dialect is None:
        per_dialect = _cache.setdefault(dialect, {})
    key = (statement, tuple(keys) if keys is not None else None)
    found = per_dialect.get(key)
    if found is None:
        found = per_dialect[key] = Prepared(statement, dialect, keys)
    return found
