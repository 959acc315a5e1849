"""Alembic environment: the URL or an open connection comes from ``persistence.migrate``.

Online: ``config.attributes["connection"]`` (preferred, so SQLite gets our connection tuning) or
``sqlalchemy.url`` in the in-code Config. Offline (``--sql``): the URL's dialect only.
"""

from __future__ import annotations

from alembic import context

from persistence.db import create_engine_for
from persistence.tables import metadata

config = context.config
target_metadata = metadata


def _configure(**kwargs):
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things: later migrations get copy-and-move batch mode.
        render_as_batch=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine_for(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
