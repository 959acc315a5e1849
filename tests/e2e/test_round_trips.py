"""Round trips to PostgreSQL of a signed FindPerson and SubmitRegistration through the served
gateway, counted in libpq's own protocol trace (tests/round_trips.py): one that comes back fails
here (issue #10)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import project_root
from gateway.wsgi_server import serve_in_thread
from signing.testpki import TestPki
from simulators.population import PATH, PopulationDirectory, create_population_app
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


@pytest.fixture
def pg_any_fin_stack(tmp_path: Path, test_pki: TestPki, simulators: Simulators) -> Iterator[Stack]:
    """As ``pg_stack``, with a population registry that knows any valid FIN."""
    registry = serve_in_thread(create_population_app(
        project_root() / "wsdl" / "upstream", PopulationDirectory(any_fin=True)))
    try:
        for url in _fresh_postgres_database():
            settings = make_settings(url, tmp_path, test_pki, simulators,
                                     population_url=registry.url.rstrip("/") + PATH,
                                     signature_note_seconds=3600)
            with serve_gateway(settings, test_pki, simulators) as running:
                yield running
    finally:
        registry.stop()


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


# What a SubmitRegistration of a new person sends, whether it asks the registry itself or reuses
# the person its insurer's FindPerson fetched a moment before: the same round trips.
SUBMIT = [
    "SELECT REQUEST_LEDGER",  # a replay?
    # The person's SSN and the insurer's open applications for the FIN: one read, before the
    # registry call (autocommit: no BEGIN).
    "SELECT INSURED_PERSONS",
    "BEGIN ISOLATION",  # the writing transaction, at its first write
    "INSERT INTO INSURED_PERSONS",  # numbered by the insert itself: no nextval before it
    "WITH ADDED AS",  # the application and its three states, one statement
    "WITH CLAIM AS",  # the claim and the log
    "COMMIT",
]


def test_a_submit_registration_sends_what_it_needs_and_no_more(pg_any_fin_stack: Stack) -> None:
    client, _ = pg_any_fin_stack.client("director")

    def fin() -> str:
        return "Q" + uuid.uuid4().hex[:6].upper()  # hex digits: no I or O

    def submit(person: str) -> None:
        answer = call(client, "SubmitRegistration", voen="1403567891", documentType="ID_CARD",
                      fin=person, actualAddressDiffers=False,
                      contacts={"mobilePhone": "+994551234567"})
        assert answer.result.status == "REGISTERED"

    submit(fin())  # the first signature of the director's card is noted once
    with traced(pg_any_fin_stack.gateway.database) as trace:
        submit(fin())  # the pool was emptied: the authorization's cache may read again
        for _ in range(3):
            with counted(trace) as sent:
                submit(fin())  # asks the registry
            assert sent == SUBMIT, sent
            found = fin()
            assert call(client, "FindPerson", voen="1403567891", documentType="ID_CARD",
                        fin=found).outcome == "FOUND"
            with counted(trace) as sent:
                submit(found)  # reuses the person found
            assert sent == SUBMIT, sent
