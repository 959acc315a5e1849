"""Latency of signed FindPerson at 8 concurrent clients on each HTTP server the gateway runs on.

    .venv/bin/python bench/bench_http.py [--n 240] [--clients 8] [--gunicorn-workers 2]

One gateway configuration (test PKI, population-registry simulator, SQLite in a temporary
directory, or PostgreSQL when DSMF_TEST_POSTGRES_URL is set), served in turn by:

* ``embedded``  — ``gateway.wsgi_server`` (waitress, HTTP/1.1 keep-alive), as ``serve`` runs it;
* ``wsgiref``   — the standard library's threaded WSGI server the embedded default used before
  (HTTP/1.0, a connection per request), for comparison;
* ``gunicorn``  — ``gateway.wsgi:create_app()`` with ``--gunicorn-workers`` sync workers, as the
  deploy runs it (one connection per request: sync workers do not keep alive).

Each client thread keeps one ``http.client`` connection open as long as the server allows and
posts pre-signed envelopes (signing is the client's cost, not the server's). Printed per server:
requests per second and the p50 / p90 / p99 / max latency. Not a test: nothing is asserted
beyond "every answer is a FindPersonResponse". Keep --n small: the machine is shared.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests
from envelopes import find_person_envelope

from gateway.bootstrap import build_gateway
from gateway.config import Settings
from gateway.wsgi_server import body_cap, serve_in_thread
from persistence.seed import load_demo_data
from signing.testpki import TestPki, build_test_pki
from simulators.runner import start_simulators


def run_clients(url: str, envelopes: Sequence[bytes], clients: int) -> tuple[list[float], float]:
    """Posts every envelope from ``clients`` threads: (latencies in seconds, wall seconds)."""
    parts = urlsplit(url)
    shares = [list(envelopes[i::clients]) for i in range(clients)]
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(share: list[bytes]) -> None:
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                                timeout=60)
        mine: list[float] = []
        barrier.wait()
        try:
            for envelope in share:
                start = time.perf_counter()
                connection.request("POST", parts.path, body=envelope,
                                   headers={"Content-Type": "text/xml; charset=utf-8"})
                response = connection.getresponse()
                content = response.read()
                mine.append(time.perf_counter() - start)
                if response.status != 200 or b"FindPersonResponse" not in content:
                    with lock:
                        failures.append(f"{response.status} {content[:200]!r}")
        finally:
            connection.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures)} failed answers, e.g. {failures[0]}")
    return latencies, wall


def report(name: str, latencies: list[float], wall: float) -> None:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))] * 1000

    print(f"{name:10} {len(ordered) / wall:7.1f} req/s   p50 {pct(0.50):6.1f} ms   "
          f"p90 {pct(0.90):6.1f} ms   p99 {pct(0.99):6.1f} ms   max {ordered[-1] * 1000:6.1f} ms"
          f"   (mean {statistics.mean(ordered) * 1000:.1f} ms, n={len(ordered)})", flush=True)


# -- the servers ---------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def address_string(self) -> str:
        return str(self.client_address[0])


class _ThreadingWsgiServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@contextmanager
def wsgiref_server(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingWsgiServer,
                         handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/soap"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def gunicorn_server(config: Path, workers: int, workdir: Path) -> Iterator[str]:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    if gunicorn is None:
        raise SystemExit("gunicorn not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSMF_")}
    env["DSMF_CONFIG"] = str(config)
    log = (workdir / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [gunicorn, "-w", str(workers), "-b", f"127.0.0.1:{port}", "--no-control-socket",
         "gateway.wsgi:create_app()"], cwd=workdir, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((workdir / "gunicorn.log").read_text()[-2000:])
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/soap"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=240, help="requests per server")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--servers", default="embedded,wsgiref,gunicorn")
    parser.add_argument("--embedded-threads", type=int, default=None,
                        help="worker threads of the embedded server (default: serve's)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dsmf-bench-http-") as tmp_name:
        tmp = Path(tmp_name)
        pki: TestPki = build_test_pki(tmp / "pki")
        sims = start_simulators(pki.directory, approve_delay=0.2)
        gw = pki.identity("gateway")
        values: dict[str, Any] = {
            "database_url": os.environ.get("DSMF_TEST_POSTGRES_URL")
            or f"sqlite:///{tmp / 'gw.db'}",
            "data_dir": str(tmp / "var"),
            "trust_anchors": [str(p) for p in pki.trust_anchor_paths],
            "crls": [str(pki.crl_path)],
            "signing_key_file": str(gw.key_path),
            "signing_cert_file": str(gw.cert_path),
            "population_url": sims.population_url,
            "mobile_url": sims.mobile_url,
        }
        settings = Settings.from_mapping(values)
        gateway = build_gateway(settings)
        load_demo_data(gateway.database)
        config = tmp / "gateway.toml"
        config.write_text("".join(
            f"{k} = {_toml(v)}\n" for k, v in values.items()), encoding="utf-8")
        signer = pki.signer("director")
        print(f"{args.clients} clients, {args.n} signed FindPerson per server, "
              f"database {settings.effective_database_url.split(':', 1)[0]}, "
              f"{os.cpu_count()} CPUs", flush=True)

        servers: dict[str, Callable[[], Any]] = {
            "embedded": lambda: _embedded(gateway.app, settings, args.embedded_threads),
            "wsgiref": lambda: wsgiref_server(gateway.app),
            "gunicorn": lambda: gunicorn_server(config, args.gunicorn_workers, tmp),
        }
        try:
            for name in args.servers.split(","):
                envelopes = [find_person_envelope(signer) for _ in range(args.n + args.clients)]
                with servers[name]() as url:
                    run_clients(url, envelopes[:args.clients], args.clients)  # warm-up
                    latencies, wall = run_clients(url, envelopes[args.clients:], args.clients)
                report(name, latencies, wall)
        finally:
            gateway.close()
            sims.stop()
    return 0


@contextmanager
def _embedded(app: Any, settings: Settings, threads: int | None) -> Iterator[str]:
    extra = {} if threads is None else {"threads": threads}
    with serve_in_thread(app, max_body_bytes=body_cap(settings.max_message_bytes),
                         **extra) as server:
        yield server.url.rstrip("/") + "/soap"


def _toml(value: object) -> str:
    import json

    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))


if __name__ == "__main__":
    sys.exit(main())
