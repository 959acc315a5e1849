"""Throughput of the employer's desk tool: ``dsmf-client register`` on a spreadsheet, end to end.

    .venv/bin/python bench/bench_desk_tool.py [--rows 1000] [--chunk-size 100] [--in-flight 2]
        [--pkcs11-module /usr/lib/softhsm/libsofthsm2.so] [--one-by-one] [--kill-at 400]

Starts a test PKI, a population-registry simulator with synthetic people and the gateway on
SQLite in a temporary directory (as ``bench_submissions.py`` does), writes a CSV of ``--rows``
rows of which 5% are bad, and runs ``dsmf-client register --skip-invalid`` as a separate
process, signing with the director's key file or, with ``--pkcs11-module``, a SoftHSM2 token.
Prints the registered rows per second of the whole run (file reading, offline checks, signing,
journal, HTTP, the gateway's work, verifying answers, writing the output). With ``--kill-at N``
the first run is killed (SIGKILL) once N rows are done and a second run finishes the file; the
gateway's registry is then checked for duplicates. Not a test.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench_submissions import DIRECTOR_FIN, VOEN, running_gateway, synthetic_fins, synthetic_person

from gateway.config import project_root
from gateway.wsgi_server import serve_in_thread
from signing.testpki import build_test_pki, load_into_softhsm, write_softhsm_config
from simulators.population import PopulationDirectory, create_population_app

PIN = "246810"


def write_sheet(path: Path, fins: list[str]) -> int:
    bad = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["ref", "document_type", "fin", "mobile_phone", "email"])
        for n, fin in enumerate(fins):
            if n % 20 == 7:  # 5% bad rows: a landline given as the mobile number
                writer.writerow([f"E{n}", "ID_CARD", fin, "+994124987654", ""])
                bad += 1
            else:
                writer.writerow([f"E{n}", "ID_CARD", fin, f"+99450{n:07d}", f"e{n}@example.az"])
    return bad


def journal_done(journal: Path) -> int:
    if not journal.exists():
        return 0
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5) as db:
        try:
            return int(db.execute("SELECT count(*) FROM row WHERE state = 'DONE'").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def run_and_kill(command: list[str], env: dict[str, str], sheet: Path, rows: int) -> int:
    journal = sheet.with_name(sheet.name + ".dsmf-journal.sqlite")
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while journal_done(journal) < rows and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return journal_done(journal)


def registered_fins(database: Path) -> list[str]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
        return [r[0] for r in db.execute("SELECT fin FROM applications")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--chunk-size", type=int, default=100)
    parser.add_argument("--in-flight", type=int, default=2)
    parser.add_argument("--one-by-one", action="store_true")
    parser.add_argument("--pkcs11-module", help="sign with a SoftHSM2 token instead of a key file")
    parser.add_argument("--kill-at", type=int, help="SIGKILL the first run after N rows")
    args = parser.parse_args(argv)
    logging.getLogger("spyne").setLevel(logging.CRITICAL)

    with tempfile.TemporaryDirectory(prefix="dsmf-desk-bench-") as tmp:
        work = Path(tmp)
        pki = build_test_pki(work / "pki")
        fins = [fin for fin in synthetic_fins("D", args.rows) if fin != DIRECTOR_FIN]
        population = serve_in_thread(create_population_app(
            project_root() / "wsdl" / "upstream",
            PopulationDirectory([synthetic_person(fin) for fin in fins])))
        population_url = population.url.rstrip("/") + "/population-registry"
        sheet = work / "employees.csv"
        bad = write_sheet(sheet, fins)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DSMF_")}
        key: list[str]
        if args.pkcs11_module:
            conf = write_softhsm_config(work / "hsm")
            os.environ["SOFTHSM2_CONF"] = env["SOFTHSM2_CONF"] = str(conf)
            load_into_softhsm(pki, "director", module_path=args.pkcs11_module,
                              token_label="bench", so_pin="10203040", user_pin=PIN)
            env["DSMF_PKCS11_PIN"] = PIN
            key = ["--pkcs11-module", args.pkcs11_module, "--token-label", "bench",
                   "--key-label", "director"]
        else:
            director = pki.identity("director")
            key = ["--key-file", str(director.key_path), "--cert-file", str(director.cert_path)]
        try:
            with running_gateway(f"sqlite:///{work / 'gw.db'}", work, pki,
                                 population_url) as running:
                command = [sys.executable, "-m", "gateway.client.cli", "register", str(sheet),
                           "--skip-invalid", "--wsdl", running.url + "?wsdl", "--voen", VOEN,
                           "--chunk-size", str(args.chunk_size),
                           "--in-flight", str(args.in_flight), *key]
                for anchor in pki.trust_anchor_paths:
                    command += ["--trust-anchor", str(anchor)]
                for crl in pki.crl_paths:
                    command += ["--crl", str(crl)]
                command += ["--gateway-cert", str(pki.identity("gateway").cert_path)]
                if args.one_by_one:
                    command.append("--one-by-one")
                started = time.perf_counter()
                if args.kill_at:
                    killed_at = run_and_kill(command, env, sheet, args.kill_at)
                    print(f"first run killed (SIGKILL) with {killed_at} rows done")
                result = subprocess.run(command, capture_output=True, text=True, env=env,
                                        check=False)
                elapsed = time.perf_counter() - started
                fins_registered = registered_fins(work / "gw.db")
        finally:
            population.stop()
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
            return 1
        with (work / "employees.result.csv").open(encoding="utf-8-sig") as f:
            statuses = [r["status"] for r in csv.DictReader(f)]
        registered = statuses.count("REGISTERED")
        with (work / "employees.result.csv").open(encoding="utf-8-sig") as f:
            ssns = [r["ssn"] for r in csv.DictReader(f) if r["ssn"]]
        print(f"registry: {len(fins_registered)} applications, "
              f"{len(fins_registered) - len(set(fins_registered))} duplicate FINs; output: "
              f"{len(ssns)} SSNs, {len(ssns) - len(set(ssns))} duplicates")
        signer = "SoftHSM2 token" if args.pkcs11_module else "key file"
        mode = "one by one" if args.one_by_one else f"batches of {args.chunk_size}"
        print(f"{len(fins)} rows ({bad} bad), {mode}, {args.in_flight} in flight, {signer}: "
              f"{registered} registered in {elapsed:.1f} s = {registered / elapsed:.0f} rows/s "
              f"(whole process, start to output file)")
        print("the tool's own line:", result.stderr.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
