"""Errors of the storage adapter.

SQLAlchemy and driver exceptions never leave ``persistence``: they are mapped here, at the edge,
to the gateway's own error types (``gateway.domain.errors``), so the service layer and the SOAP
fault table see only those. Where a storage error has a domain meaning it subclasses the domain
type too (a lost optimistic lock is a ``Conflict``).

    GatewayError
    ├── StorageError                    Server.Storage            (base of everything below)
    │   ├── StorageUnavailable          Server.Storage.Unavailable (cannot connect, timed out,
    │   │                                                           database locked/busy)
    │   ├── SchemaOutOfDate             Server.Storage.Schema      (migrations not applied)
    │   ├── ConstraintViolated          Server.Storage.Constraint  (FK / NOT NULL / CHECK:
    │   │                                                           a bug, not the caller's fault)
    │   ├── HistoryRewritten            Server.Storage.History     (append-only history shrank)
    │   └── SsnSerialsExhausted         Server.Storage.SsnExhausted (the SSN format is full:
    │                                                           an operator must widen it)
    ├── Conflict
    │   ├── DuplicateKey                Client.Conflict.Duplicate  (also a StorageError)
    │   └── ConcurrentUpdate            Client.Conflict.Concurrent (also a StorageError; retry)
    └── ValidationFailed
        └── ReferenceDataInvalid        Client.Validation.ReferenceData (seed file: file + line)

``InsuredPersonRepository.issue`` raises the domain's own ``Conflict`` with code
``Client.Conflict.SsnExists`` when the FIN already has an SSN.
"""

from __future__ import annotations

import functools
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from sqlalchemy import exc as sa_exc

from gateway.domain.errors import Conflict, GatewayError, ValidationFailed

SSN_EXISTS = "Client.Conflict.SsnExists"


class StorageError(GatewayError):
    code = "Server.Storage"


class StorageUnavailable(StorageError):
    code = "Server.Storage.Unavailable"


class SchemaOutOfDate(StorageError):
    code = "Server.Storage.Schema"


class ConstraintViolated(StorageError):
    code = "Server.Storage.Constraint"


class HistoryRewritten(StorageError):
    code = "Server.Storage.History"


class SsnSerialsExhausted(StorageError):
    """Every serial the configured SSN format can hold is taken (``ssn_serial_digits``)."""

    code = "Server.Storage.SsnExhausted"


class DuplicateKey(StorageError, Conflict):
    code = "Client.Conflict.Duplicate"


class ConcurrentUpdate(StorageError, Conflict):
    code = "Client.Conflict.Concurrent"


class ReferenceDataInvalid(ValidationFailed):
    """A bad row in a reference-data file; ``source`` and ``line`` say where."""

    code = "Client.Validation.ReferenceData"

    def __init__(self, message: str, *, source: str, line: int | None) -> None:
        where = f"{source} line {line}" if line is not None else source
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line


# SQLSTATE classes of PostgreSQL that mean "try again later" rather than "your data is wrong".
_PG_UNAVAILABLE_STATES = ("08", "53", "57")  # connection, resources, operator intervention
_PG_RETRYABLE = {"40001", "40P01"}  # serialization failure, deadlock
_PG_UNIQUE = "23505"


def constraint_name(error: sa_exc.DBAPIError) -> str | None:
    """Best-effort name of the violated constraint (PostgreSQL) or ``table.column`` (SQLite)."""
    orig = error.orig
    diag = getattr(orig, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return str(diag.constraint_name)
    text = str(orig)
    marker = "UNIQUE constraint failed: "
    if marker in text:
        return text.split(marker, 1)[1].strip()
    return None


def is_unique_violation(error: sa_exc.DBAPIError) -> bool:
    orig = error.orig
    if getattr(orig, "sqlstate", None) == _PG_UNIQUE:
        return True
    if isinstance(orig, sqlite3.IntegrityError):
        return "UNIQUE constraint failed" in str(orig) or "PRIMARY KEY" in str(orig)
    return False


def translate(error: sa_exc.SQLAlchemyError) -> GatewayError:
    """Map a SQLAlchemy (or wrapped driver) error to the most specific storage error."""
    message = str(error.orig) if isinstance(error, sa_exc.DBAPIError) else str(error)
    message = message.strip().splitlines()[0] if message.strip() else type(error).__name__
    if isinstance(error, sa_exc.DBAPIError):
        sqlstate = getattr(error.orig, "sqlstate", None) or ""
        if isinstance(error, sa_exc.IntegrityError):
            if is_unique_violation(error):
                return DuplicateKey(f"duplicate key: {constraint_name(error) or message}")
            return ConstraintViolated(f"constraint violated: {message}")
        if sqlstate in _PG_RETRYABLE:
            return ConcurrentUpdate(f"concurrent transaction: {message}")
        if sqlstate == "42P01" or (  # undefined_table
            isinstance(error.orig, sqlite3.OperationalError) and "no such table" in message
        ):
            return SchemaOutOfDate(f"schema not migrated: {message}")
        if (
            error.connection_invalidated
            or sqlstate[:2] in _PG_UNAVAILABLE_STATES
            or isinstance(error, sa_exc.InterfaceError)
            # Without a SQLSTATE an operational error is the driver's: connection refused or
            # lost, SQLite busy/locked, disk I/O.
            or (isinstance(error, sa_exc.OperationalError) and not sqlstate)
        ):
            return StorageUnavailable(f"database unavailable: {message}")
        return StorageError(f"database error: {message}")
    if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return StorageUnavailable(f"database unavailable: {message}")
    if isinstance(error, sa_exc.ArgumentError):
        return StorageError(f"bad database configuration: {message}")
    return StorageError(f"storage error: {message}")


@contextmanager
def translated() -> Iterator[None]:
    """Run a block so that no SQLAlchemy exception escapes it."""
    try:
        yield
    except sa_exc.SQLAlchemyError as error:
        raise translate(error) from error


P = ParamSpec("P")
R = TypeVar("R")


def translates(function: Callable[P, R]) -> Callable[P, R]:
    """Decorator form of ``translated`` for the public methods of repositories and stores."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with translated():
            return function(*args, **kwargs)

    return wrapper


def handled_error_summary() -> str:
    """The exception being handled, in one line. A failed rollback of a connection that the
    database already dropped (restart, network) needs no traceback in the log: the pool
    discards the connection, and the error that matters is reported by the caller."""
    error = sys.exc_info()[1]
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"
