"""Other user-facing texts (besides the fault table) that go through the catalogue.

Each is (msgctxt, English msgid); the code that shows one calls
``gateway.messages.text(msgid, locale, context=msgctxt)`` with the same literal pair.
"""

from __future__ import annotations

TEXTS: tuple[tuple[str, str], ...] = ()
