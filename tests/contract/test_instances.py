"""``gateway.soap.instances.builder`` against spyne's constructor on every complex type of the
contract: the same class, the same attributes with the same values, for no, some and all
fields given, and keywords that name no field; a type it cannot build plainly is left to
spyne (the builder is the class itself)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from spyne import ComplexModel, ComplexModelBase, Unicode

from gateway.soap import models as m
from gateway.soap.instances import builder

TYPES = sorted(
    (value for value in vars(m).values()
     if isinstance(value, type) and issubclass(value, ComplexModelBase)
     and value.__module__ == m.__name__ and not value.__name__.startswith("_")),
    key=lambda cls: cls.__name__,
)


def _same(ours: Any, theirs: Any) -> None:
    assert type(ours) is type(theirs)
    assert vars(ours) == vars(theirs)
    assert list(vars(ours)) == list(vars(theirs))  # same attributes, set in the same order


def test_the_hot_answers_types_are_built_plainly() -> None:
    for cls in (m.FindPersonResponse, m.Person, m.IdentityDocument, m.Address,
                m.ExistingInsured, m.SubmitRegistrationResponse, m.ApplicationResult):
        assert builder(cls) is not cls


@pytest.mark.parametrize("cls", TYPES, ids=lambda cls: cls.__name__)
def test_built_as_spyne_builds_it(cls: type) -> None:
    build: Any = builder(cls)
    names = list(cls.get_flat_type_info(cls))  # type: ignore[attr-defined]
    rng = random.Random(cls.__name__)
    _same(build(), cls())
    _same(build(**{n: f"v-{n}" for n in names}), cls(**{n: f"v-{n}" for n in names}))
    for _ in range(20):
        given = {n: rng.choice([None, "x", 0, [], object()]) for n in names
                 if rng.random() < 0.5}
        _same(build(**given), cls(**given))
    _same(build(**{"notAField": 1}), cls(**{"notAField": 1}))


def test_a_type_with_a_default_is_left_to_spyne() -> None:
    class WithDefault(ComplexModel):
        __namespace__ = "urn:test"
        value = Unicode(default="x")

    assert builder(WithDefault) is WithDefault
