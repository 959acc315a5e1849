"""``SqlUnitOfWork``: one database transaction, with every repository of the service ports.

    with database.unit_of_work() as uow:
        uow.applications.add(application)
        uow.commit()            # leaving without commit() rolls back

A unit of work is for one thread and one ``with`` block. Inside a request's transaction
(``Database.request_transaction``) a unit of work that wrote does not commit on ``commit()``: its
session is held for the endpoint, which commits it once with the stored answer and the message
log; later units of work of the same request join it through a SAVEPOINT.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

from gateway.services.ports import (
    ApplicationRepository,
    AuthorityRepository,
    EServiceRepository,
    InsuredPersonRepository,
    InsurerRepository,
    UnitOfWork,
)
from persistence.errors import StorageError, handled_error_summary, translated
from persistence.repositories import (
    SqlApplicationRepository,
    SqlAuthorityRepository,
    SqlEServiceRepository,
    SqlInsuredPersonRepository,
    SqlInsurerRepository,
)
from persistence.stores import SqlMobileTransactionRepository, SqlSessionRepository

if TYPE_CHECKING:
    from persistence.db import Database, RequestTransaction

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SqlRepositories:
    """The same repository objects as the port attributes, with their concrete types (and so
    their extra methods: ``previous_values``, ``audit_trail``, ``current_contact_data``…)."""

    insurers: SqlInsurerRepository
    eservices: SqlEServiceRepository
    authorities: SqlAuthorityRepository
    applications: SqlApplicationRepository
    insured_persons: SqlInsuredPersonRepository
    mobile_transactions: SqlMobileTransactionRepository
    sessions: SqlSessionRepository


class SqlUnitOfWork:
    """Implements ``gateway.services.ports.UnitOfWork`` on SQLAlchemy.

    Besides the port's repositories it offers ``mobile_transactions`` and ``sessions`` so that an
    Asan İmza signature and the application it completes can commit together, and ``sql``: the
    repositories with their concrete types.
    """

    # Typed as the ports (protocol attributes are invariant); ``sql`` has the concrete types.
    insurers: InsurerRepository
    eservices: EServiceRepository
    authorities: AuthorityRepository
    applications: ApplicationRepository
    insured_persons: InsuredPersonRepository
    mobile_transactions: SqlMobileTransactionRepository
    sessions: SqlSessionRepository
    sql: SqlRepositories

    def __init__(self, database: Database) -> None:
        self._database = database
        self._session: Session | None = None
        self._request: RequestTransaction | None = None
        # Set when this unit of work joined a request's held transaction (its SAVEPOINT).
        self._savepoint: SessionTransaction | None = None
        self._held = False

    def __enter__(self) -> SqlUnitOfWork:
        if self._session is not None:
            raise StorageError("a unit of work cannot be entered twice")
        self._request = request = self._database.current_request()
        self._held = False
        if request is not None and request.session is not None:
            session = request.session
            with translated():
                self._savepoint = session.begin_nested()
        else:
            # A pooled connection, checked out and begun at the first statement, with an ORM
            # session over it for the repositories that need one (persistence.db
            # .ConnectionSession): a unit of work that runs no statement sends nothing.
            session = self._database.connection_session()
        self._session = session
        options = self._database.options
        issued: dict[str, tuple[Any, Any]] = {}
        self.sql = sql = SqlRepositories(
            insurers=SqlInsurerRepository(session),
            eservices=SqlEServiceRepository(session),
            authorities=SqlAuthorityRepository(session),
            applications=SqlApplicationRepository(session, options, issued),
            insured_persons=SqlInsuredPersonRepository(session, options, issued),
            mobile_transactions=SqlMobileTransactionRepository(session),
            sessions=SqlSessionRepository(session),
        )
        self.insurers = sql.insurers
        self.eservices = sql.eservices
        self.authorities = sql.authorities
        self.applications = sql.applications
        self.insured_persons = sql.insured_persons
        self.mobile_transactions = sql.mobile_transactions
        self.sessions = sql.sessions
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        savepoint, self._savepoint = self._savepoint, None
        if savepoint is not None:
            # Joined a request's transaction: undo only this unit's uncommitted part.
            if savepoint.is_active:
                try:
                    savepoint.rollback()
                except SQLAlchemyError:
                    if exc is None:
                        raise
                    _log.warning("rollback to savepoint after an error failed: %s",
                                 handled_error_summary())
            return
        if self._held:
            return  # the request's transaction owns the session now
        # close() rolls the transaction back and returns the connection without rollback()'s
        # bookkeeping of the identity map (the repositories made domain objects of what they
        # read): 45 instead of 59 us in a loop (issue #10).
        if exc is None:
            with translated():
                session.close()
        else:
            try:
                session.close()
            except SQLAlchemyError:
                # The original error matters more than a failed rollback of a broken
                # connection (which the pool discards anyway).
                _log.warning("rollback after an error failed: %s", handled_error_summary())

    def commit(self) -> None:
        session = self._active()
        with translated():
            if self._savepoint is not None:
                if self._savepoint.is_active:
                    self._savepoint.commit()
                return
            if self._request is not None:
                from persistence.db import wrote

                if self._held or wrote(session):
                    # Committed by the endpoint, together with the answer and the log.
                    self._request.hold(session)
                    self._held = True
                    return
            session.commit()

    def rollback(self) -> None:
        session = self._active()
        with translated():
            if self._savepoint is not None:
                if self._savepoint.is_active:
                    self._savepoint.rollback()
                return
            if self._held and self._request is not None:
                self._request.rollback()
                self._held = False
                self._session = None
                return
            session.rollback()

    def _active(self) -> Session:
        if self._session is None:
            raise StorageError("the unit of work is not active (use it in a with block)")
        return self._session


def _conforms(uow: SqlUnitOfWork) -> UnitOfWork:
    # Static check only: mypy verifies that SqlUnitOfWork satisfies the port.
    return uow
