"""Fixtures for the sealed message log: a migrated database (SQLite and PostgreSQL), the test
PKI (the gateway's key signs seals), and the TSA simulator on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from gateway.evidence.seal import Sealer
from gateway.evidence.tsa import TimeStampClient, load_certificates
from gateway.evidence.verify import LogVerifier
from gateway.wsgi_server import RunningServer, serve_in_thread
from persistence.db import Database
from persistence.message_log import MessageLog
from persistence.migrate import upgrade
from signing.testpki import TestPki, build_test_pki
from signing.verifier import EnvelopeVerifier
from simulators.tsa import PATH, TsaSimulator, create_tsa_app


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return build_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def tsa_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TsaSimulator, str]]:
    tsa = TsaSimulator.in_directory(tmp_path_factory.mktemp("tsa"))
    server: RunningServer = serve_in_thread(create_tsa_app(tsa))
    yield tsa, server.url.rstrip("/") + PATH
    server.stop()


@pytest.fixture
def tsa(tsa_server: tuple[TsaSimulator, str]) -> Iterator[TsaSimulator]:
    simulator = tsa_server[0]
    simulator.available = True
    yield simulator
    simulator.available = True


@pytest.fixture
def tsa_trust(tsa: TsaSimulator) -> list[x509.Certificate]:
    return load_certificates([tsa.trust_anchor_path])


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    upgrade(database_url)
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def log(db: Database) -> MessageLog:
    return MessageLog(db)


@pytest.fixture
def sealer(log: MessageLog, pki: TestPki, tsa_server: tuple[TsaSimulator, str],
           tsa_trust: list[x509.Certificate], tmp_path: Path) -> Sealer:
    client = TimeStampClient(tsa_server[1], tsa_trust, timeout=5)
    return Sealer(log, pki.signer("gateway"), client, settle=timedelta(0), batch_max=50,
                  anchor_file=tmp_path / "anchor.json", crl_files=pki.crl_paths)


@pytest.fixture
def verifier(log: MessageLog, pki: TestPki, tsa_trust: list[x509.Certificate]) -> LogVerifier:
    return LogVerifier(log, tsa_trust, EnvelopeVerifier(pki.trust_store()), settle=timedelta(0))
