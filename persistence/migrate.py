"""Schema migrations through Alembic's API, with an in-code Config (no alembic.ini at runtime).

    upgrade(url)              # bring the database to the newest revision (idempotent),
                              # then ANALYZE if a step was applied (or analyze=True)
    current_revision(url)     # the revision the database is at, None when never migrated
    head_revision()           # the newest revision this code knows
    require_current(url)      # raise SchemaOutOfDate unless the database is at the head

The migration scripts live in ``persistence/migrations`` (the package folder is the script
location). Migrations run on a connection from ``create_engine_for``, so SQLite gets the same
tuning (WAL, foreign keys, BEGIN IMMEDIATE: the DDL is transactional there too). Concurrent
``upgrade`` calls (several workers starting) are serialised, so exactly one applies each step.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import func, select

from persistence.db import create_engine_for
from persistence.errors import SchemaOutOfDate, StorageError, translated
from persistence.maintenance import optimize

# Any constant works; it only has to be the same in every process ("DSMF-MIG" in ASCII).
_MIGRATION_LOCK_KEY = 0x44534D462D4D4947
SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if url is not None:
        # ConfigParser interpolation: a literal % in a password must be doubled.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head", *, analyze: bool = False) -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: the newest).

    When a step was applied (new indexes need statistics), or with ``analyze``, the planner
    statistics are refreshed afterwards (``persistence.maintenance.optimize``)."""
    config = alembic_config(url)
    engine = create_engine_for(url)
    try:
        with translated(), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several workers may start at once: one migrates, the others wait and then
                # find the schema current. (SQLite: BEGIN IMMEDIATE already serialises.)
                connection.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
            before = MigrationContext.configure(connection).get_current_revision()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            after = MigrationContext.configure(connection).get_current_revision()
        if analyze or after != before:
            optimize(engine, full=True)
    except CommandError as error:
        raise StorageError(f"migration failed: {error}") from error
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Migrate down to ``revision`` ("base" drops everything): for development only."""
    config = alembic_config(url)
    engine = create_engine_for(url)
    try:
        with translated(), engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
    except CommandError as error:
        raise StorageError(f"migration failed: {error}") from error
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = create_engine_for(url)
    try:
        with translated(), engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def require_current(url: str) -> None:
    current, head = current_revision(url), head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"database schema is at {current or 'nothing'}, this code needs {head}: "
            "run the migrate command"
        )
