"""User-facing texts in Azerbaijani (default) and English, from gettext catalogues.

The catalogue is ``locale/<lang>/LC_MESSAGES/messages.po`` next to this file, read at first use
with Babel (no compile step: a fresh clone and the installed package read the same ``.po``).
English is the source language (the msgids), so ``en`` needs no catalogue of its own.

    fault_message(code, locale, params)  the Message of a fault, by its code
    fault_action(code, locale)           what the user should do about it
    text(msgid, locale, context=...)     any other catalogued text
    negotiate(accept_language)           "az" or "en" from an HTTP Accept-Language value

``dsmf-gateway messages extract|update`` keeps ``messages.pot`` and the ``.po`` files in step with
the source (``gateway/messages/faults.py`` and the ``gettext`` texts listed there).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

from gateway.messages.faults import BY_CODE, SCHEMA_RULES, FaultEntry

DEFAULT_LOCALE = "az"
LOCALES = ("az", "en")
SOURCE_LOCALE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
#: msgctxt of a fault's meaning is its code; of the "what to do" texts and schema rules these.
ACTION_CONTEXT = "action"
RULE_CONTEXT = "rule"


@cache
def _catalogue(locale: str) -> Mapping[tuple[str | None, str], str]:
    """(msgctxt, msgid) -> translation, for the non-fuzzy, translated entries."""
    if locale == SOURCE_LOCALE:
        return {}
    path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as fileobj:
        catalog = read_po(fileobj, locale=locale, domain=DOMAIN)
    table: dict[tuple[str | None, str], str] = {}
    for message in catalog:
        if not message.id or message.fuzzy or not isinstance(message.id, str):
            continue
        if isinstance(message.string, str) and message.string:
            table[(message.context, message.id)] = message.string
    return table


def text(msgid: str, locale: str = DEFAULT_LOCALE, *, context: str | None = None,
         **params: object) -> str:
    """A catalogued text in ``locale`` (the English msgid where it has no translation)."""
    translated = _catalogue(_known(locale)).get((context, msgid), msgid)
    return _fill(translated, params) if params else translated


def entry_for(code: str) -> FaultEntry:
    """The catalogue entry of a code, or of its nearest listed parent."""
    probe = code
    while probe:
        found = BY_CODE.get(probe)
        if found is not None:
            return found
        probe = probe.rpartition(".")[0]
    return BY_CODE["Client" if code.startswith("Client") else "Server"]


def fault_message(code: str, locale: str = DEFAULT_LOCALE,
                  params: Mapping[str, object] | None = None) -> str:
    entry = entry_for(code)
    values = dict(params or {})
    if "rule" in values and str(values["rule"]) in SCHEMA_RULES:
        key = str(values["rule"])
        values["rule"] = text(SCHEMA_RULES[key], locale, context=RULE_CONTEXT)
    return _fill(text(entry.meaning, locale, context=entry.code), values)


def fault_action(code: str, locale: str = DEFAULT_LOCALE) -> str:
    entry = entry_for(code)
    return text(entry.action, locale, context=ACTION_CONTEXT)


def negotiate(accept_language: str | None) -> str:
    """The best of ``LOCALES`` for an Accept-Language value (RFC 9110 §12.5.4); default ``az``.

    Only an explicit preference for English over Azerbaijani gives English: the users are in
    Azerbaijan and a browser's default list must not switch them to English.
    """
    if not accept_language:
        return DEFAULT_LOCALE
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, rest = part.strip().partition(";")
        language = tag.strip().lower().split("-", 1)[0]
        quality = 1.0
        for param in rest.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if language in LOCALES and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else DEFAULT_LOCALE


def _known(locale: str) -> str:
    return locale if locale in LOCALES else DEFAULT_LOCALE


class _Lenient(dict[str, object]):
    """Missing parameters print as a dash instead of failing the whole answer."""

    def __missing__(self, key: str) -> str:
        return "—"


def _fill(template: str, params: Mapping[str, object]) -> str:
    return string.Formatter().vformat(template, (), _Lenient(
        {k: "—" if v is None else v for k, v in params.items()}))


def placeholders(template: str) -> frozenset[str]:
    """The named parameters of a text (for the catalogue's own tests)."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)
