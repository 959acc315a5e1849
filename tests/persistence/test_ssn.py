"""SSN issuance: format and check digit, once per FIN, race-safe across processes."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import text

from gateway.domain.errors import Conflict
from gateway.domain.ssn import SsnFormat
from persistence.db import Database, StorageOptions
from persistence.errors import SSN_EXISTS

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
