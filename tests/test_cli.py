"""``dsmf-gateway`` run as a real process: what each subcommand prints, writes and exits with.

Every run is ``python -m gateway.cli`` in a subprocess with a bounded timeout and an environment
without ``DSMF_*`` variables (so the developer's own configuration cannot leak in). ``serve`` is
started for real on a free loopback port and stopped with SIGINT.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from lxml import etree

from persistence.db import Database
from persistence.message_log import MessageLog
from persistence.migrate import head_revision
from signing.errors import CertificateRevoked
from signing.testpki import GOOD_IDENTITIES, load_test_pki

REPO = Path(__file__).resolve().parent.parent
BUNDLED_INSURERS = REPO / "persistence" / "data" / "insurers.json"
AUTHORED_WSDL = REPO / "wsdl" / "gateway.wsdl"
CLI_TIMEOUT = 120.0
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
SOAP_BINDING_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSMF_")}
    env.update(extra)
    return env


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=cwd, env=env if env is not None else clean_env(), capture_output=True, text=True,
        timeout=timeout, check=False,
    )


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def rows(db_path: Path, query: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db_path) as conn:
        return list(conn.execute(query, params))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the console script -------------------------------------------------------------------------


def test_console_script_is_installed_next_to_the_interpreter(tmp_path: Path) -> None:
    script = shutil.which("dsmf-gateway", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("dsmf-gateway is not installed next to this interpreter")
    done = subprocess.run([script, "--help"], cwd=tmp_path, env=clean_env(), capture_output=True,
                          text=True, timeout=CLI_TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    for command in ("serve", "simulators", "migrate", "pki", "load-insurers", "log",
                    "finish-submitted"):
        assert command in done.stdout


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    done = cli(cwd=tmp_path)
    assert done.returncode == 2
    assert "the following arguments are required: command" in done.stderr


# -- pki init -------------------------------------------------------------------------------------


def test_pki_init_creates_a_usable_pki_and_reuses_it(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    first = cli("pki", "init", str(directory), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"demo PKI in {directory}: trust anchors ")
    assert re.search(r"^  director +cert\.pem +FIN=6ZK4T2P VÖEN=1403567891 seal=True$",
                     first.stdout, re.MULTILINE)
    pki = load_test_pki(directory)
    cards = {name: identity.card_number for name, identity in pki.identities.items()}
    certs = {name: identity.cert_path.read_bytes() for name, identity in pki.identities.items()}

    # Usable: every good identity validates against the trust list, the revoked one does not,
    # and a key signs what its certificate verifies.
    trust = pki.trust_store()
    now = datetime.now(UTC)
    for name in GOOD_IDENTITIES:
        identity = pki.identity(name)
        chain = [x509.load_pem_x509_certificate(p.read_bytes()) for p in identity.chain_paths]
        trust.validate(identity.certificate, chain, now)
    revoked = pki.identity("revoked")
    with pytest.raises(CertificateRevoked):
        trust.validate(revoked.certificate, [pki.issuing, pki.root], now)

    second = cli("pki", "init", str(directory), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    again = load_test_pki(directory)
    assert {name: i.card_number for name, i in again.identities.items()} == cards
    assert {name: i.cert_path.read_bytes() for name, i in again.identities.items()} == certs


def test_pki_init_refuses_a_foreign_non_empty_directory(tmp_path: Path) -> None:
    directory = tmp_path / "taken"
    directory.mkdir()
    (directory / "notes.txt").write_text("mine\n")
    done = cli("pki", "init", str(directory), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"dsmf-gateway: {directory} is not empty and holds no test PKI")
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in directory.iterdir()) == ["notes.txt"]


# -- migrate --------------------------------------------------------------------------------------


def test_migrate_creates_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    db_path = tmp_path / "gw.db"
    first = cli("migrate", "--database-url", sqlite_url(db_path), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"database at revision {head_revision()}\n"
    tables = {name for (name,) in rows(db_path, "SELECT name FROM sqlite_master "
                                                "WHERE type = 'table'")}
    assert {"insurers", "local_offices", "applications", "message_log",
            "alembic_version"} <= tables

    second = cli("migrate", "--database-url", sqlite_url(db_path), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert rows(db_path, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


def test_migrate_takes_the_database_from_the_config_file(tmp_path: Path) -> None:
    db_path = tmp_path / "from-config.db"
    config = tmp_path / "gateway.toml"
    config.write_text(f'database_url = "{sqlite_url(db_path)}"\n')
    done = cli("--config", str(config), "migrate", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"database at revision {head_revision()}\n"
    assert db_path.is_file()


def test_unknown_config_key_is_exit_2_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('port = 8080\ncolour = "blue"\n')
    done = cli("--config", str(config), "migrate", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == f"dsmf-gateway: unknown configuration keys in {config}: colour\n"
    assert done.stdout == ""
    assert not (tmp_path / "var").exists()  # nothing was created


def test_unknown_config_key_via_dsmf_config_is_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("prot = 8080\n")
    done = cli("migrate", cwd=tmp_path, env=clean_env(DSMF_CONFIG=str(config)))
    assert done.returncode == 2
    assert done.stderr == f"dsmf-gateway: unknown configuration keys in {config}: prot\n"


def test_bad_environment_value_is_exit_2(tmp_path: Path) -> None:
    done = cli("migrate", "--database-url", sqlite_url(tmp_path / "gw.db"), cwd=tmp_path,
               env=clean_env(DSMF_MIN_RSA_BITS="1024"))
    assert done.returncode == 2
    assert done.stderr == ("dsmf-gateway: invalid configuration: min_rsa_bits below 2048 is not "
                           "allowed by the profile\n")
    assert not (tmp_path / "gw.db").exists()


# -- load-insurers --------------------------------------------------------------------------------


def test_load_insurers_from_the_bundled_file_and_again(tmp_path: Path) -> None:
    source = tmp_path / "insurers.json"
    shutil.copyfile(BUNDLED_INSURERS, source)
    expected = len(json.loads(source.read_text(encoding="utf-8"))["insurers"])
    db_path = tmp_path / "gw.db"
    done = cli("load-insurers", str(source), "--database-url", sqlite_url(db_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"loaded {expected} insurer(s) from {source}\n"
    assert rows(db_path, "SELECT count(*) FROM insurers") == [(expected,)]
    assert rows(db_path, "SELECT full_name FROM insurers WHERE voen = ?", "1403567891") == [
        ("Xəzər Tikinti MMC",)]

    # An idempotent upsert: a second run changes nothing, duplicates nothing.
    again = cli("load-insurers", str(source), "--database-url", sqlite_url(db_path),
                cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == done.stdout
    assert rows(db_path, "SELECT count(*) FROM insurers") == [(expected,)]


SMALL = """{
  "local_offices": [
    {"code": "0102", "name": "Bakı şəhəri Nəsimi rayon şöbəsi"}
  ],
  "insurers": [
    {"voen": "1403567891", "full_name": "Xəzər Tikinti MMC", "insurer_type": "LEGAL_ENTITY",
     "registration_number": "DSMF-0102-004512", "responsible_person": "Əliyev Rəşad",
     "local_office_code": "0102"},
    {"voen": "%(voen)s", "full_name": "Bad Row MMC", "insurer_type": "LEGAL_ENTITY",
     "registration_number": "DSMF-0102-009999", "responsible_person": "Bəy Bəyov",
     "local_office_code": "%(office)s"}
  ]
}
"""


def test_load_insurers_with_a_small_good_file(tmp_path: Path) -> None:
    source = tmp_path / "small.json"
    source.write_text(SMALL % {"voen": "1700345671", "office": "0102"}, encoding="utf-8")
    db_path = tmp_path / "gw.db"
    done = cli("load-insurers", str(source), "--database-url", sqlite_url(db_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"loaded 2 insurer(s) from {source}\n"
    assert sorted(rows(db_path, "SELECT voen FROM insurers")) == [("1403567891",),
                                                                  ("1700345671",)]


def test_load_insurers_refuses_a_voen_ending_in_3_and_loads_nothing(tmp_path: Path) -> None:
    source = tmp_path / "bad.json"
    source.write_text(SMALL % {"voen": "1700345673", "office": "0102"}, encoding="utf-8")
    db_path = tmp_path / "gw.db"
    done = cli("load-insurers", str(source), "--database-url", sqlite_url(db_path), cwd=tmp_path)
    assert done.returncode == 2
    # The second insurer object starts on line 9 of the file.
    assert done.stderr == ("dsmf-gateway: bad.json line 9: VÖEN must be 10 digits ending in 1 "
                           "or 2 (got '1700345673')\n")
    assert done.stdout == ""
    # Neither the good insurer before it nor the office was written.
    assert rows(db_path, "SELECT count(*) FROM insurers") == [(0,)]
    assert rows(db_path, "SELECT count(*) FROM local_offices") == [(0,)]


def test_load_insurers_rolls_back_when_a_later_row_fails_in_the_database(tmp_path: Path) -> None:
    # Valid as a file, but office 9999 exists neither in the file nor in the database: found
    # only while writing, after the first insurer was already upserted in the transaction.
    source = tmp_path / "unknown-office.json"
    source.write_text(SMALL % {"voen": "1700345671", "office": "9999"}, encoding="utf-8")
    db_path = tmp_path / "gw.db"
    done = cli("load-insurers", str(source), "--database-url", sqlite_url(db_path), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == ("dsmf-gateway: unknown-office.json line 9: unknown local office code "
                           "'9999'\n")
    assert rows(db_path, "SELECT count(*) FROM insurers") == [(0,)]
    assert rows(db_path, "SELECT count(*) FROM local_offices") == [(0,)]


def test_load_insurers_csv_names_the_bad_line(tmp_path: Path) -> None:
    db_path = tmp_path / "gw.db"
    seed = tmp_path / "offices.json"
    seed.write_text('{"local_offices": [{"code": "0102", "name": "Nəsimi"}]}', encoding="utf-8")
    assert cli("load-insurers", str(seed), "--database-url", sqlite_url(db_path),
               cwd=tmp_path).returncode == 0
    source = tmp_path / "insurers.csv"
    source.write_text(
        "voen,full_name,insurer_type,registration_number,responsible_person,local_office_code\n"
        "1403567891,Xəzər Tikinti MMC,LEGAL_ENTITY,DSMF-1,Əliyev Rəşad,0102\n"
        "1700345673,Bad Row MMC,LEGAL_ENTITY,DSMF-2,Bəy Bəyov,0102\n",
        encoding="utf-8",
    )
    done = cli("load-insurers", str(source), "--database-url", sqlite_url(db_path), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == ("dsmf-gateway: insurers.csv line 3: VÖEN must be 10 digits ending in "
                           "1 or 2 (got '1700345673')\n")
    assert rows(db_path, "SELECT count(*) FROM insurers") == [(0,)]


# -- log seal / verify / export / erase -----------------------------------------------------------


@pytest.fixture(scope="module")
def log_pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from signing.testpki import build_test_pki

    return build_test_pki(tmp_path_factory.mktemp("log-pki"))


@pytest.fixture(scope="module")
def tsa_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    from gateway.wsgi_server import serve_in_thread
    from simulators.tsa import PATH, TsaSimulator, create_tsa_app

    tsa = TsaSimulator.in_directory(tmp_path_factory.mktemp("tsa"))
    server = serve_in_thread(create_tsa_app(tsa))
    yield server.url.rstrip("/") + PATH, tsa.trust_anchor_path
    server.stop()


@pytest.fixture
def logged_db(tmp_path: Path) -> Iterator[Path]:
    """A migrated SQLite database with two exchanges, m-1 and m-2 (not sealed yet)."""
    db_path = tmp_path / "log.db"
    done = cli("migrate", "--database-url", sqlite_url(db_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    database = Database(sqlite_url(db_path))
    try:
        log = MessageLog(database)
        for n in (1, 2):
            log.append_exchange(f"<request n='{n}'/>".encode(), f"<response n='{n}'/>".encode(),
                                message_id=f"m-{n}", correlation_id=f"c-{n}",
                                actor_fin="6ZK4T2P", voen="1403567891", operation="FindPerson")
    finally:
        database.dispose()
    yield db_path


def log_env(db_path: Path, pki: Any, tsa: tuple[str, Path], **extra: str) -> dict[str, str]:
    gateway = pki.identity("gateway")
    return clean_env(
        DSMF_DATABASE_URL=sqlite_url(db_path),
        DSMF_TRUST_ANCHORS=",".join(str(p) for p in pki.trust_anchor_paths),
        DSMF_CRLS=str(pki.crl_path),
        DSMF_SIGNING_KEY_FILE=str(gateway.key_path),
        DSMF_SIGNING_CERT_FILE=str(gateway.cert_path),
        DSMF_LOG_TSA_URL=tsa[0], DSMF_LOG_TSA_TRUST_ANCHORS=str(tsa[1]),
        DSMF_LOG_SEAL_SETTLE_SECONDS="0", **extra,
    )


def test_log_seal_then_verify(tmp_path: Path, logged_db: Path, log_pki: Any,
                              tsa_url: tuple[str, Path]) -> None:
    env = log_env(logged_db, log_pki, tsa_url)
    done = cli("log", "seal", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"seals": [1], "entries": 4}
    done = cli("log", "verify", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert (report["ok"], report["seals"], report["sealed_entries"]) == (True, 1, 4)
    assert rows(logged_db, "SELECT count(*) FROM message_log_leaves") == [(4,)]


def test_log_verify_finds_a_tampered_payload(tmp_path: Path, logged_db: Path, log_pki: Any,
                                             tsa_url: tuple[str, Path]) -> None:
    env = log_env(logged_db, log_pki, tsa_url)
    assert cli("log", "seal", cwd=tmp_path, env=env).returncode == 0
    (second_id,) = rows(logged_db, "SELECT id FROM message_log ORDER BY id")[1]
    with sqlite3.connect(logged_db) as conn:
        conn.execute("DROP TRIGGER message_log_no_update")  # what only a DBA can do
        conn.execute("UPDATE message_log SET payload = ? WHERE id = ?",
                     (b"<response n='forged'/>", second_id))
    done = cli("log", "verify", cwd=tmp_path, env=env)
    assert done.returncode == 1
    assert json.loads(done.stdout)["problems"] == [
        f"entry {second_id}: payload changed (digest differs)"]


def test_the_database_refuses_to_change_the_log(logged_db: Path) -> None:
    with sqlite3.connect(logged_db) as conn, pytest.raises(sqlite3.DatabaseError,
                                                           match="append-only"):
        conn.execute("DELETE FROM message_log")
    assert rows(logged_db, "SELECT count(*) FROM message_log") == [(4,)]


def test_log_verify_on_an_empty_log(tmp_path: Path, log_pki: Any,
                                    tsa_url: tuple[str, Path]) -> None:
    db_path = tmp_path / "empty.db"
    assert cli("migrate", "--database-url", sqlite_url(db_path), cwd=tmp_path).returncode == 0
    done = cli("log", "verify", cwd=tmp_path, env=log_env(db_path, log_pki, tsa_url))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True and json.loads(done.stdout)["seals"] == 0


def test_log_verify_without_the_tsa_anchor_is_exit_2(tmp_path: Path, logged_db: Path) -> None:
    done = cli("log", "verify", "--database-url", sqlite_url(logged_db), cwd=tmp_path)
    assert done.returncode == 2
    assert "log verify needs log_tsa_trust_anchors" in done.stderr


def test_log_export_writes_the_evidence_zip(tmp_path: Path, logged_db: Path, log_pki: Any,
                                            tsa_url: tuple[str, Path]) -> None:
    import zipfile

    env = log_env(logged_db, log_pki, tsa_url)
    done = cli("log", "export", "m-2", cwd=tmp_path, env=env)
    assert done.returncode == 2  # not sealed yet: nothing to prove
    assert "not sealed yet" in done.stderr
    assert cli("log", "seal", cwd=tmp_path, env=env).returncode == 0
    done = cli("log", "export", "m-2", "--out", str(tmp_path / "m2.zip"), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "m2.zip") as archive:
        names = set(archive.namelist())
        assert {"README.txt", "verify_inclusion.py", "seals/seal-1.xml", "seals/seal-1.tst",
                "certs/tsa-ca.pem", "certs/crls.pem"} <= names
        (request,) = [n for n in names if n.endswith("-in.xml")]
        assert archive.read(request) == b"<request n='2'/>"
        readme = archive.read("README.txt").decode()
        digest = hashlib.sha256(b"<request n='2'/>").hexdigest()
        assert f"sha256sum must print {digest}" in readme


def test_log_export_of_an_unknown_message_is_exit_2(tmp_path: Path, logged_db: Path,
                                                    log_pki: Any,
                                                    tsa_url: tuple[str, Path]) -> None:
    done = cli("log", "export", "nope", cwd=tmp_path, env=log_env(logged_db, log_pki, tsa_url))
    assert done.returncode == 2
    assert done.stderr == "dsmf-gateway: no logged message nope\n"
    assert done.stdout == ""


def test_log_export_without_a_message_id_is_exit_2(tmp_path: Path, logged_db: Path) -> None:
    done = cli("log", "export", "--database-url", sqlite_url(logged_db), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == "log export needs an id\n"


def test_log_erase_empties_old_sealed_payloads(tmp_path: Path, logged_db: Path, log_pki: Any,
                                               tsa_url: tuple[str, Path]) -> None:
    env = log_env(logged_db, log_pki, tsa_url)
    assert cli("log", "seal", cwd=tmp_path, env=env).returncode == 0
    before = datetime.now(UTC).isoformat()
    done = cli("log", "erase", "--before", before, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["erased"] == 4
    assert rows(logged_db, "SELECT count(*) FROM message_log WHERE length(payload) = 0 "
                           "AND erased_at IS NOT NULL") == [(4,)]
    done = cli("log", "verify", cwd=tmp_path, env=env)
    assert done.returncode == 0 and json.loads(done.stdout)["erased_entries"] == 4


# -- serve ----------------------------------------------------------------------------------------


def wait_for_health(url: str, process: subprocess.Popen[bytes], log_path: Path,
                    deadline_seconds: float = 60.0) -> requests.Response:
    """Poll GET /health until 200 (bounded in time and count); fail if the process dies."""
    deadline = time.monotonic() + deadline_seconds
    last: str = "no answer yet"
    for _ in range(600):
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            break
        try:
            response = requests.get(url, timeout=max(1.0, min(15.0, deadline - time.monotonic())))
            if response.status_code == 200:
                return response
            last = f"{response.status_code} {response.text[:200]}"
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    pytest.fail(f"no healthy answer from {url} within {deadline_seconds}s: {last}")


def wait_for_text(path: Path, text: str, deadline_seconds: float = 10.0) -> str:
    deadline = time.monotonic() + deadline_seconds
    content = ""
    for _ in range(1000):
        content = path.read_text(encoding="utf-8", errors="replace")
        if text in content or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert text in content, content[-2000:]
    return content


def normalized_wsdl(doc: etree._Element) -> bytes:
    return etree.tostring(doc, method="c14n")


def test_serve_end_to_end(tmp_path: Path) -> None:
    port, population_port, mobile_port = free_port(), free_port(), free_port()
    data_dir = tmp_path / "data"
    out_path, err_path = tmp_path / "serve.out", tmp_path / "serve.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        # The simulators' ports pinned: one by option, one by configuration (environment).
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
             "--population-port", str(population_port), "--data-dir", str(data_dir)],
            cwd=tmp_path, env=clean_env(PYTHONUNBUFFERED="1", DSMF_LOG_SEAL_INTERVAL_SECONDS="0.5",
                                        DSMF_LOG_SEAL_SETTLE_SECONDS="0",
                                        DSMF_SIMULATOR_MOBILE_PORT=str(mobile_port)),
            stdout=out, stderr=err,
        )
    try:
        root = f"http://127.0.0.1:{port}"
        health = wait_for_health(f"{root}/health", process, err_path)
        assert health.json() == {"status": "ok", "checks": {
            "database": "ok", "signing-key": "ok", "population-registry": "ok",
            "message-log-seal": "ok"}}
        # The banner is printed before the process waits for a signal.
        banner = wait_for_text(out_path, "Ctrl-C stops.")
        endpoint = f"{root}/soap"
        assert f"DSMF insured-registration gateway on {endpoint}" in banner
        assert f"WSDL:    {endpoint}?wsdl" in banner
        assert f"population-registry simulator: http://127.0.0.1:{population_port}/" in banner
        assert f"mobile-signature simulator:    http://127.0.0.1:{mobile_port}/" in banner

        # ?wsdl: the authored WSDL, only the address and schema locations rewritten.
        answer = requests.get(f"{endpoint}?wsdl", timeout=10)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/xml")
        served = etree.fromstring(answer.content)
        authored = etree.parse(str(AUTHORED_WSDL)).getroot()
        addresses = list(served.iter(f"{{{SOAP_BINDING_NS}}}address"))
        assert [a.get("location") for a in addresses] == [endpoint]
        imports = list(served.iter(f"{{{XSD_NS}}}import", f"{{{XSD_NS}}}include"))
        authored_imports = list(authored.iter(f"{{{XSD_NS}}}import", f"{{{XSD_NS}}}include"))
        assert len(imports) == len(authored_imports) > 0
        for mine, theirs in zip(imports, authored_imports, strict=True):
            location = theirs.get("schemaLocation")
            if location:
                assert mine.get("schemaLocation") == f"{endpoint}?xsd={Path(location).name}"
                mine.set("schemaLocation", location)
        for address, original in zip(addresses, authored.iter(f"{{{SOAP_BINDING_NS}}}address"),
                                     strict=True):
            address.set("location", original.get("location") or "")
        assert normalized_wsdl(served) == normalized_wsdl(authored)

        # An ERP-style signed call with the demo director's card, verifying the signed answer.
        example = subprocess.run(
            [sys.executable, "-m", "gateway.client.example", "--wsdl", f"{endpoint}?wsdl",
             "--pki", str(data_dir / "pki"), "--fin", "5GH3J7K"],
            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=CLI_TIMEOUT,
            check=False,
        )
        assert example.returncode == 0, example.stderr
        assert "verified" in example.stdout
        assert "Nəsibova" in example.stdout

        # A refusal from inside an operation (the director does not act for another insurer):
        # a fault for the caller, no traceback in the server's output.
        refused = subprocess.run(
            [sys.executable, "-m", "gateway.client.example", "--wsdl", f"{endpoint}?wsdl",
             "--pki", str(data_dir / "pki"), "--fin", "5GH3J7K", "--voen", "1700345671"],
            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=CLI_TIMEOUT,
            check=False,
        )
        assert refused.returncode == 1, refused.stdout
        assert refused.stderr.startswith("refused: "), refused.stderr

        # The embedded sealer seals both exchanges with the TSA simulator, and says so.
        deadline = time.monotonic() + 60
        while True:
            metrics = requests.get(f"{root}/metrics", timeout=10).text
            if re.search(r"^dsmf_message_log_unsealed_entries 0\.0$", metrics, re.M) and \
                    re.search(r"^dsmf_message_log_last_seal_number [1-9]", metrics, re.M):
                break
            assert time.monotonic() < deadline, metrics[-2000:]
            time.sleep(0.2)
        assert json.loads((data_dir / "message-log-anchor.json").read_text())["number"] >= 1

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, err_path.read_text()[-2000:]
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{root}/health", timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert "Traceback" not in err_path.read_text(encoding="utf-8", errors="replace")


def test_serve_on_a_taken_port_says_so_without_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--port", str(port), "--data-dir", str(tmp_path / "var"),
                     cwd=tmp_path)
    assert result.returncode == 2
    assert "Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


# -- the population registry's "any FIN" mode ---------------------------------------------------

UNKNOWN_FIN = "7BX4K2M"  # no demo person's


def _population_url(banner: str) -> str:
    found = re.search(r"(http://127\.0\.0\.1:\d+/population-registry)", banner)
    assert found, banner
    return found.group(1)


def _finds_unknown_fin(population_url: str) -> bool:
    from gateway.domain.errors import PersonNotFoundUpstream
    from gateway.domain.values import DocumentType
    from gateway.upstream.population import ZeepPopulationRegistry

    registry = ZeepPopulationRegistry(
        REPO / "wsdl" / "upstream" / "population-registry.wsdl", population_url, timeout=10.0
    )
    # The demo people are there in either mode.
    assert registry.find_person(DocumentType.ID_CARD, "5GH3J7K").surname == "Nəsibova"
    try:
        person = registry.find_person(DocumentType.ID_CARD, UNKNOWN_FIN)
    except PersonNotFoundUpstream:
        return False
    assert person.fin == UNKNOWN_FIN and person.citizenship == "AZE"
    return True


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--any-fin"], {}, True),
        ([], {"DSMF_SIMULATOR_ANY_FIN": "true"}, True),
        ([], {}, False),
    ],
    ids=["flag", "environment", "default"],
)
def test_simulators_answer_any_valid_fin_when_asked(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: bool
) -> None:
    out_path, err_path = tmp_path / "sim.out", tmp_path / "sim.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "simulators", "--population-port",
             str(free_port()), "--mobile-port", str(free_port()), "--pki-dir",
             str(tmp_path / "pki"), *args],
            cwd=tmp_path, env=clean_env(PYTHONUNBUFFERED="1", **env), stdout=out, stderr=err,
        )
    try:
        banner = wait_for_text(out_path, "mobile signature:", deadline_seconds=60)
        assert ("any valid FIN" in banner) is expected
        assert _finds_unknown_fin(_population_url(banner)) is expected
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, err_path.read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_serve_any_fin_starts_the_population_simulator_in_that_mode(tmp_path: Path) -> None:
    port = free_port()
    out_path, err_path = tmp_path / "serve.out", tmp_path / "serve.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
             "--data-dir", str(tmp_path / "data"), "--any-fin"],
            cwd=tmp_path, env=clean_env(PYTHONUNBUFFERED="1"), stdout=out, stderr=err,
        )
    try:
        wait_for_health(f"http://127.0.0.1:{port}/health", process, err_path)
        banner = wait_for_text(out_path, "Ctrl-C stops.")
        assert "(any valid FIN)" in banner
        assert _finds_unknown_fin(_population_url(banner))
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, err_path.read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
