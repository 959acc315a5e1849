"""persistence.driver: statements prepared once and run on the driver's cursor read and write
what SQLAlchemy would, and fail as SQLAlchemy would (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select

from persistence.db import WROTE, Database
from persistence.driver import prepared
from persistence.errors import DuplicateKey, StorageError, translated
from persistence.tables import InsuredPersonRow, RequestLedgerRow

from .conftest import VOEN_A

_T = RequestLedgerRow.__table__
_LEDGER_ROW = {
    "key": "k1", "content_digest": "d" * 64, "response": b"<answer/>", "http_status": 200,
    "created_at": datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
    "expires_at": datetime(2026, 3, 2, 9, 40, tzinfo=UTC),
}
_INSERT = insert(_T)
_SELECT = select(_T).where(_T.c.key == bindparam("key"))


def test_a_prepared_insert_writes_what_sqlalchemy_reads_back(db: Database) -> None:
    seen: list[str] = []
    db.watch_statements(lambda statement, _parameters: seen.append(statement))
    with db.engine.connect() as conn, conn.begin():
        prepared(_INSERT, conn.dialect, keys=tuple(_LEDGER_ROW)).run(conn, _LEDGER_ROW)
        assert conn.info.get(WROTE) is True  # the request's transaction is held on it
    with db.engine.connect() as conn:
        through_sqlalchemy = conn.execute(_SELECT, {"key": "k1"}).one()
        through_driver = prepared(_SELECT, conn.dialect).run(conn, {"key": "k1"})
    assert dict(through_sqlalchemy._mapping) == _LEDGER_ROW
    assert [tuple(r) for r in through_driver] == [tuple(through_sqlalchemy)]
    assert through_driver[0].expires_at == _LEDGER_ROW["expires_at"]  # aware, UTC
    assert any(s.lstrip().upper().startswith("INSERT INTO REQUEST_LEDGER") for s in seen)


def test_types_round_trip_through_the_driver(seeded: Database) -> None:
    table = InsuredPersonRow.__table__
    now = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    row = {
        "fin": "5ZX1AB2", "ssn": "12345678901234", "ssn_date": date(2026, 3, 2),
        "surname": "Əliyev", "name": "Rəşad", "patronymic": None, "surname_folded": "əliyev",
        "name_folded": "rəşad", "patronymic_folded": None, "registered_by_voen": VOEN_A,
        "actual_address": {"region": "Bakı", "street": "Nizami küçəsi"}, "contacts": None,
        "created_at": now, "updated_at": now,
    }
    with seeded.engine.connect() as conn, conn.begin():
        prepared(insert(table), conn.dialect, keys=tuple(row)).run(conn, row)
    with seeded.engine.connect() as conn:
        read = prepared(select(table).where(table.c.fin == bindparam("fin")),
                        conn.dialect).run(conn, {"fin": "5ZX1AB2"})
    assert read[0]._asdict() == row


def test_a_driver_error_is_translated_and_nothing_is_written(db: Database) -> None:
    with db.engine.connect() as conn, conn.begin():
        prepared(_INSERT, conn.dialect, keys=tuple(_LEDGER_ROW)).run(conn, _LEDGER_ROW)
    changed = {**_LEDGER_ROW, "content_digest": "e" * 64}
    with pytest.raises(DuplicateKey):
        with translated(), db.engine.connect() as conn, conn.begin():
            prepared(_INSERT, conn.dialect, keys=tuple(changed)).run(conn, changed)
    with db.engine.connect() as conn:
        rows = prepared(_SELECT, conn.dialect).run(conn, {"key": "k1"})
    assert [r.content_digest for r in rows] == ["d" * 64]


def test_a_statement_needing_expansion_is_refused(db: Database) -> None:
    statement = select(_T).where(_T.c.key.in_(["a", "b"]))
    with pytest.raises(StorageError):
        prepared(statement, db.engine.dialect)


def test_a_statement_with_a_python_side_default_is_refused(db: Database) -> None:
    """SQLAlchemy computes such a default per execution; sent from the driver it would be
    written as NULL, so it cannot be prepared."""
    metadata = MetaData()
    table = Table("with_default", metadata, Column("id", Integer, primary_key=True),
                  Column("kind", String, default="plain"))
    with pytest.raises(StorageError):
        prepared(insert(table), db.engine.dialect, keys=("id",))


def test_a_failed_write_does_not_mark_the_connection_as_written(db: Database) -> None:
    with db.engine.connect() as conn, conn.begin():
        prepared(_INSERT, conn.dialect, keys=tuple(_LEDGER_ROW)).run(conn, _LEDGER_ROW)
    with db.engine.connect() as conn:
        transaction = conn.begin()
        with pytest.raises(DuplicateKey), translated():
            prepared(_INSERT, conn.dialect, keys=tuple(_LEDGER_ROW)).run(conn, _LEDGER_ROW)
        assert WROTE not in conn.info
        transaction.rollback()
