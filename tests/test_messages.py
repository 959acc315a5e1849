"""The message catalogues and the fault catalogue: complete, in step with the code, committed.

The scan below reads our own source for every fault code that can be raised (string constants
such as ``code="Client.Validation.Fin"`` and the ``code`` of every error class) and fails when
the catalogue lacks one, so a new code cannot reach users without its texts.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from gateway.messages import (
    fault_action,
    fault_message,
    negotiate,
    placeholders,
    text,
)
from gateway.messages.faults import BY_CODE, FAULTS
from gateway.messages.tools import (
    TEMPLATE,
    catalogue_path,
    faults_markdown,
    faults_xml,
    render_po,
    template,
    updated,
)
from gateway.upstream.mobile import ETSI_STATUS_NAMES

ROOT = Path(__file__).resolve().parents[1]
CODE = re.compile(r"^(Client|Server)(\.[A-Z][A-Za-z]+)*$")
#: Not codes: prefixes tested with startswith().
NOT_RAISED = {"Client", "Server"}
#: ETSI statuses that never become Client.Mobile.<Reason>: success, pending, or our side's
#: failures (answered as Server.Upstream.Fault).
ETSI_NOT_REFUSALS = {"REQUEST_OK", "SIGNATURE", "VALID_SIGNATURE", "OUTSTANDING_TRANSACTION",
                     "UNAUTHORIZED_ACCESS", "INTERNAL_ERROR"}


def raisable_codes() -> set[str]:
    found: set[str] = set()
    for package in ("gateway", "signing", "persistence"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).parts
            # The catalogue itself, and the client kit (an integrator's side: the codes it
            # reports about its own run are not the gateway's faults).
            if "messages" in parts or parts[:2] == ("gateway", "client"):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and CODE.match(node.value):
                    found.add(node.value)
    for name in ETSI_STATUS_NAMES.values():
        if name not in ETSI_NOT_REFUSALS:
            camel = "".join(part.capitalize() for part in name.split("_"))
            found.add(f"Client.Mobile.{camel}")
    return found - NOT_RAISED


def test_the_scan_finds_the_codes_it_should() -> None:
    codes = raisable_codes()
    # One of each origin: domain, signing, persistence, SOAP layer, the MSSP's refusals.
    assert {"Client.Validation.Fin", "Client.Signature.Wrapping", "Server.Storage.Unavailable",
            "Client.Header.Missing", "Client.Mobile.NoCertFound"} <= codes
    assert len(codes) > 100


def test_every_code_that_can_be_raised_is_in_the_catalogue() -> None:
    missing = sorted(raisable_codes() - set(BY_CODE))
    assert missing == [], f"add these codes to gateway/messages/faults.py: {missing}"


def test_codes_are_listed_once() -> None:
    assert len(BY_CODE) == len(FAULTS)


def test_the_template_is_in_step_with_the_source() -> None:
    assert TEMPLATE.read_bytes() == render_po(template()), \
        "run `dsmf-gateway messages extract` and commit gateway/messages/locale/messages.pot"


def test_the_azerbaijani_catalogue_is_in_step_and_complete() -> None:
    path = catalogue_path("az")
    assert path.read_bytes() == updated("az"), "run `dsmf-gateway messages update`"
    with path.open("rb") as fileobj:
        catalog = read_po(fileobj, locale="az")
    for message in catalog:
        if not message.id:
            continue
        assert isinstance(message.id, str) and isinstance(message.string, str)
        assert message.string, f"untranslated: {message.context} {message.id!r}"
        assert not message.fuzzy, f"fuzzy: {message.context} {message.id!r}"
        assert placeholders(message.string) == placeholders(message.id), message.id


def test_the_committed_fault_document_is_current() -> None:
    committed = (ROOT / "docs" / "faults.md").read_text(encoding="utf-8")
    assert committed == faults_markdown(), \
        "run `dsmf-gateway messages faults > docs/faults.md` and commit it"


def test_every_code_has_a_meaning_and_an_action_in_both_languages() -> None:
    for entry in FAULTS:
        for locale in ("az", "en"):
            assert fault_message(entry.code, locale, {"field": "fin"}).strip()
            assert fault_action(entry.code, locale).strip()
        assert fault_message(entry.code, "az") != fault_message(entry.code, "en")


def test_azerbaijani_uses_the_manuals_terms() -> None:
    assert fault_message("Client.Validation.Fin", "az") == (
        "FİN 7 simvoldur (yaşayış vəsiqəsində 5-7 simvol): latın böyük hərfləri və rəqəmlər, "
        "I və O istifadə olunmur.")
    assert "sığortaedən" in fault_message("Client.NotAuthorized.NoAuthority", "az")
    assert "qaralama" in fault_message("Client.Conflict.NotDraft", "az")
    assert "VÖEN" in fault_message("Client.Validation.Voen", "az")


def test_named_parameters_are_filled_and_a_missing_one_prints_a_dash() -> None:
    assert fault_message("Client.Conflict.SsnExists", "az",
                         {"person": "Rzayev Elvin", "ssn": "100200300"}) == \
        "Şəxsin SSN-i mövcuddur: Rzayev Elvin, SSN 100200300."
    assert fault_message("Client.Conflict.SsnExists", "en") == \
        "The person's SSN exists: —, SSN —."


def test_a_code_not_listed_answers_with_its_parents_text() -> None:
    assert fault_message("Client.Mobile.Status777", "az") == fault_message("Client.Mobile", "az")
    assert fault_message("Server.Nowhere", "en") == fault_message("Server", "en")


def test_schema_rules_are_translated() -> None:
    assert fault_message("Client.Validation.Schema", "az",
                         {"field": "contacts/email", "rule": "required"}) == \
        "Sorğu müqaviləyə (XSD) uyğun deyil, sahə contacts/email: məcburi element yoxdur."


@pytest.mark.parametrize(("header", "expected"), [
    (None, "az"),
    ("", "az"),
    ("en", "en"),
    ("en-GB,en;q=0.9", "en"),
    ("az-Latn-AZ,az;q=0.9,en;q=0.8", "az"),
    ("ru-RU,ru;q=0.9,en;q=0.5", "en"),
    ("az;q=0.4,en;q=0.8", "en"),
    ("en;q=0", "az"),
    ("de, fr", "az"),
    ("en;q=bogus", "az"),
])
def test_accept_language_negotiation(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_an_unknown_locale_falls_back_to_azerbaijani() -> None:
    assert text("Sign in with Asan İmza again.", "fr", context="action") == \
        "Asan İmza ilə yenidən daxil olun."


def test_the_served_catalogue_lists_every_code_in_both_languages() -> None:
    from lxml import etree

    root = etree.fromstring(faults_xml())
    codes = [f.get("code") for f in root]
    assert codes == [entry.code for entry in FAULTS]
    first = root[0]
    langs = [el.get("{http://www.w3.org/XML/1998/namespace}lang") for el in first]
    assert sorted(langs) == ["az", "az", "en", "en"]


@pytest.mark.parametrize(("stored", "az"), [
    ("SSN 100200300", "SSN 100200300 verildi"),
    ("corrected", "Düzəliş edildi"),
    ("population registry unavailable; finished automatically when it is back",
     "Əhali reyestri əlçatan deyildi; bərpa olunduqdan sonra avtomatik tamamlandı"),
    ("signing failed: Client.Certificate.Expired: certificate expired at 2026-01-01",
     "İmzalama alınmadı: İmza sertifikatının müddəti bitib."),
    ("signing failed: Asan İmza signing failed: USER_CANCEL: ETSI 401",
     "İmzalama alınmadı: Asan İmza: İmzalama telefonda ləğv edildi."),
    ("previous actual address: Bakı, Nizami küçəsi, 5; previous contacts: +994501234567",
     "Əvvəlki faktiki ünvan: Bakı, Nizami küçəsi, 5; əvvəlki əlaqə vasitələri: +994501234567"),
    ("Client.Conflict.SsnExists: the person's SSN exists: Rzayev Elvin 100200300",
     "İmtina edildi: Şəxsin SSN-i mövcuddur: —, SSN —."),
])
def test_history_notes_are_shown_in_azerbaijani(stored: str, az: str) -> None:
    from gateway.messages.notes import note

    assert note(stored, "az") == az
    assert note(stored, "en") != az


def test_a_draft_reason_keeps_its_code_for_machines() -> None:
    from gateway.messages.notes import reason

    assert reason("Asan İmza signing failed: SIGNATURE_MISMATCH: the draft changed after it "
                  "was sent to the phone", "az", with_code=True) == (
        "SIGNATURE_MISMATCH: Asan İmza: Qaralama imzalanmaq üçün telefona göndərildikdən sonra "
        "dəyişdirilib.")
    assert reason("Client.Certificate.Expired: expired", "en", with_code=True) == \
        "Client.Certificate.Expired: The signing certificate has expired."
