"""Planner statistics: what lets the databases pick the right index for a registry search.

Without statistics SQLite's planner guesses, and at a million applications it walks the
insurer's whole (insurer, created_at) index for a FIN lookup instead of the (insurer, fin)
index (0.29 s against 6.5 ms). PostgreSQL's autovacuum analyzes tables as they change, but not
right after a migration created new indexes or a bulk load.

``optimize`` runs ``ANALYZE`` on either database. ``migrate`` runs it in full after a migration
step; the embedded server every ``optimize_every_seconds`` with SQLite sampling at most
``SQLITE_ANALYSIS_LIMIT`` entries per index (``PRAGMA analysis_limit``), so that it stays
short at any size but only approximates (SQLite samples an index's first entries, i.e. the
first insurers'); the search indexes are built so that the plans do not hinge on those numbers.
PostgreSQL's ``ANALYZE`` samples anyway. ``vacuum=True`` (after a bulk load) also vacuums
PostgreSQL, which sets the visibility map that index-only scans (the registry's counts) need.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, text

from persistence.db import Database
from persistence.errors import translated

__all__ = ["SQLITE_ANALYSIS_LIMIT", "optimize"]

SQLITE_ANALYSIS_LIMIT = 20_000
_VACUUM_RETRIES = 10
_NOT_ALL_VISIBLE = text(
    "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relpages > 0 "
    "AND c.relallvisible < c.relpages * 0.9"
)


def optimize(database: Database | Engine, *, vacuum: bool = False, full: bool = False) -> None:
    """Refresh the planner statistics of every table (``ANALYZE``); ``vacuum`` also runs
    ``VACUUM`` on PostgreSQL; ``full`` reads every index entry on SQLite instead of a sample
    (seconds at a million rows, holding SQLite's write lock meanwhile: ``migrate`` does it, the
    periodic refresh does not). Raises ``StorageError`` subclasses."""
    engine = database.engine if isinstance(database, Database) else database
    with translated():
        if engine.dialect.name == "postgresql":
            # VACUUM cannot run inside a transaction block; ANALYZE can, but needs no transaction.
            with engine.connect() as connection:
                auto = connection.execution_options(isolation_level="AUTOCOMMIT")
                auto.execute(text("VACUUM (ANALYZE)" if vacuum else "ANALYZE"))
                for _ in range(_VACUUM_RETRIES if vacuum else 0):
                    # A transaction running meanwhile (autovacuum's own ANALYZE of the freshly
                    # loaded tables, say) keeps VACUUM from marking pages all-visible; then
                    # index-only scans still read the table. Vacuum again once it is over.
                    if not auto.execute(_NOT_ALL_VISIBLE).first():
                        break
                    time.sleep(1.0)
                    auto.execute(text("VACUUM"))
        else:
            with engine.begin() as connection:
                limit = 0 if full else SQLITE_ANALYSIS_LIMIT
                connection.exec_driver_sql(f"PRAGMA analysis_limit = {limit}")
                connection.exec_driver_sql("ANALYZE")
