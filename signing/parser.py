"""The one hardened XML parser every untrusted byte string goes through.

Refused, each with its own error (see :mod:`signing.errors`):

* more than ``max_bytes`` → :class:`XmlTooLarge`, before the parser sees a byte;
* any document type declaration (internal subset, external DTD, entity declarations) →
  :class:`XmlForbidden`. It is found by scanning the prolog *before* libxml2 runs, so a billion-
  laughs or quadratic-blowup subset is never even declared; as a second line the parser never
  substitutes entities, never loads a DTD, never touches the network, and a resolver refuses
  every external fetch libxml2 might still attempt (``file:///etc/passwd`` is never read);
* processing instructions anywhere (``<?xml-stylesheet?>``, ...) → :class:`XmlForbidden`;
* nesting deeper than ``max_depth``, more than ``max_elements`` elements or an attribute value
  longer than ``max_attribute_bytes`` → :class:`XmlTooDeep` / :class:`XmlTooLarge`;
* anything not well-formed → :class:`XmlMalformed`.

Comments are dropped while parsing, and the text around them joins up. Signatures cover
comment-free canonical XML, so a comment can be spliced into signed content without breaking the
signature; a reader taking an element's first text node would then see ``AB`` in
``<fin>AB<!---->CDEFG</fin>`` (the SAML comment-truncation class, CVE-2017-11427) or half of a
``DigestValue`` (CVE-2025-29774). Without comments the tree every consumer reads — verifier,
schema validation, spyne, the X-Road header parser — is exactly the canonical content that was
signed. (The verifier still refuses comments inside ``ds:Signature`` for trees built otherwise.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lxml import etree

from signing.errors import XmlForbidden, XmlMalformed, XmlTooDeep, XmlTooLarge

__all__ = ["ParserLimits", "canonicalize", "parse_xml", "serialize"]


@dataclass(frozen=True)
class ParserLimits:
    """Bounds on what :func:`parse_xml` accepts; the defaults suit a SOAP request."""

    max_bytes: int = 2_000_000
    max_depth: int = 64
    max_elements: int = 20_000
    max_attribute_bytes: int = 65_536


class _ExternalFetchRefused(Exception):
    """Raised from inside libxml2 callbacks; never leaves this module."""


class _RefuseAll(etree.Resolver):
    """Refuses every external resource libxml2 asks for (DTDs, external entities, XInclude)."""

    def resolve(self, system_url: str, public_id: str, context: Any = None) -> Any:  # type: ignore[override]
        raise _ExternalFetchRefused(system_url)


def _new_parser() -> etree.XMLParser:
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        collect_ids=False,
        remove_comments=True,
        remove_pis=False,
        strip_cdata=True,
        recover=False,
    )
    parser.resolvers.add(_RefuseAll())
    return parser


def _prolog_text(data: bytes) -> str:
    """The document's first characters decoded just enough to read its prolog's markup."""
    head = data[:8]
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return data.decode("utf-32", errors="replace")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if head.startswith(b"<\x00?\x00") or head.startswith(b"<\x00!\x00"):
        return data.decode("utf-16-le", errors="replace")
    if head.startswith(b"\x00<\x00?") or head.startswith(b"\x00<\x00!"):
        return data.decode("utf-16-be", errors="replace")
    # Markup characters are single ASCII bytes in UTF-8 and every ASCII-compatible encoding.
    return data.decode("latin-1")


def _prolog_declares_doctype(data: bytes) -> bool:
    """True if markup other than comments, PIs and the XML declaration precedes the root.

    Only the prolog is scanned (a ``<!DOCTYPE`` inside CDATA or a comment in the body is text,
    not a declaration), so this is exact rather than a crude substring search.
    """
    text = _prolog_text(data)
    i, n = (1 if text.startswith("\ufeff") else 0), len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if text.startswith("<?", i):
            end = text.find("?>", i + 2)
        elif text.startswith("<!--", i):
            end = text.find("-->", i + 4)
        else:
            return text.startswith("<!", i)
        if end < 0:
            return False  # unterminated: the parser reports it as malformed
        i = end + 3 if text[end] == "-" else end + 2
    return False


def parse_xml(data: bytes, limits: ParserLimits = ParserLimits()) -> etree._Element:
    """Parse untrusted ``data`` into an element tree, or refuse it with an :class:`XmlError`."""
    if len(data) > limits.max_bytes:
        raise XmlTooLarge(f"document of {len(data)} bytes exceeds the limit of {limits.max_bytes}")
    if _prolog_declares_doctype(data):
        raise XmlForbidden("document type declarations (DTDs, entities) are not accepted")
    try:
        root = etree.fromstring(data, _new_parser())
    except _ExternalFetchRefused as exc:
        raise XmlForbidden("external resources are not fetched") from exc
    except etree.XMLSyntaxError as exc:
        text = str(exc)
        if "depth" in text.lower():
            raise XmlTooDeep("document nesting exceeds the parser's limit") from exc
        if "entity" in text.lower() and ("amplification" in text or "loop" in text):
            raise XmlForbidden("entity expansion is not accepted") from exc
        raise XmlMalformed(f"not well-formed XML: {text}") from exc
    except (ValueError, etree.LxmlError) as exc:
        raise XmlMalformed(f"not acceptable XML: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        raise XmlForbidden("document type declarations (DTDs, entities) are not accepted")
    _check_tree(root, limits, len(data))
    return root


@lru_cache(maxsize=8)
def _tree_checks(limits: ParserLimits) -> tuple[etree.XPath, etree.XPath, etree.XPath, etree.XPath]:
    # One compiled XPath per bound: libxml2 walks the tree in C, several times faster than a
    # Python walk over every node.
    too_deep = etree.XPath("boolean(" + "/*" * (limits.max_depth + 1) + ")")
    count = etree.XPath("count(//*)")
    long_attribute = etree.XPath(f"boolean(//@*[string-length(.) > {limits.max_attribute_bytes}])")
    forbidden_node = etree.XPath("boolean(//processing-instruction())")
    return too_deep, count, long_attribute, forbidden_node


def _check_tree(root: etree._Element, limits: ParserLimits, size: int) -> None:
    too_deep, count, long_attribute, has_pi = _tree_checks(limits)
    tree = root.getroottree()
    if has_pi(tree):
        raise XmlForbidden("processing instructions are not accepted")
    if too_deep(tree):
        raise XmlTooDeep(f"nesting deeper than {limits.max_depth} elements")
    # Each element takes at least 4 bytes ("<a/>"), each attribute value at most ``size``:
    # below those sizes the limits cannot be exceeded and the walks are skipped.
    elements = count(tree) if size >= 4 * limits.max_elements else 0
    if isinstance(elements, float) and elements > limits.max_elements:
        raise XmlTooLarge(f"{int(elements)} elements exceed the limit of {limits.max_elements}")
    if size > limits.max_attribute_bytes and long_attribute(tree):
        raise XmlTooLarge(f"attribute value longer than {limits.max_attribute_bytes} characters")


def serialize(element: etree._Element) -> bytes:
    """UTF-8 bytes of ``element`` (and its in-scope namespaces), without an XML declaration."""
    return etree.tostring(element, encoding="UTF-8")


def canonicalize(element: etree._Element, inclusive_prefixes: Sequence[str] = ()) -> bytes:
    """Exclusive XML Canonicalization 1.0 without comments of ``element``'s subtree.

    The only canonicalization the profile signs with; ``inclusive_prefixes`` is the
    ``ec:InclusiveNamespaces/@PrefixList`` of the transform (``#default`` for the default one).
    """
    try:
        return etree.tostring(
            element,
            method="c14n",
            exclusive=True,
            with_comments=False,
            inclusive_ns_prefixes=list(inclusive_prefixes) or None,
        )
    except etree.C14NError as exc:
        # libxml2 refuses what C14N forbids, chiefly relative namespace URIs (xmlns="ns").
        raise XmlMalformed("the XML cannot be canonicalized (relative namespace URI?)") from exc
