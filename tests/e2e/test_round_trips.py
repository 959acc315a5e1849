"""Round trips to PostgreSQL of a signed FindPerson through the served gateway, counted in
libpq's own protocol trace (tests/round_trips.py): one that comes back fails here (issue #10)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from signing.testpki import TestPki
from simulators.runner import Simulators
from tests.conftest import _fresh_postgres_database
from tests.e2e.conftest import Stack, call, make_settings, serve_gateway
from tests.round_trips import counted, traced

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_stack(tmp_path: Path, test_pki: TestPki, simulators: Simulators) -> Iterator[Stack]:
    for url in _fresh_postgres_database():
        # The signer's card noted once for the whole test (not the hot path).
        settings = make_settings(url, tmp_path, test_pki, simulators,
                                 signature_note_seconds=3600)
        with serve_gateway(settings, test_pki, simulators) as running:
            yield running


def test_a_find_person_sends_what_it_needs_and_no_more(pg_stack: Stack) -> None:
    client, _ = pg_stack.client("director")

    def find() -> None:
        answer = call(client, "FindPerson", voen="1403567891", documentType="ID_CARD",
                      fin="5GH3J7K")
        assert answer.outcome == "FOUND"

    find()  # the first signature of the director's card is noted once: not the hot path
    with traced(pg_stack.gateway.database) as trace:
        find()  # the pool was emptied: the authorization's cache may read again
        for _ in range(8):  # more than psycopg's default prepare threshold (5 executions)
            with counted(trace) as sent:
                find()
            assert sent == [
                "SELECT REQUEST_LEDGER",  # a replay? (autocommit: no BEGIN, ROLLBACK)
                "SELECT INSURED_PERSONS",  # the service's read-only unit of work: no BEGIN
                "WITH CLAIM AS",  # the claim and the log, one statement (autocommit)
            ], sent  # and no DEALLOCATE ALL (no prepared statements to drop)
