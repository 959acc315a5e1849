"""Soak: is the gateway's memory flat under a steady stream of signed requests? (issue #10)

    .venv/bin/python bench/bench_soak.py [--seconds 1800] [--sample-every 30] [--clients 2]

Starts ``dsmf-gateway serve --any-fin`` in its own process (the embedded default: SQLite in a
temporary directory, the simulators, the demo PKI) and, from this process, keeps ``--clients``
threads sending signed requests of the demo insurer's director for ``--seconds``: a FindPerson
and a SubmitRegistration of a new person (the population simulator answers any valid FIN), and
a SearchApplications of the growing registry, in turn. Every ``--sample-every`` seconds it
prints the server process's resident memory (VmRSS) and the requests done; at the end, the
growth after the warm-up and per thousand requests.

Flat means: after the first samples (caches, connection pools, the allocator's arenas filling)
the RSS stays within a few MB while the registry and the message log grow. Not a test: nothing
is asserted; the numbers are for the issue's note. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_registry import fin_of, search_envelope
from bench_submissions import post, submit_envelope
from envelopes import find_person_envelope

from signing.signer import Signer
from signing.testpki import load_test_pki


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_until_up(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    import requests

    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve exited with {process.returncode}")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"no answer from {url}")


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent = self.failed = 0
        self.next_fin = 0

    def fin(self) -> str:
        with self.lock:
            self.next_fin += 1
            return fin_of(20_000_000 + self.next_fin)

    def done(self, ok: bool) -> None:
        with self.lock:
            self.sent += 1
            self.failed += not ok


def client(url: str, signer: Signer, counter: Counter, stop: threading.Event) -> None:
    while not stop.is_set():
        fin = counter.fin()
        for body in (find_person_envelope(signer, fin), submit_envelope(signer, fin),
                     search_envelope(signer, {}, 1, 20)):
            if stop.is_set():
                return
            status, _ = post(url, body)
            counter.done(status == 200)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1800.0, help="how long (default 30 min)")
    parser.add_argument("--sample-every", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also append the result to this file "
                        "(one JSON object a line)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dsmf-soak-") as tmp:
        data = Path(tmp) / "var"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DSMF_")}
        log = (Path(tmp) / "serve.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
             "--data-dir", str(data), "--any-fin"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        try:
            root = f"http://127.0.0.1:{port}"
            wait_until_up(f"{root}/health", server, time.monotonic() + 120)
            signer = load_test_pki(data / "pki").signer("director")
            counter, stop = Counter(), threading.Event()
            threads = [threading.Thread(target=client, args=(f"{root}/soap", signer, counter,
                                                             stop), daemon=True)
                       for _ in range(max(1, args.clients))]
            for thread in threads:
                thread.start()
            started = time.monotonic()
            samples: list[tuple[float, int, int]] = []
            print(f"{'s':>6} {'requests':>9} {'failed':>6} {'RSS MB':>8}", flush=True)
            while True:
                elapsed = time.monotonic() - started
                sample = (elapsed, counter.sent, rss_kib(server.pid))
                samples.append(sample)
                print(f"{elapsed:6.0f} {sample[1]:9d} {counter.failed:6d} "
                      f"{sample[2] / 1024:8.1f}", flush=True)
                if elapsed >= args.seconds:
                    break
                time.sleep(min(args.sample_every, max(0.0, args.seconds - elapsed)))
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
    # Growth from the end of the warm-up (the first quarter) to the end.
    warm = samples[max(1, len(samples) // 4)] if len(samples) > 2 else samples[0]
    last = samples[-1]
    grown = (last[2] - warm[2]) / 1024
    requests = max(1, last[1] - warm[1])
    print(f"after warm-up ({warm[0]:.0f} s, {warm[2] / 1024:.1f} MB): {grown:+.1f} MB over "
          f"{requests} requests ({1000 * grown / requests:+.2f} MB per 1000), "
          f"{counter.failed} failed of {counter.sent}")
    # The second half alone: caches that fill slowly as the registry grows (SQLite's page
    # cache of each pooled connection) still show in the warm-up figure; a leak shows here too.
    half = samples[len(samples) // 2]
    half_grown = (last[2] - half[2]) / 1024
    half_requests = max(1, last[1] - half[1])
    print(f"second half ({half[0]:.0f} s on, {half[2] / 1024:.1f} MB): {half_grown:+.1f} MB "
          f"over {half_requests} requests ({1000 * half_grown / half_requests:+.2f} MB per 1000)")
    if args.json:
        with args.json.open("a", encoding="utf-8") as out:
            out.write(json.dumps({
                "bench": "soak", "seconds": last[0], "requests": counter.sent,
                "failed": counter.failed, "rss_start_mb": samples[0][2] / 1024,
                "rss_warm_mb": warm[2] / 1024, "rss_end_mb": last[2] / 1024,
                "mb_per_1000_after_warmup": 1000 * grown / requests,
                "rss_half_mb": half[2] / 1024,
                "mb_per_1000_second_half": 1000 * half_grown / half_requests}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
