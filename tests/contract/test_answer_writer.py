"""The hot answers' own writer (``gateway.soap.writer``) against spyne's serializer: byte for byte
the same answer, placed in the gateway's envelope as the endpoint places it, on many answers
(absent and present optional fields, Unicode, markup to escape, dates, the empty cases); and
every value it does not write as spyne would is handed back to spyne."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import pytest
from lxml import etree
from spyne import MethodContext
from spyne.server import ServerBase

from gateway.soap import models as m
from gateway.soap.dispatch import SpyneDispatcher
from gateway.soap.service import build_application
from signing.parser import serialize

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
APP = build_application()
DISPATCHER = SpyneDispatcher(APP)
SERVER = ServerBase(APP)


def _descriptor(operation: str) -> Any:
    return APP.interface.service_method_map[f"{{{m.TNS}}}{operation}"][0]


def _in_envelope(answer: etree._Element) -> bytes:
    """The answer in an envelope built as ``SoapEndpoint._respond`` builds it (unsigned)."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV})
    etree.SubElement(envelope, f"{{{SOAP_ENV}}}Header")
    etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body").append(answer)
    return serialize(envelope)


def spyne_writes(operation: str, answer: Any) -> bytes:
    ctx = MethodContext(SERVER, MethodContext.SERVER)
    ctx.descriptor = _descriptor(operation)
    ctx.out_object = [answer]
    APP.out_protocol.serialize(ctx, message=APP.out_protocol.RESPONSE)
    assert ctx.out_error is None
    return _in_envelope(ctx.out_body_doc[0])


def writer_writes(operation: str, answer: Any) -> bytes | None:
    written = DISPATCHER.writer.write(_descriptor(operation).out_message, answer)
    return None if written is None else _in_envelope(written)


def assert_same(operation: str, answer: Any) -> None:
    ours = writer_writes(operation, answer)
    assert ours is not None, "the writer handed a writable answer back to spyne"
    theirs = spyne_writes(operation, answer)
    assert ours == theirs
    assert etree.tostring(etree.fromstring(ours), method="c14n") == etree.tostring(
        etree.fromstring(theirs), method="c14n")


TEXTS = [
    "Əliyev", "Rəşad", "Vaqif oğlu", "İsmayılov Ömər Şükür", "Çiçək", "Ağasəf qızı",
    "A<B>&C", "]]>", "\"q\" 'a'", "&amp;", "  spaced  ", "line\nbreak\ttab\r", "\U0001f600",
    "x" * 200, "",
]
DATES = [date(1979, 3, 14), date(1, 1, 1), date(9999, 12, 31), date(2024, 2, 29)]


def _document(rng: random.Random) -> m.IdentityDocument:
    return m.IdentityDocument(
        documentType=rng.choice(["ID_CARD", "TEMPORARY_RESIDENCE_PERMIT"]),
        series=rng.choice([None, "AA", *TEXTS]),
        number=rng.choice(["1234567", *TEXTS]),
        issueDate=rng.choice(DATES),
        issuer=rng.choice(TEXTS),
        expiryDate=rng.choice([None, *DATES]),
    )


def _person(rng: random.Random) -> m.Person:
    return m.Person(
        fin=rng.choice(["6ZK4T2P", "A1B2C", *TEXTS]), surname=rng.choice(TEXTS),
        name=rng.choice(TEXTS), patronymic=rng.choice([None, *TEXTS]),
        birthDate=rng.choice(DATES), birthPlace=rng.choice([None, *TEXTS]),
        sex=rng.choice(["M", "F"]), citizenship=rng.choice(["AZE", "TUR"]),
        document=_document(rng),
    )


def _address(rng: random.Random) -> m.Address:
    return m.Address(
        region=rng.choice(TEXTS), cityOrDistrict=rng.choice(TEXTS), street=rng.choice(TEXTS),
        house=rng.choice(TEXTS), apartment=rng.choice([None, *TEXTS]),
        postalCode=rng.choice([None, "AZ1022", "AZ 1000"]),
    )


def _find_person_answer(rng: random.Random) -> m.FindPersonResponse:
    if rng.random() < 0.3:
        return m.FindPersonResponse(outcome="SSN_EXISTS", existingInsured=m.ExistingInsured(
            surname=rng.choice(TEXTS), name=rng.choice(TEXTS),
            patronymic=rng.choice([None, *TEXTS]), ssn="1234567890"))
    return m.FindPersonResponse(
        outcome="FOUND", person=_person(rng),
        registrationAddress=rng.choice([None, _address(rng)]),
    )


def _submit_answer(rng: random.Random) -> m.SubmitRegistrationResponse:
    return m.SubmitRegistrationResponse(result=m.ApplicationResult(
        applicationId=rng.choice(["APP-2026-000001", *TEXTS]),
        status=rng.choice(["REGISTERED", "SUBMITTED", "REJECTED"]),
        ssn=rng.choice([None, "1234567890123"]), ssnDate=rng.choice([None, *DATES]),
        message=rng.choice([None, *TEXTS]),
    ))


def test_the_writer_covers_the_two_hot_answers() -> None:
    assert DISPATCHER.writer.messages == {
        _descriptor("FindPerson").out_message, _descriptor("SubmitRegistration").out_message,
    }


@pytest.mark.parametrize("seed", range(150))
def test_find_person_answers_are_byte_for_byte_spynes(seed: int) -> None:
    assert_same("FindPerson", _find_person_answer(random.Random(seed)))


@pytest.mark.parametrize("seed", range(100))
def test_submit_registration_answers_are_byte_for_byte_spynes(seed: int) -> None:
    assert_same("SubmitRegistration", _submit_answer(random.Random(seed)))


def test_the_empty_and_the_fullest_answers() -> None:
    assert_same("FindPerson", m.FindPersonResponse(outcome="FOUND"))
    assert_same("FindPerson", m.FindPersonResponse(outcome=""))
    full = m.FindPersonResponse(
        outcome="FOUND",
        person=m.Person(fin="6ZK4T2P", surname="Əliyev", name="Rəşad", patronymic="Vaqif oğlu",
                        birthDate=date(1979, 3, 14), birthPlace="Bakı", sex="M",
                        citizenship="AZE", document=m.IdentityDocument(
                            documentType="ID_CARD", series="AA", number="1234567",
                            issueDate=date(2020, 1, 1), issuer="ASAN xidmət",
                            expiryDate=date(2030, 1, 1))),
        registrationAddress=m.Address(region="Bakı şəhəri", cityOrDistrict="Nəsimi rayonu",
                                      street="Azadlıq prospekti", house="126", apartment="51",
                                      postalCode="AZ1097"),
        existingInsured=m.ExistingInsured(surname="Əliyev", name="Rəşad", ssn="1"),
    )
    assert_same("FindPerson", full)
    assert_same("SubmitRegistration", m.SubmitRegistrationResponse(
        result=m.ApplicationResult(applicationId="A", status="SUBMITTED")))


class _Sex(StrEnum):
    MALE = "M"


F, S = "FindPerson", "SubmitRegistration"


@pytest.mark.parametrize(
    ("operation", "answer"),
    [
        # a required field that is None: spyne writes xsi:nil
        (F, m.FindPersonResponse(outcome=None)),
        (F, m.FindPersonResponse(outcome="FOUND", person=m.Person(fin="6ZK4T2P"))),
        (S, m.SubmitRegistrationResponse()),
        # values of other Python types than the writer's
        (F, m.FindPersonResponse(outcome=_Sex.MALE)),
        (F, m.FindPersonResponse(outcome=b"FOUND")),
        (S, m.SubmitRegistrationResponse(result=m.ApplicationResult(
            applicationId="A", status="REGISTERED", ssnDate=datetime(2026, 1, 2, 3, tzinfo=UTC)))),
        # text XML cannot hold
        (F, m.FindPersonResponse(outcome="FO\x00UND")),
        # not the message's type
        (F, m.SubmitRegistrationResponse(result=m.ApplicationResult(applicationId="A",
                                                                    status="REGISTERED"))),
    ],
    ids=["nil-outcome", "nil-in-person", "nil-result", "enum", "bytes", "datetime-in-date",
         "nul", "wrong-type"],
)
def test_what_the_writer_does_not_know_is_handed_back_to_spyne(
    operation: str, answer: Any
) -> None:
    assert writer_writes(operation, answer) is None


def test_other_operations_are_not_written_by_it() -> None:
    answer = m.SaveDraftResponse(applicationId="A", status="DRAFT",
                                 savedAt=datetime(2026, 1, 1, tzinfo=UTC))
    assert DISPATCHER.writer.write(_descriptor("SaveDraft").out_message, answer) is None
