"""SSN issuance: format and check digit, once per FIN, race-safe across processes."""

from __future__ import annotations

import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import text

from gateway.domain.errors import Conflict
from gateway.domain.ssn import SsnFormat
from persistence.db import Database, StorageOptions
from persistence.errors import SSN_EXISTS, SsnSerialsExhausted
from persistence.migrate import upgrade
from persistence.seed import load_demo_data
from tests.conftest import _fresh_postgres_database

from . import _workers
from .conftest import VOEN_A, VOEN_B

PROCESSES = 4
TIMEOUT_SECONDS = 120


def _issue(db: Database, fin: str, voen: str = VOEN_A) -> str:
    with db.unit_of_work() as uow:
        insured = uow.insured_persons.issue(fin=fin, surname="Əliyev", name="Rəşad",
                                            patronymic=None, voen=voen, on=date(2026, 3, 2))
        uow.commit()
    return insured.ssn


def test_format_check_digit_and_sequence(seeded: Database) -> None:
    fmt = SsnFormat()
    # The demo person got serial 1; the next ones follow.
    first, second = _issue(seeded, "5GH3J7K"), _issue(seeded, "6ZK4T2P")
    assert (first, second) == (fmt.format(2), fmt.format(3))
    for ssn in (first, second):
        assert fmt.is_valid(ssn) and len(ssn) == fmt.length
        assert not fmt.is_valid(ssn[:-1] + str((int(ssn[-1]) + 1) % 10))
    with seeded.unit_of_work() as uow:
        stored = uow.insured_persons.get("5GH3J7K")
        assert stored is not None
        assert (stored.ssn, stored.ssn_date, stored.registered_by_voen) == (
            first, date(2026, 3, 2), VOEN_A)
        assert uow.insured_persons.get("ZZZZZZZ") is None


def test_configured_format(seeded: Database) -> None:
    custom = Database(seeded.engine, options=StorageOptions(ssn_format=SsnFormat("27", 8)))
    ssn = _issue(custom, "5GH3J7K")
    assert ssn.startswith("27") and len(ssn) == 11 and SsnFormat("27", 8).is_valid(ssn)


@pytest.mark.parametrize("prefix", ["", "1a", "\u0660\u0667", "\u00b2", "1'"])
def test_a_prefix_is_ascii_digits_only(prefix: str) -> None:
    # PostgreSQL's insert puts the prefix into its SQL text: digits 0-9, nothing else.
    with pytest.raises(ValueError):
        SsnFormat(prefix)


def test_a_format_is_at_most_the_contracts_twenty_digits() -> None:
    assert SsnFormat("1", 18).length == 20
    with pytest.raises(ValueError):
        SsnFormat("27", 18)  # 21 digits: the contract's Ssn is [0-9]{6,20}


def test_second_issue_for_a_fin_is_ssn_exists(seeded: Database) -> None:
    _issue(seeded, "5GH3J7K")
    with pytest.raises(Conflict) as caught:
        _issue(seeded, "5GH3J7K", voen=VOEN_B)  # through another employer
    assert caught.value.code == SSN_EXISTS == "Client.Conflict.SsnExists"
    with pytest.raises(Conflict):
        _issue(seeded, "9QW3E5R")  # the demo person


def test_rolled_back_issue_leaves_nothing(seeded: Database) -> None:
    with seeded.unit_of_work() as uow:
        uow.insured_persons.issue(fin="5GH3J7K", surname="A", name="B", patronymic=None,
                                  voen=VOEN_A, on=date(2026, 3, 2))
    with seeded.unit_of_work() as uow:
        assert uow.insured_persons.get("5GH3J7K") is None
    assert SsnFormat().is_valid(_issue(seeded, "5GH3J7K"))


@pytest.fixture
def pg() -> Iterator[Database]:
    for url in _fresh_postgres_database():
        upgrade(url)
        database = Database(url)
        load_demo_data(database)
        try:
            yield database
        finally:
            database.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", [SsnFormat(), SsnFormat("27", 8), SsnFormat("07", 4),
                                 SsnFormat("5", 5)], ids=str)
def test_postgresql_numbers_the_ssn_as_the_domain_formats_it(pg: Database,
                                                             fmt: SsnFormat) -> None:
    """PostgreSQL's insert formats the SSN in SQL (one round trip): the same as
    ``SsnFormat.format``, for payloads of both parities and serials across the range."""
    top = 10**fmt.serial_digits - 1
    chooser = random.Random(fmt.serial_digits)
    serials = sorted({1, 2, 9, 10, 11, 99, 100, 101, top // 2, top - 1, top,
                      *(chooser.randrange(1, top) for _ in range(60))})
    if fmt == SsnFormat():
        serials.remove(1)  # the demo person's
    numbered = Database(pg.engine, options=StorageOptions(ssn_format=fmt))
    for index, serial in enumerate(serials):
        with pg.transaction() as session:  # the sequence's next value is this serial
            session.execute(text("SELECT setval('ssn_serial_seq', :n, false)"), {"n": serial})
        assert _issue(numbered, f"T{index:06d}") == fmt.format(serial), serial


def test_a_serial_the_format_cannot_hold_issues_nothing(seeded: Database) -> None:
    fmt = SsnFormat("1", 4)
    numbered = Database(seeded.engine, options=StorageOptions(ssn_format=fmt))
    with seeded.transaction() as session:  # the next serial is 9999, the format's last
        if seeded.engine.dialect.name == "postgresql":
            session.execute(text("SELECT setval('ssn_serial_seq', 9999, false)"))
        else:
            session.execute(text("UPDATE ssn_counter SET last_serial = 9998"))
    assert _issue(numbered, "5GH3J7K") == fmt.format(9999)
    for _ in range(2):  # 10000 needs five digits: refused, not cut to four, and it stays so
        with pytest.raises(SsnSerialsExhausted) as caught:
            _issue(numbered, "6ZK4T2P")
        assert caught.value.code == "Server.Storage.SsnExhausted"
    with numbered.unit_of_work() as uow:
        assert uow.insured_persons.get("6ZK4T2P") is None


def _run_in_processes(func: object, argument_lists: list[tuple[object, ...]]) -> list[object]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        pending = pool.starmap_async(func, argument_lists)  # type: ignore[arg-type]
        return list(pending.get(timeout=TIMEOUT_SECONDS))


@pytest.mark.slow
def test_concurrent_issue_for_one_fin_gives_one_ssn(seeded: Database, database_url: str) -> None:
    start_at = time.time() + 3.0  # after every process has started and imported
    results = _run_in_processes(
        _workers.issue,
        [(database_url, "5GH3J7K", VOEN_A, start_at, 0.3) for _ in range(PROCESSES)],
    )
    outcomes = Counter(str(r).split(":")[0] for r in results)
    assert outcomes == {"SSN": 1, "ERROR": PROCESSES - 1}, results
    assert {r for r in results if str(r).startswith("ERROR")} == {f"ERROR:{SSN_EXISTS}"}
    with seeded.transaction() as session:
        count = session.execute(
            text("SELECT count(*) FROM insured_persons WHERE fin = '5GH3J7K'")
        ).scalar()
    assert count == 1
    ssn = next(str(r) for r in results if str(r).startswith("SSN:")).removeprefix("SSN:")
    with seeded.unit_of_work() as uow:
        stored = uow.insured_persons.get("5GH3J7K")
        assert stored is not None and stored.ssn == ssn


@pytest.mark.slow
def test_concurrent_issue_for_different_fins_gives_distinct_ssns(
    seeded: Database, database_url: str
) -> None:
    fins = ["5GH3J7K", "6ZK4T2P", "3HN8B5Q", "7MX2C9R", "2RT5Y8U", "4PD6W1S", "8LP2M4N",
            "2BC3D4F"]
    start_at = time.time() + 3.0
    results = _run_in_processes(
        _workers.issue, [(database_url, fin, VOEN_A, start_at, 0.05) for fin in fins]
    )
    assert all(str(r).startswith("SSN:") for r in results), results
    ssns = [str(r).removeprefix("SSN:") for r in results]
    assert len(set(ssns)) == len(fins)
    assert all(SsnFormat().is_valid(s) for s in ssns)
