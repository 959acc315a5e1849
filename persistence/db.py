"""Engines and the ``Database`` handle: the only place that knows connection details.

Nothing here connects at import time; ``create_engine_for`` builds a lazy engine and the first
unit of work opens the first connection.

SQLite (the embedded default) is tuned on every new connection: WAL journal, foreign keys on,
a busy timeout, ``synchronous=NORMAL``. By default SQLite checkpoints the WAL (copies its pages
into the database file, then syncs the file) in whichever commit takes it past 1000 pages: a
request's commit that costs 5-8 ms instead of 0.2 (one Submit in about 25). A server moves that
work off its requests with ``checkpoint_in_background`` and a thread calling ``checkpoint_wal``.
SQLAlchemy, not the ``sqlite3`` module, emits ``BEGIN``:
the module's legacy mode starts transactions only before DML, which breaks SAVEPOINTs,
transactional DDL and repeatable reads. We emit ``BEGIN IMMEDIATE`` so that a transaction takes
the write lock up front: a read-then-write transaction in WAL mode that upgrades late fails at
once with SQLITE_BUSY (the busy timeout does not apply), whereas an immediate one waits its turn.

PostgreSQL (production) goes through psycopg 3. A pooled connection is not pinged on every
checkout (``pool_pre_ping`` costs a round trip each time, several per request): instead the
checkout looks, without a round trip, whether the server has closed the connection or sent it
something while it sat idle (a restarting or terminating server says so before it goes), and
then takes a fresh one; connections older than ``pool_recycle_seconds`` are replaced, so a load
balancer's idle timeout never meets one. A connection that dies in the middle of a request
fails that request with ``StorageUnavailable`` (a transient ``Server.*`` fault the client
retries), and SQLAlchemy then discards the whole pool.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from gateway.domain.calendar import BUSINESS_TZ
from gateway.domain.ssn import SsnFormat
from persistence import driver
from persistence.errors import StorageError, handled_error_summary, translated

if TYPE_CHECKING:
    from persistence.unit_of_work import SqlUnitOfWork

_log = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_MS = 5000
# PostgreSQL connections are replaced after this long (below common idle timeouts of proxies
# and load balancers).
DEFAULT_POOL_RECYCLE_SECONDS = 1800
# Pooled connections kept open (SQLite files and PostgreSQL): at least the server's worker
# threads (the embedded server runs 10), or a busy server opens and closes overflow connections
# all the time, each paying its connect (on SQLite the PRAGMAs and the schema parse).
DEFAULT_POOL_SIZE = 10
# Set on a connection (``Connection.info``) once it has run an INSERT, UPDATE or DELETE in the
# current transaction: a request's transaction that wrote is held open for the endpoint to commit.
WROTE = driver.WROTE
# Azerbaijan has kept UTC+4 without daylight saving time since 2016.
BAKU = BUSINESS_TZ  # the Fund's calendar (gateway.domain.calendar)


def create_engine_for(
    url: str,
    *,
    echo: bool = False,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    pool_size: int = DEFAULT_POOL_SIZE,
    max_overflow: int = 10,
    pool_timeout_seconds: float = 10.0,
    connect_timeout_seconds: int = 10,
    pool_recycle_seconds: int = DEFAULT_POOL_RECYCLE_SECONDS,
) -> Engine:
    """A lazily connecting engine for a ``sqlite:///file`` or ``postgresql[+psycopg]://`` URL.

    ``pool_size`` connections are kept in the pool (and up to ``max_overflow`` more are opened
    for a burst, closed when returned); an in-memory SQLite database has its one connection.
    Raises ``StorageError`` for an unsupported or malformed URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StorageError(f"bad database URL: {error}") from error
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, echo=echo, busy_timeout_ms=busy_timeout_ms,
                              pool_size=pool_size, max_overflow=max_overflow,
                              pool_timeout_seconds=pool_timeout_seconds)
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        with translated():
            engine = create_engine(
                parsed,
                echo=echo,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=pool_timeout_seconds,
                pool_recycle=pool_recycle_seconds,
                # No server-side prepared statements: psycopg drops them all after every
                # ROLLBACK (every read-only unit of work ends with one) and sends DEALLOCATE
                # ALL before the connection's next statement, a round trip on the next
                # request, and prepares again (issue #10); the hot statements are planned in
                # microseconds.
                connect_args={"connect_timeout": connect_timeout_seconds,
                              "prepare_threshold": None},
                # Stated, not inherited from the server's default_transaction_isolation: a
                # unit of work's plain reads run before its BEGIN (ConnectionSession), which
                # reads the same only in READ COMMITTED, where each statement has a snapshot
                # of its own. psycopg sends it with BEGIN, no round trip of its own.
                isolation_level="READ COMMITTED",
            )
        event.listen(engine, "checkout", _refuse_closed_connection)
        _track_writes(engine)
        _reads_first(engine)
        return engine
    raise StorageError(f"unsupported database backend {backend!r} (sqlite or postgresql)")


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Checkout: a connection the server closed, or wrote to while it sat idle in the pool
    (PostgreSQL says "terminating connection" to every session before a restart or a
    ``pg_terminate_backend``), is replaced by a new one. One ``poll`` on the socket, no round
    trip; ``DisconnectionError`` makes the pool discard it and check out another."""
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("the connection was closed")
    # poll(), not select(): select() refuses descriptors above 1023, which a busy worker has.
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
    if poller.poll(0):
        raise DisconnectionError("the server closed or wrote to an idle connection")


def _track_writes(engine: Engine) -> None:
    """Marks a connection that wrote in its transaction (see ``RequestTransaction``)."""

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, _cursor: Any, _stmt: Any, _params: Any, context: Any,
               _many: bool) -> None:
        if context is not None and (context.isinsert or context.isupdate or context.isdelete):
            conn.info[WROTE] = True

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _end(conn: Any) -> None:
        # An invalidated connection's ``info`` would reconnect first (and refuse: "rollback()
        # fully before proceeding"), failing the very rollback that ends it; the pool clears the
        # info of the connection it opens in its place.
        if not conn.invalidated:
            conn.info.pop(WROTE, None)


def _reads_first(engine: Engine) -> None:
    """PostgreSQL: a unit of work's plain reads before its first other statement run in
    psycopg's autocommit mode (``ConnectionSession``); SQLAlchemy's statements begin the
    transaction here as the driver's do in ``persistence.driver``; and a connection never goes
    back to the pool in autocommit mode."""

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any,
                _many: bool) -> None:
        info = conn.info
        if driver.READS_FIRST in info and not driver.plain_read(statement):
            driver.leave_reads_first(info, conn.connection.driver_connection)

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is None:
            return
        record.info.pop(driver.READS_FIRST, None)
        if dbapi_connection.autocommit:
            try:
                dbapi_connection.autocommit = False
            except Exception:  # noqa: BLE001 - not idle: a broken connection, not pooled again
                record.invalidate()


def _sqlite_engine(url: str, *, echo: bool, busy_timeout_ms: int, pool_size: int,
                   max_overflow: int, pool_timeout_seconds: float) -> Engine:
    parsed = make_url(url)
    in_memory = parsed.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"echo": echo}
    if in_memory:
        # One shared connection, or every checkout would see a new empty database.
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        # SQLAlchemy's QueuePool for a file, sized like PostgreSQL's (its default of 5 made the
        # embedded server's 10 worker threads open 31 connections for 200 requests).
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow,
                      pool_timeout=pool_timeout_seconds)
    with translated():
        engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _tune(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if not in_memory:
                _enable_wal(cursor)
                pages = _checkpoint_fallback.get(engine)
                if pages is not None:  # Database.checkpoint_in_background
                    cursor.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    if not in_memory:
        turn = _WriterTurn(busy_timeout_ms / 1000, f"{parsed.database}-turn")
        dialect = engine.dialect
        commit, rollback = dialect.do_commit, dialect.do_rollback

        # The turn ends once COMMIT or ROLLBACK has run (not at SQLAlchemy's "commit" event,
        # which fires before it): the next thread then finds the file unlocked. The pool's
        # reset-on-return rolls back through the same dialect method.
        def _do_commit(connection: Any) -> None:
            try:
                commit(connection)
            finally:
                turn.end(connection)

        def _do_rollback(connection: Any) -> None:
            try:
                rollback(connection)
            finally:
                turn.end(connection)

        # A connection closed in its transaction (invalidated: an exit exception such as
        # KeyboardInterrupt or SystemExit in a statement, a lost connection, an explicit
        # ``invalidate()``) never goes through COMMIT or ROLLBACK: closing it frees SQLite's
        # lock, so its turn ends there too, or this process would keep the lock file (and its
        # other threads the in-process lock) and every other writer would wait the whole busy
        # timeout from then on. The pool's terminate goes through ``do_close`` as well.
        close = dialect.do_close

        def _do_close(connection: Any) -> None:
            try:
                close(connection)
            finally:
                turn.end(connection)

        dialect.do_commit = _do_commit  # type: ignore[method-assign,assignment]
        dialect.do_rollback = _do_rollback  # type: ignore[method-assign,assignment]
        dialect.do_close = _do_close  # type: ignore[method-assign,assignment]

    # BEGIN goes to the driver from the dialect's begin step, not through a "begin" event
    # listener's ``exec_driver_sql``: that is a whole statement execution in SQLAlchemy
    # (context, events, result) on every transaction, several per request (issue #10). Errors
    # are wrapped and translated as any statement's (the step runs inside SQLAlchemy's handler).
    def _do_begin(connection: Any) -> None:  # the pool's connection
        waited_out = not in_memory and not turn.begin(connection)
        cursor = connection.cursor()
        try:
            if waited_out:
                # The wait for the turn took the whole busy timeout: SQLite gets none of its
                # own, or a writer would wait twice the busy timeout before "database is
                # locked" (behind a CLI's long transaction, a server's requests failed after
                # 10 s instead of 5).
                cursor.execute("PRAGMA busy_timeout = 0")
                try:
                    cursor.execute("BEGIN IMMEDIATE")
                finally:
                    cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            else:
                cursor.execute("BEGIN IMMEDIATE")
        finally:
            cursor.close()

    engine.dialect.do_begin = _do_begin  # type: ignore[method-assign,assignment]

    _track_writes(engine)
    return engine


# SQLite engines whose WAL a background caller checkpoints (Database.checkpoint_in_background):
# the WAL size, in pages, past which their commits still checkpoint it themselves.
_checkpoint_fallback: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


class _WriterTurn:
    """Transactions on one SQLite file take turns at its write lock in a queue, not in SQLite's
    busy handler: the threads of this process at a lock, the processes at a lock file beside
    the database (``<database>-turn``).

    Every transaction begins IMMEDIATE (see the module docstring), so two threads or processes
    always contend for the file's lock. SQLite's busy handler makes the loser sleep in growing
    steps up to 100 ms and does not wake it when the lock is freed: under 8 concurrent clients
    the embedded server's p99 was 0.5-0.8 s, against 0.17 s with a single worker thread, and
    gunicorn's two worker processes on one file had a SubmitRegistration p99 of 180-200 ms
    against 60-80 ms with one. A thread waiting here instead wakes as soon as the holder
    commits, and a process within a millisecond or two (it polls the lock file's ``flock``).
    Tools that do not take the turn (the ``sqlite3`` shell, a backup) still meet SQLite's busy
    timeout, as before.

    The same thread may begin a second transaction on another connection while it holds one
    (it passes here and then meets SQLite's busy timeout, as before); a thread or process that
    waited the whole busy timeout here goes on to SQLite, which decides at once (no second busy
    timeout: the wait stays within the busy timeout, as with SQLite alone); a lock file that
    cannot be opened (a read-only directory) leaves the processes to SQLite. So this never
    deadlocks where SQLite alone would not.
    """

    def __init__(self, timeout_seconds: float, lock_path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._timeout = timeout_seconds
        self._owner: int | None = None
        self._held: set[int] = set()  # id() of the DBAPI connections in the turn
        self._lock_path = lock_path
        self._file: tuple[int, int] | None = None  # (pid, descriptor): flock is per process
        self._file_held = False

    def begin(self, connection: Any) -> bool:
        """Waits for the connection's turn; False when that took the whole busy timeout."""
        raw = id(getattr(connection, "dbapi_connection", connection))
        me = threading.get_ident()
        if self._owner != me:  # only the holder itself can see its own ident here
            deadline = time.monotonic() + self._timeout
            if not self._lock.acquire(timeout=self._timeout):
                return False
            self._owner = me
            self._file_held = self._take_file(deadline)
            self._held.add(raw)
            # (No lock file to take, or it failed: no wait, so the time is not all used.)
            return self._file_held or time.monotonic() < deadline
        self._held.add(raw)
        return True

    def end(self, connection: Any) -> None:
        raw = id(getattr(connection, "dbapi_connection", connection))
        if raw not in self._held:
            return
        self._held.discard(raw)
        if not self._held:
            if self._file_held:
                self._file_held = False
                self._release_file()
            self._owner = None
            self._lock.release()

    def _descriptor(self) -> int | None:
        pid = os.getpid()
        if self._file is not None and self._file[0] == pid:
            return self._file[1]
        # A descriptor inherited through fork shares its lock with the parent: open our own.
        if self._lock_path is None:
            return None
        try:
            # Read-only is enough for flock, and 0644 lets a service user open the file a
            # root-run CLI created first (it holds nothing: the database's own mode guards it).
            fd = os.open(self._lock_path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            _log.warning("SQLite's writer turn between processes is off (%s): they wait in"
                         " SQLite's busy handler", error.strerror)
            self._lock_path = None
            return None
        self._file = (pid, fd)
        weakref.finalize(self, _close_in, pid, fd)  # with the engine that holds this turn
        return fd

    def _take_file(self, deadline: float) -> bool:
        fd = self._descriptor()
        if fd is None:
            return False
        pause = 0.0002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            except OSError:
                return False
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.002)

    def _release_file(self) -> None:
        if self._file is not None and self._file[0] == os.getpid():
            try:
                fcntl.flock(self._file[1], fcntl.LOCK_UN)
            except OSError:
                pass


def _close_in(pid: int, fd: int) -> None:
    if os.getpid() == pid:
        try:
            os.close(fd)
        except OSError:
            pass


def _enable_wal(cursor: Any) -> None:
    """WAL is a property of the file: set once, then every connection just sees it. Setting it
    needs the file to itself, and SQLite answers "locked" at once (no busy wait) when several
    processes open a new database together, so the first-time switch retries, bounded."""
    mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
    if str(mode).lower() == "wal":
        return
    for attempt in range(_WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.05)


_WAL_ATTEMPTS = 100  # 5 s at most, like the busy timeout


class ConnectionSession(Session):
    """An ORM session for units of work that checks out a pooled Core connection and begins
    its transaction only at its first statement (issue #10).

    A unit of work that runs no statement (an authorization that needs no read, a read served
    from memory) sends nothing: no checkout, no ``BEGIN``, no ``ROLLBACK``, and on SQLite it
    never takes the write lock or the writer turn. The first statement checks the connection
    out and begins (``BEGIN IMMEDIATE`` on SQLite, as every transaction): an unreachable
    database fails there, with the same storage error as any statement's.

    The request path's statements go to the driver's cursor of the connection
    (``persistence.driver``); most units of work never use the ORM. Until they do, this session
    has no ORM transaction: ``connection()`` is the Core connection itself, and ``commit``,
    ``rollback`` and ``close`` are the connection's own, without the ORM's transaction
    bookkeeping (about half the cost of a unit of work's begin and end). The first ORM use (a
    query, a flush, ``begin_nested``) joins the connection's transaction and takes control of it
    (``join_transaction_mode="control_fully"``): from then on everything is the ORM's as in a
    plain session, SAVEPOINTs included.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(expire_on_commit=False, autoflush=False,
                         join_transaction_mode="control_fully")
        self._engine = engine
        self.core: Connection | None = None  # checked out at the first statement

    @property
    def started(self) -> bool:
        """True once a statement checked a connection out (it may have ended since)."""
        return self.core is not None

    def _begun(self) -> Connection:
        """The connection, in a transaction: checked out and begun on first use, and begun
        again after ``commit()`` or ``rollback()``."""
        core = self.core
        with translated():
            if core is None:
                core = self._engine.connect()
                try:
                    core.begin()
                    if core.dialect.name == "postgresql":
                        _enter_reads_first(core)
                except BaseException:
                    core.close()
                    raise
                self.core = core
            elif not core.in_transaction():
                core.begin()
        return core

    def get_bind(self, mapper: Any = None, *, clause: Any = None, bind: Any = None,
                 **kw: Any) -> Engine | Connection:
        # The ORM's one way to its connection (SQLAlchemy documents it as the hook): the ORM
        # transaction then joins the connection's, begun here.
        if bind is not None:
            return bind  # type: ignore[no-any-return]
        return self._begun()

    def connection(self, bind_arguments: Any = None,
                   execution_options: Any = None) -> Connection:
        if self._transaction is None and bind_arguments is None and execution_options is None:
            return self._begun()
        # In an ORM transaction the connection comes from it: a SAVEPOINT of begin_nested()
        # is emitted only there, on first use.
        return super().connection(bind_arguments, execution_options)

    def commit(self) -> None:
        self.flush()  # no-op unless ORM objects are pending (which begins the ORM transaction)
        if self._transaction is None:
            if self.core is not None:
                self.core.commit()
        else:
            super().commit()

    def rollback(self) -> None:
        if self._transaction is None:
            if self.core is not None:
                self.core.rollback()
        else:
            super().rollback()

    def close(self) -> None:
        try:
            super().close()
        finally:
            core, self.core = self.core, None
            # (An invalidated connection is not touched: its ``.info`` would reconnect.)
            if core is not None and not core.invalidated and driver.READS_FIRST in core.info:
                # Only plain reads ran, in autocommit: nothing to roll back.
                del core.info[driver.READS_FIRST]
                try:
                    core.connection.driver_connection.autocommit = False  # type: ignore[union-attr]
                except Exception:  # noqa: BLE001 - psycopg refuses on a broken connection
                    core.invalidate()
            if core is not None:
                # What is still open is rolled back here, through the connection's own error
                # handling, not by the pool's reset on return: a rollback that fails (the
                # server went away mid-transaction) then discards the connection quietly
                # instead of the pool logging "Exception during reset" with a traceback for a
                # handled outage.
                if core.in_transaction() and not core.invalidated:
                    try:
                        core.rollback()
                    except SQLAlchemyError:
                        core.invalidate()
                core.close()


def _enter_reads_first(core: Connection) -> None:
    """PostgreSQL: the unit of work's statements run in psycopg's autocommit mode until the
    first one that is not a plain read (``persistence.driver.plain_read``), which begins the
    transaction: psycopg then sends BEGIN before it, and everything from there on is one
    transaction as before. In READ COMMITTED (PostgreSQL's default, used here) each statement
    reads a snapshot of its own start inside a transaction or out of it, and a plain SELECT
    takes no lock that the transaction would keep, so a read before the BEGIN reads what it
    would have read after it; a unit of work that only reads sends its SELECTs alone, without
    BEGIN and ROLLBACK (issue #10). Switching autocommit is local to psycopg; a connection
    that is not idle (a broken one) stays as it is, and its statement reports the failure."""
    raw = core.connection.driver_connection
    try:
        raw.autocommit = True  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - reported by the statement, as any failure
        return
    core.info[driver.READS_FIRST] = True


class RequestTransaction:
    """The one writing transaction of a request (DESIGN §5: one request, one transaction).

    While a request runs inside ``Database.request_transaction()``, the first unit of work or
    ``transaction()`` that *wrote* and commits is not committed: its session is held here, and
    every later one joins it through a SAVEPOINT. The endpoint then adds the stored answer and the
    message-log entry to the same transaction and commits once (``commit``), so the business
    rows, the idempotency record and the log become durable together or not at all, and the
    answer leaves only after that commit. Reads commit (roll back) on their own as before, so no
    lock is held across a slow upstream call.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self.session: Session | None = None

    @property
    def wrote(self) -> bool:
        return self.session is not None

    def hold(self, session: Session) -> None:
        if self.session is not None and self.session is not session:
            raise StorageError("a request holds one transaction")
        self.session = session

    def open(self) -> Session:
        """The held session, or a new one in a new transaction (held from now on)."""
        if self.session is None:
            self.session = self.database.connection_session()
        return self.session

    def commit(self) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        try:
            with translated():
                session.commit()
        finally:
            session.close()

    def rollback(self) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        try:
            session.rollback()
        except Exception:  # noqa: BLE001 - a broken connection is discarded by the pool anyway
            _log.warning("rollback of a request's transaction failed: %s", handled_error_summary())
        finally:
            session.close()


_request_tx: ContextVar[RequestTransaction | None] = ContextVar("dsmf_request_tx", default=None)


def wrote(session: Session) -> bool:
    """True once the session's current transaction ran an INSERT, UPDATE or DELETE."""
    session.flush()
    if isinstance(session, ConnectionSession) and not session.started:
        return False  # ran no statement (and so checked out no connection)
    return bool(session.connection().info.get(WROTE))


@dataclass(frozen=True, slots=True)
class StorageOptions:
    """How the repositories interpret data; passed to every unit of work."""

    ssn_format: SsnFormat = field(default_factory=SsnFormat)
    # Registry search by "application date" means the date on the insurer's calendar.
    business_tz: tzinfo = BAKU
    # The registry search counts matches exactly up to this many (or to the end of the page
    # asked for, if further); beyond that ``Page.total`` is a lower bound (SqlApplicationRepository
    # .search), so no page costs a count of every row of a big insurer.
    search_count_limit: int = 10_000


class Database:
    """An engine, its session factory and the storage options: the composition root holds one.

    ``database.unit_of_work`` is a ``gateway.services.ports.UnitOfWorkFactory``.
    """

    def __init__(
        self,
        url_or_engine: str | Engine,
        *,
        options: StorageOptions | None = None,
        echo: bool = False,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        pool_recycle_seconds: int = DEFAULT_POOL_RECYCLE_SECONDS,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        if isinstance(url_or_engine, Engine):
            self.engine = url_or_engine
        else:
            self.engine = create_engine_for(
                url_or_engine, echo=echo, busy_timeout_ms=busy_timeout_ms,
                pool_recycle_seconds=pool_recycle_seconds, pool_size=pool_size,
            )
        self.options = options or StorageOptions()
        self.sessions: sessionmaker[Session] = sessionmaker(
            bind=self.engine, expire_on_commit=False, autoflush=False
        )

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def unit_of_work(self) -> SqlUnitOfWork:
        from persistence.unit_of_work import SqlUnitOfWork

        return SqlUnitOfWork(self)

    def connection_session(self) -> ConnectionSession:
        """A session whose connection is checked out, and its transaction begun, at its first
        statement (``ConnectionSession``)."""
        return ConnectionSession(self.engine)

    @contextmanager
    def request_transaction(self) -> Iterator[RequestTransaction]:
        """The scope of one request's transaction (see ``RequestTransaction``); whatever is
        still held when the block ends without ``commit()`` is rolled back."""
        tx = RequestTransaction(self)
        token = _request_tx.set(tx)
        try:
            yield tx
        finally:
            _request_tx.reset(token)
            tx.rollback()

    def current_request(self) -> RequestTransaction | None:
        tx = _request_tx.get()
        return tx if tx is not None and tx.database is self else None

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error.
        Inside a request's transaction, it joins it (see ``RequestTransaction``)."""
        tx = self.current_request()
        if tx is not None and tx.session is not None:
            with translated():
                with tx.session.begin_nested():
                    yield tx.session
            return
        session = self.sessions()
        held = False
        try:
            with translated():
                session.begin()
                yield session
                if tx is not None and wrote(session):
                    tx.hold(session)
                    held = True
                else:
                    session.commit()
        except BaseException:
            try:
                session.rollback()
            except Exception:  # noqa: BLE001 - the original error matters more
                _log.warning("rollback after an error failed: %s", handled_error_summary())
            raise
        finally:
            if not held:
                session.close()

    def ping(self) -> None:
        """Raises ``StorageUnavailable`` (or another ``StorageError``) when the database cannot
        answer a trivial query (for health checks)."""
        with self.transaction() as session:
            session.execute(text("SELECT 1"))

    @property
    def _wal(self) -> bool:
        return self.dialect == "sqlite" and self.engine.url.database not in (None, "", ":memory:")

    def checkpoint_in_background(self, fallback_pages: int) -> bool:
        """SQLite file: from now on its commits leave the WAL's checkpoint to ``checkpoint_wal``
        (which the caller runs periodically, off the requests), except past ``fallback_pages``
        WAL pages, a bound should that fall behind or stop. False, and nothing changed, for
        PostgreSQL and an in-memory SQLite database."""
        if not self._wal:
            return False
        if fallback_pages < 1:
            raise StorageError("the checkpoint fallback needs at least one page")
        _checkpoint_fallback[self.engine] = fallback_pages
        # The connections pooled so far kept SQLite's 1000 pages; new ones get the fallback.
        self.engine.dispose()
        return True

    def checkpoint_wal(self) -> tuple[int, int] | None:
        """A PASSIVE checkpoint of a SQLite file's WAL: copies what no reader still needs into
        the database file, without waiting for or blocking readers and writers (another
        checkpoint under way: nothing is done). Returns (frames in the WAL, frames checkpointed
        now or before), or None for PostgreSQL and an in-memory SQLite database."""
        if not self._wal:
            return None
        with translated(), self.engine.connect() as conn:
            # On the driver's connection in autocommit: a checkpoint cannot run inside the
            # BEGIN IMMEDIATE that SQLAlchemy's execution would open, and needs no write turn.
            raw = conn.connection.driver_connection
            assert raw is not None
            _busy, frames, done = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return (max(frames, 0), max(done, 0))

    def dispose(self) -> None:
        """Close pooled connections (call after fork, and at shutdown)."""
        self.engine.dispose()

    def watch_statements(self, callback: Callable[[str, Any], None]) -> None:
        """Calls ``callback(statement, parameters)`` for every statement this database's
        connections send to the driver (benchmarks replay what a request wrote), also those of
        ``persistence.driver``."""
        driver.watch(self.engine, callback)

        @event.listens_for(self.engine, "before_cursor_execute")
        def _watch(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                   _executemany: bool) -> None:
            callback(statement, parameters)

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"


@contextmanager
def scratch_postgres_database(server_url: str, prefix: str = "scratch", *,
                              copy_of: str | None = None) -> Iterator[str]:
    """A new database on the PostgreSQL server of ``server_url`` (any database on it), dropped
    afterwards: for benchmarks and tools that must not touch real data. Empty, or with
    ``copy_of`` a copy of that database (``CREATE DATABASE … TEMPLATE``: it must have no open
    sessions). Yields its URL in ``server_url``'s form."""
    import secrets

    import psycopg
    from psycopg import sql

    server = make_url(server_url)
    admin = libpq_url(server_url)
    name = f"{prefix}_{secrets.token_hex(4)}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if copy_of is not None:
        create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(copy_of))
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(create)
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


def libpq_url(url: str) -> str:
    """``url`` as libpq (psycopg) takes it: ``postgresql://``, without SQLAlchemy's
    ``+psycopg`` driver suffix."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_name(url: str) -> str:
    """The database a URL names (a file's path for SQLite)."""
    return make_url(url).database or ""
