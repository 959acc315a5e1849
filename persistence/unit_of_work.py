"""``SqlUnitOfWork``: one database transaction, with every repository of the service ports.

    with database.unit_of_work() as uow:
        uow.applications.add(application)
        uow.commit()            # leaving without commit() rolls back

A unit of work is for one thread and one ``with`` block; open a new one per request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.services.ports import (
    ApplicationRepository,
    AuthorityRepository,
    EServiceRepository,
    IdempotencyStore,
    InsuredPersonRepository,
    InsurerRepository,
    UnitOfWork,
)
from persistence.errors import StorageError, translated
from persistence.repositories import (
    SqlApplicationRepository,
    SqlAuthorityRepository,
    SqlEServiceRepository,
    SqlIdempotencyStore,
    SqlInsuredPersonRepository,
    SqlInsurerRepository,
)
from persistence.stores import SqlMobileTransactionRepository, SqlSessionRepository

if TYPE_CHECKING:
    from persistence.db import Database

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
    idempotency: SqlIdempotencyStore
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
    idempotency: IdempotencyStore
    mobile_transactions: SqlMobileTransactionRepository
    sessions: SqlSessionRepository
    sql: SqlRepositories

    def __init__(self, database: Database) -> None:
        self._database = database
        self._session: Session | None = None

    def __enter__(self) -> SqlUnitOfWork:
        if self._session is not None:
            raise StorageError("a unit of work cannot be entered twice")
        session = self._database.sessions()
        try:
            with translated():
                session.begin()
                # Connect now, so an unreachable database fails here and not mid-handler.
                session.connection()
        except BaseException:
            session.close()
            raise
        self._session = session
        options = self._database.options
        self.sql = sql = SqlRepositories(
            insurers=SqlInsurerRepository(session),
            eservices=SqlEServiceRepository(session),
            authorities=SqlAuthorityRepository(session),
            applications=SqlApplicationRepository(session, options),
            insured_persons=SqlInsuredPersonRepository(session, options),
            idempotency=SqlIdempotencyStore(session),
            mobile_transactions=SqlMobileTransactionRepository(session),
            sessions=SqlSessionRepository(session),
        )
        self.insurers = sql.insurers
        self.eservices = sql.eservices
        self.authorities = sql.authorities
        self.applications = sql.applications
        self.insured_persons = sql.insured_persons
        self.idempotency = sql.idempotency
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
        try:
            if exc is None:
                with translated():
                    session.rollback()
            else:
                try:
                    session.rollback()
                except SQLAlchemyError:
                    # The original error matters more than a failed rollback of a broken
                    # connection (which the pool discards anyway).
                    _log.warning("rollback after an error failed", exc_info=True)
        finally:
            session.close()

    def commit(self) -> None:
        with translated():
            self._active().commit()

    def rollback(self) -> None:
        with translated():
            self._active().rollback()

    def _active(self) -> Session:
        if self._session is None:
            raise StorageError("the unit of work is not active (use it in a with block)")
        return self._session


def _conforms(uow: SqlUnitOfWork) -> UnitOfWork:
    # Static check only: mypy verifies that SqlUnitOfWork satisfies the port.
    return uow
