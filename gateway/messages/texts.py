"""Other user-facing texts (besides the fault table) that go through the catalogue.

Each is (msgctxt, English msgid); the code that shows one calls
``gateway.messages.text(msgid, locale, context=msgctxt)`` with the same literal pair.
"""

from __future__ import annotations

from gateway.messages.notes import NOTE_CONTEXT, NOTE_TEXTS

TEXTS: tuple[tuple[str, str], ...] = tuple((NOTE_CONTEXT, msgid) for msgid in NOTE_TEXTS)
