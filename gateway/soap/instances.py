"""Model objects of the hot answers built without spyne's per-field constructor machinery.

spyne's ``ComplexModelBase.__init__`` walks every field of the type for every object it builds
(defaults, read-only properties, SQLAlchemy checks, then a guarded ``setattr`` per given value):
6-7 us an object on this machine, four objects for a FindPerson answer (issue #10). For a
plain type (no field default or default factory, no read-only field or property, nothing of
SQLAlchemy, not a customized class, no XmlData field) its ``__init__`` comes down to: each
field set to the given value, or to None; keywords that name no field are ignored. That is
what :func:`builder` returns, compiled once per class; for any other type it returns the class
itself, so spyne builds it. ``tests/contract/test_instances.py`` compares both on every type of
the contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from spyne import ComplexModelBase
from spyne.model.complex import Array

__all__ = ["builder"]

M = TypeVar("M")


def builder(cls: type[M]) -> Callable[..., M]:
    """A callable that builds ``cls(**values)`` as spyne's constructor would, faster."""
    names = _plain_fields(cls)
    if names is None:
        return cls
    new = object.__new__

    def build(**values: Any) -> M:
        if len(values) > len(names) or not values.keys() <= names_set:
            return cls(**values)  # a keyword that names no field: spyne's own handling
        instance: M = new(cls)
        for name in names:
            setattr(instance, name, values.get(name))
        return instance

    names_set = frozenset(names)
    build.__name__ = build.__qualname__ = f"build_{cls.__name__}"
    return build


def _plain_fields(model: object) -> tuple[str, ...] | None:
    if not (isinstance(model, type) and issubclass(model, ComplexModelBase)):
        return None
    cls: Any = model
    if (cls.__new__ is not object.__new__ or cls.__init__ is not ComplexModelBase.__init__
            or cls.__orig__ is not None or cls.Attributes._xml_tag_body_as is not None
            or hasattr(cls, "_sa_class_manager")):
        return None
    names: list[str] = []
    for name, field_type in cls.get_flat_type_info(cls).items():
        attrs = field_type.Attributes
        if (attrs.default is not None or attrs.default_factory is not None
                or attrs.read_only or isinstance(getattr(cls, name, None), property)
                or (isinstance(field_type, type) and issubclass(field_type, Array))
                or getattr(attrs, "store_as", None) is not None or attrs.max_occurs != 1):
            return None
        names.append(name)
    return tuple(names)
