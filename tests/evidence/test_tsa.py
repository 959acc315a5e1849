"""The TSA simulator and our RFC 3161 client against OpenSSL's: a query made by ``openssl ts
-query`` gets a reply that ``openssl ts -verify`` accepts, and bad queries are refused."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from asn1crypto import core, tsp

from gateway.evidence.errors import TimestampUnavailable
from gateway.evidence.tsa import REPLY_TYPE, REQUEST_TYPE, TimeStampClient
from simulators.tsa import TsaSimulator
from tests.conftest import missing_requirement


def test_openssl_query_and_verify(tsa_server: tuple[TsaSimulator, str], tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        missing_requirement("openssl is not installed")
    tsa, url = tsa_server
    data = tmp_path / "data.bin"
    data.write_bytes("Sığortaolunanın onlayn uçota alınması".encode())
    query = tmp_path / "query.tsq"
    subprocess.run([openssl, "ts", "-query", "-data", str(data), "-sha256", "-cert",
                    "-out", str(query)], check=True, capture_output=True, timeout=30)
    reply = requests.post(url, data=query.read_bytes(), timeout=10,
                          headers={"Content-Type": REQUEST_TYPE})
    assert reply.status_code == 200 and reply.headers["Content-Type"] == REPLY_TYPE
    (tmp_path / "reply.tsr").write_bytes(reply.content)
    verified = subprocess.run(
        [openssl, "ts", "-verify", "-queryfile", str(query), "-in", str(tmp_path / "reply.tsr"),
         "-CAfile", str(tsa.trust_anchor_path)],
        capture_output=True, text=True, timeout=30, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Verification: OK" in verified.stdout


def test_bad_queries_are_refused(tsa_server: tuple[TsaSimulator, str]) -> None:
    tsa, url = tsa_server
    rejected = tsp.PKIStatusInfo.load(_status(tsa.respond(b"not DER")))
    assert rejected["status"].native == "rejection"
    assert rejected["fail_info"].native == {"bad_data_format"}
    md5 = tsp.TimeStampReq({"version": "v1", "message_imprint": {
        "hash_algorithm": {"algorithm": "md5"}, "hashed_message": b"0" * 16}}).dump()
    assert tsp.PKIStatusInfo.load(_status(tsa.respond(md5)))["fail_info"].native == {"bad_alg"}
    assert requests.get(url, timeout=10).status_code == 405
    assert requests.post(url, data=b"", timeout=10).status_code == 400


def _status(response: bytes) -> bytes:
    """The PKIStatusInfo of a TimeStampResp without a token (the first and only field)."""
    sequence = core.Sequence.load(response)
    return bytes(sequence[0].dump())


def test_a_refusing_tsa_is_unavailable(tsa_server: tuple[TsaSimulator, str]) -> None:
    tsa, url = tsa_server
    from gateway.evidence.tsa import load_certificates

    client = TimeStampClient(url, load_certificates([tsa.trust_anchor_path]), timeout=5)
    tsa.refusal = "system_failure"
    try:
        with pytest.raises(TimestampUnavailable, match="rejection"):
            client.stamp(b"anything")
    finally:
        tsa.refusal = None


def test_an_unreachable_tsa_is_unavailable(tsa_server: tuple[TsaSimulator, str]) -> None:
    tsa, _ = tsa_server
    from gateway.evidence.tsa import load_certificates

    client = TimeStampClient("http://127.0.0.1:9/tsa", load_certificates(
        [tsa.trust_anchor_path]), timeout=2)
    with pytest.raises(TimestampUnavailable, match="unreachable"):
        client.stamp(b"anything")
