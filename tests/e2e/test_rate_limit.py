"""A per-caller limit on the unauthenticated StartMobileLogin (issue #16, finding 6): before,
only the per-phone limit held, so one caller could ring many phones without end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from signing.parser import serialize
from signing.testpki import TestPki
from simulators.runner import Simulators
from tests.e2e.conftest import (
    OTHER_VOEN,
    TNS,
    Stack,
    make_settings,
    request_envelope,
    response_fault_code,
    serve_gateway,
)

SILENT_PHONE = "+994702222222"  # the simulated phone never answers: transactions stay open


@pytest.fixture
def limited(tmp_path: Path, test_pki: TestPki, simulators: Simulators) -> Iterator[Stack]:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'gw.db'}", tmp_path, test_pki, simulators,
        unsigned_rate_limit=2, unsigned_rate_window_seconds=3600,
        rate_limit_caller_header="X-Client-Cert-Fingerprint", mobile_max_open_per_phone=10,
    )
    with serve_gateway(settings, test_pki, simulators) as running:
        yield running


def start_login(stack: Stack, caller: str | None = None) -> requests.Response:
    payload = (f'<t:StartMobileLogin xmlns:t="{TNS}"><t:phone>{SILENT_PHONE}</t:phone>'
               f"<t:userId>100004</t:userId><t:voen>{OTHER_VOEN}</t:voen></t:StartMobileLogin>")
    envelope = request_envelope("StartMobileLogin", payload, message_id=str(uuid.uuid4()))
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if caller:
        headers["X-Client-Cert-Fingerprint"] = caller
    return requests.post(stack.url, data=serialize(envelope), headers=headers, timeout=10)


def open_transactions(stack: Stack) -> int:
    mobile = stack.gateway.services.mobile
    assert mobile is not None
    return mobile.transactions.count_open(SILENT_PHONE, datetime.now(UTC))


def test_one_caller_is_limited_and_nothing_is_started(limited: Stack) -> None:
    answers = [start_login(limited, "caller-a") for _ in range(3)]
    assert [response_fault_code(a) for a in answers] == [None, None, "Client.RateLimit.Exceeded"]
    assert open_transactions(limited) == 2
    # Another caller has its own allowance.
    assert response_fault_code(start_login(limited, "caller-b")) is None
    assert open_transactions(limited) == 3


def test_without_the_header_the_client_address_is_the_caller(limited: Stack) -> None:
    answers = [start_login(limited) for _ in range(3)]
    assert response_fault_code(answers[2]) == "Client.RateLimit.Exceeded"
    assert open_transactions(limited) == 2
