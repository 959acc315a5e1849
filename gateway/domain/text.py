"""Text folding for case-insensitive matching of Azerbaijani names.

Python's ``str.lower()`` follows the root Unicode locale, which is wrong for Azerbaijani (and
Turkish): the capital of ``i`` is ``İ`` and the capital of ``ı`` is ``I``. ``"İ".lower()`` even
yields ``"i̇"`` (i + combining dot), so ``"İSMAYILOV".lower()`` would never equal
``"ismayılov"``. ``fold`` applies the Azerbaijani dotted/dotless rule first and then the generic
lowering, which is correct for the rest of the alphabet (Ə/ə, Ö/ö, Ü/ü, Ç/ç, Ş/ş, Ğ/ğ).

A consequence worth knowing: ``"ISMAYILOV"`` typed on an English keyboard folds to
``"ısmayılov"`` and does not match ``"İsmayılov"``; that is the correct reading of the letters.
"""

from __future__ import annotations

import unicodedata

# Only the two letters whose Azerbaijani casing differs from Unicode's default mapping.
_AZ_CASE = str.maketrans({"I": "ı", "İ": "i"})


def fold(text: str) -> str:
    """Return ``text`` in the canonical form used for comparisons and search columns.

    NFC-normalised first (so ``I`` + COMBINING DOT ABOVE becomes ``İ``), stripped, inner runs of
    whitespace collapsed to one space, ``I``→``ı`` and ``İ``→``i``, then lower-cased.
    """
    normalised = unicodedata.normalize("NFC", text)
    collapsed = " ".join(normalised.split())
    return unicodedata.normalize("NFC", collapsed.translate(_AZ_CASE).lower())


# The Azerbaijani Latin alphabet in its order (lower case, as ``fold`` leaves it).
AZERBAIJANI_ALPHABET = "abcçdeəfgğhxıijkqlmnoöprsştuüvyz"
# Letters map to consecutive code points from "@" (after digits, space and punctuation), so a
# key compares correctly by code point, which is what both SQLite (BINARY) and PostgreSQL
# (COLLATE "C") do. Characters outside the alphabet keep their own code point.
_COLLATION = str.maketrans(
    {letter: chr(0x40 + rank) for rank, letter in enumerate(AZERBAIJANI_ALPHABET)}
)


def collation_key(text: str) -> str:
    """A key whose code-point order is Azerbaijani alphabetical order of ``fold(text)``:
    C < Ç < D, E < Ə < F, G < Ğ < H < X < I < İ, O < Ö, S < Ş, U < Ü; case-insensitive."""
    return fold(text).translate(_COLLATION)
