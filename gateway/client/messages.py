"""The messages ``dsmf-client`` shows, from a catalogue file (``locale/az.json``).

The code names a message by its id and fills in the named values; the words live in the
catalogue, one entry per message, so translating or moving them to gettext later touches only
that file. A fault code without its own entry falls back to its parents
(``Client.NotAuthorized.X`` → ``Client.NotAuthorized``) and then to a generic sentence that
quotes the gateway's own text.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

LANGUAGE = "az"


@cache
def catalogue(language: str = LANGUAGE) -> dict[str, str]:
    text = resources.files("gateway.client").joinpath(f"locale/{language}.json").read_text(
        encoding="utf-8"
    )
    entries: dict[str, str] = json.loads(text)
    return {key: value for key, value in entries.items() if not key.startswith("_")}


def text(message_id: str, **values: Any) -> str:
    """The catalogue's sentence for ``message_id`` with ``values`` filled in; an id missing from
    the catalogue comes back as itself (a visible gap, never a crash)."""
    template = catalogue().get(message_id)
    if template is None:
        return message_id
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template


def fault_text(code: str, server_message: str = "") -> str:
    """An Azerbaijani sentence for a gateway fault code (most specific entry wins)."""
    entries = catalogue()
    parts = code.split(".")
    while len(parts) > 1:
        found = entries.get("fault." + ".".join(parts))
        if found is not None:
            return found
        parts.pop()
    return text("fault.generic", code=code, message=server_message or code)
