"""CPU per signed SubmitRegistration and FindPerson against the floor, in one run (issue #10).

    .venv/bin/python bench/bench_hotpath.py [--n 150] [--profile] [--postgres URL]

The gateway runs in this process (built by the composition root, requests handed to its WSGI
app without a socket); the population-registry simulator runs in another process, answering any
valid FIN over HTTP/1.1 with keep-alive. With ``--postgres`` (or ``DSMF_TEST_POSTGRES_URL``) the
same is measured on a scratch PostgreSQL database after SQLite.

Measured side by side (in five rounds, each a slice of every line, so a change in the shared
machine's load hits the request and its floors alike), CPU time of this process per request
(``time.process_time``; wall time beside it):

* **request**: a signed SubmitRegistration of a new person / a signed FindPerson, through the
  whole pipeline (parse, verify, actor, ledger, schema, spyne, service, upstream, database,
  answer, signature, message log, commit);
* **crypto floor**: parse + C14N + digests + RSA verify of the same request, and building and
  signing (ECDSA) the same answer;
* **upstream floor**: one lean call to the same simulator: ``http.client`` on a kept-alive
  connection and ``lxml`` reading the person;
* **database floor**: one transaction with the raw driver (``sqlite3`` / ``psycopg``) writing the
  rows the gateway wrote for such a request: the gateway's own INSERT/UPDATE statements,
  captured from a separate run and replayed on a copy of the database as it was before it;
* **full floor** = the three floors; the ratios request / crypto floor and request / full floor
  (per round, then the median round).

``--pin`` (from two CPUs up) runs the simulator on a CPU of its own and this process on the
others. The registry is another agency's server; on a small machine the simulator otherwise
runs on the gateway's core while the gateway waits for its answer, evicting the gateway's
caches, which a remote registry does not do. On a quiet 2-CPU machine the steps after the
registry call cost 10-15 % less CPU pinned; on a loaded one pinning can cost more (this
process cannot move away from other work), so it is not the default. The floors are measured
in the same placement.

``--profile`` adds a cProfile of a batch of each: the top functions of our own code by
cumulative time, and the time spent in each package (own time, so the shares add up).
Not a test: nothing is asserted beyond "every request got its answer".
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import logging
import multiprocessing
import os
import pstats
import re
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer
from wsgiref.util import setup_testing_defaults

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_submissions import SOAP_ENV, TNS, VOEN, demo_gateway, submit_envelope
from envelopes import signed_request
from lxml import etree

from gateway.bootstrap import Gateway
from gateway.client.wsse import DSMF_SERVICE, XRoadMember, add_xroad_headers
from gateway.config import project_root
from gateway.domain.model import REGISTRATION_ESERVICE
from persistence.db import database_name, libpq_url, scratch_postgres_database
from signing.parser import parse_xml, serialize
from signing.signer import Signer
from signing.testpki import TestPki, build_test_pki
from signing.wsse import sign_envelope

POPULATION_NS = "urn:az:iamas:population-registry:v1"
_OWN = ("gateway/", "persistence/", "signing/", "simulators/")

# -- the population simulator in its own process, HTTP/1.1 with keep-alive ---------------------


class _KeepAliveHandler(WSGIRequestHandler):
    """wsgiref answers one request per connection; this one serves a connection until the
    client closes it, as a registry behind a real HTTP server would (zeep's requests session
    and the lean call both keep the connection)."""

    protocol_version = "HTTP/1.1"
    # wsgiref writes the headers and the body apart: with Nagle on, every answer waits for the
    # client's delayed ACK (40 ms on Linux).
    disable_nagle_algorithm = True

    def handle(self) -> None:
        while True:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline or not self.parse_request():
                return
            handler = ServerHandler(self.rfile, self.wfile, self.get_stderr(), self.get_environ(),
                                    multithread=True)
            handler.http_version = "1.1"
            handler.request_handler = self  # type: ignore[attr-defined]
            handler.run(self.server.get_app())  # type: ignore[attr-defined]
            if self.close_connection:
                return

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(WSGIServer):
    def server_bind(self) -> None:
        import socketserver

        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]
        self.setup_environ()


def _serve_population(port_queue: Any) -> None:
    import socketserver

    from simulators.population import PopulationDirectory, create_population_app

    logging.getLogger("spyne").setLevel(logging.CRITICAL)
    app = create_population_app(project_root() / "wsdl" / "upstream",
                                PopulationDirectory(any_fin=True))

    class Threading(socketserver.ThreadingMixIn, _Server):
        daemon_threads = True

    server = Threading(("127.0.0.1", 0), _KeepAliveHandler)
    server.set_app(app)
    port_queue.put(server.server_port)
    server.serve_forever()


@contextmanager
def population_process(pin: bool = False) -> Iterator[str]:
    """The simulator's URL. ``pin``: the simulator on the last CPU and this process on the
    others (from two CPUs up), so that, like another agency's server, it does not run on the
    gateway's core between its request and its answer, evicting the gateway's caches."""
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    process = ctx.Process(target=_serve_population, args=(ports,), daemon=True)
    process.start()
    mine = os.sched_getaffinity(0)
    try:
        port = ports.get(timeout=60)
        if pin and len(mine) >= 2 and process.pid is not None:
            last = max(mine)
            os.sched_setaffinity(process.pid, {last})
            os.sched_setaffinity(0, mine - {last})
        yield f"http://127.0.0.1:{port}/population-registry"
    finally:
        os.sched_setaffinity(0, mine)
        process.terminate()
        process.join(10)


# -- requests ---------------------------------------------------------------------------------


def find_envelope(signer: Signer, fin: str) -> bytes:
    envelope = etree.fromstring(
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Header/><soapenv:Body>'
        f'<t:FindPerson xmlns:t="{TNS}"><t:voen>{VOEN}</t:voen>'
        f"<t:documentType>ID_CARD</t:documentType><t:fin>{fin}</t:fin>"
        f"</t:FindPerson></soapenv:Body></soapenv:Envelope>".encode()
    )
    add_xroad_headers(envelope[0], client=XRoadMember("AZ", "COM", VOEN, "erp"),
                      service=DSMF_SERVICE, operation="FindPerson",
                      message_id=str(uuid.uuid4()))
    return serialize(sign_envelope(envelope, signer))


def fins(prefix: str, count: int) -> list[str]:
    """FINs no demo person has (a letter and six digits; the alphabet has no I and O)."""
    return [f"{prefix}{n:06d}" for n in range(count)]


def call_app(app: Any, body: bytes) -> bytes:
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update({
        "REQUEST_METHOD": "POST", "PATH_INFO": "/soap", "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "text/xml; charset=utf-8", "wsgi.input": io.BytesIO(body),
    })
    return b"".join(app(environ, lambda status, headers, exc_info=None: None))


def answered(operation: str, content: bytes) -> bool:
    root = etree.fromstring(content)
    if operation == "SubmitRegistration":
        status = root.find(f".//{{{TNS}}}status")
        return status is not None and status.text == "REGISTERED"
    outcome = root.find(f".//{{{TNS}}}outcome")
    return outcome is not None and outcome.text == "FOUND"


# -- measuring --------------------------------------------------------------------------------


# -- the lean upstream call -------------------------------------------------------------------


class LeanRegistry:
    """One GetPersonByDocument over a kept-alive ``http.client`` connection, read with lxml."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                               timeout=10)
        self.conn.connect()
        assert self.conn.sock is not None
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

    def find_person(self, fin: str) -> dict[str, str | None]:
        body = (
            f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body>'
            f'<p:GetPersonByDocument xmlns:p="{POPULATION_NS}"><p:documentType>ID_CARD'
            f"</p:documentType><p:fin>{fin}</p:fin></p:GetPersonByDocument></soapenv:Body>"
            f"</soapenv:Envelope>"
        ).encode()
        self.conn.request("POST", self.path, body=body, headers={
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{POPULATION_NS}/GetPersonByDocument"'})
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"lean call: HTTP {response.status}: {data[:200]!r}")
        root = etree.fromstring(data, self.parser)
        person = root.find(f".//{{{POPULATION_NS}}}person")
        assert person is not None
        return {el.tag.rpartition("}")[2]: el.text for el in person.iter() if el.text}

    def close(self) -> None:
        self.conn.close()


# -- the raw-driver transaction ---------------------------------------------------------------


@dataclass
class Statement:
    sql: str
    params: Any
    many: bool


_WRITES = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\b", re.IGNORECASE)


@dataclass
class Capture:
    """Writes the gateway's connections send to the driver, one list per request."""

    requests: list[list[Statement]] = field(default_factory=list)
    on: bool = False

    def install(self, gateway: Gateway) -> None:
        def _record(statement: str, parameters: Any) -> None:
            first = statement.lstrip().split(None, 1)[0].upper()
            if self.on and (first in ("INSERT", "UPDATE", "DELETE") or (
                    # the ledger's claim + log, an application + its history (PostgreSQL)
                    first == "WITH" and _WRITES.search(statement))):
                # insertmanyvalues reports executemany for one multi-row INSERT: go by shape.
                many = isinstance(parameters, list | tuple) and bool(parameters) and isinstance(
                    parameters[0], list | tuple | dict)
                self.requests[-1].append(Statement(statement, parameters, many))

        gateway.database.watch_statements(_record)

    @contextmanager
    def request(self) -> Iterator[None]:
        self.requests.append([])
        self.on = True
        try:
            yield
        finally:
            self.on = False


class RawSqlite:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("busy_timeout = 5000", "foreign_keys = ON", "synchronous = NORMAL"):
            self.conn.execute(f"PRAGMA {pragma}")

    def transaction(self, statements: Sequence[Statement]) -> None:
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        for s in statements:
            if s.many:
                cur.executemany(s.sql, s.params)
            else:
                cur.execute(s.sql, s.params)
                cur.fetchall()
        cur.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class RawPostgres:
    def __init__(self, url: str) -> None:
        import psycopg

        # As the gateway's connections: no server-side prepared statements.
        self.conn = psycopg.connect(url, prepare_threshold=None)

    def transaction(self, statements: Sequence[Statement]) -> None:
        if len(statements) == 1 and not statements[0].many:
            # One statement is a transaction by itself, as the gateway sends a request's only
            # write (the claim and log of a read): in autocommit, without BEGIN and COMMIT.
            self.conn.autocommit = True
            try:
                self._run(statements)
            finally:
                self.conn.autocommit = False
            return
        with self.conn.transaction():
            self._run(statements)

    def _run(self, statements: Sequence[Statement]) -> None:
        with self.conn.cursor() as cur:
            for s in statements:
                if s.many:
                    cur.executemany(s.sql, s.params)
                else:
                    cur.execute(s.sql, s.params)
                    if cur.description is not None:
                        cur.fetchall()

    def close(self) -> None:
        self.conn.close()


# -- the crypto floor -------------------------------------------------------------------------


def crypto_floor(gateway: Gateway, request: bytes, answer: bytes) -> Callable[[int], object]:
    """Parse + verify ``request`` with the gateway's own verifier, then build and sign an
    envelope with the Body of ``answer`` (the gateway's own answer to it) and its headers."""
    endpoint = gateway.app
    verifier, signer, limits = endpoint.verifier, endpoint.signer, endpoint.limits
    stored = etree.fromstring(answer)
    body = stored.find(f"{{{SOAP_ENV}}}Body")
    header = stored.find(f"{{{SOAP_ENV}}}Header")
    assert body is not None and header is not None
    payload = body[0]
    echoed = [el for el in header if not el.tag.endswith("}Security")]

    def run(_: int) -> bytes:
        verifier.verify(parse_xml(request, limits))
        envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV})
        head = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Header")
        for el in echoed:
            head.append(_copy(el))
        etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body").append(_copy(payload))
        return serialize(sign_envelope(envelope, signer, must_understand=False))

    return run


def _copy(element: etree._Element) -> etree._Element:
    from copy import deepcopy

    return deepcopy(element)


def grant_authority(app: Any, pki: TestPki, holder: str) -> None:
    """The director grants ``holder``'s card an indefinite authority for registration (signed
    GrantAuthority): ``holder`` then acts through it, so authorization reads it on every
    request, where the director, the seal holder, needs no read."""
    identity = pki.identity(holder)
    request = signed_request(
        pki.signer("director"), "GrantAuthority",
        f"<t:eServiceCode>{REGISTRATION_ESERVICE}</t:eServiceCode>"
        "<t:authorityType>E_SIGNATURE_CARD</t:authorityType>"
        f"<t:cardNumber>{identity.card_number}</t:cardNumber><t:fin>{identity.fin}</t:fin>"
        "<t:trusted>true</t:trusted>")
    root = etree.fromstring(call_app(app, request))
    if root.find(f".//{{{TNS}}}authority") is None:
        raise SystemExit(f"granting {holder} an authority failed: "
                         f"{root.findtext('.//faultcode')} {root.findtext('.//faultstring')}")


# -- the stack --------------------------------------------------------------------------------


def build(database_url: str, data_dir: Path, pki: TestPki, population_url: str,
          overrides: dict[str, Any]) -> Gateway:
    return demo_gateway(database_url, data_dir, pki, population_url, **overrides)


@dataclass
class Backend:
    label: str
    url: str
    copy: Callable[[], str]  # a copy of the database as it is now: its URL
    raw: Callable[[str], RawSqlite | RawPostgres]


def sqlite_backend(work: Path) -> Backend:
    path = work / "hot.db"

    def copy() -> str:
        target = work / f"floor-{uuid.uuid4().hex[:6]}.db"
        src, dst = sqlite3.connect(path), sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        return str(target)

    return Backend("sqlite", f"sqlite:///{path}", copy, lambda p: RawSqlite(Path(p)))


@contextmanager
def postgres_backend(server_url: str) -> Iterator[Backend]:
    with ExitStack() as copies, scratch_postgres_database(server_url, "hot") as url:
        name = database_name(url)

        def copy() -> str:
            # TEMPLATE needs the source without sessions: the caller disposes its pool first.
            return libpq_url(copies.enter_context(
                scratch_postgres_database(server_url, "hot_floor", copy_of=name)))

        yield Backend("postgresql", url, copy, RawPostgres)


# -- one backend ------------------------------------------------------------------------------


OPERATIONS = ("SubmitRegistration", "FindPerson")


ROUNDS = 5


@dataclass
class Line:
    """One measured thing: ``fn(i)`` for the round's slice of i; ``prepare(first, last)`` runs
    untimed before each slice."""

    name: str
    fn: Callable[[int], object]
    prepare: Callable[[int, int], None] | None = None
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)


def interleaved(lines: Sequence[Line], n: int) -> None:
    """Each line in turn, a slice of n/ROUNDS calls, ROUNDS times: the request and its floors
    see the same moments of a shared machine, so their ratio holds when the load changes."""
    per = max(1, n // ROUNDS)
    for r in range(ROUNDS):
        first, last = r * per, (r + 1) * per
        for line in lines:
            if line.prepare is not None:
                line.prepare(first, last)
            c0, w0 = time.process_time(), time.perf_counter()
            for i in range(first, last):
                line.fn(i)
            line.cpu.append((time.process_time() - c0) / per)
            line.wall.append((time.perf_counter() - w0) / per)


def run_backend(backend: Backend, work: Path, pki: TestPki, population_url: str, n: int,
                prefixes: Iterator[str], profile: bool, overrides: dict[str, Any],
                json_path: Path | None = None, signer_name: str = "director") -> None:
    signer = pki.signer(signer_name)
    envelope_of = {"SubmitRegistration": submit_envelope, "FindPerson": find_envelope}
    gateway = build(backend.url, work / backend.label, pki, population_url, overrides)
    app = gateway.app
    if signer_name != "director":
        grant_authority(app, pki, signer_name)
    capture = Capture()
    capture.install(gateway)
    lean = LeanRegistry(population_url)
    try:
        # Warm-up: imports, caches, pools, the first-signature note of the director's card.
        for op in OPERATIONS:
            for fin in fins(next(prefixes), 3):
                content = call_app(app, envelope_of[op](signer, fin))
                if not answered(op, content):
                    raise SystemExit(f"{backend.label}: warm-up {op} failed: {content[:600]!r}")
        gateway.database.dispose()  # PostgreSQL copies by TEMPLATE: no sessions on the source
        # Two copies: the database floor alone, and the floors run in sequence (each replays
        # the same writes, which a second replay on one copy would refuse as duplicates).
        floor_url, sequence_url = backend.copy(), backend.copy()

        # The writes of such requests, for the database floor: captured from requests for
        # other people (untimed), replayed on the copy in the same order.
        samples: dict[str, tuple[bytes, bytes]] = {}
        captured: dict[str, list[list[Statement]]] = {}
        for op in OPERATIONS:
            captured[op] = []
            for fin in fins(next(prefixes), n):
                body = envelope_of[op](signer, fin)
                with capture.request():
                    answer = call_app(app, body)
                if not answered(op, answer):
                    raise SystemExit(f"{backend.label}: {op} failed: {answer[:600]!r}")
                captured[op].append(capture.requests[-1])
                samples.setdefault(op, (body, answer))

        raw, raw_sequence = backend.raw(floor_url), backend.raw(sequence_url)
        results: dict[str, list[Line]] = {}
        try:
            for op in OPERATIONS:
                batch = [envelope_of[op](signer, fin) for fin in fins(next(prefixes), n)]
                answers: list[bytes] = []
                lines = [Line("request", lambda i, b=batch, a=answers: a.append(
                    call_app(app, b[i])))]
                if op == "SubmitRegistration":
                    # The usual flow: FindPerson, then Submit of that person a moment later.
                    people = fins(next(prefixes), n)
                    after = [submit_envelope(signer, fin) for fin in people]

                    def find_first(first: int, last: int, people: list[str] = people) -> None:
                        for fin in people[first:last]:
                            call_app(app, find_envelope(signer, fin))

                    lines.append(Line("request, reused", lambda i, b=after, a=answers: a.append(
                        call_app(app, b[i])), find_first))
                request_bytes, answer = samples[op]
                upstream_people = fins(next(prefixes), n)
                crypto = crypto_floor(gateway, request_bytes, answer)

                def in_sequence(i: int, crypto: Callable[[int], object] = crypto,
                                p: list[str] = upstream_people,
                                w: list[list[Statement]] = captured[op]) -> None:
                    crypto(i)
                    lean.find_person(p[i])
                    raw_sequence.transaction(w[i])

                lines += [
                    Line("crypto floor", crypto),
                    Line("upstream floor", lambda i, p=upstream_people: lean.find_person(p[i])),
                    Line("database floor", lambda i, w=captured[op]: raw.transaction(w[i])),
                    Line(SEQUENCE, in_sequence),
                ]
                interleaved(lines, n)
                bad = sum(not answered(op, a) for a in answers)
                if bad:
                    raise SystemExit(f"{backend.label}: {bad} {op} requests failed: "
                                     f"{answers[0][:600]!r}")
                results[op] = lines
        finally:
            raw.close()
            raw_sequence.close()
        report(backend.label, results, captured, json_path, signer_name)
        if profile:
            profile_requests(app, signer, envelope_of, prefixes, n)
    finally:
        lean.close()
        gateway.close()


_FLOORS = ("crypto floor", "upstream floor", "database floor")
#: The three floors one after the other for each request, as a lean gateway would run them:
#: unlike the floors alone, each part then starts with the caches the others left.
SEQUENCE = "floors in sequence"


def report(label: str, results: dict[str, list[Line]],
           captured: dict[str, list[list[Statement]]], json_path: Path | None = None,
           signer: str = "director") -> None:
    for op, lines in results.items():
        by = {line.name: line for line in lines}
        rounds = range(len(by["request"].cpu))
        full_cpu = [sum(by[f].cpu[r] for f in _FLOORS) for r in rounds]
        full_wall = [sum(by[f].wall[r] for f in _FLOORS) for r in rounds]
        statements = statistics.median(len(w) for w in captured[op])
        print(f"\n{label} {op}, signed by the {signer}  (database floor replays "
              f"{statements:.0f} write statements)")
        print(f"  {'':22} {'CPU best':>9} {'CPU median':>11} {'wall median':>12}")
        rows = [(line.name, line.cpu, line.wall) for line in lines]
        rows.append(("full floor", full_cpu, full_wall))
        for name, cpu, wall in rows:
            print(f"  {name:22} {1000 * min(cpu):6.3f} ms {1000 * statistics.median(cpu):8.3f} ms"
                  f" {1000 * statistics.median(wall):9.3f} ms")

        def ratio(name: str, floor: list[float], by: dict[str, Line] = by,
                  rounds: range = rounds) -> float:
            # Per round (request and floors measured side by side), then the median round.
            return statistics.median(by[name].cpu[r] / floor[r] for r in rounds)

        print(f"  request / crypto floor : {ratio('request', by['crypto floor'].cpu):5.1f}×  CPU")
        sequence = by[SEQUENCE].cpu
        wall = statistics.median(by["request"].wall[r] / full_wall[r] for r in rounds)
        print(f"  request / full floor   : {ratio('request', full_cpu):5.1f}×  CPU "
              f"(goal 2×; {wall:.1f}× wall)")
        if "request, reused" in by:
            print(f"  reused / full floor    : {ratio('request, reused', full_cpu):5.1f}×  CPU "
                  "(the person of a FindPerson just before: no upstream call)")
        summed = statistics.median(sequence[r] / full_cpu[r] for r in rounds)
        print(f"  request / {SEQUENCE} : {ratio('request', sequence):5.1f}×  CPU (the floors"
              f" in sequence cost {summed:.2f}× their sum)")
        if json_path is not None:
            record = {
                "bench": "hotpath", "database": label, "operation": op, "signer": signer,
                "request_cpu_ms": 1000 * statistics.median(by["request"].cpu),
                "full_floor_cpu_ms": 1000 * statistics.median(full_cpu),
                "crypto_floor_cpu_ms": 1000 * statistics.median(by["crypto floor"].cpu),
                "ratio_full_floor": ratio("request", full_cpu),
                "ratio_crypto_floor": ratio("request", by["crypto floor"].cpu),
                "ratio_reused": (ratio("request, reused", full_cpu)
                                 if "request, reused" in by else None),
                "sequence_floor_cpu_ms": 1000 * statistics.median(sequence),
                "ratio_sequence_floor": ratio("request", sequence),
            }
            with json_path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")


# -- profile ----------------------------------------------------------------------------------


def profile_requests(app: Any, signer: Signer, envelope_of: dict[str, Callable[..., bytes]],
                     prefixes: Iterator[str], n: int) -> None:
    for op in OPERATIONS:
        batch = [envelope_of[op](signer, fin) for fin in fins(next(prefixes), n)]
        profiler = cProfile.Profile(time.process_time)  # CPU, not waiting
        profiler.enable()
        for body in batch:
            call_app(app, body)
        profiler.disable()
        print_profile(op, pstats.Stats(profiler), n)


def _package(filename: str) -> str:
    path = filename.replace(os.sep, "/")
    for marker in ("/site-packages/", "/lib/python3.11/"):
        if marker in path:
            rest = path.split(marker, 1)[1]
            return rest.split("/", 1)[0].removesuffix(".py") or "?"
    for own in _OWN:
        if f"/{own}" in path:
            return own + path.split(f"/{own}", 1)[1].removesuffix(".py")
    return "other"


def _c_function(name: str) -> str:
    """The library of a C function as cProfile names it ("<method 'execute' of
    'sqlite3.Cursor' objects>", "<built-in method _hashlib.openssl_sha256>")."""
    if " of '" in name:
        return "C " + name.split(" of '", 1)[1].split("'", 1)[0].split(".", 1)[0]
    if name.startswith("<built-in method "):
        return "C " + name.removeprefix("<built-in method ").split(".", 1)[0].rstrip(">")
    return "C other"


_STEPS = (
    ("parse (hardened parser)", "signing/parser.py", "parse_xml"),
    ("verify (signature, path, digests)", "signing/verifier.py", "verify"),
    ("actor (certificate, X-Road client, note)", "gateway/bootstrap.py", "resolve_actor"),
    ("ledger lookup", "persistence/guard.py", "lookup"),
    ("content digest", "gateway/soap/endpoint.py", "_content_digest"),
    ("schema validation", "gateway/soap/contract.py", "validate"),
    ("spyne in (deserialise)", "spyne/server/_base.py", "get_in_object"),
    ("service (upstream + database)", "gateway/soap/endpoint.py", "dispatch"),
    ("  upstream call (zeep)", "gateway/upstream/population.py", "find_person"),
    ("spyne out (serialise)", "spyne/protocol/soap/soap11.py", "serialize"),
    ("answer: build + sign", "gateway/soap/endpoint.py", "_respond"),
    ("commit: ledger row + log + commit", "gateway/soap/endpoint.py", "_commit"),
)


def print_profile(op: str, stats: pstats.Stats, n: int) -> None:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in raw.values())
    by_package: dict[str, float] = defaultdict(float)
    for (filename, _line, name), (_cc, _nc, tt, _ct, _callers) in raw.items():
        by_package[_c_function(name) if filename == "~" else _package(filename)] += tt
    print(f"\nprofile of {n} {op} (cProfile inflates; shares, not absolute times)")
    print("  own time by package:")
    for package, tt in sorted(by_package.items(), key=lambda kv: -kv[1])[:24]:
        print(f"    {package:34} {1000 * tt / n:7.3f} ms/request  {tt / total:6.1%}")
    print("  named steps (cumulative; profiled ms, share of the request):")
    for label, where, function in _STEPS:
        found = [(nc, ct) for (filename, _l, name), (_cc, nc, _tt, ct, _c) in raw.items()
                 if name == function and filename.replace(os.sep, "/").endswith(where)]
        if found:
            ct = sum(c for _, c in found)
            print(f"    {label:40} {1000 * ct / n:7.3f} ms/request  {ct / total:6.1%}")
    print("  our functions by cumulative time:")
    ours = [(key, value) for key, value in raw.items()
            if any(f"/{own}" in key[0].replace(os.sep, "/") for own in _OWN)]
    ours.sort(key=lambda kv: -kv[1][3])
    for (filename, line, name), (_cc, nc, _tt, ct, _callers) in ours[:30]:
        where = _package(filename)
        print(f"    {1000 * ct / n:7.3f} ms/request {ct / total:6.1%}  {nc / n:5.1f}×  "
              f"{where}:{line} {name}")


# -- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=150, help="requests per measurement")
    parser.add_argument("--profile", action="store_true", help="add a cProfile breakdown")
    parser.add_argument("--postgres", default=os.environ.get("DSMF_TEST_POSTGRES_URL"),
                        help="a PostgreSQL server URL (default: DSMF_TEST_POSTGRES_URL)")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgres-only", action="store_true")
    parser.add_argument("--signer", default="director", choices=("director", "deputy"),
                        help="who signs: the director holds the insurer's seal (authorization "
                        "reads nothing); the deputy acts through an authority the director "
                        "grants first (authorization reads it)")
    parser.add_argument("--pin", action="store_true",
                        help="the simulator on a CPU of its own, this process on the others")
    parser.add_argument("--json", type=Path, help="also append the results to this file "
                        "(one JSON object a line)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a gateway setting for this run (e.g. person_reuse_seconds=0)")
    args = parser.parse_args(argv)
    n = max(3, args.n)
    overrides = dict(item.split("=", 1) for item in args.set)

    logging.getLogger("spyne").setLevel(logging.CRITICAL)
    logging.getLogger("gateway").setLevel(logging.WARNING)
    prefixes = iter("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
    pin = args.pin
    with tempfile.TemporaryDirectory(prefix="dsmf-hot-") as tmp, \
            population_process(pin) as url:
        work = Path(tmp)
        pki = build_test_pki(work / "pki")
        cpus = sorted(os.sched_getaffinity(0))
        where = (f"pinned apart: this process on CPU {cpus}, the simulator on the others"
                 if pin and len(cpus) < (os.cpu_count() or 1) else "not pinned")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load "
              f"{os.getloadavg()[0]:.1f}; n={n} per line; CPU = this process "
              f"(the registry simulator runs in another; {where})")
        if args.postgres_only and not args.postgres:
            raise SystemExit("--postgres-only needs --postgres URL or DSMF_TEST_POSTGRES_URL")
        if not args.postgres_only:
            run_backend(sqlite_backend(work), work, pki, url, n, prefixes, args.profile,
                        overrides, args.json, args.signer)
        if args.postgres and not args.sqlite_only:
            with postgres_backend(args.postgres) as backend:
                run_backend(backend, work, pki, url, n, prefixes, args.profile, overrides,
                            args.json, args.signer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
