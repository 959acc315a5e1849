"""Does logging still serialise writers? Message-log appends with 1 and 4 writer processes, on
SQLite (WAL file) and PostgreSQL, and how fast the sealer seals what they wrote.

    .venv/bin/python bench/bench_message_log.py [--seconds 5] [--writers 1,4]

Each writer process appends exchanges (request + answer, 5 KB each, one transaction per
exchange, as the gateway does per request) for ``--seconds``; the result is exchanges per
second over all writers, and the ratio 4 writers / 1 writer. Then the sealer (gateway key from
a fresh test PKI, the TSA simulator over HTTP on loopback) seals everything that was written.
PostgreSQL runs when DSMF_TEST_POSTGRES_URL is set (a throwaway database is created and
dropped).

To compare with another checkout (e.g. the hash chain before this change, which took a global
lock per append), point DSMF_BENCH_CODE at it: its ``persistence`` package is used for the
appends (the sealing step is skipped when that code has no sealer). The machine's core count
bounds what 4 writers can gain on plain appends; ``--hold-ms 5`` keeps each transaction open
5 ms after its append, as the rest of a request's unit of work would, which shows whether
the append makes transactions wait for each other whatever the load. Not a test.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CODE = os.environ.get("DSMF_BENCH_CODE") or str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, CODE)

PAYLOAD = b"<soapenv:Envelope>" + b"x" * 5000 + b"</soapenv:Envelope>"


def writer(url: str, tag: str, seconds: float, hold: float, barrier: Any,
           results: Any) -> None:
    from persistence.db import Database
    from persistence.message_log import MessageLog

    database = Database(url)
    log = MessageLog(database)

    def one(n: int) -> None:
        common = {"message_id": f"{tag}-{n}", "correlation_id": f"c-{tag}-{n}",
                  "actor_fin": "6ZK4T2P", "voen": "1403567891", "operation": "SubmitRegistration"}
        if not hold:
            log.append_exchange(PAYLOAD, PAYLOAD, **common)
            return
        from persistence.message_log import LogEntry, append_entries

        # The request's unit of work: the log entries, then the rest of its work before the
        # commit (here: waiting, not computing, so the CPU count does not bound the result).
        with database.transaction() as session:
            append_entries(session, [LogEntry("IN", PAYLOAD, **common),
                                     LogEntry("OUT", PAYLOAD, **common)])
            time.sleep(hold)

    try:
        one(-1)
        barrier.wait()  # every writer imported, connected and warm: start together
        deadline = time.perf_counter() + seconds
        count = 0
        while time.perf_counter() < deadline:
            one(count)
            count += 1
        results.put(count)
    finally:
        database.dispose()


def throughput(url: str, writers: int, seconds: float, hold: float = 0.0) -> float:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(writers)
    results = context.Queue()
    processes = [context.Process(target=writer,
                                 args=(url, f"w{writers}-{k}", seconds, hold, barrier, results))
                 for k in range(writers)]
    for process in processes:
        process.start()
    counts = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    return sum(counts) / seconds


def seal_everything(url: str, directory: Path) -> None:
    try:
        from gateway.evidence.seal import Sealer
    except ImportError:
        print("  sealing: this checkout has no sealer")
        return
    from datetime import timedelta

    from gateway.evidence.tsa import TimeStampClient, load_certificates
    from gateway.wsgi_server import serve_in_thread
    from persistence.db import Database
    from persistence.message_log import MessageLog
    from signing.testpki import build_test_pki
    from simulators.tsa import PATH, TsaSimulator, create_tsa_app

    pki = build_test_pki(directory / "pki")
    tsa = TsaSimulator.in_directory(directory / "tsa")
    server = serve_in_thread(create_tsa_app(tsa))
    database = Database(url)
    try:
        log = MessageLog(database)
        client = TimeStampClient(server.url.rstrip("/") + PATH,
                                 load_certificates([tsa.trust_anchor_path]))
        sealer = Sealer(log, pki.signer("gateway"), client, settle=timedelta(0))
        started = time.perf_counter()
        seals = sealer.seal_all()
        elapsed = time.perf_counter() - started
        entries = sum(s.entry_count for s in seals)
        print(f"  sealing: {entries} entries in {len(seals)} seals, {elapsed:.2f} s "
              f"({entries / elapsed:.0f} entries/s)")
    finally:
        database.dispose()
        server.stop()


@contextmanager
def databases(directory: Path) -> Iterator[Iterator[tuple[str, str]]]:
    from persistence.db import scratch_postgres_database

    def each() -> Iterator[tuple[str, str]]:
        yield "SQLite (WAL)", f"sqlite:///{directory / 'bench.db'}"
        server = os.environ.get("DSMF_TEST_POSTGRES_URL")
        if server:
            with scratch_postgres_database(server, "bench_log") as url:
                yield "PostgreSQL", url

    yield each()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--writers", default="1,4")
    parser.add_argument("--hold-ms", type=float, default=0.0,
                        help="also keep each transaction open this long after the append "
                             "(the rest of a request's unit of work); needs append_entries")
    args = parser.parse_args()
    counts = [int(n) for n in args.writers.split(",")]
    print(f"code: {CODE}   cores: {os.cpu_count()}")
    from persistence.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp, databases(Path(tmp)) as each:
        for name, url in each:
            upgrade(url)
            results = {n: throughput(url, n, args.seconds, args.hold_ms / 1000) for n in counts}
            line = ", ".join(f"{n} writer(s): {rate:.0f} exchanges/s" for n, rate in
                             results.items())
            ratio = results[counts[-1]] / results[counts[0]]
            print(f"{name}: {line}; {counts[-1]}/{counts[0]} = {ratio:.2f}")
            seal_everything(url, Path(tmp) / name.split()[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
