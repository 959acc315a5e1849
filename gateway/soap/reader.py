"""The hot requests (FindPerson, SubmitRegistration) read from the verified, schema-valid payload
straight into the spyne model objects spyne's SOAP 1.1 protocol would build, without its
generic machinery (issue #10: 0.1-0.2 ms of CPU per request for spyne's reading).

The reader reads the same element spyne would (the payload taken from the signed Body, after
schema validation) and builds the same objects: the same classes (``get_deserialization_instance``),
the same attribute values, set in document order. It is compiled at start-up from spyne's own
description of the request type (the in protocol's deserialization and from-unicode handlers and
attributes of each field) and only for what it reads exactly as spyne does: texts (spyne passes
``element.text or ""`` through, ``None`` for an empty one when the type says so), booleans
(``text.lower() in ("true", "1")``) and nested complex types, each at most once. Anything else
in a type means no reader for it. At run time, an element it does not expect hands the request
back to spyne: any attribute (``xsi:nil``, ``xsi:type`` and attributes named like fields have
spyne rules of their own), an element of another name or namespace, a field given twice.
``tests/contract/test_request_reader.py`` compares both readers' objects on many requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from lxml import etree
from spyne import Boolean, ComplexModelBase, Unicode
from spyne.protocol._inbase import InProtocolBase
from spyne.protocol.xml import XmlDocument

from gateway.soap.instances import builder

__all__ = ["RequestReader"]


class _Kind(Enum):
    TEXT = "text"
    BOOLEAN = "boolean"
    COMPLEX = "complex"


@dataclass(frozen=True)
class _Field:
    name: str
    kind: _Kind
    empty_is_none: bool
    nested: _Plan | None


@dataclass(frozen=True)
class _Plan:
    cls: Any
    fields: dict[str, _Field]  # by the child element's tag
    #: The empty instance spyne's get_deserialization_instance makes, made faster where it can
    #: be (``gateway.soap.instances``).
    new: Any


class _Unreadable(Exception):
    """Something this reader does not read as spyne would; spyne reads the request."""


class RequestReader:
    """Reads the payloads of ``messages`` (spyne's in-message classes of the hot operations, from
    their method descriptors) as spyne's ``protocol`` would, for those whose type it can
    compile; :meth:`read` returns None for any other message or payload (the caller then lets
    spyne read it)."""

    def __init__(self, protocol: XmlDocument, messages: Iterable[type]) -> None:
        self._protocol = protocol
        self._plans: dict[type, tuple[str, _Plan]] = {}
        for message in messages:
            plan = self._compile(message, set())
            if plan is not None:
                self._plans[message] = (message.get_namespace(), plan)  # type: ignore[attr-defined]

    @property
    def messages(self) -> frozenset[type]:
        """The in-message classes this reader reads."""
        return frozenset(self._plans)

    def read(self, message: type, payload: etree._Element) -> Any | None:
        """The request object spyne would build from ``payload``, or None when spyne has to."""
        entry = self._plans.get(message)
        if entry is None:
            return None
        namespace, plan = entry
        if etree.QName(payload).namespace != namespace:
            return None
        try:
            return _read(plan, payload)
        except _Unreadable:
            return None

    # -- compiling from spyne's description ---------------------------------------------------

    def _compile(self, cls: Any, seen: set[type]) -> _Plan | None:
        protocol = self._protocol
        if cls in seen or not _plain_complex(protocol, cls):
            return None
        namespace = cls.get_namespace()
        fields: dict[str, _Field] = {}
        for name, field_type in cls.get_flat_type_info(cls).items():
            attrs = protocol.get_cls_attrs(field_type)
            if attrs.max_occurs != 1 or attrs.read_only or attrs.sub_name is not None \
                    or attrs.sub_ns is not None or attrs.default is not None:
                return None
            kind = _kind(protocol, field_type)
            nested = None
            if kind is _Kind.COMPLEX:
                nested = self._compile(field_type, seen | {cls})
                if nested is None:
                    return None
            elif kind is None:
                return None
            fields[f"{{{namespace}}}{name}"] = _Field(name, kind, bool(attrs.empty_is_none),
                                                       nested)
        return _Plan(cls, fields, _new_instance(cls))


def _new_instance(cls: Any) -> Any:
    """``cls.get_deserialization_instance(None)``: ``cls()``, or its original's for a
    customized class; built by :func:`builder` unless the class has its own way."""
    own = getattr(cls.get_deserialization_instance, "__func__", None)
    if own is not ComplexModelBase.get_deserialization_instance.__func__:  # type: ignore[attr-defined]
        return lambda: cls.get_deserialization_instance(None)
    return builder(cls if cls.__orig__ is None else cls.__orig__)


def _plain_complex(protocol: XmlDocument, cls: Any) -> bool:
    if not (isinstance(cls, type) and issubclass(cls, ComplexModelBase)):
        return False
    attrs = protocol.get_cls_attrs(cls)
    handler = protocol.deserialization_handlers[cls]
    return (
        getattr(handler, "__func__", None) is XmlDocument.complex_from_element
        and getattr(cls, "__extends__", None) is None
        and not getattr(cls, "_type_info_alt", None)
        and attrs._xml_tag_body_as is None
        and attrs.default is None
    )


def _kind(protocol: XmlDocument, field_type: Any) -> _Kind | None:
    if _plain_complex(protocol, field_type):
        return _Kind.COMPLEX
    if not isinstance(field_type, type):
        return None
    handler = getattr(protocol.deserialization_handlers[field_type], "__func__", None)
    from_unicode = getattr(protocol._from_unicode_handlers[field_type], "__func__", None)
    if (issubclass(field_type, Unicode) and handler is XmlDocument.unicode_from_element
            and from_unicode is InProtocolBase.unicode_from_bytes):
        return _Kind.TEXT
    if (issubclass(field_type, Boolean) and handler is XmlDocument.base_from_element
            and from_unicode is InProtocolBase.boolean_from_bytes):
        return _Kind.BOOLEAN
    return None


def _read(plan: _Plan, element: etree._Element) -> Any:
    if element.attrib:
        raise _Unreadable("attributes")
    instance = plan.new()
    given: set[str] = set()
    for child in element:
        field = plan.fields.get(child.tag)  # type: ignore[arg-type]
        if field is None or field.name in given:
            raise _Unreadable(str(child.tag))
        given.add(field.name)
        if field.kind is _Kind.COMPLEX:
            assert field.nested is not None
            value = _read(field.nested, child)
        else:
            if child.attrib:
                raise _Unreadable("attributes")
            text = child.text
            if field.kind is _Kind.TEXT:
                text = text or ""  # unicode_from_element
            if text is None or (text == "" and field.empty_is_none):
                value = None  # from_unicode
            elif field.kind is _Kind.TEXT:
                value = text
            else:
                value = text.lower() in ("true", "1")
        setattr(instance, field.name, value)
    return instance
