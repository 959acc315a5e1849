"""The bulk loader (benchmark registries) writes what the repository writes, and the planner
statistics are refreshed by migrate and by ``optimize``; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text

from gateway.domain.model import ApplicationStatus, ApplicationType, CertificateStatus
from gateway.services.ports import ApplicationQuery
from persistence.bulk import bulk_insert_applications
from persistence.db import Database
from persistence.errors import ConstraintViolated
from persistence.maintenance import optimize
from persistence.migrate import upgrade
from persistence.tables import ApplicationRow, StatusHistoryRow, metadata

from .conftest import T0, VOEN_A, VOEN_B, application

# What differs between two stored copies of one application besides its id.
_OWN = {"application_id", "updated_at"}


def _row(db: Database, application_id: str) -> dict[str, Any]:
    with db.transaction() as session:
        row = session.execute(
            select(ApplicationRow.__table__).where(ApplicationRow.application_id == application_id)
        ).one()
        history = session.execute(
            select(StatusHistoryRow.seq, StatusHistoryRow.status, StatusHistoryRow.at,
                   StatusHistoryRow.actor_fin, StatusHistoryRow.note)
            .where(StatusHistoryRow.application_id == application_id)
            .order_by(StatusHistoryRow.seq)
        ).all()
    values = {k: v for k, v in row._mapping.items() if k not in _OWN}
    values["history"] = [tuple(h) for h in history]
    return values


def test_bulk_rows_are_the_rows_the_repository_writes(seeded: Database) -> None:
    registered = dict(status=ApplicationStatus.REGISTERED, ssn="100000000018",
                      ssn_date=date(2026, 3, 2), certificate_status=CertificateStatus.ISSUED)
    samples = [
        application("5GH3J7K", surname="İsmayılov", name="Ömər", patronymic="Şükür oğlu",
                    **registered),  # type: ignore[arg-type]
        application("A1B2C", surname="Yılmaz", name="Ayşe", patronymic=None,
                    application_type=ApplicationType.CORRECTION),
    ]
    twins = [application(a.fin, surname=a.person.surname if a.person else "",
                         name=a.person.name if a.person else "",
                         patronymic=a.person.patronymic if a.person else None,
                         application_type=a.application_type, status=a.status, ssn=a.ssn,
                         ssn_date=a.ssn_date, certificate_status=a.certificate_status)
             for a in samples]
    with seeded.unit_of_work() as uow:
        for app in samples:
            uow.applications.add(app)
        uow.commit()
    assert bulk_insert_applications(seeded, twins, batch_size=1) == 2
    for mine, twin in zip(samples, twins, strict=True):
        assert _row(seeded, twin.application_id) == _row(seeded, mine.application_id)
        with seeded.unit_of_work() as uow:
            assert uow.applications.get(twin.application_id) == twin


def test_bulk_loads_many_in_batches_and_search_finds_them(seeded: Database) -> None:
    apps = [application(f"B{n:06d}", voen=VOEN_A if n % 10 == 0 else VOEN_B,
                        surname="Hüseynova" if n % 3 else "Quliyev",
                        created_at=T0 + timedelta(minutes=n))
            for n in range(1000)]
    assert bulk_insert_applications(seeded, iter(apps), batch_size=300, defer_indexes=True) == 1000
    assert _schema_differences(seeded) == []  # the indexes are back
    optimize(seeded, vacuum=True)
    with seeded.unit_of_work() as uow:
        mine = uow.applications.search(ApplicationQuery(VOEN_A, surname="hüs", page_size=5))
        theirs = uow.applications.search(ApplicationQuery(VOEN_B, page_size=5))
    assert mine.total == len([a for a in apps[::10] if a.person and a.person.surname[0] == "H"])
    assert [a.fin for a in mine.items] == ["B000980", "B000970", "B000950", "B000940",
                                           "B000920"]
    assert theirs.total == 900


def _schema_differences(db: Database) -> list[Any]:
    with db.engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))


def test_a_failed_load_with_deferred_indexes_leaves_them_built(seeded: Database) -> None:
    good = [application(f"E{n:06d}") for n in range(5)]
    stranger = application("E999999", voen="1999999991")  # no such insurer
    with pytest.raises(ConstraintViolated):
        bulk_insert_applications(seeded, [*good, stranger], batch_size=2, defer_indexes=True)
    assert _schema_differences(seeded) == []
    with seeded.unit_of_work() as uow:  # whole batches before the bad one are in
        assert uow.applications.search(ApplicationQuery(VOEN_A)).total == 4


def _analyzed(db: Database) -> bool:
    """Whether the applications table has planner statistics (neither database writes any
    for an empty table)."""
    with db.transaction() as session:
        if db.dialect == "postgresql":
            return bool(session.execute(text(
                "SELECT count(*) FROM pg_stats WHERE tablename = 'applications'")).scalar())
        has_table = session.execute(text(
            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar()
        return bool(has_table) and bool(session.execute(text(
            "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'applications'")).scalar())


def test_optimize_gives_the_planner_statistics(seeded: Database) -> None:
    apps = [application(f"C{n:06d}", created_at=T0 + timedelta(minutes=n)) for n in range(50)]
    bulk_insert_applications(seeded, apps)
    assert not _analyzed(seeded)
    optimize(seeded)
    assert _analyzed(seeded)


def test_migrate_analyzes_when_asked(seeded: Database, database_url: str) -> None:
    bulk_insert_applications(seeded, [application("D000001"), application("D000002")])
    assert not _analyzed(seeded)
    upgrade(database_url)  # nothing to apply: no statistics either
    assert not _analyzed(seeded)
    upgrade(database_url, analyze=True)  # what `dsmf-gateway migrate` does
    assert _analyzed(seeded)
