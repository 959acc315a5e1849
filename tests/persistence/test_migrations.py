"""Alembic: the migrated schema is exactly the declared metadata, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from persistence.db import Database, create_engine_for
from persistence.errors import SchemaOutOfDate, StorageError
from persistence.migrate import (
    current_revision,
    downgrade,
    head_revision,
    require_current,
    upgrade,
)
from persistence.tables import SSN_SEQUENCE_NAME, metadata


def test_upgrade_on_empty_database_matches_metadata(database_url: str) -> None:
    assert current_revision(database_url) is None
    upgrade(database_url)
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, metadata) == []
            tables = set(inspect(connection).get_table_names())
            assert set(metadata.tables) <= tables
            if engine.dialect.name == "postgresql":
                # autogenerate does not compare sequences: check the one we create by hand.
                found = connection.execute(
                    text("SELECT 1 FROM pg_class WHERE relkind = 'S' AND relname = :n"),
                    {"n": SSN_SEQUENCE_NAME},
                ).scalar()
                assert found == 1
            else:
                assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        engine.dispose()


def test_revisions_upgrade_is_idempotent_and_downgrade_empties(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)
    assert current_revision(database_url) == head_revision() is not None
    require_current(database_url)
    downgrade(database_url, "base")
    assert current_revision(database_url) is None
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_unmigrated_database_is_reported(database_url: str) -> None:
    with pytest.raises(SchemaOutOfDate):
        require_current(database_url)
    database = Database(database_url)
    try:
        with pytest.raises(SchemaOutOfDate), database.unit_of_work() as uow:
            uow.insurers.get("1403567891")
    finally:
        database.dispose()


def test_bad_urls_are_storage_errors() -> None:
    with pytest.raises(StorageError):
        create_engine_for("mysql://nobody@localhost/x")
    with pytest.raises(StorageError):
        create_engine_for("not a url")


def test_concurrent_upgrades_do_not_collide(database_url: str) -> None:
    # Several gunicorn workers starting together each call upgrade(); one must win cleanly.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(lambda _: upgrade(database_url), range(3)))
    assert outcomes == [None, None, None]
    assert current_revision(database_url) == head_revision()
