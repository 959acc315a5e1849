"""``dsmf-client`` end to end: the employer's desk tool against the real gateway on loopback,
signing with a SoftHSM2 card, run as the HR accountant runs it (a separate process).

The population registry is the simulator, serving the seed people plus a few hundred generated
ones, so a spreadsheet of 150 new employees can be registered.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway.client.messages import text
from gateway.wsgi_server import serve_in_thread
from signing.testpki import TestPki, load_into_softhsm, write_softhsm_config
from simulators import people as seed
from simulators.population import PATH as POPULATION_PATH
from simulators.population import PopulationDirectory, create_population_app
from simulators.runner import Simulators
from tests.e2e.conftest import (
    DEMO_VOEN,
    OTHER_VOEN,
    Stack,
    make_settings,
    serve_gateway,
    sibling_stack,
)
from tests.e2e.test_meta import closed_port_url
from tests.e2e.test_registration_flow import service

PIN = "918273"
FIN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
GENERATED = 400


def generated_people(count: int, seed_value: int = 15) -> list[seed.SeedPerson]:
    rng = random.Random(seed_value)
    taken = {p.fin for p in seed.PEOPLE} | {seed.NOT_FOUND_FIN}
    found: list[seed.SeedPerson] = []
    while len(found) < count:
        fin = "".join(rng.choice(FIN_ALPHABET) for _ in range(7))
        if fin in taken:
            continue
        taken.add(fin)
        n = len(found)
        found.append(seed.SeedPerson(
            fin=fin, surname=f"Soyad{n}", name=f"Ad{n}", patronymic=None,
            birth_date=date(1970 + n % 30, 1 + n % 12, 1 + n % 28), birth_place="Bakı",
            sex="MF"[n % 2], citizenship="AZE",
            document=seed.SeedDocument(
                document_type=seed.SeedDocumentType.ID_CARD, series="AA",
                number=f"{3000000 + n}", issue_date=date(2020, 1, 15),
                expiry_date=date(2030, 1, 15), issuer="ASAN xidmət"),
            registration_address=seed.SeedAddress(
                "Bakı şəhəri", "Nəsimi rayonu", "Azadlıq prospekti", str(1 + n % 200)),
        ))
    return found


PEOPLE = generated_people(GENERATED)


@pytest.fixture(scope="module")
def population_url() -> Iterator[str]:
    from gateway.config import project_root

    app = create_population_app(project_root() / "wsdl" / "upstream",
                                PopulationDirectory((*seed.PEOPLE, *PEOPLE)))
    server = serve_in_thread(app)
    yield server.url.rstrip("/") + POPULATION_PATH
    server.stop()


@pytest.fixture
def desk(database_url: str, tmp_path: Path, test_pki: TestPki, simulators: Simulators,
         population_url: str) -> Iterator[Stack]:
    settings = make_settings(database_url, tmp_path / "gw", test_pki, simulators,
                             population_url=population_url)
    with serve_gateway(settings, test_pki, simulators) as running:
        yield running


@dataclass
class Card:
    """The director's key on a SoftHSM2 token, and how to run dsmf-client with it."""

    stack: Stack
    env: dict[str, str]
    args: list[str]

    def run(self, *argv: str, pin: str | None = PIN, extra: list[str] | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
        # No terminal on stdin: the PIN comes from the environment or not at all.
        return subprocess.run(self.command(*argv, extra=extra), capture_output=True, text=True,
                              timeout=timeout, env=self.environment(pin), check=False,
                              stdin=subprocess.DEVNULL)

    def command(self, *argv: str, extra: list[str] | None = None) -> list[str]:
        return [sys.executable, "-m", "gateway.client.cli", *argv, *self.args, *(extra or [])]

    def environment(self, pin: str | None) -> dict[str, str]:
        env = dict(self.env)
        if pin is not None:
            env["DSMF_PKCS11_PIN"] = pin
        return env


def connection_args(stack: Stack) -> list[str]:
    pki = stack.pki
    args = ["--wsdl", stack.wsdl, "--voen", DEMO_VOEN]
    for anchor in pki.trust_anchor_paths:
        args += ["--trust-anchor", str(anchor)]
    for crl in pki.crl_paths:
        args += ["--crl", str(crl)]
    args += ["--gateway-cert", str(pki.identity("gateway").cert_path)]
    return args


@pytest.fixture
def card(desk: Stack, softhsm_module: str, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Card:
    conf = write_softhsm_config(tmp_path / "hsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    load_into_softhsm(desk.pki, "director", module_path=softhsm_module, token_label="hr-card",
                      so_pin="10203040", user_pin=PIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSMF_PKCS11")}
    env["SOFTHSM2_CONF"] = str(conf)
    args = [*connection_args(desk), "--pkcs11-module", softhsm_module,
            "--token-label", "hr-card", "--key-label", "director"]
    return Card(desk, env, args)


# --- the spreadsheet ----------------------------------------------------------------------

HEADER = ["ref", "document_type", "fin", "actual_region", "actual_city", "actual_street",
          "actual_house", "actual_apartment", "actual_postal_code", "mobile_phone",
          "landline_phone", "email"]


def row(ref: str, fin: str, *, document: str = "ID_CARD", mobile: str = "", landline: str = "",
        email: str = "", address: tuple[str, ...] = ()) -> list[str]:
    place = list(address) + [""] * (6 - len(address))
    return [ref, document, fin, *place, mobile, landline, email]


@dataclass
class Spreadsheet:
    path: Path
    new: list[str]  # FINs to be registered
    existing: dict[str, str]  # FIN -> the SSN it already has
    unknown: list[str]  # FINs the population registry does not know
    bad_lines: dict[int, str]  # spreadsheet line -> the catalogue message expected there


def employees(tmp_path: Path, people: list[seed.SeedPerson],
              existing: dict[str, str]) -> Spreadsheet:
    rows: list[list[str]] = []
    new = []
    for n, person in enumerate(people):
        extra: dict[str, Any] = {}
        if n % 3 == 0:
            extra["mobile"] = f"+99450{1000000 + n:07d}"
        if n % 5 == 0:
            extra["email"] = f"ad{n}@example.az"
        if n % 7 == 0:
            extra["address"] = ("Bakı şəhəri", "Yasamal rayonu", "Şərifzadə küçəsi", str(n),
                                "", "AZ1065")
        rows.append(row(f"E{n:04d}", person.fin, **extra))
        new.append(person.fin)
    for fin in existing:
        rows.append(row(f"X-{fin}", fin))
    rows.append(row("U-1", seed.NOT_FOUND_FIN))
    # ~5% bad rows, each a different rule, spread through the file.
    bad = [
        (row("B1", "5GH3J7O"), text("row.fin.characters", value="5GH3J7O")),
        (row("B2", "5GH3J7"), text("row.fin.length_id_card", value="5GH3J7")),
        (row("B3", "A1B2", document="TEMPORARY_RESIDENCE_PERMIT"),
         text("row.fin.length_permit", value="A1B2")),
        (row("B4", "Q1W2E3R", mobile="+994124987654"),
         text("row.mobile.not_mobile", value="+994124987654")),
        (row("B5", "Q1W2E3T", email="not-an-address"),
         text("row.email.invalid", value="not-an-address")),
        (row("B6", "Q1W2E3Y", address=("Bakı şəhəri",)),
         text("row.address.required", field=text("field.actual_city"))),
        (row("B7", "Q1W2E3U", document="PASSPORT"),
         text("row.document_type.unknown", value="PASSPORT")),
        (row("B8", people[0].fin), text("row.fin.duplicate", other=2)),
    ]
    bad_lines: dict[int, str] = {}
    for index, (cells, _message) in enumerate(bad):
        position = min(len(rows), 5 + index * 18)
        rows.insert(position, cells)
    for line, cells in enumerate(rows, start=2):
        for cells_bad, message in bad:
            if cells is cells_bad:
                bad_lines[line] = message
    path = tmp_path / "employees.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return Spreadsheet(path, new, existing, [seed.NOT_FOUND_FIN], bad_lines)


def read_output(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def registry(stack: Stack) -> list[Any]:
    svc = service(stack)
    found: list[Any] = []
    page = 1
    while True:
        answer = svc.SearchApplications(voen=DEMO_VOEN, paging={"page": page, "pageSize": 200})
        found += list(answer.application or ())
        if len(found) >= answer.total or not answer.application:
            return found
        page += 1


def journal_done(journal: Path) -> int:
    if not journal.exists():
        return 0
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5) as db:
        try:
            return int(db.execute("SELECT count(*) FROM row WHERE state = 'DONE'").fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # the schema is not there yet


def open_message_ids(journal: Path) -> set[str]:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        return {r[0] for r in db.execute("SELECT message_id FROM chunk WHERE open = 1")}


def closed_message_ids(journal: Path) -> set[str]:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        return {r[0] for r in db.execute("SELECT message_id FROM chunk WHERE open = 0")}


# --- the done-when test -------------------------------------------------------------------


@pytest.mark.softhsm
def test_a_spreadsheet_is_checked_then_registered_exactly_once_across_a_kill(
    card: Card, tmp_path: Path
) -> None:
    stack = card.stack
    # Two people already hold an SSN, registered by another employer.
    other = service(stack, "director_b", OTHER_VOEN)
    existing = {}
    for person in PEOPLE[140:142]:
        answer = other.SubmitRegistration(voen=OTHER_VOEN, documentType="ID_CARD",
                                          fin=person.fin, actualAddressDiffers=False)
        existing[person.fin] = answer.result.ssn
    sheet = employees(tmp_path, PEOPLE[:140], existing)
    journal = sheet.path.with_name(sheet.path.name + ".dsmf-journal.sqlite")
    output = sheet.path.with_name("employees.result.csv")
    total_rows = 140 + 2 + 1 + len(sheet.bad_lines)
    assert len(sheet.bad_lines) == 8 and total_rows == 151  # ~5% bad

    # 1. Bad rows are reported, each with its own message, and nothing is sent.
    refused = card.run("register", str(sheet.path))
    assert refused.returncode == 3, refused.stderr[-3000:]
    for line, message in sheet.bad_lines.items():
        assert text("report.row", row=line, fin=_fin_on(sheet.path, line),
                    message=message) in refused.stderr
    assert text("report.nothing_sent") in refused.stderr
    assert not journal.exists()
    assert service(stack).SearchApplications(voen=DEMO_VOEN).total == 0

    # 2. With --skip-invalid it registers - and is killed (SIGKILL) midway.
    extra = ["--skip-invalid", "--chunk-size", "5", "--in-flight", "2"]
    process = subprocess.Popen(card.command("register", str(sheet.path), extra=extra),
                               env=card.environment(PIN), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while journal_done(journal) < 30 and process.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.005)
        if process.poll() is not None:
            _, err = process.communicate(timeout=30)
            pytest.fail(f"the run ended before it could be killed: {err[-3000:]}")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    done_at_kill = journal_done(journal)
    in_flight_at_kill = open_message_ids(journal)
    assert 30 <= done_at_kill < 143

    # 3. Rerun: it finishes the rest, resending what was in flight under the same message ids.
    rerun = card.run("register", str(sheet.path), extra=extra)
    assert rerun.returncode == 1, rerun.stderr[-3000:]  # one row FAILED: an unknown FIN
    assert text("run.resuming", pending=143 - done_at_kill, done=done_at_kill) in rerun.stderr
    assert in_flight_at_kill <= closed_message_ids(journal)
    assert not open_message_ids(journal)
    assert PIN not in refused.stdout + refused.stderr + rerun.stdout + rerun.stderr

    # 4. The output file: every row, every SSN, no SSN twice.
    results = read_output(output)
    assert len(results) == total_rows
    by_fin = {r["fin"]: r for r in results if r["status"] != "INVALID"}
    for fin in sheet.new:
        assert by_fin[fin]["status"] == "REGISTERED", by_fin[fin]
        assert by_fin[fin]["ssn"] and by_fin[fin]["application_id"]
    for fin, ssn in sheet.existing.items():
        assert (by_fin[fin]["status"], by_fin[fin]["ssn"]) == ("SSN_EXISTS", ssn)
        assert by_fin[fin]["fault_code"] == "Client.Conflict.SsnExists"
    unknown = by_fin[seed.NOT_FOUND_FIN]
    assert (unknown["status"], unknown["fault_code"]) == ("FAILED", "Client.Person.NotFound")
    assert unknown["message"] == text("fault.Client.Person.NotFound")
    invalid = [r for r in results if r["status"] == "INVALID"]
    assert len(invalid) == len(sheet.bad_lines) and all(r["message"] for r in invalid)
    ssns = [r["ssn"] for r in results if r["ssn"]]
    assert len(ssns) == len(set(ssns)) == 142

    # 5. The gateway's registry agrees: each new employee registered once, with that SSN.
    applications = registry(stack)
    assert sorted(a.fin for a in applications) == sorted(sheet.new)
    assert {a.fin: a.ssn for a in applications} == {
        fin: by_fin[fin]["ssn"] for fin in sheet.new}

    # 6. A third run has nothing to do and sends nothing.
    again = card.run("register", str(sheet.path), extra=extra)
    assert text("run.nothing_to_do") in again.stderr
    assert len(registry(stack)) == 140


def _fin_on(path: Path, line: int) -> str:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return rows[line - 1][2].strip().upper() or "-"


# --- an xlsx file, the registry down (SUBMITTED), wait, find, registry, notice -------------


@pytest.mark.softhsm
def test_xlsx_submitted_rows_are_followed_until_registered_then_read_back(
    card: Card, tmp_path: Path
) -> None:
    from openpyxl import Workbook, load_workbook

    stack = card.stack
    people = PEOPLE[200:203]
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Sənəd növü", "FİN", "Mobil telefon", "E-poçt"])
    sheet.append(["şəxsiyyət vəsiqəsi", people[0].fin, 501234567, "a@example.az"])
    sheet.append(["ID_CARD", people[1].fin.lower(), None, None])
    sheet.append(["ID_CARD", people[2].fin, "+994 55 765 43 21", None])
    path = tmp_path / "hires.xlsx"
    book.save(path)

    # The population registry is down: the gateway accepts the rows as SUBMITTED.
    with sibling_stack(stack, tmp_path / "down", population_url=closed_port_url()) as down:
        submitted = card.run("register", str(path),
                             extra=["--wsdl", down.wsdl])  # the later --wsdl wins
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    output = tmp_path / "hires.result.xlsx"
    rows = list(load_workbook(output).worksheets[0].iter_rows(values_only=True))
    assert rows[0][-5:] == ("ssn", "application_id", "status", "fault_code", "message")
    assert [r[-3] for r in rows[1:]] == ["SUBMITTED"] * 3
    assert all(r[-4] and not r[-5] for r in rows[1:])  # an application id, no SSN yet

    # The registry is back; "wait" follows the rows until the gateway has finished them.
    waiting = subprocess.Popen(
        card.command("wait", str(path), extra=["--interval", "0.2", "--max-wait", "60"]),
        env=card.environment(PIN), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert stack.gateway.services.registration.finish_submitted() == 3
        _out, err = waiting.communicate(timeout=120)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == 0, err[-3000:]
    assert text("wait.done", output=output) in err
    rows = list(load_workbook(output).worksheets[0].iter_rows(values_only=True))
    assert [r[-3] for r in rows[1:]] == ["REGISTERED"] * 3
    ssn = {str(r[1]).upper(): r[-5] for r in rows[1:]}
    assert all(ssn.values()) and len(set(ssn.values())) == 3
    app_id = rows[1][-4]

    # find: the person now has an SSN.
    found = card.run("find", people[0].fin)
    assert found.returncode == 0, found.stderr[-2000:]
    assert text("find.exists", full_name=f"{people[0].surname} {people[0].name}",
                ssn=ssn[people[0].fin]) in found.stdout

    # registry: CSV on standard output, one line per application.
    listed = card.run("registry", "--from", "2000-01-01", "--status", "REGISTERED")
    assert listed.returncode == 0, listed.stderr[-2000:]
    lines = list(csv.DictReader(listed.stdout.splitlines()))
    assert {(r["fin"], r["ssn"]) for r in lines} == set(ssn.items())

    # notice: the signed XML and the PDF, saved only after the signature verified.
    notice = card.run("notice", str(app_id), "--out-dir", str(tmp_path / "notices"))
    assert notice.returncode == 0, notice.stderr[-2000:]
    saved = sorted(p.name for p in (tmp_path / "notices").iterdir())
    assert [Path(n).suffix for n in saved] == [".pdf", ".xml"]
    assert (tmp_path / "notices" / saved[0]).read_bytes().startswith(b"%PDF")
    assert ssn[people[0].fin].encode() in (tmp_path / "notices" / saved[1]).read_bytes()
    assert "DSMF Insured Registration Gateway" in notice.stderr


# --- card problems: one clear sentence each, nothing sent ---------------------------------


@pytest.mark.softhsm
@pytest.mark.parametrize("problem", ["wrong PIN", "no PIN", "no token", "no key"])
def test_card_problems_are_one_clear_sentence(card: Card, tmp_path: Path, problem: str) -> None:
    path = tmp_path / "one.csv"
    path.write_text(f"document_type,fin\nID_CARD,{PEOPLE[300].fin}\n", encoding="utf-8")
    pin: str | None
    pin, extra, expected = {
        "wrong PIN": ("000000", [], text("card.pin_incorrect")),
        "no PIN": (None, [], text("card.no_pin")),  # no terminal to ask on, no variable
        "no token": (PIN, ["--token-label", "no-such-card"], "Kart tapılmadı"),
        "no key": (PIN, ["--key-label", "nobody"], "Kartda bu adla açar"),
    }[problem]
    result = card.run("register", str(path), pin=pin, extra=extra)
    assert result.returncode == 4, result.stderr[-2000:]
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert PIN not in result.stdout + result.stderr
    assert service(card.stack).SearchApplications(voen=DEMO_VOEN).total == 0


def test_an_expired_certificate_is_refused_before_anything_is_sent(
    desk: Stack, tmp_path: Path
) -> None:
    expired = desk.pki.identity("expired")
    path = tmp_path / "one.csv"
    path.write_text(f"document_type,fin\nID_CARD,{PEOPLE[301].fin}\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "gateway.client.cli", "register", str(path),
         *connection_args(desk), "--key-file", str(expired.key_path),
         "--cert-file", str(expired.cert_path)],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("DSMF_")},
    )
    assert result.returncode == 4, result.stderr[-2000:]
    assert text("card.expired", date=f"{expired.certificate.not_valid_after_utc:%Y-%m-%d}") \
        in result.stderr
    assert "Traceback" not in result.stderr
    assert service(desk).SearchApplications(voen=DEMO_VOEN).total == 0
