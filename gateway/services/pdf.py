"""The PDF rendering of a notice (bildiriş), with fpdf2.

The PDF is for people; the signed XML is the evidence. Text is set in DejaVu Sans, shipped in
``gateway/assets`` (licence beside it), embedded as a subset with a ToUnicode map, so the
Azerbaijani letters (ə Ə ı İ ğ ö ü ç ş) both render and can be copied or extracted from the file.
The core PDF fonts cannot do either: they only know Latin-1.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Final

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from gateway.domain.calendar import baku_time
from gateway.domain.model import Application
from gateway.domain.values import Address, Contacts
from gateway.messages import notes
from gateway.services.notifications import (
    APPLICATION_TYPE_AZ,
    CERTIFICATE_STATUS_AZ,
    DOCUMENT_TYPE_AZ,
    NOTICE_LOCALE,
    STATUS_AZ,
    NoticeContent,
    credential_type,
)

FONT: Final = "DejaVu"
_LABEL_WIDTH: Final = 62.0
_LINE: Final = 6.0


def _asset(name: str) -> Path:
    # Under an editable install this is the source tree; in a wheel, the installed package.
    return Path(str(resources.files("gateway.assets").joinpath(name)))


class NoticePdfRenderer:
    """Renders a :class:`NoticeContent` as an A4 PDF (a ``PdfRenderer``)."""

    def __init__(self, regular: Path | None = None, bold: Path | None = None) -> None:
        self.regular = regular or _asset("DejaVuSans.ttf")
        self.bold = bold or _asset("DejaVuSans-Bold.ttf")

    def __call__(self, content: NoticeContent) -> bytes:
        app = content.application
        pdf = FPDF(format="A4")
        pdf.set_title(f"Bildiriş {app.application_id}")
        pdf.set_author("Dövlət Sosial Müdafiə Fondu")
        pdf.set_creator("dsmf-gateway")
        # A fixed creation date: the same notice renders to the same bytes.
        pdf.set_creation_date(content.issued_at.astimezone(UTC))
        pdf.add_font(FONT, "", str(self.regular))
        pdf.add_font(FONT, "B", str(self.bold))
        pdf.set_auto_page_break(auto=True, margin=18)
        pdf.add_page()

        pdf.set_font(FONT, "", 9)
        pdf.cell(0, 5, "Azərbaycan Respublikası Əmək və Əhalinin Sosial Müdafiəsi Nazirliyi",
                 new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.cell(0, 5, "Dövlət Sosial Müdafiə Fondu", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(4)
        pdf.set_font(FONT, "B", 16)
        pdf.cell(0, 9, "BİLDİRİŞ", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(FONT, "", 11)
        pdf.cell(0, 6, "Sığortaolunanın onlayn uçota alınması", align="C",
                 new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(3)
        if content.is_draft:
            self._draft_banner(pdf)

        self._section(pdf, "Ərizə")
        self._rows(pdf, [
            ("Ərizənin nömrəsi", app.application_id),
            ("Ərizənin növü", APPLICATION_TYPE_AZ.get(app.application_type.value,
                                                      app.application_type.value)),
            ("Ərizənin statusu", STATUS_AZ.get(app.status.value, app.status.value)),
            ("Ərizənin tarixi", f"{_when(app.created_at)} (Bakı vaxtı)"),
            ("SSŞ statusu", CERTIFICATE_STATUS_AZ.get(app.certificate_status.value,
                                                      app.certificate_status.value)),
            ("Qaralamanın səbəbi",
             notes.reason(app.draft_reason, NOTICE_LOCALE) if app.draft_reason else None),
        ])

        self._section(pdf, "Sığortaedən")
        self._rows(pdf, [("VÖEN", content.insurer_voen), ("Adı", content.insurer_name)])

        self._section(pdf, "Sığortaolunan")
        self._rows(pdf, _person_rows(app))

        self._section(pdf, "Ünvanlar")
        self._rows(pdf, [
            ("Qeydiyyat ünvanı", _address(app.registration_address)),
            ("Faktiki ünvan", _address(app.actual_address) if app.actual_address_differs
             else "Qeydiyyat ünvanı ilə eynidir"),
        ])

        self._section(pdf, "Əlaqə məlumatları")
        self._rows(pdf, _contact_rows(app.contacts))

        if app.signed_by is not None:
            self._section(pdf, "İmzalayan")
            self._rows(pdf, [("Adı", app.signed_by.name), ("FİN", app.signed_by.fin),
                             _credential_row(app.signed_by.credential)])

        self._section(pdf, "Statusların tarixçəsi")
        self._history(pdf, app)

        pdf.ln(4)
        pdf.set_font(FONT, "", 8)
        pdf.multi_cell(
            0, 4.5,
            f"Bildiriş {_when(content.issued_at)} (Bakı vaxtı) tarixində yaradılıb. "
            "Bu sənəd Fondun şlüzünün elektron imzası ilə imzalanmış XML bildirişin çap "
            "formasıdır; hüquqi qüvvəni XML sənəd daşıyır.",
            align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT,
        )
        return bytes(pdf.output())

    # -- pieces -----------------------------------------------------------------------------

    @staticmethod
    def _draft_banner(pdf: FPDF) -> None:
        pdf.set_fill_color(253, 236, 234)
        pdf.set_draw_color(192, 57, 43)
        pdf.set_text_color(192, 57, 43)
        pdf.set_font(FONT, "B", 12)
        pdf.multi_cell(
            0, 7, "QARALAMA — ərizə imzalanmayıb və göndərilməyib; bu bildiriş uçota alınmanı "
            "təsdiq etmir.", border=1, fill=True, align="C",
            new_x=XPos.LMARGIN, new_y=YPos.NEXT,
        )
        pdf.set_text_color(0, 0, 0)
        pdf.ln(2)

    @staticmethod
    def _section(pdf: FPDF, title: str) -> None:
        pdf.ln(2)
        pdf.set_font(FONT, "B", 11)
        pdf.set_fill_color(232, 238, 245)
        pdf.cell(0, 7, title, fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)

    @staticmethod
    def _rows(pdf: FPDF, rows: Iterable[tuple[str, str | None]]) -> None:
        value_width = pdf.epw - _LABEL_WIDTH
        for label, value in rows:
            if not value:
                continue
            y = pdf.get_y()
            pdf.set_font(FONT, "", 9)
            pdf.set_text_color(90, 90, 90)
            pdf.cell(_LABEL_WIDTH, _LINE, label)
            pdf.set_text_color(0, 0, 0)
            pdf.set_font(FONT, "", 10)
            pdf.set_xy(pdf.l_margin + _LABEL_WIDTH, y)
            pdf.multi_cell(value_width, _LINE, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    @staticmethod
    def _history(pdf: FPDF, app: Application) -> None:
        widths = (40.0, 38.0, 32.0, pdf.epw - 110.0)
        pdf.set_font(FONT, "B", 9)
        for width, title in zip(widths, ("Tarix (Bakı vaxtı)", "Status", "İcraçının FİN-i", "Qeyd"),
                                strict=True):
            pdf.cell(width, _LINE, title, border="B")
        pdf.ln(_LINE)
        pdf.set_font(FONT, "", 9)
        for change in app.history:
            y = pdf.get_y()
            pdf.cell(widths[0], _LINE, _when(change.at))
            pdf.cell(widths[1], _LINE, STATUS_AZ.get(change.status.value, change.status.value))
            pdf.cell(widths[2], _LINE, change.actor_fin or "—")
            pdf.set_xy(pdf.l_margin + sum(widths[:3]), y)
            note = notes.note(change.note, NOTICE_LOCALE) if change.note else ""
            pdf.multi_cell(widths[3], _LINE, note, new_x=XPos.LMARGIN,
                           new_y=YPos.NEXT)


def _person_rows(app: Application) -> list[tuple[str, str | None]]:
    person = app.person
    rows: list[tuple[str, str | None]] = []
    if person is not None:
        rows.append(("Soyadı, adı, ata adı", person.full_name))
    rows.append(("FİN", app.fin))
    rows.append(("Sənədin növü", DOCUMENT_TYPE_AZ.get(app.document_type.value,
                                                      app.document_type.value)))
    if person is not None:
        doc = person.document
        rows += [
            ("Sənədin seriyası və nömrəsi", f"{doc.series or ''}{doc.number}"),
            ("Doğum tarixi", person.birth_date.strftime("%d.%m.%Y")),
        ]
    rows += [
        ("SSN", app.ssn),
        ("SSN-in verilmə tarixi", app.ssn_date.strftime("%d.%m.%Y") if app.ssn_date else None),
    ]
    return rows


def _contact_rows(contacts: Contacts | None) -> list[tuple[str, str | None]]:
    if contacts is None or contacts.is_empty():
        return [("Əlaqə", "göstərilməyib")]
    return [
        ("Mobil telefon", contacts.mobile_phone),
        ("Stasionar telefon", contacts.landline_phone),
        ("E-poçt", contacts.email),
    ]


def _address(address: Address | None) -> str:
    return address.one_line() if address is not None else "—"


def _when(moment: datetime) -> str:
    """Baku wall-clock time: what the insurer's clock showed (labelled "Bakı vaxtı")."""
    return baku_time(moment).strftime("%d.%m.%Y %H:%M:%S")


def _credential_row(credential: str) -> tuple[str, str]:
    if credential_type(credential) == "ASAN_IMZA":
        return ("Asan İmza telefonu", credential)
    return ("Elektron imza kartının nömrəsi", credential)
