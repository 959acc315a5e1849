"""Throughput of signed SubmitRegistration, end to end over HTTP (DESIGN.md §7).

    .venv/bin/python bench/bench_submissions.py [--n 200] [--seconds 60]

Starts what the e2e harness starts, in this process: a test PKI, a population-registry simulator
(with synthetic people, so every submission registers someone new), the gateway built by the
composition root on SQLite in a temporary directory (and on PostgreSQL too when
DSMF_TEST_POSTGRES_URL is set), served on loopback by the threaded WSGI server.

Measured, per database: requests per second with one client thread, and with two client
processes; then the breakdown of one request in-process (parse + verify, the handler with its
upstream call and database writes, response signing). Envelopes are signed before the clock
starts, so the numbers are the gateway's cost, not the client's. Each run is bounded by --n
submissions and --seconds. Not a test: nothing is asserted beyond "every request registered".
"""

from __future__ import annotations

import argparse
import http.client
import io
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from wsgiref.util import setup_testing_defaults

from envelopes import SOAP_ENV, TNS, VOEN, submit_envelope
from lxml import etree

from gateway.bootstrap import Gateway, build_gateway
from gateway.client.wsse import DSMF_SERVICE, XRoadMember, add_xroad_headers
from gateway.config import Settings, project_root
from gateway.domain.model import Actor, CredentialKind
from gateway.domain.values import DocumentType
from gateway.services.registration import RegistrationData
from gateway.wsgi_server import RunningServer, serve_in_thread
from persistence.db import scratch_postgres_database
from signing.parser import parse_xml, serialize
from signing.testpki import TestPki, build_test_pki
from signing.verifier import EnvelopeVerifier
from signing.wsse import sign_envelope
from simulators import people as seed
from simulators.population import PopulationDirectory, create_population_app

DIRECTOR_FIN = "6ZK4T2P"


# -- synthetic people -------------------------------------------------------------------------


def synthetic_fins(prefix: str, count: int) -> list[str]:
    """FINs no seed person has: a letter and six digits (the alphabet has no I and O)."""
    return [f"{prefix}{n:06d}" for n in range(count)]


def synthetic_person(fin: str) -> seed.SeedPerson:
    return seed.SeedPerson(
        fin=fin, surname="Həsənli", name="Rəna", patronymic="Şamil qızı",
        birth_date=date(1990, 1, 1), birth_place="Bakı", sex="F", citizenship="AZE",
        document=seed.SeedDocument(
            document_type=seed.SeedDocumentType.ID_CARD, series="AA", number=fin[1:] + "0",
            issue_date=date(2024, 1, 10), issuer="ASAN xidmət", expiry_date=date(2034, 1, 10),
        ),
        registration_address=seed.SeedAddress(
            "Bakı şəhəri", "Yasamal rayonu", "Ş. Mehdiyev küçəsi", "10", "1", "AZ1000"
        ),
    )


# -- requests -----------------------------------------------------------------------------------


def registered(content: bytes) -> bool:
    path = f".//{{{TNS}}}SubmitRegistrationResponse//{{{TNS}}}status"
    status = etree.fromstring(content).find(path)
    return status is not None and status.text == "REGISTERED"


def post_all(url: str, envelopes: Sequence[bytes], deadline: float) -> tuple[int, int, float]:
    """Post one after another until done or ``deadline``: (sent, registered, seconds)."""
    ok = sent = 0
    start = time.perf_counter()
    for envelope in envelopes:
        if time.monotonic() > deadline:
            break
        status, content = post(url, envelope)
        sent += 1
        ok += status == 200 and registered(content)
    return sent, ok, time.perf_counter() - start


def post(url: str, envelope: bytes) -> tuple[int, bytes]:
    """One POST on a fresh connection (the server speaks HTTP/1.0).

    Plain http.client (headers and body in one write, TCP_NODELAY): on loopback it costs the
    client ~0.7 ms per request against ~2 ms with requests, so the numbers stay the gateway's.
    """
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.connect()
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.request("POST", parts.path, body=envelope,
                     headers={"Content-Type": "text/xml; charset=utf-8"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _client_process(url: str, envelopes: list[bytes], seconds: float, barrier: Any,
                    results: Any) -> None:
    try:
        barrier.wait(timeout=60)
        start = time.time()
        sent, ok, _ = post_all(url, envelopes, time.monotonic() + seconds)
        results.put((sent, ok, start, time.time()))
    except Exception as exc:
        results.put((0, 0, 0.0, 0.0))
        print(f"client process failed: {exc!r}", file=sys.stderr)


def two_processes(url: str, envelopes: list[bytes], seconds: float) -> tuple[int, int, float]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    halves = [envelopes[0::2], envelopes[1::2]]
    processes = [ctx.Process(target=_client_process, args=(url, half, seconds, barrier, results),
                             daemon=True) for half in halves]
    for p in processes:
        p.start()
    try:
        answers = [results.get(timeout=seconds + 120) for _ in processes]
    finally:
        for p in processes:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    sent = sum(a[0] for a in answers)
    ok = sum(a[1] for a in answers)
    elapsed = max(a[3] for a in answers) - min(a[2] for a in answers)
    return sent, ok, elapsed


# -- the stack ----------------------------------------------------------------------------------


@dataclass
class Running:
    gateway: Gateway
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.url.rstrip("/") + "/soap"


def demo_gateway(database_url: str, data_dir: Path, pki: TestPki, population_url: str,
                 **overrides: Any) -> Gateway:
    """The gateway of the demo set-up (test PKI, demo data) on ``database_url``."""
    from persistence.seed import load_demo_data

    gw = pki.identity("gateway")
    settings = Settings.from_mapping({
        "database_url": database_url,
        "data_dir": data_dir,
        "trust_anchors": tuple(pki.trust_anchor_paths),
        "crls": (pki.crl_path,),
        "signing_key_file": gw.key_path,
        "signing_cert_file": gw.cert_path,
        "population_url": population_url,
        "upstream_timeout_seconds": 5.0,
        **overrides,
    })
    gateway = build_gateway(settings)
    load_demo_data(gateway.database)
    return gateway


@contextmanager
def running_gateway(database_url: str, data_dir: Path, pki: TestPki,
                    population_url: str) -> Iterator[Running]:
    gateway = demo_gateway(database_url, data_dir, pki, population_url)
    server = serve_in_thread(gateway.app)
    try:
        yield Running(gateway, server)
    finally:
        server.stop()
        gateway.close()


# -- the breakdown ------------------------------------------------------------------------------


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``fn`` over ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def breakdown(running: Running, pki: TestPki, fins: Iterator[str], repeat: int) -> dict[str, float]:
    signer = pki.signer("director")
    request = submit_envelope(signer, "A000000")
    verifier = EnvelopeVerifier(pki.trust_store())

    def parse_and_verify() -> None:
        verifier.verify(parse_xml(request))

    director = pki.identity("director")
    actor = Actor(fin=DIRECTOR_FIN, voen=VOEN, credential_kind=CredentialKind.CARD,
                  credential=director.card_number, seal_authority=True,
                  name="Əliyev Rəşad Vaqif oğlu")
    registration = running.gateway.services.registration

    def handler() -> None:
        data = RegistrationData(document_type=DocumentType.ID_CARD, fin=next(fins))
        registration.submit(actor, VOEN, data=data)

    response = etree.fromstring(
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Header/><soapenv:Body>'
        f'<tns:SubmitRegistrationResponse xmlns:tns="{TNS}"><tns:result>'
        f"<tns:applicationId>{uuid.uuid4()}</tns:applicationId>"
        f"<tns:status>REGISTERED</tns:status><tns:ssn>100000000018</tns:ssn>"
        f"<tns:ssnDate>2026-01-01</tns:ssnDate></tns:result></tns:SubmitRegistrationResponse>"
        f"</soapenv:Body></soapenv:Envelope>".encode()
    )
    add_xroad_headers(response[0], client=XRoadMember("AZ", "COM", VOEN, "erp"),
                      service=DSMF_SERVICE, operation="SubmitRegistration",
                      message_id=str(uuid.uuid4()))
    gateway_signer = pki.signer("gateway")

    def sign_response() -> None:
        serialize(sign_envelope(deepcopy(response), gateway_signer))

    def upstream() -> None:
        registration.registry.find_person(DocumentType.ID_CARD, "B000000")

    def whole_request() -> None:
        body = submit_envelope(signer, next(fins))
        environ: dict[str, Any] = {}
        setup_testing_defaults(environ)
        environ.update({
            "REQUEST_METHOD": "POST", "PATH_INFO": "/soap", "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "text/xml; charset=utf-8", "wsgi.input": io.BytesIO(body),
        })
        b"".join(running.gateway.app(environ, lambda status, headers, exc_info=None: None))

    return {
        "parse + verify": timed(parse_and_verify, repeat),
        "handler (upstream + DB)": timed(handler, repeat),
        "  of which upstream call": timed(upstream, repeat),
        "response signing": timed(sign_response, repeat),
        "whole request, no socket": timed(whole_request, repeat),
    }


# -- main ---------------------------------------------------------------------------------------


def run_backend(label: str, database_url: str, work: Path, pki: TestPki, population_url: str,
                fins: Iterator[str], n: int, seconds: float) -> None:
    signer = pki.signer("director")
    with running_gateway(database_url, work / label, pki, population_url) as running:
        # Warm up (imports, caches, connection pools) and check the path works at all.
        warm = [submit_envelope(signer, next(fins)) for _ in range(5)]
        sent, ok, _ = post_all(running.url, warm, time.monotonic() + 30)
        if ok != sent:
            raise SystemExit(f"{label}: warm-up requests did not register ({ok}/{sent})")

        envelopes = [submit_envelope(signer, next(fins)) for _ in range(n)]
        sent, ok, elapsed = post_all(running.url, envelopes, time.monotonic() + seconds)
        print(f"{label:10} 1 client thread    : {sent / elapsed:7.1f} req/s "
              f"({sent} sent, {ok} registered, {elapsed:.1f} s, "
              f"{1000 * elapsed / max(sent, 1):.2f} ms/request)")

        envelopes = [submit_envelope(signer, next(fins)) for _ in range(n)]
        sent, ok, elapsed = two_processes(running.url, envelopes, seconds)
        print(f"{label:10} 2 client processes : {sent / elapsed:7.1f} req/s "
              f"({sent} sent, {ok} registered, {elapsed:.1f} s)")

        parts = breakdown(running, pki, fins, repeat=min(n, 100))
        for name, seconds_each in parts.items():
            print(f"{label:10}   {name:26}: {1000 * seconds_each:6.2f} ms (median)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="submissions per run (default 200)")
    parser.add_argument("--seconds", type=float, default=60.0, help="time bound per run")
    args = parser.parse_args(argv)
    n = max(1, args.n)

    import logging

    logging.getLogger("spyne").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="dsmf-bench-") as tmp:
        work = Path(tmp)
        pki = build_test_pki(work / "pki")
        # Enough people for every run on every backend, warm-ups and the breakdown.
        per_backend = 2 * n + 2 * min(n, 100) + 5
        postgres = os.environ.get("DSMF_TEST_POSTGRES_URL")
        backends = ["sqlite", "postgresql"] if postgres else ["sqlite"]
        prefixes = dict(zip(backends, "BC", strict=False))  # disjoint FINs per backend
        people = [synthetic_person(fin) for prefix in prefixes.values()
                  for fin in synthetic_fins(prefix, per_backend)]
        directory = PopulationDirectory(people)
        population = serve_in_thread(create_population_app(
            project_root() / "wsdl" / "upstream", directory))
        population_url = population.url.rstrip("/") + "/population-registry"
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; N={n}, "
              f"bound {args.seconds:.0f} s per run; envelopes signed before timing")
        try:
            for label in backends:
                fins = iter(synthetic_fins(prefixes[label], per_backend))
                if label == "sqlite":
                    run_backend(label, f"sqlite:///{work / 'bench.db'}", work, pki,
                                population_url, fins, n, args.seconds)
                else:
                    assert postgres is not None
                    with scratch_postgres_database(postgres) as url:
                        run_backend(label, url, work, pki, population_url, fins, n,
                                    args.seconds)
        finally:
            population.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
