"""Latency and server CPU of signed FindPerson and SubmitRegistration at 8 concurrent clients, on
each HTTP server the gateway runs on (issue #10).

    .venv/bin/python bench/bench_http.py [--n 240] [--clients 8] [--gunicorn-workers 2]
                                         [--operations find,submit] [--servers embedded,gunicorn]
                                         [--json FILE]

One gateway configuration (test PKI, the simulators with a population registry answering any
valid FIN, SQLite in a temporary directory, or a scratch database on the PostgreSQL server of
DSMF_TEST_POSTGRES_URL), served in turn, each in a process of its own, by:

* ``embedded``  — ``gateway.wsgi_server`` (waitress, HTTP/1.1 keep-alive), as ``serve`` runs it;
* ``wsgiref``   — the standard library's threaded WSGI server the embedded default used before
  (HTTP/1.0, a connection per request), for comparison (not in the default list);
* ``gunicorn``  — ``gateway.wsgi:create_app()`` with the production settings of
  ``deploy/gunicorn.conf.py`` (``gthread`` workers, keep-alive), ``--gunicorn-workers`` workers
  of ``--gunicorn-threads`` threads (default: the file's); ``--gunicorn-worker-class sync`` for
  comparison.

Each client thread keeps one ``http.client`` connection open as long as the server allows and
posts pre-signed envelopes (signing is the client's cost, not the server's): FindPerson of the
demo people, SubmitRegistration of people never registered. Printed per server and operation:
requests per second, the p50 / p90 / p99 / max latency, and the CPU per request of the server's
process tree (master and workers, read from /proc) and, for a PostgreSQL server on this
machine, of its processes. Then the whole machine's CPU per request: that, the simulators' (a
``dsmf-gateway simulators --any-fin`` process of their own) and the clients' (this process),
and what it allows: with every CPU busy, a closed loop of N clients waits N × that / CPUs on
average (Little's law), whatever the server does with its share. The issue's goal is p99 <
20 ms at 8 clients with 2 gunicorn workers. Not a test: nothing is asserted beyond "every
answer is the operation's response". Keep --n small: the machine is
shared. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import http.client
import json
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
from contextlib import ExitStack, contextmanager
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests
from envelopes import find_person_envelope, submit_envelope

from gateway.config import Settings
from persistence.db import libpq_url, scratch_postgres_database
from signing.testpki import TestPki, build_test_pki

OPERATIONS = {"find": "FindPerson", "submit": "SubmitRegistration"}
_ROOT = Path(__file__).resolve().parents[1]
_TICKS = os.sysconf("SC_CLK_TCK")


def run_clients(url: str, envelopes: Sequence[bytes], clients: int,
                expect: bytes) -> tuple[list[float], float]:
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
                if response.status != 200 or expect not in content:
                    with lock:
                        failures.append(f"{response.status} {content[:300]!r}")
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


# -- CPU of a process tree, from /proc -----------------------------------------------------------


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants: the live ones' own time, and the reaped
    ones' through their parents' ``cutime``/``cstime`` (gunicorn's and PostgreSQL's masters
    wait for their workers and backends)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # gone meanwhile: its time is in its parent's cutime
    # fields[0] is the state (stat field 3): utime, stime, cutime, cstime are fields 14–17.
    total = sum(int(v) for v in fields[11:15]) / _TICKS
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = task.read_text().split()
        except OSError:
            continue
        total += sum(tree_cpu(int(child)) for child in children)
    return total


def postgres_pid(url: str) -> int | None:
    """The postmaster of a PostgreSQL server running on this machine (None when it is elsewhere
    or its data directory cannot be read)."""
    import psycopg

    try:
        with psycopg.connect(libpq_url(url), connect_timeout=10) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
        assert row is not None
        return int((Path(row[0]) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, AssertionError, psycopg.Error):
        return None


# -- report ---------------------------------------------------------------------------------------


def report(server: str, operation: str, latencies: list[float], wall: float,
           server_cpu: float, database_cpu: float | None, simulators_cpu: float,
           clients_cpu: float, clients: int) -> dict[str, Any]:
    ordered = sorted(latencies)
    n = len(ordered)

    def pct(p: float) -> float:
        return ordered[min(n - 1, round(p * (n - 1)))] * 1000

    result = {
        "server": server, "operation": operation, "n": n, "rps": n / wall,
        "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
        "max_ms": ordered[-1] * 1000, "mean_ms": statistics.mean(ordered) * 1000,
        "server_cpu_ms": server_cpu * 1000 / n,
        "database_cpu_ms": None if database_cpu is None else database_cpu * 1000 / n,
        "simulators_cpu_ms": simulators_cpu * 1000 / n, "clients_cpu_ms": clients_cpu * 1000 / n,
    }
    # Everything on this machine a request costs, and what that allows: a closed loop of
    # ``clients`` waits on average at least clients × CPU per request / CPUs (Little's law, all
    # CPUs busy), whatever the server does with its share.
    machine = (server_cpu + (database_cpu or 0.0) + simulators_cpu + clients_cpu) * 1000 / n
    result["machine_cpu_ms"] = machine
    result["mean_latency_bound_ms"] = clients * machine / (os.cpu_count() or 1)
    db = ("" if database_cpu is None
          else f" + PostgreSQL {result['database_cpu_ms']:5.2f} ms")
    print(f"{server:9} {operation:19} {result['rps']:6.1f} req/s   p50 {pct(0.50):6.1f} ms   "
          f"p90 {pct(0.90):6.1f} ms   p99 {pct(0.99):6.1f} ms   max {result['max_ms']:6.1f} ms"
          f"   CPU/request: server {result['server_cpu_ms']:5.2f} ms{db}", flush=True)
    print(f"{'':9} {'':19} machine CPU/request {machine:5.2f} ms (+ simulators "
          f"{result['simulators_cpu_ms']:4.2f}, clients {result['clients_cpu_ms']:4.2f}):"
          f" {clients} clients on {os.cpu_count()} CPUs wait {result['mean_latency_bound_ms']:5.1f}"
          f" ms on average at the least (mean now {result['mean_ms']:5.1f} ms)", flush=True)
    return result


# -- the servers, each in a process of its own --------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def address_string(self) -> str:
        return str(self.client_address[0])


class _ThreadingWsgiServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _serve_child(kind: str, threads: int | None) -> int:
    """The ``--serve-child`` mode: the gateway of DSMF_CONFIG, built as a gunicorn worker builds
    it, served until stdin closes; prints its URL on stdout."""
    from gateway.wsgi import create_app
    from gateway.wsgi_server import body_cap, serve_in_thread

    app = create_app()
    if kind == "embedded":
        extra: dict[str, Any] = {} if threads is None else {"threads": threads}
        with serve_in_thread(app, max_body_bytes=body_cap(Settings.load().max_message_bytes),
                             **extra) as running:
            print(running.url.rstrip("/") + "/soap", flush=True)
            sys.stdin.read()
        return 0
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingWsgiServer,
                         handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    print(f"http://127.0.0.1:{server.server_port}/soap", flush=True)
    sys.stdin.read()
    server.shutdown()
    return 0


def _environment(config: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSMF_")}
    if config is not None:
        env["DSMF_CONFIG"] = str(config)
    env["PYTHONPATH"] = os.pathsep.join([str(_ROOT),
                                         env.get("PYTHONPATH", "")])
    return env


def _stopped(process: subprocess.Popen[bytes], log: Any) -> None:
    """Waits for a process asked to stop (killed after 30 s), then closes its log."""
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@contextmanager
def child_server(kind: str, config: Path, workdir: Path,
                 threads: int | None) -> Iterator[tuple[str, int]]:
    """``embedded`` or ``wsgiref`` in a child process: (URL, pid)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-child", kind]
    if threads is not None:
        command += ["--embedded-threads", str(threads)]
    log = (workdir / f"{kind}.log").open("wb")
    process = subprocess.Popen(command, cwd=workdir, env=_environment(config),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().decode().strip()
        if not url:
            raise SystemExit((workdir / f"{kind}.log").read_text()[-2000:])
        yield url, process.pid
    finally:
        if process.stdin is not None:
            process.stdin.close()  # the child's signal to stop
        _stopped(process, log)


@contextmanager
def simulators_process(pki_dir: Path,
                       workdir: Path) -> Iterator[tuple[dict[str, str], int]]:
    """``dsmf-gateway simulators --any-fin`` in a process of its own, as an operator runs them:
    their URLs by name ("population registry", "mobile signature") and the process id. Like
    another agency's server, the simulators then do not share this process's interpreter lock
    with the client threads, whose latencies would include waits for the simulators' Python."""
    command = shutil.which("dsmf-gateway", path=str(Path(sys.executable).parent))
    if command is None:
        raise SystemExit("dsmf-gateway not installed")
    log = (workdir / "simulators.log").open("wb")
    process = subprocess.Popen(
        [command, "simulators", "--any-fin", "--pki-dir", str(pki_dir), "--population-port",
         "0", "--mobile-port", "0", "--tsa-port", "0"],
        cwd=workdir, env=_environment(None), stdout=subprocess.PIPE,
        stderr=log)
    try:
        assert process.stdout is not None
        urls: dict[str, str] = {}
        while "mobile signature" not in urls:
            line = process.stdout.readline().decode()
            if not line:
                raise SystemExit((workdir / "simulators.log").read_text()[-2000:])
            name, _, rest = line.partition(":")
            if rest.strip():
                urls[name.strip()] = rest.split()[0]
        yield urls, process.pid
    finally:
        process.terminate()
        _stopped(process, log)


@contextmanager
def gunicorn_server(config: Path, workers: int, threads: int | None,
                    workdir: Path, worker_class: str | None = None) -> Iterator[tuple[str, int]]:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    if gunicorn is None:
        raise SystemExit("gunicorn not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (workdir / "gunicorn.log").open("wb")
    env = _environment(config)
    # The production settings (deploy/gunicorn.conf.py: gthread workers, keep-alive, ...), with
    # this bench's address, worker count and, if given, threads per worker.
    env.update(DSMF_BIND=f"127.0.0.1:{port}", DSMF_WORKERS=str(workers))
    if threads is not None:
        env["DSMF_THREADS"] = str(threads)
    process = subprocess.Popen(
        [gunicorn, "-c", str(_ROOT / "deploy" / "gunicorn.conf.py"), "--no-control-socket",
         *(["-k", worker_class] if worker_class else []),
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
        yield f"http://127.0.0.1:{port}/soap", process.pid
    finally:
        process.terminate()
        _stopped(process, log)


# -- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=240, help="requests per server and operation")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--gunicorn-threads", type=int, default=None,
                        help="threads per gunicorn worker (default: deploy/gunicorn.conf.py's)")
    parser.add_argument("--gunicorn-worker-class", default=None,
                        help="e.g. sync (default: deploy/gunicorn.conf.py's gthread)")
    parser.add_argument("--servers", default="embedded,gunicorn",
                        help="of embedded, wsgiref, gunicorn")
    parser.add_argument("--operations", default="find,submit", help="of find, submit")
    parser.add_argument("--embedded-threads", type=int, default=None,
                        help="worker threads of the embedded server (default: serve's)")
    parser.add_argument("--json", type=Path, help="also append the results to this file "
                        "(one JSON object a line)")
    parser.add_argument("--serve-child", choices=["embedded", "wsgiref"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_child:
        return _serve_child(args.serve_child, args.embedded_threads)

    postgres = os.environ.get("DSMF_TEST_POSTGRES_URL")
    with tempfile.TemporaryDirectory(prefix="dsmf-bench-http-") as tmp_name, \
            ExitStack() as stack:
        tmp = Path(tmp_name)
        pki: TestPki = build_test_pki(tmp / "pki")
        sims, sims_pid = stack.enter_context(simulators_process(pki.directory, tmp))
        database_url = (stack.enter_context(scratch_postgres_database(postgres, "bench_http"))
                        if postgres else f"sqlite:///{tmp / 'gw.db'}")
        database_pid = postgres_pid(postgres) if postgres else None
        gw = pki.identity("gateway")
        values: dict[str, Any] = {
            "database_url": database_url,
            "data_dir": str(tmp / "var"),
            "trust_anchors": [str(p) for p in pki.trust_anchor_paths],
            "crls": [str(pki.crl_path)],
            "signing_key_file": str(gw.key_path),
            "signing_cert_file": str(gw.cert_path),
            "population_url": sims["population registry"],
            "mobile_url": sims["mobile signature"],
        }
        _prepare(values)
        config = tmp / "gateway.toml"
        config.write_text("".join(
            f"{k} = {_toml(v)}\n" for k, v in values.items()), encoding="utf-8")
        signer = pki.signer("director")
        database = "postgresql" if postgres else "sqlite"
        print(f"{args.clients} clients, {args.n} signed requests per server and operation, "
              f"database {database}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
              flush=True)

        servers: dict[str, Callable[[], Any]] = {
            "embedded": lambda: child_server("embedded", config, tmp, args.embedded_threads),
            "wsgiref": lambda: child_server("wsgiref", config, tmp, None),
            "gunicorn": lambda: gunicorn_server(config, args.gunicorn_workers,
                                                args.gunicorn_threads, tmp,
                                                args.gunicorn_worker_class),
        }
        prefixes = iter("ABCDEFGHJKLMNPQRSTUVWXYZ")
        for name in args.servers.split(","):
            with servers[name]() as (url, pid):
                for key in args.operations.split(","):
                    operation = OPERATIONS[key]
                    if key == "find":
                        envelopes = [find_person_envelope(signer)
                                     for _ in range(args.n + args.clients)]
                    else:
                        prefix = next(prefixes)
                        envelopes = [submit_envelope(signer, f"{prefix}{i:06d}")
                                     for i in range(args.n + args.clients)]
                    expect = f"{operation}Response".encode()
                    run_clients(url, envelopes[:args.clients], args.clients, expect)  # warm-up
                    cpu0, sim0, own0 = tree_cpu(pid), tree_cpu(sims_pid), time.process_time()
                    db0 = tree_cpu(database_pid) if database_pid else None
                    latencies, wall = run_clients(url, envelopes[args.clients:], args.clients,
                                                  expect)
                    cpu = tree_cpu(pid) - cpu0
                    sim, own = tree_cpu(sims_pid) - sim0, time.process_time() - own0
                    db = tree_cpu(database_pid) - db0 if database_pid and db0 is not None \
                        else None
                    result = report(name, operation, latencies, wall, cpu, db, sim, own,
                                    args.clients)
                    result.update(database=database, clients=args.clients,
                                  workers=args.gunicorn_workers if name == "gunicorn" else 1)
                    if args.json:
                        with args.json.open("a", encoding="utf-8") as out:
                            out.write(json.dumps({"bench": "http", **result}) + "\n")
    return 0


def _prepare(values: dict[str, Any]) -> None:
    """Migrates the database and loads the demo insurer, its people and authorities once, before
    any server starts (gunicorn workers do not migrate)."""
    from gateway.bootstrap import build_gateway
    from persistence.seed import load_demo_data

    gateway = build_gateway(Settings.from_mapping(values))
    try:
        load_demo_data(gateway.database)
    finally:
        gateway.close()


def _toml(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))


if __name__ == "__main__":
    sys.exit(main())
