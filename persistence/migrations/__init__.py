"""Alembic migrations (script location of ``persistence.migrate``); no alembic.ini needed."""
