"""The hot requests' own reader (``gateway.soap.reader``) against spyne's deserializer: the same
objects (classes and every field's value) from the same payload, on many requests parsed with
the gateway's hardened parser (absent and present optional fields, Unicode, escaped markup,
CDATA, whitespace, every boolean spelling, empty elements); and every payload it does not read
as spyne would is handed back to spyne."""

from __future__ import annotations

import random
from typing import Any

import pytest
from lxml import etree
from spyne import ComplexModelBase, MethodContext
from spyne.server import ServerBase

from gateway.soap import models as m
from gateway.soap.dispatch import SpyneDispatcher
from gateway.soap.service import build_application
from signing.parser import parse_xml

APP = build_application()
DISPATCHER = SpyneDispatcher(APP)
SERVER = ServerBase(APP)
TNS = m.TNS
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _descriptor(operation: str) -> Any:
    return APP.interface.service_method_map[f"{{{TNS}}}{operation}"][0]


def _payload(operation: str, inner: str, attributes: str = "") -> etree._Element:
    envelope = parse_xml(
        f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        f'<t:{operation} xmlns:t="{TNS}" xmlns:xsi="{XSI}"{attributes}>{inner}</t:{operation}>'
        "</s:Body></s:Envelope>".encode()
    )
    return envelope[0][0]


def spyne_reads(operation: str, payload: etree._Element) -> Any:
    ctx = MethodContext(SERVER, MethodContext.SERVER)
    ctx.in_document = payload
    ctx.in_header_doc = None
    ctx.in_body_doc = payload
    ctx.method_request_string = payload.tag
    ctx.descriptor = _descriptor(operation)
    SERVER.get_in_object(ctx)
    assert ctx.in_error is None
    return ctx.in_object


def reader_reads(operation: str, payload: etree._Element) -> Any | None:
    return DISPATCHER.reader.read(_descriptor(operation).in_message, payload)


def _as_tree(value: Any) -> Any:
    """A model object as (class, {field: value}) all the way down, for comparing."""
    if isinstance(value, ComplexModelBase):
        cls = type(value)
        return (cls, {name: _as_tree(getattr(value, name, None))
                      for name in cls.get_flat_type_info(cls)})
    return (type(value), value)


def assert_same(operation: str, inner: str) -> None:
    ours = reader_reads(operation, _payload(operation, inner))
    assert ours is not None, "the reader handed a readable request back to spyne"
    assert _as_tree(ours) == _as_tree(spyne_reads(operation, _payload(operation, inner)))


TEXTS = [
    "Əliyev", "Nəsimi rayonu", "İş", "&lt;b&gt; &amp; &quot;", "<![CDATA[<raw> & ]]>",
    "  spaced  ", "line\nbreak\ttab", "&#13;", "\U0001f600", "x" * 200, "",
]
BOOLEANS = ["true", "false", "1", "0", " true ", "TRUE", ""]


def _text(rng: random.Random) -> str:
    return rng.choice(TEXTS)


def _element(name: str, value: str | None) -> str:
    if value is None:
        return ""
    if value == "" and len(name) % 2:  # both spellings of an empty element
        return f"<t:{name}/>"
    return f"<t:{name}>{value}</t:{name}>"


def _address(rng: random.Random) -> str:
    parts = [("region", _text(rng)), ("cityOrDistrict", _text(rng)), ("street", _text(rng)),
             ("house", _text(rng)), ("apartment", rng.choice([None, *TEXTS])),
             ("postalCode", rng.choice([None, "AZ1022", "AZ 1000", ""]))]
    return "".join(_element(name, value) for name, value in parts)


def _submit(rng: random.Random) -> str:
    parts = [
        ("voen", rng.choice(["1403567891", *TEXTS])),
        ("applicationId", rng.choice([None, "APP-1", *TEXTS])),
        ("documentType", rng.choice([None, "ID_CARD", "PERMANENT_RESIDENCE_PERMIT"])),
        ("fin", rng.choice([None, "6ZK4T2P", *TEXTS])),
        ("actualAddressDiffers", rng.choice([None, *BOOLEANS])),
    ]
    inner = "".join(_element(name, value) for name, value in parts)
    if rng.random() < 0.5:
        inner += f"<t:actualAddress>{_address(rng)}</t:actualAddress>"
    if rng.random() < 0.5:
        contacts = [("mobilePhone", rng.choice([None, "+994501234567", *TEXTS])),
                    ("landlinePhone", rng.choice([None, "012 555 12 34"])),
                    ("email", rng.choice([None, "a@b.az", *TEXTS]))]
        inner += f"<t:contacts>{''.join(_element(n, v) for n, v in contacts)}</t:contacts>"
    return inner


def _find(rng: random.Random) -> str:
    return (f"<t:voen>{rng.choice(['1403567891', *TEXTS])}</t:voen>"
            f"<t:documentType>{rng.choice(['ID_CARD', *TEXTS])}</t:documentType>"
            f"<t:fin>{rng.choice(['6ZK4T2P', *TEXTS])}</t:fin>")


def test_the_reader_covers_the_two_hot_requests() -> None:
    assert DISPATCHER.reader.messages == {
        _descriptor("FindPerson").in_message, _descriptor("SubmitRegistration").in_message,
    }


@pytest.mark.parametrize("seed", range(60))
def test_find_person_requests_read_as_spyne_reads_them(seed: int) -> None:
    assert_same("FindPerson", _find(random.Random(seed)))


@pytest.mark.parametrize("seed", range(150))
def test_submit_registration_requests_read_as_spyne_reads_them(seed: int) -> None:
    assert_same("SubmitRegistration", _submit(random.Random(seed)))


@pytest.mark.parametrize("boolean", BOOLEANS)
def test_every_boolean_spelling_reads_as_spyne_reads_it(boolean: str) -> None:
    assert_same("SubmitRegistration", f"<t:voen>1</t:voen><t:actualAddressDiffers>{boolean}"
                                      "</t:actualAddressDiffers>")


def test_the_emptiest_requests() -> None:
    assert_same("SubmitRegistration", "")
    assert_same("SubmitRegistration", "<t:voen/><t:actualAddress/><t:contacts/>")
    assert_same("FindPerson", "<t:voen></t:voen><t:fin/>")


@pytest.mark.parametrize(
    ("operation", "inner", "attributes"),
    [
        # spyne's own rules for xsi:nil (even "false" means nil to it) and xsi:type
        ("FindPerson", '<t:voen xsi:nil="false">1403567891</t:voen>', ""),
        ("FindPerson", "<t:voen>1</t:voen>", ' xsi:nil="true"'),
        ("SubmitRegistration", '<t:contacts xsi:type="t:Contacts"/>', ""),
        # an attribute named like a field of the parent
        ("SubmitRegistration", '<t:contacts fin="6ZK4T2P"/>', ""),
        ("FindPerson", "<t:fin>6ZK4T2P</t:fin>", ' voen="1403567891"'),
        # a field twice, an unknown element, a known name in another namespace
        ("FindPerson", "<t:fin>A</t:fin><t:fin>B</t:fin>", ""),
        ("FindPerson", "<t:surname>A</t:surname>", ""),
        ("FindPerson", '<o:fin xmlns:o="urn:other">6ZK4T2P</o:fin>', ""),
    ],
    ids=["nil-false", "nil-root", "xsi-type", "field-attribute", "root-attribute", "twice",
         "unknown", "other-namespace"],
)
def test_what_the_reader_does_not_know_is_handed_back_to_spyne(
    operation: str, inner: str, attributes: str
) -> None:
    assert reader_reads(operation, _payload(operation, inner, attributes)) is None


def test_other_operations_are_not_read_by_it() -> None:
    payload = _payload("DeleteDraft", "<t:voen>1403567891</t:voen>"
                                      "<t:applicationId>A</t:applicationId>")
    assert DISPATCHER.reader.read(_descriptor("DeleteDraft").in_message, payload) is None
