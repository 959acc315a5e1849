"""The long version of the one-transaction fault tests (issue #9): minutes instead of seconds.

    PYTHONPATH=. .venv/bin/python bench/bench_faults.py [--seconds 120] [--clients 6]
        [--kill-every 5]

For each database (SQLite with ``dsmf-gateway serve``; PostgreSQL with gunicorn and
``deploy/gunicorn.conf.py`` when DSMF_TEST_POSTGRES_URL is set, plus fast and immediate server
restarts when DSMF_TEST_PG_BINDIR/DATA are set, as ``scripts/test`` exports them), client threads
submit signed registrations for distinct people and resend each until it has a final answer,
while the gateway (or one gunicorn worker) is killed with SIGKILL every ``--kill-every`` seconds
and the population registry goes away for a second now and then. Then it prints, per database:
acknowledged, in the tables, in the message log, lost, duplicate SSNs, stuck ids, chain ok.

Not a test (nothing is asserted); the same checks run, bounded in seconds, in
``tests/e2e/test_one_transaction.py``, whose helpers this script uses.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from signing.parser import serialize
from signing.testpki import build_test_pki
from tests.e2e.conftest import signed_request
from tests.e2e.test_one_transaction import (
    Answer,
    Registry,
    pg_control,
    running_gateway,
    send_until_answered,
    submit_payload,
    synthetic_people,
    wait_until_registered,
)


def run(kind: str, database_url: str, work: Path, seconds: float, clients: int,
        kill_every: float, restart_postgres: bool) -> dict[str, object]:
    pki = build_test_pki(work / "pki")
    population = synthetic_people("8B", 20_000)
    registry = Registry(population)
    signer = pki.signer("director")
    answers: dict[str, Answer] = {}
    lock = threading.Lock()
    stop = threading.Event()
    next_person = iter(population)
    faults = {"kills": 0, "registry outages": 0, "postgres restarts": 0}
    try:
        with running_gateway(kind, database_url, work, pki, registry) as gateway:

            def client() -> None:
                while not stop.is_set():
                    with lock:
                        person = next(next_person, None)
                    if person is None:
                        return
                    body = serialize(signed_request(signer, "SubmitRegistration",
                                                    submit_payload(person.fin),
                                                    message_id=str(uuid.uuid4())))
                    answer = send_until_answered(gateway.endpoint, body)
                    with lock:
                        answers[person.fin] = answer

            with ThreadPoolExecutor(max_workers=clients) as pool:
                for _ in range(clients):
                    pool.submit(client)
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    time.sleep(kill_every)
                    choice = random.random()
                    if choice < 0.6:
                        gateway.kill()
                        if kind == "serve":
                            gateway.start()
                        faults["kills"] += 1
                    elif choice < 0.8 or not restart_postgres:
                        registry.stop()
                        time.sleep(1.0)
                        registry.start()
                        faults["registry outages"] += 1
                    else:
                        pg_control()("restart", random.choice(["fast", "immediate"]))
                        faults["postgres restarts"] += 1
                stop.set()
            # Accepted as SUBMITTED during an outage: the running gateway finishes them.
            fins = list(answers)
            state = wait_until_registered(database_url, fins, deadline_seconds=120)
    finally:
        registry.stop()
    acknowledged = [f for f, a in answers.items() if a.status == 200]
    in_tables = [f for f in acknowledged if len(state.ssn_by_fin[f]) == 1
                 and state.registered_by_fin[f] == state.ssn_by_fin[f]]
    in_log = [f for f in acknowledged if answers[f].content in state.logged_payloads]
    return {
        **faults,
        "acknowledged": len(acknowledged),
        "in tables": len(in_tables),
        "in log": len(in_log),
        "lost": len(acknowledged) - len(in_tables),
        "duplicate SSNs": sum(1 for f in fins if len(state.ssn_by_fin[f]) > 1),
        "stuck ids": state.ledger_without_answer,
        "chain ok": state.chain_ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--kill-every", type=float, default=5.0)
    args = parser.parse_args()
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "sqlite"
        work.mkdir()
        results["SQLite (serve)"] = run("serve", f"sqlite:///{work / 'gateway.db'}", work,
                                        args.seconds, args.clients, args.kill_every, False)
        base = os.environ.get("DSMF_TEST_POSTGRES_URL")
        if base:
            from persistence.db import scratch_postgres_database

            with scratch_postgres_database(base, prefix="faults") as url:
                work = Path(tmp) / "postgres"
                work.mkdir()
                results["PostgreSQL (gunicorn)"] = run(
                    "gunicorn", f"{url}?options=-csynchronous_commit%3Don", work, args.seconds,
                    args.clients, args.kill_every, bool(os.environ.get("DSMF_TEST_PG_DATA")))
    keys = list(next(iter(results.values())))
    print(f"{'':24}" + "".join(f"{name:>24}" for name in results))
    for key in keys:
        print(f"{key:24}" + "".join(f"{results[name][key]!s:>24}" for name in results))


if __name__ == "__main__":
    main()
