"""The integration recipes under examples/, run against the live gateway with real SOAP stacks.

Each recipe is run the way an integrator would run it (its own runtime and packages, the
documented settings, nothing patched) against a gateway configured like the embedded default:
the RSA answer key with its chain (``?certs``). Each sends a signed FindPerson and a signed
SubmitRegistration and verifies the signed answers; the test then checks the gateway really
registered the person. docs/integration.md names these recipes.

Runtimes come from scripts/test (Debian: xmlsec1, Node.js + npm, a JDK with WSS4J and
Santuario, the JAX-WS RI with wsimport); the recipes' packages from their registries (PyPI for
zeep + python-xmlsec, npm for node-soap), installed once into ``.cache/examples/``, where the
JAX-WS client generated from the live ``?wsdl`` is compiled too (both cached by content).
Without them the tests skip locally and fail in CI.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.services.ports import ApplicationQuery
from signing.testpki import TestPki
from simulators.runner import Simulators
from tests.conftest import missing_requirement
from tests.e2e.conftest import DEMO_VOEN, Stack, make_settings, serve_gateway

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CACHE = REPO / ".cache" / "examples"
FOUND_FIN = "5GH3J7K"  # in the population registry, no SSN yet
INSURED_FIN = "9QW3E5R"  # already insured (demo data): SubmitRegistration is refused


@pytest.fixture(scope="module")
def rsa_stack(tmp_path_factory: pytest.TempPathFactory, test_pki: TestPki,
              simulators: Simulators) -> Iterator[Stack]:
    """The gateway as the embedded default runs it: RSA answer key, chain at ?certs."""
    tmp = tmp_path_factory.mktemp("recipes")
    gw = test_pki.identity("gateway_rsa")
    settings = make_settings(
        f"sqlite:///{tmp / 'gw.db'}", tmp, test_pki, simulators,
        signing_key_file=gw.key_path, signing_cert_file=gw.cert_path,
        signing_chain_files=tuple(gw.chain_paths),
    )
    with serve_gateway(settings, test_pki, simulators) as running:
        yield running


def registered(stack: Stack, fin: str) -> bool:
    with stack.gateway.database.unit_of_work() as uow:
        return uow.insured_persons.get(fin) is not None


def applications(stack: Stack) -> int:
    with stack.gateway.database.unit_of_work() as uow:
        return uow.applications.search(ApplicationQuery(insurer_voen=DEMO_VOEN)).total


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing_requirement(f"{name} is not installed")
    return path


def run(
    command: list[Any], *, cwd: Path | None = None, timeout: int = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        check=False, env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )


def json_lines(output: str) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return {line["operation"]: line for line in lines}


def prepared(name: str, files: list[str], setup: list[list[str]]) -> Path:
    """A copy of ``examples/<name>`` with its packages installed, cached by content."""
    digest = hashlib.sha256()
    for file in files:
        digest.update((EXAMPLES / name / file).read_bytes())
    digest.update(sys.version.encode())
    target = CACHE / f"{name}-{digest.hexdigest()[:16]}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for file in files:
            shutil.copy(EXAMPLES / name / file, target / file)
        for command in setup:
            done = run(command, cwd=target, timeout=600)
            if done.returncode != 0:
                missing_requirement(
                    f"cannot install the {name} recipe's packages: {done.stderr[-500:]}"
                )
        (target / ".complete").write_text("ok\n")
    # The recipe itself is always the current one.
    for file in files:
        shutil.copy(EXAMPLES / name / file, target / file)
    return target


# --- zeep + python-xmlsec -------------------------------------------------------------------


@pytest.fixture(scope="module")
def zeep_python() -> Path:
    target = prepared("zeep", ["requirements.txt", "recipe.py"], [
        [sys.executable, "-m", "venv", "venv"],
        ["venv/bin/python", "-m", "pip", "install", "-q", "-r", "requirements.txt"],
    ])
    return target / "venv" / "bin" / "python"


def test_zeep_recipe_registers_and_verifies(rsa_stack: Stack, zeep_python: Path) -> None:
    director = rsa_stack.pki.identity("director")
    done = run([zeep_python, EXAMPLES / "zeep" / "recipe.py", "--wsdl", rsa_stack.wsdl,
                "--key", director.key_path, "--cert", director.cert_path,
                "--find-fin", FOUND_FIN, "--register-fin", "6TY2U8P"])
    assert done.returncode == 0, done.stdout + done.stderr
    results = json_lines(done.stdout)
    assert results["FindPerson"]["verified"] is True
    assert results["FindPerson"]["answer"]["outcome"] == "FOUND"
    assert results["FindPerson"]["answer"]["person"]["fin"] == FOUND_FIN
    result = results["SubmitRegistration"]["answer"]["result"]
    assert result["status"] == "REGISTERED" and result["ssn"]
    assert registered(rsa_stack, "6TY2U8P")


def test_zeep_recipe_rejects_answers_not_signed_by_the_pinned_certificate(
    rsa_stack: Stack, zeep_python: Path
) -> None:
    """The recipe's answer check is real: pinned to another certificate, nothing verifies."""
    director = rsa_stack.pki.identity("director")
    before = applications(rsa_stack)
    done = run([zeep_python, EXAMPLES / "zeep" / "recipe.py", "--wsdl", rsa_stack.wsdl,
                "--key", director.key_path, "--cert", director.cert_path,
                "--gateway-cert", director.cert_path, "--register-fin", INSURED_FIN])
    assert done.returncode == 1
    results = json_lines(done.stdout)
    assert results["FindPerson"]["verified"] is False
    assert results["SubmitRegistration"]["verified"] is False
    assert applications(rsa_stack) == before


def test_zeep_recipe_reads_a_signed_fault(rsa_stack: Stack, zeep_python: Path) -> None:
    director = rsa_stack.pki.identity("director")
    before = applications(rsa_stack)
    done = run([zeep_python, EXAMPLES / "zeep" / "recipe.py", "--wsdl", rsa_stack.wsdl,
                "--key", director.key_path, "--cert", director.cert_path,
                "--register-fin", INSURED_FIN])
    fault = json_lines(done.stdout)["SubmitRegistration"]
    assert fault["verified"] is True and fault["fault"].endswith("Client.Conflict.SsnExists")
    assert applications(rsa_stack) == before


# --- xmlsec1, both ways -------------------------------------------------------------------


def test_xmlsec1_recipe_registers_and_verifies(rsa_stack: Stack, tmp_path: Path) -> None:
    for name in ("xmlsec1", "openssl", "curl"):
        tool(name)
    director = rsa_stack.pki.identity("director")
    root = next(p for p in rsa_stack.pki.trust_anchor_paths if "root" in p.name)
    done = run(["bash", EXAMPLES / "xmlsec1" / "recipe.sh", rsa_stack.url, director.key_path,
                director.cert_path, root, DEMO_VOEN, FOUND_FIN, "3HN8B5Q", tmp_path])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FindPerson: HTTP 200, answer signature verified" in done.stdout
    assert "SubmitRegistration: HTTP 200, answer signature verified" in done.stdout
    assert "<tns:outcome>FOUND</tns:outcome>" in (tmp_path / "FindPerson-answer.xml").read_text()
    answer = (tmp_path / "SubmitRegistration-answer.xml").read_text()
    assert "<tns:status>REGISTERED</tns:status>" in answer
    assert registered(rsa_stack, "3HN8B5Q")


def test_xmlsec1_recipe_refuses_a_chain_outside_its_trust(
    rsa_stack: Stack, tmp_path: Path
) -> None:
    """The recipe checks the ?certs chain against the root it holds before trusting it."""
    for name in ("xmlsec1", "openssl", "curl"):
        tool(name)
    director = rsa_stack.pki.identity("director")
    foreign = rsa_stack.pki.identity("foreign").chain_paths[0]
    before = applications(rsa_stack)
    done = run(["bash", EXAMPLES / "xmlsec1" / "recipe.sh", rsa_stack.url, director.key_path,
                director.cert_path, foreign, DEMO_VOEN, FOUND_FIN, "8LV4N2X", tmp_path])
    assert done.returncode != 0
    assert "verified" not in done.stdout
    assert applications(rsa_stack) == before


# --- node-soap + xml-crypto ---------------------------------------------------------------


@pytest.fixture(scope="module")
def node_recipe() -> Path:
    tool("node")
    npm = tool("npm")
    return prepared("node-soap", ["package.json", "package-lock.json", "recipe.js"], [
        [npm, "ci", "--no-audit", "--no-fund"],
    ])


def test_node_soap_recipe_registers_and_verifies(rsa_stack: Stack, node_recipe: Path) -> None:
    director = rsa_stack.pki.identity("director")
    done = run(["node", node_recipe / "recipe.js", "--wsdl", rsa_stack.wsdl,
                "--key", director.key_path, "--cert", director.cert_path,
                "--find-fin", FOUND_FIN, "--register-fin", "7MX2C9R"])
    assert done.returncode == 0, done.stdout + done.stderr
    results = json_lines(done.stdout)
    assert results["FindPerson"]["verified"] is True
    assert "<tns:outcome>FOUND</tns:outcome>" in results["FindPerson"]["answer"]
    assert results["SubmitRegistration"]["verified"] is True
    assert "<tns:status>REGISTERED</tns:status>" in results["SubmitRegistration"]["answer"]
    assert registered(rsa_stack, "7MX2C9R")


def test_node_soap_recipe_reads_a_signed_fault_and_rejects_a_wrong_pin(
    rsa_stack: Stack, node_recipe: Path
) -> None:
    director = rsa_stack.pki.identity("director")
    before = applications(rsa_stack)
    done = run(["node", node_recipe / "recipe.js", "--wsdl", rsa_stack.wsdl,
                "--key", director.key_path, "--cert", director.cert_path,
                "--register-fin", INSURED_FIN])
    fault = json_lines(done.stdout)["SubmitRegistration"]
    assert fault["verified"] is True and fault["fault"] == "Client.Conflict.SsnExists"
    pinned_wrong = run(["node", node_recipe / "recipe.js", "--wsdl", rsa_stack.wsdl,
                        "--key", director.key_path, "--cert", director.cert_path,
                        "--gateway-cert", director.cert_path, "--register-fin", INSURED_FIN])
    assert json_lines(pinned_wrong.stdout)["FindPerson"]["verified"] is False
    assert applications(rsa_stack) == before


# --- Java: WSS4J 1.6 + Santuario (Debian packages) ----------------------------------------

JAVA_JARS = ("wss4j.jar", "xmlsec.jar", "commons-logging.jar", "slf4j-api.jar")


@pytest.fixture(scope="module")
def java_recipe() -> tuple[Path, str]:
    javac = tool("javac")
    tool("java")
    jars = [Path("/usr/share/java") / jar for jar in JAVA_JARS]
    missing = [jar.name for jar in jars if not jar.exists()]
    if missing:
        missing_requirement(f"Debian's libwss4j-java / libxml-security-java ({missing})")
    classpath = ":".join(str(jar) for jar in jars)
    target = prepared("java", ["Recipe.java"], [
        [javac, "-cp", classpath, "-d", "build", "Recipe.java"],
    ])
    return target, f"{target / 'build'}:{classpath}"


def java_run(stack: Stack, recipe: tuple[Path, str], out: Path, *trust: Path,
             register_fin: str) -> subprocess.CompletedProcess[str]:
    director = stack.pki.identity("director")
    trust_args = [arg for path in trust for arg in ("--trust", str(path))]
    return run(["java", "-cp", recipe[1], "Recipe", "--url", stack.url,
                "--keystore", director.p12_path, "--password", "test", *trust_args,
                "--find-fin", FOUND_FIN, "--register-fin", register_fin, "--out", out])


def test_wss4j_recipe_registers_and_verifies(
    rsa_stack: Stack, java_recipe: tuple[Path, str], tmp_path: Path
) -> None:
    done = java_run(rsa_stack, java_recipe, tmp_path, *rsa_stack.pki.trust_anchor_paths,
                    register_fin="2RT5Y8U")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FindPerson: HTTP 200, answer signature verified, ok" in done.stdout
    assert "SubmitRegistration: HTTP 200, answer signature verified, ok" in done.stdout
    assert "<tns:outcome>FOUND</tns:outcome>" in (tmp_path / "FindPerson-answer.xml").read_text()
    assert registered(rsa_stack, "2RT5Y8U")


def test_wss4j_recipe_refuses_answers_from_outside_its_truststore(
    rsa_stack: Stack, java_recipe: tuple[Path, str], tmp_path: Path
) -> None:
    foreign = rsa_stack.pki.identity("foreign").chain_paths[0]
    before = applications(rsa_stack)
    done = java_run(rsa_stack, java_recipe, tmp_path, foreign, register_fin=INSURED_FIN)
    assert done.returncode == 1
    assert "FindPerson: HTTP 200, answer NOT verified" in done.stdout
    assert applications(rsa_stack) == before


# --- JAX-WS RI (wsimport) + WSS4J in a SOAPHandler (Debian packages) ----------------------

JAXWS_FILES = ("build.sh", "Recipe.java", "WsSecurityHandler.java")


@pytest.fixture(scope="module")
def jaxws_recipe(rsa_stack: Stack) -> str:
    """The client generated by wsimport from the live ?wsdl and compiled with the recipe.

    Cached by content (the served WSDL with the address left out, the schemas, the recipe's
    files, the JDK): wsimport and javac take a while on a shared machine. Returns the run
    classpath. A failing build is a failure, not a skip: the tools are there.
    """
    for name in ("wsimport", "javac", "java"):
        tool(name)
    jars = [Path("/usr/share/java") / jar for jar in ("jaxws-rt.jar", *JAVA_JARS)]
    missing = [jar.name for jar in jars if not jar.exists()]
    if missing:
        missing_requirement(f"Debian's libjaxws-java / libwss4j-java / libxml-security-java "
                            f"({missing})")
    served = requests.get(rsa_stack.wsdl, timeout=10)
    served.raise_for_status()
    digest = hashlib.sha256(served.content.replace(rsa_stack.url.encode(), b"GATEWAY"))
    for path in sorted((REPO / "xsd").glob("*.xsd")):
        digest.update(path.read_bytes())
    for file in JAXWS_FILES:
        digest.update((EXAMPLES / "jaxws" / file).read_bytes())
    javac_version = run(["javac", "-version"])
    digest.update((javac_version.stdout + javac_version.stderr).encode())
    target = CACHE / f"jaxws-{digest.hexdigest()[:16]}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        built = run(["bash", EXAMPLES / "jaxws" / "build.sh", rsa_stack.wsdl, target],
                    timeout=600)
        assert built.returncode == 0, (built.stdout + built.stderr)[-3000:]
        (target / ".complete").write_text("ok\n")
    classpath = run(["bash", EXAMPLES / "jaxws" / "build.sh", "--classpath"]).stdout.strip()
    return f"{target / 'classes'}:{classpath}"


def jaxws_run(stack: Stack, classpath: str, *trust: Path,
              register_fin: str) -> subprocess.CompletedProcess[str]:
    director = stack.pki.identity("director")
    trust_args = [arg for path in trust for arg in ("--trust", str(path))]
    return run(["java", "-cp", classpath, "Recipe", "--wsdl", stack.wsdl,
                "--keystore", director.p12_path, "--password", "test", *trust_args,
                "--find-fin", FOUND_FIN, "--register-fin", register_fin])


def recipe_lines(output: str) -> dict[str, str]:
    """``{operation: what the recipe printed after "<operation>: "}``."""
    lines = (line.partition(": ") for line in output.splitlines())
    return {operation: rest for operation, _, rest in lines
            if operation in ("FindPerson", "SubmitRegistration")}


def test_jaxws_recipe_registers_and_verifies(rsa_stack: Stack, jaxws_recipe: str) -> None:
    done = jaxws_run(rsa_stack, jaxws_recipe, *rsa_stack.pki.trust_anchor_paths,
                     register_fin="4PD6W1S")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = recipe_lines(done.stdout)
    assert lines["FindPerson"] == f"answer signature verified, FOUND {FOUND_FIN}"
    assert re.fullmatch(r"answer signature verified, REGISTERED ssn \d+",
                        lines["SubmitRegistration"]), lines
    assert registered(rsa_stack, "4PD6W1S")


def test_jaxws_recipe_reads_a_signed_fault(rsa_stack: Stack, jaxws_recipe: str) -> None:
    """A refusal reaches the code as GatewayFault only after the handler verified it."""
    before = applications(rsa_stack)
    done = jaxws_run(rsa_stack, jaxws_recipe, *rsa_stack.pki.trust_anchor_paths,
                     register_fin=INSURED_FIN)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = recipe_lines(done.stdout)
    assert lines["FindPerson"] == f"answer signature verified, FOUND {FOUND_FIN}"
    assert lines["SubmitRegistration"] == (
        "answer signature verified, fault Client.Conflict.SsnExists")
    assert applications(rsa_stack) == before


def test_jaxws_recipe_refuses_answers_from_outside_its_truststore(
    rsa_stack: Stack, jaxws_recipe: str
) -> None:
    """Trusting only a foreign CA, no answer (nor the fault) reaches the generated port."""
    foreign = rsa_stack.pki.identity("foreign").chain_paths[0]
    before = applications(rsa_stack)
    done = jaxws_run(rsa_stack, jaxws_recipe, foreign, register_fin=INSURED_FIN)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = recipe_lines(done.stdout)
    for operation in ("FindPerson", "SubmitRegistration"):
        assert lines[operation] == ("answer NOT verified: The security token could not be "
                                    "authenticated or authorized"), lines
    assert applications(rsa_stack) == before
