"""The authored contract (``wsdl/`` + ``xsd/``): served on ``?wsdl`` / ``?xsd=NAME`` and used to
validate every inbound payload with lxml (DESIGN.md §7: ~85x faster than xmlschema)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.domain.errors import ValidationFailed

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
SOAP_BINDING_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.xsd$")


def _local_parser() -> etree.XMLParser:
    # Our own files, but still: no DTDs, no entities, no network.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class Contract:
    def __init__(self, wsdl_path: Path, xsd_dir: Path) -> None:
        self.wsdl_path = wsdl_path
        self.xsd_dir = xsd_dir
        self._wsdl = etree.parse(str(wsdl_path), _local_parser())
        self._xsds = {
            p.name: p.read_bytes() for p in sorted(xsd_dir.glob("*.xsd")) if p.is_file()
        }
        main = etree.parse(str(xsd_dir / "gateway.xsd"), _local_parser())
        self.schema = etree.XMLSchema(main)
        self.field_codes = _field_codes(main)
        self.operations: tuple[str, ...] = tuple(
            op.get("name", "")
            for op in self._wsdl.getroot().iterfind(f"{{{WSDL_NS}}}portType/{{{WSDL_NS}}}operation")
        )

    def wsdl_for(self, endpoint_url: str) -> bytes:
        """The authored WSDL with the address and schema locations pointing at this server."""
        doc = copy.deepcopy(self._wsdl)
        for address in doc.iter(f"{{{SOAP_BINDING_NS}}}address"):
            address.set("location", endpoint_url)
        for el in doc.iter(f"{{{XSD_NS}}}import", f"{{{XSD_NS}}}include"):
            loc = el.get("schemaLocation")
            if loc:
                el.set("schemaLocation", f"{endpoint_url}?xsd={Path(loc).name}")
        return bytes(etree.tostring(doc, xml_declaration=True, encoding="UTF-8"))

    def xsd_for(self, name: str, endpoint_url: str) -> bytes | None:
        if not _SAFE_NAME.match(name) or name not in self._xsds:
            return None
        doc = etree.fromstring(self._xsds[name], _local_parser())
        for el in doc.iter(f"{{{XSD_NS}}}import", f"{{{XSD_NS}}}include"):
            loc = el.get("schemaLocation")
            if loc:
                el.set("schemaLocation", f"{endpoint_url}?xsd={Path(loc).name}")
        return bytes(etree.tostring(doc, xml_declaration=True, encoding="UTF-8"))

    def validate(self, element: etree._Element) -> None:
        """Validate one element (a Body payload or a header) against the authored schemas.

        A refusal names the field by its contract path (``fin``, ``contacts/mobilePhone``,
        ``item[2]/fin``) and, when the value breaks the rule of a domain type (FIN, VÖEN, phone,
        ...), answers with that type's domain code: a malformed FIN is ``Client.Validation.Fin``
        whether the schema or the domain check sees it first. Structure errors (a missing or
        unexpected element) are ``Client.Validation.Schema`` with the rule in words.
        """
        # A detached copy: validation must see the element as a document root, with the
        # namespace declarations it inherited from the envelope.
        doc = etree.ElementTree(copy.deepcopy(element))
        if not self.schema.validate(doc):
            errors: list[Any] = list(self.schema.error_log)  # type: ignore[call-overload]
            raise self._refusal(errors[0] if errors else None, doc.getroot())

    def _refusal(self, err: Any, root: etree._Element) -> ValidationFailed:
        if err is None:
            return ValidationFailed("schema validation failed", code=SCHEMA_CODE,
                                    params={"rule": "other"})
        message = str(err.message)
        steps = _steps(str(err.path or ""))
        rule = _rule_of(str(err.type_name), message)
        expected = _EXPECTED.search(message)
        if rule == "unexpected" and expected and len(steps) > 1:
            # "x is not expected, expected is y": when y is nowhere among x's siblings, the
            # mistake is the missing y (x merely came next), so name y.
            parent = _find(root, steps[:-1])
            if parent is not None and not any(
                    etree.QName(c).localname == expected.group(1) for c in parent
                    if isinstance(c.tag, str)):
                rule, steps = "required", steps[:-1]
        if rule == "required" and expected:
            steps = [*steps, expected.group(1)]
        # The operation's own element is not a field; an error on it names the operation.
        where = "/".join(steps[1:]) or (steps[0] if steps else "")
        code = SCHEMA_CODE
        if rule in _VALUE_RULES and len(steps) > 1:
            code = self.field_codes.get(_LEAF.sub("", steps[-1]), SCHEMA_CODE)
        return ValidationFailed(f"{message} (at {err.path})", code=code, field=where or None,
                                params={"rule": rule})


#: The domain code of a value of each contract type (the rule the domain checks too).
TYPE_CODES: dict[str, str] = {
    "Fin": "Client.Validation.Fin",
    "Voen": "Client.Validation.Voen",
    "Ssn": "Client.Validation.Ssn",
    "PhoneNumber": "Client.Validation.Phone",
    "Email": "Client.Validation.Email",
    "CardNumber": "Client.Validation.CardNumber",
    "AsanUserId": "Client.Validation.AsanUserId",
    "PageNumber": "Client.Validation.Paging",
    "PageSize": "Client.Validation.Paging",
}
SCHEMA_CODE = "Client.Validation.Schema"
_EXPECTED = re.compile(r"Expected is \( \{[^}]*\}([A-Za-z0-9_]+) \)")
_LEAF = re.compile(r"\[\d+\]$")


def _field_codes(schema_doc: etree._ElementTree) -> dict[str, str]:
    """Element name -> domain code, for names whose type is a domain type everywhere."""
    seen: dict[str, set[str]] = {}
    for el in schema_doc.iter(f"{{{XSD_NS}}}element"):
        name, type_name = el.get("name"), el.get("type")
        if name and type_name:
            seen.setdefault(name, set()).add(type_name.rpartition(":")[2])
    codes: dict[str, str] = {}
    for name, types in seen.items():
        mapped = {TYPE_CODES.get(t) for t in types}
        if len(mapped) == 1 and None not in mapped:
            codes[name] = mapped.pop()  # type: ignore[assignment]
    return codes


#: Rules about a value (not the structure): these take the domain code of the field's type.
_VALUE_RULES = frozenset({"pattern", "length", "range", "type"})


def _steps(xpath: str) -> list[str]:
    """``/t:SaveDraft/t:contacts/t:mobilePhone`` -> ``[SaveDraft, contacts, mobilePhone]``
    (namespace prefixes dropped, positions kept: ``item[2]``)."""
    return [step.rpartition(":")[2] for step in xpath.split("/") if step]


def _find(root: etree._Element, steps: list[str]) -> etree._Element | None:
    """The element at ``steps`` (from ``_steps``) below and including ``root``."""
    node: etree._Element | None = root
    for step in steps[1:]:
        if node is None:
            return None
        name, _, index = step.partition("[")
        matches = [c for c in node if isinstance(c.tag, str) and etree.QName(c).localname == name]
        position = int(index.rstrip("]")) - 1 if index else 0
        node = matches[position] if 0 <= position < len(matches) else None
    return node


def _rule_of(type_name: str, message: str) -> str:
    if "Missing child element" in message:
        return "required"
    if "not expected" in message:
        return "unexpected"
    if "PATTERN" in type_name:
        return "pattern"
    if "LENGTH" in type_name:
        return "length"
    if "ENUMERATION" in type_name:
        return "enumeration"
    if "INCLUSIVE" in type_name or "EXCLUSIVE" in type_name or "DIGITS" in type_name:
        return "range"
    if "DATATYPE" in type_name:
        return "type"
    return "other"
