"""The hardened parser: every refusal with its exact error class and fault code."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lxml import etree

from signing.errors import XmlError, XmlForbidden, XmlMalformed, XmlTooDeep, XmlTooLarge
from signing.parser import ParserLimits, canonicalize, parse_xml, serialize

VECTORS = Path(__file__).resolve().parent / "vectors"  # the repository's copy, with licences
DEFUSED = VECTORS / "signxml" / "defusedxml-test-data"


def refused(data: bytes, expected: type[XmlError], limits: ParserLimits | None = None) -> XmlError:
    with pytest.raises(XmlError) as info:
        parse_xml(data, limits or ParserLimits())
    assert type(info.value) is expected, f"{type(info.value).__name__}: {info.value}"
    assert info.value.code == expected.code
    return info.value


def test_codes_are_the_documented_ones() -> None:
    assert XmlForbidden.code == "Client.Xml.Forbidden"
    assert XmlTooLarge.code == "Client.Xml.TooLarge"
    assert XmlTooDeep.code == "Client.Xml.TooDeep"
    assert XmlMalformed.code == "Client.Xml.Malformed"


def test_plain_document_parses_and_serializes() -> None:
    root = parse_xml('<a xmlns="urn:a"><b c="1">Ölçü</b></a>'.encode())
    assert root.tag == "{urn:a}a"
    assert serialize(root) == '<a xmlns="urn:a"><b c="1">Ölçü</b></a>'.encode()
    assert canonicalize(root) == serialize(root)


def test_comments_are_dropped_and_the_text_joins_up() -> None:
    """What every consumer reads is what a comment-free signature covers (CVE-2017-11427)."""
    root = parse_xml(b"<a><!-- c --><fin>AB<!---->CDEFG</fin><d>x<!--y-->z</d></a>")
    assert root[0].text == "ABCDEFG"
    assert root[1].text == "xz"
    assert serialize(root) == b"<a><fin>ABCDEFG</fin><d>xz</d></a>"


def test_utf16_document_parses() -> None:
    data = '<?xml version="1.0" encoding="UTF-16"?><a>ş</a>'.encode("utf-16")
    assert parse_xml(data).text == "ş"


def test_doctype_inside_cdata_is_just_text() -> None:
    root = parse_xml(b"<a><!-- <!DOCTYPE y> --><![CDATA[<!DOCTYPE x [<!ENTITY e 'x'>]>]]></a>")
    assert root.text is not None and root.text.startswith("<!DOCTYPE")


# --- DTDs and entities -------------------------------------------------------------------------


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""


def test_billion_laughs_is_forbidden_and_cheap() -> None:
    started = time.perf_counter()
    refused(BILLION_LAUGHS, XmlForbidden)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    "data",
    [
        b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>',
        b'<!DOCTYPE r SYSTEM "file:///etc/passwd"><r/>',
        b'<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><r/>',
        b'<!DOCTYPE r [<!ENTITY e SYSTEM "http://127.0.0.1:9/x">]><r>&e;</r>',
        b'<!DOCTYPE r PUBLIC "-//X//DTD X//EN" "http://127.0.0.1:9/x.dtd"><r/>',
        b'<!DOCTYPE r [<!ENTITY e "abc">]><r a="&e;"/>',
        b"<!DOCTYPE r><r/>",
        b'<?xml version="1.0"?>\n<!-- c -->\n<?pi?>\n<!DOCTYPE r []><r/>',
        "\ufeff<!DOCTYPE r><r/>".encode(),
        '<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>'.encode("utf-16"),
    ],
    ids=[
        "xxe-file",
        "external-dtd-file",
        "parameter-entity",
        "xxe-network",
        "public-dtd-network",
        "entity-in-attribute",
        "empty-doctype",
        "doctype-after-comment-and-pi",
        "doctype-after-bom",
        "utf16-xxe",
    ],
)
def test_any_doctype_is_forbidden(data: bytes) -> None:
    refused(data, XmlForbidden)


def test_xxe_never_reads_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    data = f'<!DOCTYPE r [<!ENTITY e SYSTEM "{secret.as_uri()}">]><r>&e;</r>'.encode()
    error = refused(data, XmlForbidden)
    assert "TOP-SECRET" not in str(error)
    # Even past the prolog check, the parser itself neither resolves nor fetches.
    from signing import parser as parser_module

    parser = parser_module._new_parser()
    with pytest.raises(parser_module._ExternalFetchRefused):
        etree.fromstring(f'<!DOCTYPE r SYSTEM "{secret.as_uri()}"><r/>'.encode(), parser)
    root = etree.fromstring(data, parser)
    assert "TOP-SECRET" not in etree.tostring(root).decode()


def test_undeclared_entity_is_malformed() -> None:
    refused(b"<r>&undeclared;</r>", XmlMalformed)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("xmlbomb.xml", XmlForbidden),
        ("xmlbomb2.xml", XmlForbidden),
        ("quadratic.xml", XmlForbidden),
        ("cyclic.xml", XmlForbidden),
        ("external.xml", XmlForbidden),
        ("external_file.xml", XmlForbidden),
        ("dtd.xml", XmlForbidden),
        ("simple-ns.xml", XmlForbidden),  # a processing instruction before the root
    ],
)
def test_defusedxml_corpus(name: str, expected: type[XmlError]) -> None:
    path = DEFUSED / name
    started = time.perf_counter()
    refused(path.read_bytes(), expected)
    assert time.perf_counter() - started < 1.0


def test_defusedxml_simple_document_is_fine() -> None:
    path = DEFUSED / "simple.xml"
    assert parse_xml(path.read_bytes()).tag == "root"


# --- processing instructions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml-stylesheet type="text/xsl" href="http://127.0.0.1:9/x.xsl"?><r/>',
        b"<r/><?after x?>",
        b"<r><a><?inside x?></a></r>",
    ],
    ids=["before-root", "after-root", "inside"],
)
def test_processing_instructions_are_forbidden(data: bytes) -> None:
    refused(data, XmlForbidden)


def test_xml_declaration_is_not_a_processing_instruction() -> None:
    assert parse_xml(b'<?xml version="1.0" encoding="UTF-8"?><r/>').tag == "r"


# --- size and shape ------------------------------------------------------------------------------


def test_too_large_is_refused_before_parsing() -> None:
    limits = ParserLimits(max_bytes=100)
    refused(b"<r>" + b"x" * 100 + b"</r>", XmlTooLarge, limits)
    refused(b"<" * 200, XmlTooLarge, limits)  # not even looked at


def test_exactly_at_the_size_limit_is_fine() -> None:
    data = b"<r>" + b"x" * 93 + b"</r>"
    assert len(data) == 100
    parse_xml(data, ParserLimits(max_bytes=100))


def test_depth_limit() -> None:
    limits = ParserLimits(max_depth=10)
    parse_xml(b"<a>" * 10 + b"</a>" * 10, limits)
    refused(b"<a>" * 11 + b"</a>" * 11, XmlTooDeep, limits)


def test_depth_beyond_libxml2s_own_limit_is_too_deep() -> None:
    refused(b"<a>" * 5000 + b"</a>" * 5000, XmlTooDeep)


def test_too_many_elements() -> None:
    limits = ParserLimits(max_elements=100)
    parse_xml(b"<r>" + b"<e/>" * 99 + b"</r>", limits)
    refused(b"<r>" + b"<e/>" * 100 + b"</r>", XmlTooLarge, limits)


def test_attribute_too_long() -> None:
    limits = ParserLimits(max_attribute_bytes=1000)
    parse_xml(b'<r a="' + b"x" * 1000 + b'"/>', limits)
    refused(b'<r a="' + b"x" * 1001 + b'"/>', XmlTooLarge, limits)


# --- malformed -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not xml",
        b"<r>",
        b"<r></s>",
        b"<r a='1' a='2'/>",
        b"<p:r/>",
        b"<r/><r/>",
        b'<?xml version="1.0" encoding="no-such-encoding"?><r/>',
        b"<r>\x00</r>",
    ],
    ids=[
        "empty",
        "text",
        "unclosed",
        "mismatched",
        "duplicate-attribute",
        "unbound-prefix",
        "two-roots",
        "bad-encoding",
        "nul-byte",
    ],
)
def test_malformed(data: bytes) -> None:
    refused(data, XmlMalformed)


def test_relative_namespace_uri_cannot_be_canonicalized() -> None:
    root = parse_xml(b'<a xmlns="relative"><b/></a>')
    with pytest.raises(XmlMalformed):
        canonicalize(root[0])
