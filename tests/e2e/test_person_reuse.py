"""The person a FindPerson fetched is reused by the same insurer's SubmitRegistration for a few
seconds (``person_reuse_seconds``), instead of asking the population registry twice.

Observed through the registry going away after the FindPerson: a reused person registers at
once (REGISTERED with an SSN), a person asked for again is accepted as SUBMITTED (the registry
does not answer). Real peers: the gateway and a population-registry simulator of its own, on
loopback; the reuse memory's clock is the test's, so "after the TTL" needs no sleeping.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import project_root
from gateway.services.recent import Recent
from gateway.wsgi_server import RunningServer, serve_in_thread
from signing.testpki import TestPki
from simulators.population import PATH, PopulationDirectory, create_population_app
from simulators.runner import Simulators
from tests.e2e.conftest import DEMO_VOEN, OTHER_VOEN, Bodies, Stack, make_settings, serve_gateway

TTL = 10.0


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry() -> Iterator[RunningServer]:
    server = serve_in_thread(create_population_app(
        project_root() / "wsdl" / "upstream", PopulationDirectory(any_fin=True)))
    yield server
    server.stop()


@pytest.fixture
def reuse_stack(database_url: str, tmp_path: Path, test_pki: TestPki, simulators: Simulators,
                registry: RunningServer) -> Iterator[tuple[Stack, Ticks]]:
    settings = make_settings(database_url, tmp_path, test_pki, simulators,
                             population_url=registry.url.rstrip("/") + PATH,
                             person_reuse_seconds=int(TTL), upstream_retries=0)
    ticks = Ticks()
    with serve_gateway(settings, test_pki, simulators) as stack:
        registration = stack.gateway.services.registration
        registration.recent_people = Recent(TTL, clock=ticks)
        yield stack, ticks


def new_fin() -> str:
    return "Q" + uuid.uuid4().hex[:6].upper()  # hex digits: no I or O


def submit(svc: Any, voen: str, fin: str) -> Any:
    return svc.SubmitRegistration(
        voen=voen, documentType="ID_CARD", fin=fin, actualAddressDiffers=False,
        contacts={"mobilePhone": "+994551234567"},
    ).result


def test_a_found_person_is_reused_by_the_same_insurer_within_the_ttl(
        reuse_stack: tuple[Stack, Ticks], registry: RunningServer) -> None:
    stack, ticks = reuse_stack
    director = Bodies(stack.client("director", voen=DEMO_VOEN)[0].service)
    other = Bodies(stack.client("director_b", voen=OTHER_VOEN)[0].service)
    reused, other_insurers, expired = new_fin(), new_fin(), new_fin()

    found = director.FindPerson(voen=DEMO_VOEN, documentType="ID_CARD", fin=reused)
    assert found.outcome == "FOUND"
    # The same FIN found by this insurer, submitted by another one.
    assert director.FindPerson(voen=DEMO_VOEN, documentType="ID_CARD",
                               fin=other_insurers).outcome == "FOUND"
    assert director.FindPerson(voen=DEMO_VOEN, documentType="ID_CARD",
                               fin=expired).outcome == "FOUND"
    registry.stop()  # from now on, only a reused person can be registered at once

    ticks.now += TTL - 1
    done = submit(director, DEMO_VOEN, reused)
    assert done.status == "REGISTERED"
    assert done.ssn
    application = director.GetApplication(voen=DEMO_VOEN, applicationId=done.applicationId)
    summary = application.application.summary
    assert (summary.surname, summary.name) == (found.person.surname, found.person.name)

    # Another insurer does not get this insurer's answer: it asks the registry (down).
    assert submit(other, OTHER_VOEN, other_insurers).status == "SUBMITTED"

    # After the TTL the person is asked for again (down).
    ticks.now += 2
    assert submit(director, DEMO_VOEN, expired).status == "SUBMITTED"


def test_reuse_off_asks_the_registry_every_time(
        reuse_stack: tuple[Stack, Ticks], registry: RunningServer) -> None:
    stack, _ = reuse_stack
    stack.gateway.services.registration.recent_people = Recent(0)
    director = Bodies(stack.client("director", voen=DEMO_VOEN)[0].service)
    fin = new_fin()
    assert director.FindPerson(voen=DEMO_VOEN, documentType="ID_CARD", fin=fin).outcome == \
        "FOUND"
    registry.stop()
    assert submit(director, DEMO_VOEN, fin).status == "SUBMITTED"
