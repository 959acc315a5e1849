"""History notes and draft reasons in the reader's language.

The services record what happened in a fixed set of English forms (``"SSN 100200300"``,
``"signing failed: Client.Certificate.Expired: ..."``, ``"corrected"`` ...), stored as they are
so old rows stay readable. Here each form is recognised and shown through the catalogue
(msgctxt ``note``); a fault code inside is shown with its catalogue message, an Asan İmza refusal
with the text of its ``Client.Mobile.<Reason>`` code. The notice is always Azerbaijani.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gateway.messages import DEFAULT_LOCALE, fault_message, text

NOTE_CONTEXT = "note"

SSN_ISSUED = "SSN {ssn} issued"
CORRECTED = "Corrected"
FINISHED_LATER = ("The population registry was unavailable; finished automatically when it "
                  "came back")
SIGNING_FAILED = "Signing failed: {reason}"
ASAN_FAILED = "Asan İmza: {reason}"
PREVIOUS = "Previous actual address: {address}; previous contacts: {contacts}"
REJECTED = "Rejected: {reason}"

#: The catalogue texts of this module (``gateway.messages.texts`` lists them for extraction).
NOTE_TEXTS = (SSN_ISSUED, CORRECTED, FINISHED_LATER, SIGNING_FAILED, ASAN_FAILED, PREVIOUS,
              REJECTED)

_CODE = re.compile(r"^(?P<code>(?:Client|Server)(?:\.[A-Za-z]+)+)(?::.*)?$", re.DOTALL)
_ETSI = re.compile(r"^(?P<name>[A-Z][A-Z_]+)(?::.*)?$", re.DOTALL)


#: Asan İmza refusal reasons of the contract (MobileSigningRefusalReason) that are not ETSI
#: status names, and the fault code whose text tells them.
_REASON_CODES = {
    "SIGNATURE_MISMATCH": "Client.Signature.Invalid",
    "CERTIFICATE_REVOKED": "Client.Mobile.RevokedCertificate",
    "CERTIFICATE_EXPIRED": "Client.Certificate.Expired",
    "NOT_AUTHORIZED": "Client.NotAuthorized",
    "INTERNAL_ERROR": "Server.Upstream.Fault",
}


def reason(value: str, locale: str = DEFAULT_LOCALE, *, with_code: bool = False) -> str:
    """A draft reason or refusal (``"Client.X.Y: developer text"``, ``"Asan İmza signing failed:
    USER_CANCEL: ETSI 401"``) as the catalogue's message for it. ``with_code``: prefixed with the
    code or reason name it was recognised by (``"USER_CANCEL: İmzalama telefonda ləğv
    edildi."``), for answers that machines read too."""
    value = value.strip()
    if value.startswith("Asan İmza signing failed:"):
        inner = value.removeprefix("Asan İmza signing failed:").strip()
        token, said = _refusal(inner, locale)
        shown = text(ASAN_FAILED, locale, context=NOTE_CONTEXT, reason=said)
    else:
        token, said = _refusal(value, locale)
        shown = said
    return f"{token}: {shown}" if with_code and token else shown


def _refusal(value: str, locale: str) -> tuple[str | None, str]:
    code = _CODE.match(value)
    if code:
        return code.group("code"), fault_message(code.group("code"), locale)
    etsi = _ETSI.match(value)
    if etsi:
        name = etsi.group("name")
        if name == "SIGNATURE_MISMATCH" and "changed" in value:
            return name, fault_message("Client.Conflict.DraftChanged", locale)
        camel = "".join(part.capitalize() for part in name.split("_"))
        return name, fault_message(_REASON_CODES.get(name, f"Client.Mobile.{camel}"), locale)
    return None, fault_message("Client", locale) if _looks_english(value) else value


def _looks_english(value: str) -> bool:
    # A free developer text we cannot map: never shown to an Azerbaijani reader as is.
    return bool(re.search(r"\b(the|is|was|not|failed|no)\b", value))


_FORMS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str], str], str]], ...] = (
    (re.compile(r"^SSN (?P<ssn>\S+)$"),
     lambda m, loc: text(SSN_ISSUED, loc, context=NOTE_CONTEXT, ssn=m.group("ssn"))),
    (re.compile(r"^corrected$"),
     lambda m, loc: text(CORRECTED, loc, context=NOTE_CONTEXT)),
    (re.compile(r"^population registry unavailable"),
     lambda m, loc: text(FINISHED_LATER, loc, context=NOTE_CONTEXT)),
    (re.compile(r"^signing failed: (?P<reason>.*)$", re.DOTALL),
     lambda m, loc: text(SIGNING_FAILED, loc, context=NOTE_CONTEXT,
                         reason=reason(m.group("reason"), loc))),
    (re.compile(r"^previous actual address: (?P<address>.*); previous contacts: "
                r"(?P<contacts>.*)$", re.DOTALL),
     lambda m, loc: text(PREVIOUS, loc, context=NOTE_CONTEXT, address=m.group("address"),
                         contacts=m.group("contacts"))),
    (_CODE,
     lambda m, loc: text(REJECTED, loc, context=NOTE_CONTEXT,
                         reason=fault_message(m.group("code"), loc))),
)


def note(value: str, locale: str = DEFAULT_LOCALE) -> str:
    """A stored history note as the reader should see it."""
    for pattern, render in _FORMS:
        found = pattern.match(value.strip())
        if found:
            return render(found, locale)
    return reason(value, locale)
