"""The HTTP and envelope handling of tests/e2e/test_http.py on the production server: gunicorn
running ``gateway.wsgi:create_app()`` on PostgreSQL, as the deploy does. Chunked and gzip
request bodies, the bounded inflate, gzip answers, VersionMismatch and MustUnderstand must
behave the same as on the embedded server.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from lxml import etree

from persistence.db import Database
from persistence.seed import load_demo_data
from signing.parser import serialize
from signing.testpki import TestPki, build_test_pki
from signing.verifier import EnvelopeVerifier
from simulators.runner import Simulators, start_simulators
from tests.conftest import _fresh_postgres_database, missing_requirement
from tests.e2e.conftest import SOAP_ENV, TNS, find_person_payload, signed_request
from tests.e2e.test_gunicorn import (
    clean_env,
    free_port,
    gunicorn_executable,
    stop,
    toml_value,
    wait_for_health,
)

NS = {"soapenv": SOAP_ENV, "t": TNS}
LIMIT = 100_000


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return build_test_pki(tmp_path_factory.mktemp("gunicorn-http-pki"))


@pytest.fixture(scope="module")
def sims(pki: TestPki) -> Iterator[Simulators]:
    running = start_simulators(pki.directory, approve_delay=0.2, transaction_timeout=3.0)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory, pki: TestPki,
             sims: Simulators) -> Iterator[str]:
    if not os.environ.get("DSMF_TEST_POSTGRES_URL"):
        missing_requirement("DSMF_TEST_POSTGRES_URL is not set (gunicorn runs on PostgreSQL only)")
    gunicorn = gunicorn_executable()
    tmp: Path = tmp_path_factory.mktemp("gunicorn-http")
    databases = _fresh_postgres_database()
    postgres_url = next(databases)
    try:
        migrated = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "migrate", "--database-url", postgres_url],
            cwd=tmp, env=clean_env(), capture_output=True, text=True, timeout=120, check=False)
        assert migrated.returncode == 0, migrated.stderr
        database = Database(postgres_url)
        try:
            load_demo_data(database)
        finally:
            database.dispose()
        gw = pki.identity("gateway")
        values: dict[str, object] = {
            "database_url": postgres_url,
            "data_dir": tmp / "var",
            "trust_anchors": list(pki.trust_anchor_paths),
            "crls": [pki.crl_path],
            "signing_key_file": gw.key_path,
            "signing_cert_file": gw.cert_path,
            "population_url": sims.population_url,
            "mobile_url": sims.mobile_url,
        }
        config = tmp / "gateway.toml"
        config.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in values.items())
                          + f"max_message_bytes = {LIMIT}\n", encoding="utf-8")
        port = free_port()
        log_path = tmp / "gunicorn.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [gunicorn, "-w", "1", "-b", f"127.0.0.1:{port}", "--timeout", "60",
                 "--no-control-socket", "gateway.wsgi:create_app()"],
                cwd=tmp, env=clean_env(DSMF_CONFIG=str(config)), stdout=log, stderr=log)
        try:
            wait_for_health(f"http://127.0.0.1:{port}/health", process, log_path)
            yield f"http://127.0.0.1:{port}/soap"
        finally:
            stop(process)
    finally:
        databases.close()


def find_person(pki: TestPki) -> bytes:
    return serialize(signed_request(pki.signer("director"), "FindPerson",
                                    find_person_payload("5GH3J7K"),
                                    message_id=str(uuid.uuid4())))


def fault_code(content: bytes) -> str | None:
    code = etree.fromstring(content).findtext("soapenv:Body/soapenv:Fault/faultcode",
                                              namespaces=NS)
    return code.split(":", 1)[1] if code and ":" in code else code


def chunks(data: bytes, size: int = 4096) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_chunked_gzip_request_and_gzip_answer(endpoint: str, pki: TestPki) -> None:
    # requests sends a generator chunked; it asks for gzip answers by default.
    answer = requests.post(endpoint, data=chunks(gzip.compress(find_person(pki)), 700),
                           timeout=60, headers={"Content-Type": "text/xml; charset=utf-8",
                                                "Content-Encoding": "gzip"})
    assert answer.status_code == 200, answer.content[:500]
    assert answer.headers.get("Content-Encoding") == "gzip"
    envelope = etree.fromstring(answer.content)  # inflated by requests
    assert EnvelopeVerifier(pki.trust_store(), None, None).verify(
        envelope).certificate == pki.identity("gateway").certificate
    assert envelope.find("soapenv:Body/t:FindPersonResponse", NS) is not None


def test_gzip_bomb_and_oversize_chunked_body_are_refused(endpoint: str) -> None:
    inflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = inflater.compress(b"<x>") + b"".join(
        inflater.compress(bytes(1024 * 1024)) for _ in range(32)) + inflater.flush()
    answer = requests.post(endpoint, data=bomb, timeout=60,
                           headers={"Content-Type": "text/xml", "Content-Encoding": "gzip"})
    assert answer.status_code == 500
    assert fault_code(answer.content) == "Client.Http.InflatedTooLarge"
    oversize = b"<x>" + b"a" * (LIMIT + 1000) + b"</x>"
    answer = requests.post(endpoint, data=chunks(oversize), timeout=60,
                           headers={"Content-Type": "text/xml"})
    assert answer.status_code == 500
    assert fault_code(answer.content) == "Client.Xml.TooLarge"


def test_soap12_and_must_understand_are_refused(endpoint: str, pki: TestPki) -> None:
    soap12 = find_person(pki).replace(SOAP_ENV.encode(),
                                      b"http://www.w3.org/2003/05/soap-envelope")
    answer = requests.post(endpoint, data=soap12, timeout=60,
                           headers={"Content-Type": "application/soap+xml"})
    assert answer.status_code == 500
    assert fault_code(answer.content) == "VersionMismatch"
    envelope = etree.fromstring(find_person(pki))
    header = envelope.find(f"{{{SOAP_ENV}}}Header")
    assert header is not None
    block = etree.SubElement(header, "{urn:example:routing}priority")
    block.set(f"{{{SOAP_ENV}}}mustUnderstand", "1")
    answer = requests.post(endpoint, data=etree.tostring(envelope), timeout=60,
                           headers={"Content-Type": "text/xml"})
    assert answer.status_code == 500
    assert fault_code(answer.content) == "MustUnderstand"
