"""One request, one transaction (issue #9), under faults, as an operator runs the gateway.

The gateway runs as its own process: ``dsmf-gateway serve`` on SQLite, gunicorn with the
production settings (``deploy/gunicorn.conf.py``) on PostgreSQL. Signed registrations arrive from
several client threads while the gateway is killed with SIGKILL, PostgreSQL is restarted, or the
population registry goes away and comes back. Each client resends the same bytes until it gets
an answer, as the README tells integrators to. Afterwards: every request ended with its right
answer (never a stuck ``Client.Signature.Replay``), every acknowledged registration is in the
tables and in the message log, no FIN has two SSNs, the log chain verifies.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from lxml import etree
from sqlalchemy import func, select

from gateway.config import project_root
from gateway.wsgi_server import RunningServer, serve_in_thread
from persistence.db import Database
from persistence.message_log import MessageLog
from persistence.seed import load_demo_data
from persistence.tables import (
    ApplicationRow,
    InsuredPersonRow,
    MessageLogRow,
    RequestLedgerRow,
)
from signing.parser import serialize
from signing.signer import Signer
from signing.testpki import TestPki, build_test_pki
from simulators import people
from simulators.population import PATH as POPULATION_PATH
from simulators.population import PopulationDirectory, create_population_app
from tests.conftest import missing_requirement
from tests.e2e.conftest import DEMO_VOEN, SOAP_ENV, TNS, signed_request
from tests.processes import (
    children_of,
    clean_env,
    free_port,
    gunicorn_executable,
    stop,
    wait_for_health,
    write_toml,
)

NS = {"soapenv": SOAP_ENV, "t": TNS}
HTTP_TIMEOUT = 15.0
# How long a client keeps resending one request before the test fails: far above a restart.
RETRY_DEADLINE = 60.0
_FIN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"  # no I, no O


def synthetic_fin(prefix: str, n: int) -> str:
    digits = []
    for _ in range(5):
        n, r = divmod(n, len(_FIN_ALPHABET))
        digits.append(_FIN_ALPHABET[r])
    return prefix + "".join(reversed(digits))


def synthetic_people(prefix: str, count: int) -> list[people.SeedPerson]:
    template = people.PEOPLE[0]
    return [dataclasses.replace(template, fin=synthetic_fin(prefix, n), surname=f"Sınaq{n}")
            for n in range(count)]


def submit_payload(fin: str) -> str:
    return (f'<t:SubmitRegistration xmlns:t="{TNS}"><t:voen>{DEMO_VOEN}</t:voen>'
            f'<t:documentType>ID_CARD</t:documentType><t:fin>{fin}</t:fin>'
            f'<t:actualAddressDiffers>false</t:actualAddressDiffers>'
            f'<t:contacts><t:mobilePhone>+994551234567</t:mobilePhone></t:contacts>'
            f'</t:SubmitRegistration>')


# -- the population registry: the real simulator, with a population made for the test -------------


class Registry:
    """The population-registry simulator on a fixed loopback port, stoppable and restartable."""

    def __init__(self, population: list[people.SeedPerson]) -> None:
        self._directory = PopulationDirectory(population)
        self.port = free_port()
        self._server: RunningServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{POPULATION_PATH}"

    def start(self) -> None:
        app = create_population_app(project_root() / "wsdl" / "upstream", self._directory)
        self._server = serve_in_thread(app, host="127.0.0.1", port=self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


# -- the gateway as a process ---------------------------------------------------------------------


@dataclass
class GatewayProcess:
    """``dsmf-gateway serve`` (embedded server) or gunicorn (``deploy/gunicorn.conf.py``)."""

    kind: str  # "serve" | "gunicorn"
    config: Path
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"{self.root}/soap"

    def start(self) -> None:
        self.starts += 1
        log_path = self.workdir / f"{self.kind}-{self.starts}.log"
        env = clean_env(DSMF_CONFIG=str(self.config), PYTHONUNBUFFERED="1")
        if self.kind == "serve":
            command = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port),
                       "--data-dir", str(self.workdir / "data")]
        else:
            env.update(DSMF_BIND=f"127.0.0.1:{self.port}", DSMF_WORKERS="2",
                       DSMF_THREADS="4", DSMF_WORKER_TIMEOUT="30")
            command = [gunicorn_executable(), "-c",
                       str(project_root() / "deploy" / "gunicorn.conf.py"),
                       "--no-control-socket", "gateway.wsgi:create_app()"]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=self.workdir, env=env, stdout=log,
                                            stderr=log, start_new_session=True)
        wait_for_health(f"{self.root}/health/ready", self.process, log_path)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful anything (for gunicorn: one worker)."""
        assert self.process is not None
        if self.kind == "serve":
            self.process.kill()
            self.process.wait(timeout=10)
        else:
            workers = children_of(self.process.pid)
            assert workers, "gunicorn has no workers"
            os.kill(workers[0], signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted(self.workdir.glob(f"{self.kind}-*.log")))


def gateway_config(tmp_path: Path, database_url: str, pki: TestPki, registry_url: str,
                   **extra: object) -> Path:
    gw = pki.identity("gateway")
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": str(tmp_path / "data"),
        "trust_anchors": [str(p) for p in pki.trust_anchor_paths],
        "crls": [str(pki.crl_path)],
        "signing_key_file": str(gw.key_path),
        "signing_cert_file": str(gw.cert_path),
        "population_url": registry_url,
        "upstream_timeout_seconds": 5.0,
        "upstream_retries": 0,
        "retry_submitted_every_seconds": 0.5,
        # After an outage the circuit breaker lets a trial call through after this long.
        "breaker_reset_seconds": 1.0,
    }
    values.update(extra)
    return write_toml(tmp_path / "gateway.toml", values)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return build_test_pki(tmp_path_factory.mktemp("faults-pki"))


@contextmanager
def running_gateway(kind: str, database_url: str, tmp_path: Path, pki: TestPki,
                    registry: Registry, **extra: object) -> Iterator[GatewayProcess]:
    database = Database(database_url)
    try:
        from persistence.migrate import upgrade

        upgrade(database_url)
        load_demo_data(database)
    finally:
        database.dispose()
    gateway = GatewayProcess(kind, gateway_config(tmp_path, database_url, pki, registry.url,
                                                  **extra), tmp_path)
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.stop()


# -- a client that resends until it has an answer -------------------------------------------------


@dataclass
class Answer:
    status: int
    content: bytes
    attempts: int

    @property
    def envelope(self) -> etree._Element:
        return etree.fromstring(self.content)

    def fault_code(self) -> str | None:
        code = self.envelope.findtext("soapenv:Body/soapenv:Fault/faultcode", namespaces=NS)
        return code.split(":", 1)[-1] if code else None

    def result(self, field_name: str) -> str | None:
        return self.envelope.findtext(
            f"soapenv:Body/t:SubmitRegistrationResponse/t:result/t:{field_name}", namespaces=NS)


def send_until_answered(url: str, body: bytes) -> Answer:
    """Resend the same bytes after a dropped connection, a timeout or a transient Server.*
    fault, as the README's retry rule says; stop at the first final answer."""
    deadline = time.monotonic() + RETRY_DEADLINE
    attempts = 0
    last = "never sent"
    while time.monotonic() < deadline:
        attempts += 1
        try:
            answer = requests.post(url, data=body, timeout=HTTP_TIMEOUT,
                                   headers={"Content-Type": "text/xml; charset=utf-8"})
        except requests.RequestException as exc:
            last = type(exc).__name__
            time.sleep(0.2)
            continue
        code = None
        if answer.status_code != 200:
            root = etree.fromstring(answer.content)
            faultcode = root.findtext("soapenv:Body/soapenv:Fault/faultcode", namespaces=NS)
            code = faultcode.split(":", 1)[-1] if faultcode else None
        if code is not None and code.startswith("Server."):
            last = code
            time.sleep(0.2)
            continue
        return Answer(answer.status_code, answer.content, attempts)
    pytest.fail(f"no final answer within {RETRY_DEADLINE}s ({attempts} attempts, last: {last})")


# -- what the database says afterwards ------------------------------------------------------------


@dataclass
class Stored:
    ssn_by_fin: dict[str, list[str]]
    registered_by_fin: dict[str, list[str | None]]
    status_by_fin: dict[str, list[str]]
    logged_payloads: set[bytes]
    ledger_without_answer: int
    chain_ok: bool


def stored_state(database_url: str, fins: list[str]) -> Stored:
    database = Database(database_url)
    try:
        with database.transaction() as s:
            ssn_by_fin: dict[str, list[str]] = {f: [] for f in fins}
            for fin, ssn in s.execute(select(InsuredPersonRow.fin, InsuredPersonRow.ssn)
                                      .where(InsuredPersonRow.fin.in_(fins))):
                ssn_by_fin[fin].append(ssn)
            registered: dict[str, list[str | None]] = {f: [] for f in fins}
            statuses: dict[str, list[str]] = {f: [] for f in fins}
            for fin, status, ssn in s.execute(
                    select(ApplicationRow.fin, ApplicationRow.status, ApplicationRow.ssn)
                    .where(ApplicationRow.fin.in_(fins))):
                statuses[fin].append(status)
                if status == "REGISTERED":
                    registered[fin].append(ssn)
            logged = set(s.scalars(select(MessageLogRow.payload)
                                   .where(MessageLogRow.direction == "OUT")))
            without = s.scalar(select(func.count()).select_from(RequestLedgerRow)
                               .where(RequestLedgerRow.response.is_(None))) or 0
        chain = MessageLog(database).verify_chain()
    finally:
        database.dispose()
    return Stored(ssn_by_fin, registered, statuses, logged, int(without), chain.ok)


def wait_until_registered(database_url: str, fins: list[str],
                          deadline_seconds: float = 30.0) -> Stored:
    """Applications accepted as SUBMITTED (a slow or absent registry) are finished by the
    gateway's own background loop; wait for that, bounded."""
    deadline = time.monotonic() + deadline_seconds
    state = stored_state(database_url, fins)
    while time.monotonic() < deadline and any(
            s != ["REGISTERED"] for s in state.status_by_fin.values()):
        time.sleep(0.25)
        state = stored_state(database_url, fins)
    return state


def assert_exactly_once(database_url: str, bodies: dict[str, bytes],
                        answers: dict[str, Answer]) -> None:
    fins = list(bodies)
    stored = wait_until_registered(database_url, fins)
    for fin in fins:
        answer = answers[fin]
        assert answer.status == 200, (fin, answer.fault_code(), answer.content[:400])
        status = answer.result("status")
        # SUBMITTED: accepted while the registry did not answer in time, finished since.
        assert status in ("REGISTERED", "SUBMITTED"), (fin, answer.content[:400])
        assert stored.status_by_fin[fin] == ["REGISTERED"], (fin, stored.status_by_fin[fin])
        # Acknowledged = in the tables: one SSN for the FIN, the one answered (if answered).
        assert len(stored.ssn_by_fin[fin]) == 1, (fin, stored.ssn_by_fin[fin])
        assert stored.registered_by_fin[fin] == stored.ssn_by_fin[fin]
        if status == "REGISTERED":
            assert stored.ssn_by_fin[fin] == [answer.result("ssn")]
        # ... and in the message log, byte for byte.
        assert answer.content in stored.logged_payloads, fin
    # Every submission changed state, so every ledger row holds its answer (none "in progress").
    assert stored.ledger_without_answer == 0
    assert stored.chain_ok


def submit_all(gateway: GatewayProcess, signer: Signer, fins: list[str],
               fault: Callable[[], None] | None = None, fault_after: int = 0,
               ) -> tuple[dict[str, bytes], dict[str, Answer]]:
    """Posts one signed registration per FIN from 4 threads; ``fault()`` runs once after
    ``fault_after`` answers arrived, while the rest are in flight."""
    bodies = {fin: serialize(signed_request(signer, "SubmitRegistration", submit_payload(fin),
                                            message_id=f"sub-{fin}-{uuid.uuid4()}"))
              for fin in fins}
    answered = 0
    lock = threading.Lock()
    fired = threading.Event()

    def one(fin: str) -> tuple[str, Answer]:
        nonlocal answered
        answer = send_until_answered(gateway.endpoint, bodies[fin])
        with lock:
            answered += 1
            fire = fault is not None and answered >= fault_after and not fired.is_set()
            if fire:
                fired.set()
        if fire and fault is not None:
            fault()
        return fin, answer

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = dict(pool.map(one, fins))
    if fault is not None:
        assert fired.is_set()
    return bodies, answers


def resend_all(gateway: GatewayProcess, bodies: dict[str, bytes],
               answers: dict[str, Answer]) -> None:
    """The same bytes again, after everything: each gets the stored answer, byte for byte."""
    for fin, body in bodies.items():
        again = send_until_answered(gateway.endpoint, body)
        assert again.status == answers[fin].status
        assert again.content == answers[fin].content, fin


# -- the tests ------------------------------------------------------------------------------------


def test_embedded_gateway_killed_with_sigkill_mid_flight_loses_nothing(
        tmp_path: Path, pki: TestPki) -> None:
    population = synthetic_people("9K", 40)
    registry = Registry(population)
    database_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    try:
        with running_gateway("serve", database_url, tmp_path, pki, registry) as gateway:

            def crash_and_restart() -> None:
                gateway.kill()
                gateway.start()

            fins = [p.fin for p in population]
            bodies, answers = submit_all(gateway, pki.signer("director"), fins,
                                         fault=crash_and_restart, fault_after=10)
            assert gateway.starts == 2
            resend_all(gateway, bodies, answers)
        assert_exactly_once(database_url, bodies, answers)
    finally:
        registry.stop()


def test_gunicorn_worker_killed_and_postgresql_restarted_lose_nothing(
        postgres_url: str, tmp_path: Path, pki: TestPki) -> None:
    pg_ctl = pg_control()
    population = synthetic_people("9P", 60)
    registry = Registry(population)
    try:
        with running_gateway("gunicorn", postgres_url, tmp_path, pki, registry) as gateway:
            fins = [p.fin for p in population]
            first, second, third = fins[:20], fins[20:40], fins[40:]
            bodies, answers = submit_all(gateway, pki.signer("director"), first,
                                         fault=gateway.kill, fault_after=5)
            for mode in ("fast", "immediate"):
                batch = second if mode == "fast" else third
                more_bodies, more_answers = submit_all(
                    gateway, pki.signer("director"), batch,
                    fault=lambda mode=mode: pg_ctl("restart", mode), fault_after=5)
                bodies.update(more_bodies)
                answers.update(more_answers)
            resend_all(gateway, bodies, answers)
            log = gateway.log_text()
        assert_exactly_once(postgres_url, bodies, answers)
        assert "Traceback" not in log, log[-3000:]
    finally:
        registry.stop()


@pytest.mark.parametrize("kind", ["serve", "gunicorn"])
def test_registry_outage_is_accepted_and_finished_by_the_gateway_itself(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path, pki: TestPki) -> None:
    """Defect 5: gunicorn (production) and serve finish SUBMITTED applications on their own."""
    if kind == "gunicorn":
        database_url = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    population = synthetic_people("9R", 30)
    registry = Registry(population)
    try:
        with running_gateway(kind, database_url, tmp_path, pki, registry) as gateway:
            fins = [p.fin for p in population]

            def outage() -> None:
                registry.stop()

            _, answers = submit_all(gateway, pki.signer("director"), fins,
                                    fault=outage, fault_after=10)
            submitted = [fin for fin, a in answers.items() if a.result("status") == "SUBMITTED"]
            assert submitted, "the outage came too late to matter"
            for fin in submitted:
                # Accepted while the registry was down: no SSN yet, and the answer says so.
                assert answers[fin].result("ssn") is None
            registry.start()
            state = wait_until_registered(database_url, fins)
        unfinished = {f: s for f, s in state.status_by_fin.items() if s != ["REGISTERED"]}
        assert not unfinished
        for fin in fins:
            assert len(state.ssn_by_fin[fin]) == 1
            assert state.registered_by_fin[fin] == state.ssn_by_fin[fin]
            # Acknowledged answers are in the log, SUBMITTED ones too.
            assert answers[fin].content in state.logged_payloads
        assert state.chain_ok
    finally:
        registry.stop()


# -- PostgreSQL control ---------------------------------------------------------------------------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    from tests.conftest import _fresh_postgres_database

    if not os.environ.get("DSMF_TEST_POSTGRES_URL"):
        missing_requirement("DSMF_TEST_POSTGRES_URL is not set (scripts/test sets it)")
    for url in _fresh_postgres_database():
        # The throwaway cluster runs with synchronous_commit=off for speed: a crash (pg_ctl -m
        # immediate) may then lose commits already answered. Production keeps PostgreSQL's
        # default (on), and so do the gateway's connections here.
        yield f"{url}?options=-csynchronous_commit%3Don"


def pg_control() -> Callable[[str, str], None]:
    """``pg_ctl ACTION -m MODE`` on the test cluster (as its owner when we are root)."""
    bindir = os.environ.get("DSMF_TEST_PG_BINDIR")
    data = os.environ.get("DSMF_TEST_PG_DATA")
    if not bindir or not data:
        missing_requirement("DSMF_TEST_PG_BINDIR/DATA are not set (scripts/test sets them)")

    def run(action: str, mode: str) -> None:
        # -l: the restarted server logs to the cluster's file, not to our pipes (which it
        # would keep open, so waiting for pg_ctl's output would never end).
        log_file = Path(data).parent / "server.log"
        command = [str(Path(bindir) / "pg_ctl"), "-D", data, "-l", str(log_file), "-m", mode,
                   "-w", "-t", "30", action]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, cwd=Path(data).parent, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=60, check=False)
        assert done.returncode == 0, f"pg_ctl {action} -m {mode} failed"

    return run
