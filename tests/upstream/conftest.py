"""Fixtures of the upstream tests: the real simulators on loopback, and tiny misbehaving peers.

``simulators``   -- both simulators (start_simulators) with a test PKI built once per session;
                    phones answer after 0.2 s, unanswered transactions expire after 1.5 s
``pki``          -- that test PKI
``registry``     -- a ZeepPopulationRegistry bound to the population simulator
``mobile``       -- a ZeepMobileSignatureService bound to the mobile simulator
``serve``        -- serve any WSGI app on loopback for one test (stopped afterwards)
``dead_url``     -- an http URL on loopback where nothing listens
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.config import project_root
from gateway.upstream.mobile import ZeepMobileSignatureService
from gateway.upstream.population import ZeepPopulationRegistry
from gateway.wsgi_server import RunningServer, WsgiApp, serve_in_thread
from signing.testpki import TestPki, build_test_pki
from simulators.runner import Simulators, start_simulators

WSDL_DIR = project_root() / "wsdl" / "upstream"
POPULATION_WSDL = WSDL_DIR / "population-registry.wsdl"
MOBILE_WSDL = WSDL_DIR / "mobile-signature.wsdl"
APPROVE_DELAY = 0.2
TRANSACTION_TIMEOUT = 1.5
AP_ID = "DSMF-GATEWAY"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return build_test_pki(tmp_path_factory.mktemp("upstream-pki"))


@pytest.fixture(scope="session")
def simulators(pki: TestPki) -> Iterator[Simulators]:
    sims = start_simulators(
        pki.directory, approve_delay=APPROVE_DELAY, transaction_timeout=TRANSACTION_TIMEOUT
    )
    yield sims
    sims.stop()


@pytest.fixture
def registry(simulators: Simulators) -> ZeepPopulationRegistry:
    return ZeepPopulationRegistry(POPULATION_WSDL, simulators.population_url, timeout=5.0)


@pytest.fixture
def mobile(simulators: Simulators) -> ZeepMobileSignatureService:
    return ZeepMobileSignatureService(
        MOBILE_WSDL, simulators.mobile_url, ap_id=AP_ID, timeout=5.0
    )


@pytest.fixture
def serve() -> Iterator[Callable[[WsgiApp], RunningServer]]:
    running: list[RunningServer] = []

    def _serve(app: WsgiApp) -> RunningServer:
        server = serve_in_thread(app)
        running.append(server)
        return server

    yield _serve
    for server in running:
        server.stop()


@pytest.fixture
def dead_url() -> str:
    # Bind to get a free port, then close: nothing listens there during the test.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/population-registry"


def wsdl_path(name: str) -> Path:
    return WSDL_DIR / name
