"""The production settings (``deploy/gunicorn.conf.py``), as an operator runs them (issue #9,
defect 7): a master killed with SIGKILL leaves no worker behind holding the port, so a restart on
the same port works; slow clients do not stall the workers; log lines carry time, level and the
correlation id a fault quotes."""

from __future__ import annotations

import json
import signal
import socket
import time
import uuid
from pathlib import Path

import requests
from lxml import etree

from signing.parser import serialize
from signing.testpki import TestPki
from tests.e2e.conftest import SOAP_ENV, TNS, find_person_payload, signed_request
from tests.e2e.test_one_transaction import (
    GatewayProcess,
    Registry,
    running_gateway,
    synthetic_people,
)
from tests.e2e.test_one_transaction import pki as pki
from tests.processes import children_of, wait_until_gone

NS = {"soapenv": SOAP_ENV, "t": TNS}


def find(gateway: GatewayProcess, pki: TestPki, fin: str) -> requests.Response:
    body = serialize(signed_request(pki.signer("director"), "FindPerson",
                                    find_person_payload(fin), message_id=str(uuid.uuid4())))
    return requests.post(gateway.endpoint, data=body, timeout=30,
                         headers={"Content-Type": "text/xml; charset=utf-8"})


def test_a_master_killed_with_sigkill_leaves_no_orphan_and_restarts_on_its_port(
        tmp_path: Path, pki: TestPki) -> None:
    population = synthetic_people("9D", 3)
    registry = Registry(population)
    try:
        with running_gateway("gunicorn", f"sqlite:///{tmp_path / 'gateway.db'}", tmp_path, pki,
                             registry) as gateway:
            assert gateway.process is not None
            workers = children_of(gateway.process.pid)
            assert len(workers) == 2
            assert find(gateway, pki, population[0].fin).status_code == 200
            gateway.process.send_signal(signal.SIGKILL)
            gateway.process.wait(timeout=10)
            # The workers get SIGTERM from the kernel when their parent dies.
            assert wait_until_gone(workers) == []
            gateway.process = None
            gateway.start()  # same port: nothing holds it any more
            assert find(gateway, pki, population[1].fin).status_code == 200
    finally:
        registry.stop()


def test_slow_clients_do_not_stall_the_workers_and_logs_carry_the_correlation_id(
        tmp_path: Path, pki: TestPki) -> None:
    population = synthetic_people("9S", 3)
    registry = Registry(population)
    slow: list[socket.socket] = []
    try:
        with running_gateway("gunicorn", f"sqlite:///{tmp_path / 'gateway.db'}", tmp_path, pki,
                             registry, log_format="json") as gateway:
            # Slowloris: connections that send a request head byte by byte and never finish.
            for _ in range(4):
                sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
                sock.sendall(b"POST /soap HTTP/1.1\r\nHost: x\r\n")
                slow.append(sock)
            time.sleep(0.5)
            answers = [find(gateway, pki, person.fin) for person in population]
            assert [a.status_code for a in answers] == [200, 200, 200]
            refused = requests.post(gateway.endpoint, data=b"<not-xml", timeout=30,
                                    headers={"Content-Type": "text/xml"})
            correlation = etree.fromstring(refused.content).findtext(
                ".//t:FaultDetail/t:correlationId", namespaces=NS)
            assert correlation
            deadline = time.monotonic() + 10
            lines: list[dict[str, str]] = []
            while time.monotonic() < deadline and not lines:
                lines = [json.loads(line) for line in gateway.log_text().splitlines()
                         if line.startswith("{") and correlation in line]
                time.sleep(0.1)
        assert lines, gateway.log_text()[-2000:]
        line = lines[0]
        assert line["correlation_id"] == correlation
        assert line["level"] == "INFO"
        assert line["time"].endswith("Z")
        assert "Client.Xml.Malformed" in line["message"]
    finally:
        for sock in slow:
            sock.close()
        registry.stop()

