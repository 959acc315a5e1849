"""Evidence that outlives us, end to end: the running gateway logs real signed exchanges, its
background sealer seals them with the TSA simulator (RFC 3161 over HTTP), ``dsmf-gateway log
export`` writes the evidence zip, and the commands its README.txt lists are run exactly as
written with the system's xmlsec1, openssl, sha256sum and python3 (not the project's Python,
no project package on the path). A changed byte makes them fail; a TSA that is down makes
readiness "degraded" while requests go on; /metrics shows the backlog and the seal's age.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from persistence.message_log import MessageLog
from signing.testpki import TestPki
from simulators.runner import Simulators
from tests.conftest import missing_requirement
from tests.e2e.conftest import (
    DEMO_VOEN,
    Bodies,
    Stack,
    find_person_payload,
    make_settings,
    serve_gateway,
    signed_request,
)

TOOLS = ("xmlsec1", "openssl", "sha256sum", "python3")
# The system's tools only: the project's virtualenv is not on this PATH.
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def system_env() -> dict[str, str]:
    return {"PATH": SYSTEM_PATH, "LC_ALL": "C.UTF-8", "HOME": os.environ.get("HOME", "/tmp")}


@pytest.fixture
def sealed_stack(database_url: str, tmp_path: Path, test_pki: TestPki,
                 simulators: Simulators) -> Iterator[Stack]:
    settings = make_settings(
        database_url, tmp_path, test_pki, simulators,
        log_tsa_url=simulators.tsa_url,
        log_tsa_trust_anchors=(simulators.tsa.trust_anchor_path,),
        log_seal_interval_seconds=0.2, log_seal_settle_seconds=0,
        log_anchor_file=tmp_path / "anchor.json",
    )
    with serve_gateway(settings, test_pki, simulators) as stack:
        stack.gateway.start_sealer()
        yield stack


def root_of(stack: Stack) -> str:
    return stack.url[: -len("/soap")]


def wait_until_sealed(stack: Stack, timeout: float = 30.0) -> None:
    log = MessageLog(stack.gateway.database)
    deadline = time.monotonic() + timeout
    while log.backlog(datetime.now(UTC), timedelta(0)).unsealed:
        assert time.monotonic() < deadline, "the background sealer did not seal in time"
        time.sleep(0.1)


def config_file(stack: Stack, path: Path) -> Path:
    settings = stack.gateway.settings

    def paths(values: tuple[Path, ...]) -> str:
        return "[" + ", ".join(f'"{p}"' for p in values) + "]"

    path.write_text(
        f'database_url = "{settings.effective_database_url}"\n'
        f"trust_anchors = {paths(settings.trust_anchors)}\n"
        f"crls = {paths(settings.crls)}\n"
        f'log_tsa_url = "{settings.log_tsa_url}"\n'
        f"log_tsa_trust_anchors = {paths(settings.log_tsa_trust_anchors)}\n"
        f'log_anchor_file = "{settings.log_anchor_file}"\n'
        f'signing_key_file = "{settings.signing_key_file}"\n'
        f'signing_cert_file = "{settings.signing_cert_file}"\n', encoding="utf-8")
    return path


def cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSMF_")}
    return subprocess.run([sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, check=False, env=env)


def readme_commands(directory: Path) -> list[tuple[str, str | None]]:
    """Each ``$`` line of README.txt, with the digest sha256sum must print (if stated)."""
    commands: list[tuple[str, str | None]] = []
    expected: str | None = None
    for line in (directory / "README.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if match := re.fullmatch(r"# sha256sum must print ([0-9a-f]{64})", line):
            expected = match.group(1)
        elif line.startswith("$ "):
            command = line[2:]
            commands.append((command, expected if command.startswith("sha256sum") else None))
    return commands


def run_readme(directory: Path) -> list[tuple[str, subprocess.CompletedProcess[str]]]:
    return [
        (command, subprocess.run(["sh", "-c", command], cwd=directory, env=system_env(),
                                 capture_output=True, text=True, timeout=60, check=False))
        for command, _ in readme_commands(directory)
    ]


def unzip(data: Path, directory: Path) -> Path:
    with zipfile.ZipFile(data) as archive:
        archive.extractall(directory)
    return directory


@pytest.fixture(autouse=True)
def _tools() -> None:
    for tool in TOOLS:
        if shutil.which(tool, path=SYSTEM_PATH) is None:
            missing_requirement(f"{tool} is not installed")


def test_an_export_verifies_with_independent_tools(sealed_stack: Stack, tmp_path: Path) -> None:
    stack = sealed_stack
    svc = Bodies(stack.client()[0].service)
    draft = svc.SaveDraft(voen=DEMO_VOEN, documentType="ID_CARD", fin="6TY2U8P",
                          actualAddressDiffers=False, contacts={"mobilePhone": "+994702223344"})
    svc.GetApplication(voen=DEMO_VOEN, applicationId=draft.applicationId)
    answer = stack.post(signed_request(stack.pki.signer("director"), "FindPerson",
                                       find_person_payload("5GH3J7K"), message_id="evidence-1"))
    assert answer.status_code == 200
    wait_until_sealed(stack)

    config = config_file(stack, tmp_path / "gateway.toml")
    done = cli("log", "export", "evidence-1", "--out", str(tmp_path / "m.zip"), config=config)
    assert done.returncode == 0, done.stderr
    message = unzip(tmp_path / "m.zip", tmp_path / "m")
    # The request exactly as received (the bytes we posted), and the signed answer as sent.
    (request_file,) = message.glob("messages/*-in.xml")
    assert request_file.read_bytes() == answer.request.body
    (response_file,) = message.glob("messages/*-out.xml")
    assert response_file.read_bytes() == answer.content

    commands = readme_commands(message)
    tools = [command.split()[0] for command, _ in commands]
    assert tools.count("xmlsec1") == 3  # request, answer, seal
    assert {"sha256sum", "python3", "openssl"} <= set(tools)
    assert any(c.startswith("openssl ts -verify") for c, _ in commands)
    for (command, expected), (_, run) in zip(commands, run_readme(message), strict=True):
        assert run.returncode == 0, f"{command}\n{run.stdout}{run.stderr}"
        if expected is not None:
            assert run.stdout.split()[0] == expected
        if command.startswith("xmlsec1"):
            assert "OK" in run.stderr.splitlines()[0], run.stderr

    # The application's evidence: the draft's answer names it, GetApplication's request too.
    done = cli("log", "export-application", draft.applicationId, "--out",
               str(tmp_path / "a.zip"), config=config)
    assert done.returncode == 0, done.stderr
    application = unzip(tmp_path / "a.zip", tmp_path / "a")
    assert len(list(application.glob("messages/*.xml"))) == 4  # two exchanges
    assert all(run.returncode == 0 for _, run in run_readme(application))

    done = cli("log", "verify", config=config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"ok": true' in done.stdout


@pytest.mark.parametrize("victim", ["messages/*-in.xml", "messages/*-in.leaf.json",
                                    "seals/seal-*.xml", "seals/seal-*.tst"])
def test_a_changed_byte_in_the_export_fails_a_check(sealed_stack: Stack, tmp_path: Path,
                                                    victim: str) -> None:
    stack = sealed_stack
    stack.post(signed_request(stack.pki.signer("director"), "FindPerson",
                              find_person_payload("5GH3J7K"), message_id="evidence-2"))
    wait_until_sealed(stack)
    config = config_file(stack, tmp_path / "gateway.toml")
    assert cli("log", "export", "evidence-2", "--out", str(tmp_path / "m.zip"),
               config=config).returncode == 0
    message = unzip(tmp_path / "m.zip", tmp_path / "m")
    (target,) = message.glob(victim)
    data = bytearray(target.read_bytes())
    # A byte in the middle of the content (for XML: inside a text node, so it still parses).
    position = data.rfind(b"<", 0, len(data) // 2) - 1 if target.suffix == ".xml" \
        else len(data) // 2
    data[position] ^= 0x01
    target.write_bytes(bytes(data))
    failed = [command for command, run in run_readme(message) if run.returncode != 0]
    expected_digests = dict(readme_commands(message))
    sums = [c for c, e in expected_digests.items() if e is not None]
    changed_sum = any(
        subprocess.run(["sh", "-c", c], cwd=message, env=system_env(), capture_output=True,
                       text=True, check=False).stdout.split()[0] != expected_digests[c]
        for c in sums)
    assert failed or changed_sum, f"{victim}: nothing noticed the change"


def test_a_missing_tsa_degrades_readiness_and_requests_go_on(sealed_stack: Stack) -> None:
    stack = sealed_stack
    tsa = stack.simulators.tsa
    tsa.available = False
    try:
        answer = stack.post(signed_request(stack.pki.signer("director"), "FindPerson",
                                           find_person_payload("5GH3J7K"),
                                           message_id="evidence-3"))
        assert answer.status_code == 200  # the request does not wait for sealing
        deadline = time.monotonic() + 20
        while True:
            health = requests.get(f"{root_of(stack)}/health", timeout=10)
            if health.json()["status"] == "degraded":
                break
            assert time.monotonic() < deadline, health.text
            time.sleep(0.1)
        assert health.status_code == 200
        assert "TSA" in health.json()["checks"]["message-log-seal"]
        metrics = requests.get(f"{root_of(stack)}/metrics", timeout=10).text
        unsealed = re.search(r"^dsmf_message_log_unsealed_entries (\S+)$", metrics, re.M)
        assert unsealed is not None and float(unsealed.group(1)) >= 2
    finally:
        tsa.available = True
    wait_until_sealed(stack)
    deadline = time.monotonic() + 20
    while requests.get(f"{root_of(stack)}/health", timeout=10).json()["status"] != "ok":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    metrics = requests.get(f"{root_of(stack)}/metrics", timeout=10).text
    assert re.search(r"^dsmf_message_log_unsealed_entries 0\.0$", metrics, re.M)
    assert re.search(r"^dsmf_message_log_last_seal_age_seconds \d", metrics, re.M)
