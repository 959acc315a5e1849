"""Production mode: gunicorn with two worker processes on one PostgreSQL database.

Exactly as the deploy does it (gateway/wsgi.py): ``dsmf-gateway migrate`` once, reference data
loaded, a TOML file named by ``DSMF_CONFIG``, then ``gunicorn 'gateway.wsgi:create_app()'``.
Signed FindPerson and SubmitRegistration requests arrive from several threads at once, spread
over both workers; every answer must be right and the person must get exactly one SSN.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from lxml import etree
from sqlalchemy import select

from gateway.domain.ssn import SsnFormat
from persistence.db import Database
from persistence.migrate import head_revision
from persistence.seed import load_demo_data
from persistence.tables import InsuredPersonRow
from signing.parser import serialize
from signing.testpki import TestPki, build_test_pki
from signing.verifier import EnvelopeVerifier
from simulators.runner import Simulators, start_simulators
from tests.conftest import _fresh_postgres_database, missing_requirement
from tests.e2e.conftest import DEMO_VOEN, SOAP_ENV, TNS, find_person_payload, signed_request

NS = {"soapenv": SOAP_ENV, "t": TNS}
FIN = "6TY2U8P"
FIND_REQUESTS = 10
SUBMIT_REQUESTS = 10
HTTP_TIMEOUT = 60.0


def submit_payload(fin: str) -> str:
    return (f'<t:SubmitRegistration xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
            f'<t:documentType>ID_CARD</t:documentType><t:fin>{fin}</t:fin>'
            f'<t:actualAddressDiffers>false</t:actualAddressDiffers>'
            f'<t:contacts><t:mobilePhone>+994551234567</t:mobilePhone></t:contacts>'
            f'</t:SubmitRegistration>')


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSMF_")}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def toml_value(value: object) -> str:
    """A TOML value: strings (JSON string syntax is valid TOML), lists of strings."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not os.environ.get("DSMF_TEST_POSTGRES_URL"):
        missing_requirement("DSMF_TEST_POSTGRES_URL is not set (gunicorn runs on PostgreSQL only)")
    yield from _fresh_postgres_database()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return build_test_pki(tmp_path_factory.mktemp("gunicorn-pki"))


@pytest.fixture(scope="module")
def sims(pki: TestPki) -> Iterator[Simulators]:
    running = start_simulators(pki.directory, approve_delay=0.2, transaction_timeout=3.0)
    yield running
    running.stop()


def gunicorn_executable() -> str:
    found = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which(
        "gunicorn")
    if found is None:
        missing_requirement("gunicorn is not installed (pip install -e '.[dev]')")
    return found


def wait_for_health(url: str, process: subprocess.Popen[bytes], log_path: Path,
                    deadline_seconds: float = 60.0) -> requests.Response:
    deadline = time.monotonic() + deadline_seconds
    last = "no answer yet"
    for _ in range(600):
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}: "
                        f"{log_path.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            break
        try:
            answer = requests.get(url, timeout=max(1.0, min(15.0, deadline - time.monotonic())))
            if answer.status_code == 200:
                return answer
            last = f"{answer.status_code} {answer.text[:300]}"
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    pytest.fail(f"no healthy answer from {url} within {deadline_seconds}s: {last}; "
                f"{log_path.read_text(errors='replace')[-3000:]}")


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        raise


def test_gunicorn_two_workers_on_postgresql(postgres_url: str, tmp_path: Path, pki: TestPki,
                                            sims: Simulators) -> None:
    gunicorn = gunicorn_executable()

    # 1. Migrations, once, with the console command.
    migrated = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "migrate", "--database-url", postgres_url],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout == f"database at revision {head_revision()}\n"

    # 2. Reference data.
    database = Database(postgres_url)
    try:
        assert load_demo_data(database) > 0
    finally:
        database.dispose()

    # 3. The configuration file.
    gw = pki.identity("gateway")
    config = tmp_path / "gateway.toml"
    values: dict[str, object] = {
        "database_url": postgres_url,
        "data_dir": tmp_path / "var",
        "trust_anchors": list(pki.trust_anchor_paths),
        "crls": [pki.crl_path],
        "signing_key_file": gw.key_path,
        "signing_cert_file": gw.cert_path,
        "population_url": sims.population_url,
        "mobile_url": sims.mobile_url,
        "trusted_systems": ["TINAZ-1500000001"],
    }
    config.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in values.items()) +
                      "upstream_timeout_seconds = 10\nupstream_retries = 1\n", encoding="utf-8")

    # 4. gunicorn, two workers.
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "10",
             "--timeout", "60", "--no-control-socket", "gateway.wsgi:create_app()"],
            cwd=tmp_path, env=clean_env(DSMF_CONFIG=str(config)), stdout=log, stderr=log,
        )
    try:
        root = f"http://127.0.0.1:{port}"
        health = wait_for_health(f"{root}/health", process, log_path)
        assert health.json() == {"status": "ok",
                                 "checks": {"database": "ok", "signing-key": "ok",
                                            "population-registry": "ok"}}
        endpoint = f"{root}/soap"

        # 5. Signed requests, prepared here, posted from several threads at once.
        signer = pki.signer("director")
        requests_to_send: list[tuple[str, bytes]] = []
        for n in range(FIND_REQUESTS):
            requests_to_send.append(("FindPerson", serialize(signed_request(
                signer, "FindPerson", find_person_payload(FIN),
                message_id=f"find-{n}-{uuid.uuid4()}"))))
        for n in range(SUBMIT_REQUESTS):
            requests_to_send.append(("SubmitRegistration", serialize(signed_request(
                signer, "SubmitRegistration", submit_payload(FIN),
                message_id=f"submit-{n}-{uuid.uuid4()}"))))

        def post(item: tuple[str, bytes]) -> tuple[str, int, bytes]:
            operation, body = item
            answer = requests.post(endpoint, data=body, timeout=HTTP_TIMEOUT,
                                   headers={"Content-Type": "text/xml; charset=utf-8"})
            return operation, answer.status_code, answer.content

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(post, requests_to_send, timeout=HTTP_TIMEOUT * 4))
        assert len(answers) == FIND_REQUESTS + SUBMIT_REQUESTS

        verifier = EnvelopeVerifier(pki.trust_store(), None, None)
        registered: list[str] = []
        refused: list[str | None] = []
        for operation, status, content in answers:
            envelope = etree.fromstring(content)
            # Every answer, fault or not, is signed by the gateway.
            assert verifier.verify(envelope).certificate == gw.certificate
            if operation == "FindPerson":
                assert status == 200, content[:500]
                found = envelope.find("soapenv:Body/t:FindPersonResponse", NS)
                assert found is not None
                assert found.findtext("t:outcome", namespaces=NS) == "FOUND"
                assert found.findtext("t:person/t:fin", namespaces=NS) == FIN
                assert found.findtext("t:person/t:surname", namespaces=NS) == "Cəfərli"
                assert found.findtext("t:registrationAddress/t:street",
                                      namespaces=NS) == "Təbriz küçəsi"
            elif status == 200:
                result = envelope.find("soapenv:Body/t:SubmitRegistrationResponse/t:result", NS)
                assert result is not None
                assert result.findtext("t:status", namespaces=NS) == "REGISTERED"
                ssn = result.findtext("t:ssn", namespaces=NS)
                assert ssn is not None
                registered.append(ssn)
            else:
                assert status == 500, content[:500]
                code = envelope.findtext("soapenv:Body/soapenv:Fault/faultcode", namespaces=NS)
                refused.append(code.split(":", 1)[-1] if code else None)
        assert len(registered) == 1, (registered, refused)
        assert refused == ["Client.Conflict.SsnExists"] * (SUBMIT_REQUESTS - 1)
        assert SsnFormat(prefix="1", serial_digits=11).is_valid(registered[0])

        # 6. Exactly one SSN in the database, the one answered; FindPerson now shows it.
        database = Database(postgres_url)
        try:
            with database.transaction() as session:
                ssns = list(session.scalars(
                    select(InsuredPersonRow.ssn).where(InsuredPersonRow.fin == FIN)))
        finally:
            database.dispose()
        assert ssns == registered

        after = requests.post(endpoint, data=serialize(signed_request(
            signer, "FindPerson", find_person_payload(FIN), message_id=str(uuid.uuid4()))),
            timeout=HTTP_TIMEOUT, headers={"Content-Type": "text/xml; charset=utf-8"})
        assert after.status_code == 200, after.text[:500]
        existing = etree.fromstring(after.content).findtext(
            "soapenv:Body/t:FindPersonResponse/t:existingInsured/t:ssn", namespaces=NS)
        assert existing == registered[0]
    finally:
        returncode = stop(process)
    # SIGTERM is gunicorn's graceful shutdown: the arbiter exits 0.
    assert returncode == 0, log_path.read_text(errors="replace")[-3000:]
    assert "Traceback" not in log_path.read_text(errors="replace")
