"""gateway.domain.text.fold: Azerbaijani-aware case folding."""

from __future__ import annotations

import pytest

from gateway.domain.text import fold


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("İSMAYILOV", "İsmayılov"),
        ("İSMAYILOV", "ismayılov"),
        ("ƏLİYEV", "Əliyev"),
        ("ÖMƏR", "ömər"),
        ("ÜMİD", "ümid"),
        ("ÇİÇƏK", "çiçək"),
        ("ŞÜKÜR", "şükür"),
        ("AĞAYEV", "ağayev"),
        ("IŞIQ", "ışıq"),
        ("I\u0307SMAYILOV", "ismayılov"),  # decomposed İ (I + combining dot above)
        ("  Rəşad   Vaqif  ", "rəşad vaqif"),
    ],
)
def test_equal_after_folding(a: str, b: str) -> None:
    assert fold(a) == fold(b)


@pytest.mark.parametrize(("a", "b"), [("ISMAYILOV", "İsmayılov"), ("işıq", "IŞIQ")])
def test_dotted_and_dotless_i_stay_distinct(a: str, b: str) -> None:
    assert fold(a) != fold(b)


def test_output_is_lower_nfc_and_idempotent() -> None:
    value = fold("ƏLİYEV İsmayıl")
    assert value == "əliyev ismayıl"
    assert fold(value) == value
