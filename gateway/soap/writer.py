"""The hot answers (FindPerson, SubmitRegistration) written with lxml straight from the spyne
model objects the operations return, element for element what spyne's SOAP 1.1 protocol writes.

Why: spyne's serializer walks its generic machinery for every field (per-type attribute lookups,
handler dispatch, coroutines): 0.3-0.4 ms of CPU for a FindPerson answer, a sixth of the whole
request without the database (issue #10). This writer does the same walk compiled once.

spyne still describes the contract (``?wsdl``), reads every request and writes every other
answer. A writer is compiled at start-up from spyne's own description of the answer type (its
fields in spyne's order, the out protocol's attributes and handlers for each) and only for what
it writes exactly as spyne does: text types whose spyne handler passes a ``str`` through
unchanged, dates written as ``isoformat()``, nested complex types of one namespace, each field
at most once, nothing excluded, renamed, defaulted, polymorphic or an attribute. Anything else
in a type means no writer for it (spyne writes that answer). At run time a value outside those
cases hands the answer back to spyne too: a required field that is None (spyne writes
``xsi:nil``), a value of another Python type than the writer's (a ``datetime`` in a date field,
an enum member, bytes), text that XML cannot hold. ``tests/contract/test_answer_writer.py``
compares both writers' bytes on many answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any

from lxml import etree
from spyne import ComplexModelBase, Date, Unicode
from spyne.const.xml import DEFAULT_NS
from spyne.protocol._outbase import OutProtocolBase
from spyne.protocol.xml import XmlDocument

__all__ = ["AnswerWriter"]


class _Kind(Enum):
    TEXT = "text"
    DATE = "date"
    COMPLEX = "complex"


@dataclass(frozen=True)
class _Field:
    name: str
    tag: str
    kind: _Kind
    required: bool
    nested: _Plan | None


@dataclass(frozen=True)
class _Plan:
    #: The classes whose instances spyne writes with this type's description: the type and
    #: the classes it customizes (a field typed ``Person.customize(...)`` holds a ``Person``).
    accepts: frozenset[type]
    fields: tuple[_Field, ...]


class _Unwritable(Exception):
    """A value this writer does not write as spyne would; spyne writes the answer."""


class AnswerWriter:
    """Writes the bare-style answers of ``messages`` (spyne's out-message classes of the hot
    operations, from their method descriptors) as spyne's ``protocol`` would, for those whose
    type it can compile; :meth:`write` returns None for any other message or value (the caller
    then lets spyne write it). ``nsmap``: the prefixes spyne's envelope declares."""

    def __init__(self, protocol: XmlDocument, messages: Iterable[type], nsmap: dict[str, str],
                 tns: str) -> None:
        self._protocol = protocol
        namespaces = set()
        self._plans: dict[type, tuple[str, _Plan]] = {}
        for message in messages:
            plan = self._compile(message, set(), root=True)
            if plan is None:
                continue
            namespace, name = _root_name(protocol, message, tns)
            self._plans[message] = (f"{{{namespace}}}{name}", plan)
            namespaces |= _namespaces(plan) | {namespace}
        # spyne's answer element sits in an envelope declaring all of the interface's prefixes;
        # moved into ours, it declares those it uses.
        self._nsmap = {prefix: uri for prefix, uri in nsmap.items() if uri in namespaces}

    @property
    def messages(self) -> frozenset[type]:
        """The out-message classes this writer writes."""
        return frozenset(self._plans)

    def write(self, message: type, answer: Any) -> etree._Element | None:
        """The answer element, or None when spyne has to write it."""
        entry = self._plans.get(message)
        if entry is None:
            return None
        tag, plan = entry
        if type(answer) not in plan.accepts:
            return None
        root = etree.Element(tag, nsmap=self._nsmap)
        try:
            _write(plan, answer, root)
        except (_Unwritable, ValueError, TypeError):
            return None
        return root

    # -- compiling from spyne's description ---------------------------------------------------

    def _compile(self, cls: type, seen: set[type], *, root: bool = False) -> _Plan | None:
        protocol = self._protocol
        if cls in seen or not _plain_complex(protocol, cls, root=root):
            return None
        namespace = cls.get_namespace()  # type: ignore[attr-defined]
        fields: list[_Field] = []
        for name, field_type in cls._type_info.items():  # type: ignore[attr-defined]
            attrs = protocol.get_cls_attrs(field_type)
            if (attrs.exc or attrs.sub_ns is not None or attrs.sub_name is not None
                    or attrs.default is not None or attrs.prot is not None
                    or attrs.max_occurs != 1 or attrs.nillable):
                return None
            kind = _kind(protocol, field_type, attrs)
            nested = None
            if kind is _Kind.COMPLEX:
                nested = self._compile(field_type, seen | {cls})
                if nested is None:
                    return None
            elif kind is None:
                return None
            fields.append(_Field(name, f"{{{namespace}}}{name}", kind, attrs.min_occurs > 0,
                                 nested))
        accepts = {cls}
        original: Any = getattr(cls, "__orig__", None)
        while original is not None and original not in accepts:
            accepts.add(original)
            original = getattr(original, "__orig__", None)
        return _Plan(frozenset(accepts), tuple(fields))


def _root_name(protocol: XmlDocument, message: Any, tns: str) -> tuple[str, str]:
    """The answer element's name as spyne's bare-style ``serialize`` and then its
    ``complex_to_parent`` pick it."""
    namespace = message.Attributes.sub_ns
    if namespace is None:
        namespace = message.get_namespace()
    if namespace is DEFAULT_NS:
        namespace = tns
    name = message.Attributes.sub_name or message.get_type_name()
    attrs = protocol.get_cls_attrs(message)
    if attrs.sub_name is not None:
        name = attrs.sub_name
    if attrs.sub_ns not in (None, DEFAULT_NS):
        namespace = attrs.sub_ns
    return namespace, name


def _plain_complex(protocol: XmlDocument, cls: Any, *, root: bool = False) -> bool:
    """A complex type spyne writes as its fields in order, under the name it is given (an
    answer's root may carry the message's name, ``sub_name``, as every bare answer does)."""
    if not (isinstance(cls, type) and issubclass(cls, ComplexModelBase)):
        return False
    attrs = protocol.get_cls_attrs(cls)
    declared: Any = getattr(cls, "Attributes", None)
    renamed = not root and (
        attrs.sub_name is not None or declared.sub_name is not None
        or attrs.sub_ns is not None or declared.sub_ns is not None
    )
    handler = protocol.serialization_handlers[cls]
    return (
        getattr(handler, "__func__", None) is XmlDocument.complex_to_parent
        and getattr(cls, "__extends__", None) is None
        and not getattr(protocol, "polymorphic", False)
        and not renamed and attrs.prot is None and not attrs.exc and attrs.default is None
    )


def _kind(protocol: XmlDocument, field_type: type, attrs: Any) -> _Kind | None:
    if _plain_complex(protocol, field_type):
        return _Kind.COMPLEX
    if not isinstance(field_type, type):
        return None
    handler = protocol.serialization_handlers[field_type]
    if getattr(handler, "__func__", None) is not XmlDocument.modelbase_to_parent:
        return None
    to_unicode = getattr(protocol._to_unicode_handlers[field_type], "__func__", None)
    if (issubclass(field_type, Unicode) and to_unicode is OutProtocolBase.unicode_to_unicode
            and attrs.str_format is None and attrs.format is None):
        return _Kind.TEXT
    if (issubclass(field_type, Date) and to_unicode is OutProtocolBase.date_to_unicode
            and attrs.serialize_as is None and attrs.date_format is None
            and attrs.str_format is None):
        return _Kind.DATE
    return None


def _write(plan: _Plan, value: Any, parent: etree._Element) -> None:
    sub_element = etree.SubElement
    for field in plan.fields:
        item = getattr(value, field.name, None)  # as spyne reads it
        if item is None:
            if field.required:
                raise _Unwritable(field.name)  # spyne writes xsi:nil
            continue
        if field.kind is _Kind.TEXT:
            if type(item) is not str:
                raise _Unwritable(field.name)
            sub_element(parent, field.tag).text = item
        elif field.kind is _Kind.DATE:
            if type(item) is not date:
                raise _Unwritable(field.name)
            sub_element(parent, field.tag).text = item.isoformat()
        else:
            nested = field.nested
            assert nested is not None
            if type(item) not in nested.accepts:
                raise _Unwritable(field.name)
            _write(nested, item, sub_element(parent, field.tag))


def _namespaces(plan: _Plan) -> set[str]:
    found: set[str] = set()
    for field in plan.fields:
        found.add(etree.QName(field.tag).namespace or "")
        if field.nested is not None:
            found |= _namespaces(field.nested)
    return found
