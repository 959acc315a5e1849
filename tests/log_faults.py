"""A message log that refuses to be written, for the tests that a request whose log entry cannot
be written leaves nothing behind: a trigger on ``message_log`` that raises, on SQLite and
PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text

from persistence.db import Database


def refuse_log_inserts(database: Database) -> None:
    with database.transaction() as s:
        if database.dialect == "postgresql":
            s.execute(text("CREATE FUNCTION test_refuse_log() RETURNS trigger AS $$ BEGIN "
                           "RAISE EXCEPTION 'message log unavailable'; END $$ LANGUAGE plpgsql"))
            s.execute(text("CREATE TRIGGER test_refuse_log BEFORE INSERT ON message_log "
                           "FOR EACH ROW EXECUTE FUNCTION test_refuse_log()"))
        else:
            s.execute(text("CREATE TRIGGER test_refuse_log BEFORE INSERT ON message_log "
                           "BEGIN SELECT RAISE(ABORT, 'message log unavailable'); END"))


def allow_log_inserts(database: Database) -> None:
    with database.transaction() as s:
        s.execute(text("DROP TRIGGER test_refuse_log" +
                       (" ON message_log" if database.dialect == "postgresql" else "")))
