"""Contract tests: the authored WSDL/XSD compile, load in zeep, and agree with spyne's models.

The contract in ``wsdl/`` + ``xsd/`` is the source of truth. These tests make sure that
* every XSD compiles with xmlschema and with lxml, every WSDL loads in zeep;
* ``wsdl/gateway.wsdl`` follows the fixed conventions (names, headers, faults, soapAction);
* the operations of the WSDL, of the spyne application and of ``OPERATIONS`` are the same;
* spyne's generated schema has the same elements, order and occurrences as the authored one;
* the golden requests validate, the golden invalid ones do not, and golden requests and
  responses survive a round trip through the real spyne application unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import xmlschema
import zeep
from lxml import etree
from spyne import MethodContext, XmlAttribute
from spyne.interface.wsdl import Wsdl11
from spyne.model.complex import ComplexModelBase
from spyne.server import ServerBase
from spyne.util.xml import get_object_as_xml, get_xml_as_object
from xmlschema.extras.wsdl import Wsdl11Document

from gateway.domain.errors import ValidationFailed
from gateway.messages import fault_message
from gateway.messages.faults import BY_CODE
from gateway.soap import models
from gateway.soap.contract import Contract
from gateway.soap.service import OPERATIONS, build_application

REPO = Path(__file__).resolve().parents[2]
XSD_DIR = REPO / "xsd"
WSDL_DIR = REPO / "wsdl"
GOLDEN = Path(__file__).resolve().parent / "golden"

TNS = "urn:az:dsmf:insured-registration:v1"
XRD = "http://x-road.eu/xsd/xroad.xsd"
XID = "http://x-road.eu/xsd/identifiers"
XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAPB = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"

REQUEST_HEADERS = ("client", "service", "id", "userId", "issue", "protocolVersion")
RESPONSE_HEADERS = (*REQUEST_HEADERS, "requestHash")
SESSION_PART = "sessionTokenHeader"


def header_part(element: str) -> str:
    """The WSDL part name of an X-Road header element: prefixed, so no part is named like a
    body element (wsimport -XadditionalHeaders makes both method parameters)."""
    return "xroad" + element[0].upper() + element[1:]

XSD_FILES = sorted(XSD_DIR.rglob("*.xsd"))
WSDL_FILES = sorted(WSDL_DIR.glob("*.wsdl")) + sorted((WSDL_DIR / "upstream").glob("*.wsdl"))
CONTRACT = Contract(WSDL_DIR / "gateway.wsdl", XSD_DIR)
VALID = sorted((GOLDEN / "valid").glob("*.xml"))
INVALID = sorted((GOLDEN / "invalid").glob("*.xml"))
RESPONSES = sorted((GOLDEN / "responses").glob("*.xml"))


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO)) for p in paths]


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _parse(path: Path) -> etree._ElementTree:
    return etree.parse(str(path), _parser())


@cache
def _lxml_schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(_parse(XSD_DIR / name))


@cache
def _xmlschema(name: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD_DIR / name))


def _standalone(el: etree._Element) -> etree._ElementTree:
    """A copy of ``el`` as the root of its own document (keeps the in-scope namespaces)."""
    return etree.ElementTree(etree.fromstring(etree.tostring(el), _parser()))


def _schema_name_for(el: etree._Element) -> str:
    ns = etree.QName(el).namespace
    return {TNS: "gateway.xsd", XRD: "xroad.xsd"}.get(ns or "", "gateway.xsd")


def _lxml_errors(el: etree._Element) -> list[str]:
    schema = _lxml_schema(_schema_name_for(el))
    ok = schema.validate(_standalone(el))
    return [] if ok else str(schema.error_log).splitlines()


def _children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _split_envelope(path: Path) -> tuple[list[etree._Element], etree._Element]:
    """Headers and the single Body payload of a golden envelope (structure asserted)."""
    root = _parse(path).getroot()
    assert root.tag == f"{{{SOAPENV}}}Envelope"
    parts = _children(root)
    assert [p.tag for p in parts] == [f"{{{SOAPENV}}}Header", f"{{{SOAPENV}}}Body"]
    payload = _children(parts[1])
    assert len(payload) == 1, "a document/literal Body holds exactly one element"
    return _children(parts[0]), payload[0]


def _service_code(headers: list[etree._Element]) -> str | None:
    for h in headers:
        if h.tag == f"{{{XRD}}}service":
            return h.findtext(f"{{{XID}}}serviceCode")
    return None


# -- schemas and WSDLs compile ---------------------------------------------------------------


def test_expected_contract_files_exist() -> None:
    for rel in ("xsd/gateway.xsd", "xsd/xroad.xsd", "xsd/xroad-identifiers.xsd"):
        assert (REPO / rel).is_file(), rel
    assert (WSDL_DIR / "gateway.wsdl").is_file()


@pytest.mark.parametrize("path", XSD_FILES, ids=_ids(XSD_FILES))
def test_xsd_compiles_with_xmlschema(path: Path) -> None:
    xmlschema.XMLSchema(str(path))


@pytest.mark.parametrize("path", XSD_FILES, ids=_ids(XSD_FILES))
def test_xsd_compiles_with_lxml(path: Path) -> None:
    etree.XMLSchema(_parse(path))


@pytest.mark.parametrize("path", WSDL_FILES, ids=_ids(WSDL_FILES))
def test_wsdl_loads_in_zeep(path: Path) -> None:
    client = zeep.Client(str(path))
    operations = {
        name
        for service in client.wsdl.services.values()
        for port in service.ports.values()
        for name in port.binding._operations
    }
    assert operations, f"zeep found no operations in {path.name}"


def test_gateway_wsdl_is_valid_wsdl11() -> None:
    """xmlschema's WSDL 1.1 reader validates the document against the WSDL schema too."""
    wsdl = Wsdl11Document(str(WSDL_DIR / "gateway.wsdl"))
    binding = wsdl.bindings[f"{{{TNS}}}InsuredRegistrationBinding"]
    assert {name for name, _, _ in binding.operations} == set(OPERATIONS)


def test_wsdl_embedded_schema_compiles_with_lxml() -> None:
    """The WSDL's types section (imports by relative path) compiles with lxml as stored."""
    wsdl_path = WSDL_DIR / "gateway.wsdl"
    schemas = _parse(wsdl_path).getroot().findall(f"{{{WSDL}}}types/{{{XS}}}schema")
    assert len(schemas) == 1
    doc = etree.fromstring(etree.tostring(schemas[0]), _parser(), base_url=str(wsdl_path))
    schema = etree.XMLSchema(doc)
    # Body and header elements of both namespaces are known through the imports.
    _, payload = _split_envelope(GOLDEN / "valid" / "FindPerson.xml")
    assert schema.validate(_standalone(payload)), schema.error_log


# -- the WSDL follows the conventions ---------------------------------------------------------


@cache
def _gateway_wsdl() -> etree._Element:
    return _parse(WSDL_DIR / "gateway.wsdl").getroot()


def _wsdl_operations() -> list[str]:
    root = _gateway_wsdl()
    return [op.get("name", "") for op in root.iterfind(f"{{{WSDL}}}portType/{{{WSDL}}}operation")]


def test_wsdl_names() -> None:
    root = _gateway_wsdl()
    assert root.get("targetNamespace") == TNS
    port_types = root.findall(f"{{{WSDL}}}portType")
    assert [p.get("name") for p in port_types] == ["InsuredRegistrationPortType"]
    bindings = root.findall(f"{{{WSDL}}}binding")
    assert [b.get("name") for b in bindings] == ["InsuredRegistrationBinding"]
    assert bindings[0].get("type") == "tns:InsuredRegistrationPortType"
    soap_binding = bindings[0].find(f"{{{SOAPB}}}binding")
    assert soap_binding is not None
    assert soap_binding.get("style") == "document"
    assert soap_binding.get("transport") == "http://schemas.xmlsoap.org/soap/http"
    services = root.findall(f"{{{WSDL}}}service")
    assert [s.get("name") for s in services] == ["InsuredRegistrationService"]
    ports = services[0].findall(f"{{{WSDL}}}port")
    assert [p.get("name") for p in ports] == ["InsuredRegistrationPort"]
    assert ports[0].get("binding") == "tns:InsuredRegistrationBinding"
    address = ports[0].find(f"{{{SOAPB}}}address")
    assert address is not None and address.get("location") == "http://localhost:8080/soap"
    imports = {
        i.get("namespace"): i.get("schemaLocation")
        for i in root.iterfind(f"{{{WSDL}}}types/{{{XS}}}schema/{{{XS}}}import")
    }
    assert imports == {TNS: "../xsd/gateway.xsd", XRD: "../xsd/xroad.xsd"}


def test_wsdl_messages_are_wrapped_elements() -> None:
    root = _gateway_wsdl()
    messages = {m.get("name"): m for m in root.iterfind(f"{{{WSDL}}}message")}
    for op in _wsdl_operations():
        for name in (op, f"{op}Response"):
            parts = messages[name].findall(f"{{{WSDL}}}part")
            assert [(p.get("name"), p.get("element")) for p in parts] == [(name, f"tns:{name}")]
    fault_parts = messages["GatewayFault"].findall(f"{{{WSDL}}}part")
    assert [(p.get("name"), p.get("element")) for p in fault_parts] == [
        ("FaultDetail", "tns:FaultDetail")
    ]


def test_wsdl_port_type_and_binding_per_operation() -> None:
    root = _gateway_wsdl()
    port_type = root.find(f"{{{WSDL}}}portType")
    binding = root.find(f"{{{WSDL}}}binding")
    assert port_type is not None and binding is not None
    pt_ops = {op.get("name"): op for op in port_type.iterfind(f"{{{WSDL}}}operation")}
    b_ops = {op.get("name"): op for op in binding.iterfind(f"{{{WSDL}}}operation")}
    assert list(pt_ops) == list(b_ops)
    for name, op in pt_ops.items():
        inp, out, fault = (op.find(f"{{{WSDL}}}{t}") for t in ("input", "output", "fault"))
        assert inp is not None and inp.get("message") == f"tns:{name}"
        assert out is not None and out.get("message") == f"tns:{name}Response"
        assert fault is not None and fault.get("name") == "GatewayFault"
        assert fault.get("message") == "tns:GatewayFault"

        bop = b_ops[name]
        soap_op = bop.find(f"{{{SOAPB}}}operation")
        assert soap_op is not None and soap_op.get("soapAction") == name
        b_in, b_out = bop.find(f"{{{WSDL}}}input"), bop.find(f"{{{WSDL}}}output")
        assert b_in is not None and b_out is not None
        for section in (b_in, b_out):
            body = section.find(f"{{{SOAPB}}}body")
            assert body is not None and body.get("use") == "literal"
            assert body.get("parts") is None
        in_headers = [
            (h.get("message"), h.get("part"), h.get("use"))
            for h in b_in.iterfind(f"{{{SOAPB}}}header")
        ]
        assert in_headers == [
            *(("tns:XRoadRequestHeader", header_part(p), "literal") for p in REQUEST_HEADERS),
            ("tns:SessionHeader", SESSION_PART, "literal"),
        ]
        out_headers = [
            (h.get("message"), h.get("part"), h.get("use"))
            for h in b_out.iterfind(f"{{{SOAPB}}}header")
        ]
        assert out_headers == [("tns:XRoadResponseHeader", header_part(p), "literal")
                               for p in RESPONSE_HEADERS]
        b_fault = bop.find(f"{{{WSDL}}}fault/{{{SOAPB}}}fault")
        assert b_fault is not None
        assert (b_fault.get("name"), b_fault.get("use")) == ("GatewayFault", "literal")


def test_wsdl_header_messages() -> None:
    root = _gateway_wsdl()
    messages = {m.get("name"): m for m in root.iterfind(f"{{{WSDL}}}message")}

    def parts(name: str) -> list[tuple[str | None, str | None]]:
        return [(p.get("name"), p.get("element")) for p in messages[name]]

    assert parts("XRoadRequestHeader") == [(header_part(p), f"xrd:{p}") for p in REQUEST_HEADERS]
    assert parts("XRoadResponseHeader") == [(header_part(p), f"xrd:{p}")
                                            for p in RESPONSE_HEADERS]
    assert parts("SessionHeader") == [(SESSION_PART, "tns:sessionToken")]


def test_header_part_names_differ_from_every_element_name() -> None:
    """What ``wsimport -XadditionalHeaders`` needs (it failed on userId, service,
    sessionToken): header parts become method parameters beside the body's elements."""
    root = _gateway_wsdl()
    header_parts = {
        p.get("name")
        for m in root.iterfind(f"{{{WSDL}}}message") if m.get("name", "").endswith("Header")
        for p in m
    }
    element_names = {
        el.get("name")
        for path in XSD_FILES
        for el in _parse(path).getroot().iter(f"{{{XS}}}element")
        if el.get("name")
    }
    assert header_parts and element_names
    assert header_parts.isdisjoint(element_names), header_parts & element_names


def test_zeep_sees_headers_and_fault() -> None:
    client = zeep.Client(str(WSDL_DIR / "gateway.wsdl"))
    binding = client.wsdl.bindings[f"{{{TNS}}}InsuredRegistrationBinding"]
    op = binding.get("FindPerson")
    assert op.soapaction == "FindPerson"
    in_headers = [name for name, _ in op.input.header.type.elements]
    assert in_headers == [*(header_part(p) for p in REQUEST_HEADERS), SESSION_PART]
    out_headers = [name for name, _ in op.output.header.type.elements]
    assert out_headers == [header_part(p) for p in RESPONSE_HEADERS]
    assert set(op.faults) == {"GatewayFault"}


def test_zeep_builds_schema_valid_requests() -> None:
    """An ERP using zeep on this WSDL produces bodies and headers our schema accepts."""
    client = zeep.Client(str(WSDL_DIR / "gateway.wsdl"))
    client_id = client.get_element(f"{{{XRD}}}client")
    service_id = client.get_element(f"{{{XRD}}}service")
    headers = [
        client_id(
            xRoadInstance="AZ",
            memberClass="COM",
            memberCode="1401234561",
            subsystemCode="erp",
            objectType="SUBSYSTEM",
        ),
        service_id(
            xRoadInstance="AZ",
            memberClass="GOV",
            memberCode="DSMF",
            subsystemCode="insured-registration",
            serviceCode="GrantAuthority",
            serviceVersion="v1",
            objectType="SERVICE",
        ),
        client.get_element(f"{{{XRD}}}id")("d3b07384-d9a0-4c9b-8f5e-5a8e1f0c2b11"),
        client.get_element(f"{{{XRD}}}protocolVersion")("4.0"),
    ]
    envelope = client.create_message(
        client.service,
        "GrantAuthority",
        voen="1401234561",
        eServiceCode="INSURED_REGISTRATION",
        authorityType="ASAN_IMZA",
        asanPhone="+994501234567",
        asanUserId="123456",
        fin="7HQ9R3T",
        trusted=True,
        _soapheaders=headers,
    )
    header = envelope.find(f"{{{SOAPENV}}}Header")
    body = envelope.find(f"{{{SOAPENV}}}Body")
    assert header is not None and body is not None
    for el in [*_children(header), *_children(body)]:
        assert _lxml_errors(el) == [], etree.tostring(el)


# -- the operation sets agree ----------------------------------------------------------------


@cache
def _spyne_wsdl() -> etree._Element:
    wsdl = Wsdl11(build_application().interface)
    wsdl.build_interface_document("http://localhost/")
    return etree.fromstring(wsdl.get_interface_document(), _parser())


def test_operation_sets_agree() -> None:
    authored = _wsdl_operations()
    assert len(authored) == len(set(authored))
    spyne_ops = {
        op.get("name") for op in _spyne_wsdl().iterfind(f"{{{WSDL}}}portType/{{{WSDL}}}operation")
    }
    assert len(OPERATIONS) == len(set(OPERATIONS))
    assert set(authored) == spyne_ops == set(OPERATIONS)
    assert tuple(authored) == OPERATIONS


def test_every_operation_has_request_and_response_elements() -> None:
    globals_ = {
        el.get("name"): el.get("type")
        for el in _parse(XSD_DIR / "gateway.xsd").getroot().iterfind(f"{{{XS}}}element")
    }
    for op in OPERATIONS:
        assert globals_[op] == f"tns:{op}Request"
        assert globals_[f"{op}Response"] == f"tns:{op}Response"


# -- spyne's schema mirrors the authored one -------------------------------------------------

Particle = tuple[str | None, str | None, str, str, str | None, bool]
"""(element namespace, name, minOccurs, maxOccurs, complex type name or None, nillable)."""


class _SchemaSet:
    """Named complex types and global elements of a set of xs:schema elements."""

    def __init__(self, schemas: list[etree._Element]) -> None:
        self.complex: dict[tuple[str, str], tuple[str, etree._Element]] = {}
        self.elements: dict[tuple[str, str], etree._Element] = {}
        for schema in schemas:
            tns = schema.get("targetNamespace", "")
            for ct in schema.iterfind(f"{{{XS}}}complexType"):
                self.complex[(tns, ct.get("name", ""))] = (tns, ct)
            for el in schema.iterfind(f"{{{XS}}}element"):
                self.elements[(tns, el.get("name", ""))] = el

    @staticmethod
    def _qname(ref: str, ctx: etree._Element) -> tuple[str, str]:
        prefix, _, local = ref.rpartition(":")
        return ctx.nsmap.get(prefix or None, ""), local

    def sequence(self, key: tuple[str, str]) -> list[Particle]:
        tns, ct = self.complex[key]
        assert ct.find(f"{{{XS}}}complexContent") is None, f"{key}: no derivation expected"
        seqs = ct.findall(f"{{{XS}}}sequence")
        assert len(seqs) <= 1
        if not seqs:
            return []
        result: list[Particle] = []
        for el in _children(seqs[0]):
            assert el.tag == f"{{{XS}}}element", f"{key}: only xs:element in sequences"
            type_key = self._qname(el.get("type", ""), el)
            result.append(
                (
                    tns,
                    el.get("name"),
                    el.get("minOccurs", "1"),
                    el.get("maxOccurs", "1"),
                    type_key[1] if type_key in self.complex else None,
                    el.get("nillable", "false") == "true",
                )
            )
        return result

    def element_type(self, key: tuple[str, str]) -> tuple[str, str]:
        el = self.elements[key]
        return self._qname(el.get("type", ""), el)


def _xsd_schema_elements(path: Path, seen: set[Path] | None = None) -> list[etree._Element]:
    seen = set() if seen is None else seen
    if path in seen:
        return []
    seen.add(path)
    root = _parse(path).getroot()
    result = [root]
    for imp in root.iterfind(f"{{{XS}}}import"):
        loc = imp.get("schemaLocation")
        if loc:
            result += _xsd_schema_elements((path.parent / loc).resolve(), seen)
    return result


@cache
def _authored() -> _SchemaSet:
    return _SchemaSet(_xsd_schema_elements((XSD_DIR / "gateway.xsd").resolve()))


@cache
def _spyne() -> _SchemaSet:
    return _SchemaSet(_spyne_wsdl().findall(f"{{{WSDL}}}types/{{{XS}}}schema"))


# Types that spyne names differently: an empty model cannot be a bare argument in spyne, so
# these requests are produced by spyne as types named like the element (compared per element
# below). FaultDetail and the X-Road client identifier are not referenced by any spyne method
# (faults and headers are built outside spyne); test_model_class_matches_xsd covers them.
NOT_IN_SPYNE = {
    (TNS, "ListEServicesRequest"),
    (TNS, "ListLocalOfficesRequest"),
    (TNS, "listMethodsRequest"),
    (TNS, "FaultDetail"),
    (XID, "XRoadClientIdentifierType"),
}


def test_spyne_defines_every_authored_complex_type() -> None:
    authored = set(_authored().complex)
    missing = authored - set(_spyne().complex) - NOT_IN_SPYNE
    assert not missing


@pytest.mark.parametrize(
    "key",
    sorted(set(_authored().complex) - NOT_IN_SPYNE),
    ids=lambda k: k[1],
)
def test_complex_type_matches_spyne(key: tuple[str, str]) -> None:
    assert _spyne().sequence(key) == _authored().sequence(key)


@pytest.mark.parametrize("name", [n for op in OPERATIONS for n in (op, f"{op}Response")])
def test_operation_element_matches_spyne(name: str) -> None:
    authored_type = _authored().element_type((TNS, name))
    spyne_type = _spyne().element_type((TNS, name))
    assert _spyne().sequence(spyne_type) == _authored().sequence(authored_type)


def _model_classes() -> Iterator[type[ComplexModelBase]]:
    for value in vars(models).values():
        if (
            isinstance(value, type)
            and issubclass(value, ComplexModelBase)
            and value.__module__ == models.__name__
            and not value.__name__.startswith("_")
        ):
            yield value


@pytest.mark.parametrize("cls", list(_model_classes()), ids=lambda c: c.__name__)
def test_model_class_matches_xsd(cls: type[ComplexModelBase]) -> None:
    """Every model (also those spyne's WSDL omits) has the authored type's exact sequence."""
    key = (cls.get_namespace(), cls.get_type_name())
    assert key in _authored().complex, f"{key} is not an authored complex type"
    expected = [(name, lo, hi) for _, name, lo, hi, _, _ in _authored().sequence(key)]
    actual = []
    for name, member in cls._type_info.items():
        if issubclass(member, XmlAttribute):
            continue
        attrs = member.Attributes
        assert attrs.nillable is False, f"{cls.__name__}.{name} must not be nillable"
        hi = "unbounded" if attrs.max_occurs == float("inf") else str(attrs.max_occurs)
        actual.append((name, str(attrs.min_occurs), hi))
    assert actual == expected


# -- golden envelopes ------------------------------------------------------------------------


@pytest.mark.parametrize("path", VALID, ids=_ids(VALID))
def test_golden_valid_request(path: Path) -> None:
    headers, payload = _split_envelope(path)
    for el in [*headers, payload]:
        assert _lxml_errors(el) == []
        _xmlschema(_schema_name_for(el)).validate(_standalone(el))
    names = [etree.QName(h).localname for h in headers]
    assert names[:3] == ["client", "service", "id"] and "protocolVersion" in names
    assert "requestHash" not in names
    assert etree.QName(payload).namespace == TNS
    assert _service_code(headers) == etree.QName(payload).localname


def test_every_operation_has_golden_request_and_response() -> None:
    requests = {etree.QName(_split_envelope(p)[1]).localname for p in VALID}
    responses = {etree.QName(_split_envelope(p)[1]).localname for p in RESPONSES}
    assert set(OPERATIONS) <= requests
    assert {f"{op}Response" for op in OPERATIONS} <= responses


@pytest.mark.parametrize("path", INVALID, ids=_ids(INVALID))
def test_golden_invalid_request(path: Path) -> None:
    headers, payload = _split_envelope(path)
    for el in headers:
        assert _lxml_errors(el) == [], "only the body of an invalid golden is wrong"
    assert _lxml_errors(payload), "lxml accepted an invalid body"
    assert not _xmlschema("gateway.xsd").is_valid(_standalone(payload))


def test_golden_invalid_expected_codes() -> None:
    expected = json.loads((GOLDEN / "invalid" / "expected.json").read_text(encoding="utf-8"))
    assert set(expected) == {p.name for p in INVALID}
    codes = {e["code"] for e in expected.values()}
    assert codes <= set(BY_CODE)
    assert all(c.startswith("Client.Validation.") or c == "Client.Operation.Unknown"
               for c in codes)


@pytest.mark.parametrize("path", INVALID, ids=_ids(INVALID))
def test_schema_refusal_names_the_domain_code_and_the_contract_field(path: Path) -> None:
    """One code per rule: a value the schema refuses gets the code the domain check would
    give (a malformed FIN is Client.Validation.Fin), and the field its contract path."""
    expected = json.loads((GOLDEN / "invalid" / "expected.json").read_text(encoding="utf-8"))
    want = expected[path.name]
    if want["code"] == "Client.Operation.Unknown":
        return  # refused before the schema, by the endpoint
    _, payload = _split_envelope(path)
    with pytest.raises(ValidationFailed) as caught:
        CONTRACT.validate(payload)
    assert (caught.value.code, caught.value.field) == (want["code"], want["field"])
    assert ":" not in (caught.value.field or ""), "a contract path, not an XPath"


@pytest.mark.parametrize("path", RESPONSES, ids=_ids(RESPONSES))
def test_golden_response(path: Path) -> None:
    headers, payload = _split_envelope(path)
    if payload.tag == f"{{{SOAPENV}}}Fault":
        details = payload.findall(f"detail/{{{TNS}}}FaultDetail")
        assert len(details) == 1
        assert _lxml_errors(details[0]) == []
        code = details[0].findtext(f"{{{TNS}}}code")
        assert payload.findtext("faultcode") == f"soapenv:{code}"
        # The example speaks as the gateway does: the catalogue's Azerbaijani text.
        assert code in BY_CODE
        assert payload.findtext("faultstring") == fault_message(code, "az")
        return
    for el in [*headers, payload]:
        assert _lxml_errors(el) == []
        _xmlschema(_schema_name_for(el)).validate(_standalone(el))
    assert [etree.QName(h).localname for h in headers][-1] == "requestHash"
    assert f"{_service_code(headers)}Response" == etree.QName(payload).localname


# -- round trip through the real spyne application ------------------------------------------


def _model_for(element_name: str) -> Any:
    op = element_name.removesuffix("Response")
    suffix = "Response" if element_name.endswith("Response") else "Request"
    return getattr(models, f"{op[0].upper()}{op[1:]}{suffix}")


class _Recorder:
    """Stands in for the composition root's dispatcher in ``ctx.udc``."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.calls: list[tuple[str, Any]] = []

    def dispatch(self, operation: str, request: Any) -> Any:
        self.calls.append((operation, request))
        return self.response


def _canonical(el: etree._Element) -> Any:
    return (
        el.tag,
        sorted(el.attrib.items()),
        (el.text or "").strip(),
        [_canonical(c) for c in _children(el)],
    )


def _response_object(payload: etree._Element) -> Any:
    obj = get_xml_as_object(payload, _model_for(etree.QName(payload).localname))
    if etree.QName(payload).localname == "listMethodsResponse":
        # spyne's reader ignores qualified attributes; its writer emits id:objectType fine.
        for service in obj.service:
            service.objectType = "SERVICE"
    return obj


ROUND_TRIP = [
    (p, GOLDEN / "responses" / f"{etree.QName(_split_envelope(p)[1]).localname}Response.xml")
    for p in VALID
]


@pytest.mark.parametrize(
    ("request_path", "response_path"), ROUND_TRIP, ids=[p.name for p, _ in ROUND_TRIP]
)
def test_spyne_round_trip(request_path: Path, response_path: Path) -> None:
    app = build_application()
    server = ServerBase(app)
    _, payload = _split_envelope(request_path)
    _, response_payload = _split_envelope(response_path)
    recorder = _Recorder(_response_object(response_payload))

    ctx = MethodContext(server, MethodContext.SERVER)
    ctx.udc = recorder
    ctx.in_document = payload
    ctx.in_header_doc = None
    ctx.in_body_doc = payload
    ctx.method_request_string = payload.tag
    handles = app.in_protocol.get_call_handles(ctx)
    assert len(handles) == 1
    ctx.descriptor = handles[0]
    server.get_in_object(ctx)
    assert ctx.in_error is None
    server.get_out_object(ctx)
    assert ctx.out_error is None
    app.out_protocol.serialize(ctx, message=app.out_protocol.RESPONSE)
    assert ctx.out_error is None

    op = etree.QName(payload).localname
    assert len(recorder.calls) == 1
    name, request = recorder.calls[0]
    assert name == op
    assert type(request).get_type_name() == f"{op}Request"
    # What spyne read is what was sent: written back out, it is the same XML.
    written = get_object_as_xml(request, _model_for(op), root_tag_name=op)
    assert _canonical(written) == _canonical(payload)

    out_body = ctx.out_body_doc
    assert out_body.tag == f"{{{SOAPENV}}}Body"
    (out_payload,) = _children(out_body)
    assert _lxml_errors(out_payload) == []
    assert _canonical(out_payload) == _canonical(response_payload)


# --- WS-SecurityPolicy ----------------------------------------------------------------------

WSP = "http://www.w3.org/ns/ws-policy"
SP = "http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


def test_wsdl_states_the_message_profile_as_ws_security_policy() -> None:
    """Policy-aware stacks (CXF, WCF) configure themselves from the binding's policy; it must
    say what docs/integration.md says: X.509 tokens both ways, Basic256Sha256, a signed
    Timestamp and Body."""
    root = _gateway_wsdl()
    binding = root.find(f"{{{WSDL}}}binding")
    assert binding is not None
    reference = binding.find(f"{{{WSP}}}PolicyReference")
    assert reference is not None
    policies = {p.get(f"{{{WSU_NS}}}Id"): p for p in root.findall(f"{{{WSP}}}Policy")}
    policy = policies[reference.get("URI", "").lstrip("#")]
    asymmetric = policy.find(f".//{{{SP}}}AsymmetricBinding")
    assert asymmetric is not None
    tokens = {
        etree.QName(token.getparent().getparent()).localname: token.get(f"{{{SP}}}IncludeToken")
        for token in asymmetric.iter(f"{{{SP}}}X509Token")
    }
    assert tokens == {
        "InitiatorToken": f"{SP}/IncludeToken/AlwaysToRecipient",
        "RecipientToken": f"{SP}/IncludeToken/AlwaysToInitiator",
    }
    assert asymmetric.find(f".//{{{SP}}}Basic256Sha256") is not None
    assert asymmetric.find(f".//{{{SP}}}IncludeTimestamp") is not None
    assert policy.find(f".//{{{SP}}}SignedParts/{{{SP}}}Body") is not None
    assert policy.find(f".//{{{SP}}}EncryptedParts") is None  # TLS protects the channel
