"""The hot operations' service methods called without spyne's per-call machinery
(``SpyneDispatcher.call``) against the same call through spyne (``_call_through_spyne``): the
same request object reaches the operation, the same answer comes back byte for byte, an
operation's own error comes out as the very same exception (its fault code intact), and a
request the compiled reader hands back still goes through spyne."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from lxml import etree

from gateway.domain.errors import GatewayError, InternalError
from gateway.soap import models as m
from gateway.soap.dispatch import SpyneDispatcher
from gateway.soap.endpoint import RequestScope
from gateway.soap.service import build_application
from gateway.soap.xroad import XRoadHeaders
from signing.parser import serialize
from tests.contract.test_answer_writer import _find_person_answer, _submit_answer
from tests.contract.test_request_reader import _as_tree, _payload

APP = build_application()
DISPATCHER = SpyneDispatcher(APP)
TNS = m.TNS
FIND = (
    "<t:voen>1403567891</t:voen><t:documentType>ID_CARD</t:documentType>"
    "<t:fin>6ZK4T2P</t:fin>"
)
SUBMIT = "<t:voen>1403567891</t:voen><t:applicationId>APP-2026-000001</t:applicationId>"


class _Recorder:
    """The operations behind the scope: records what each was called with, answers ``answer``
    or raises ``error``."""

    def __init__(self, answer: Any = None, error: BaseException | None = None) -> None:
        self.answer, self.error = answer, error
        self.calls: list[tuple[str, Any]] = []

    def scope(self, operation: str) -> RequestScope:
        def run(name: str) -> Any:
            def operation_(scope: RequestScope, request: Any) -> Any:
                self.calls.append((name, request))
                if self.error is not None:
                    raise self.error
                return self.answer
            return operation_

        return RequestScope(
            operation=operation, correlation_id="c", received_at=datetime.now(UTC),
            headers=XRoadHeaders({}), actor=None, request_bytes=b"",
            operations={name: run(name) for name in ("FindPerson", "SubmitRegistration")},
        )


def test_the_two_hot_operations_are_called_directly() -> None:
    assert DISPATCHER.direct_operations == {f"{{{TNS}}}FindPerson",
                                            f"{{{TNS}}}SubmitRegistration"}


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize(("operation", "inner"), [("FindPerson", FIND),
                                                  ("SubmitRegistration", SUBMIT)])
def test_a_direct_call_answers_as_spynes(operation: str, inner: str, seed: int) -> None:
    rng = random.Random(seed)
    answer = _find_person_answer(rng) if operation == "FindPerson" else _submit_answer(rng)
    direct, through = _Recorder(answer), _Recorder(answer)
    ours = DISPATCHER.call(_payload(operation, inner), direct.scope(operation))
    theirs = DISPATCHER._call_through_spyne(_payload(operation, inner),
                                            through.scope(operation))
    assert serialize(ours) == serialize(theirs)
    assert [name for name, _ in direct.calls] == [operation]
    assert [(n, _as_tree(r)) for n, r in direct.calls] == [
        (n, _as_tree(r)) for n, r in through.calls]


@pytest.mark.parametrize("error", [
    GatewayError("no such person", code="Client.Person.NotFound"),
    InternalError("the registry broke"),
    RuntimeError("a bug"),
])
def test_an_operations_error_comes_out_unchanged(error: Exception) -> None:
    for call in (DISPATCHER.call, DISPATCHER._call_through_spyne):
        recorder = _Recorder(error=error)
        scope = recorder.scope("FindPerson")
        with pytest.raises(type(error)) as raised:
            call(_payload("FindPerson", FIND), scope)
        assert raised.value is error
        assert scope.error is error


def test_a_request_the_reader_hands_back_goes_through_spyne() -> None:
    # xsi:nil is spyne's to read; the operation still runs and answers.
    answer = _find_person_answer(random.Random(1))
    recorder = _Recorder(answer)
    payload = _payload("FindPerson", FIND.replace("<t:fin>6ZK4T2P</t:fin>",
                                                  '<t:fin xsi:nil="true"/>'))
    assert DISPATCHER.reader.read(APP.interface.service_method_map[
        f"{{{TNS}}}FindPerson"][0].in_message, payload) is None
    ours = DISPATCHER.call(payload, recorder.scope("FindPerson"))
    assert etree.QName(ours).localname == "FindPersonResponse"
    assert recorder.calls and recorder.calls[0][1].fin is None
