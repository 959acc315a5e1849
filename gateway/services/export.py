"""Printing and exporting the registry list (§3.3 Reyestr) with the search filters: a CSV file
(UTF-8 with BOM, so spreadsheet programs read the Azerbaijani letters) and a printable A4
landscape PDF, both with Azerbaijani headings.

Who may export is decided exactly as for the search (``RegistrationService.search``): the
insurer's own applications only. The export is bounded (``Settings.max_export_rows``): a larger
result is refused with ``Client.Validation.ExportTooLarge`` so the caller narrows the filters,
instead of a gateway building an unbounded file in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Final

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from gateway.domain.calendar import business_date
from gateway.domain.errors import ValidationFailed
from gateway.domain.model import Actor, Application
from gateway.services.notifications import (
    APPLICATION_TYPE_AZ,
    CERTIFICATE_STATUS_AZ,
    STATUS_AZ,
)
from gateway.services.ports import ApplicationQuery, Clock
from gateway.services.registration import RegistrationService

FONT: Final = "DejaVu"

#: The columns of the registry list, with their Azerbaijani headings.
COLUMNS: Final = (
    ("Ərizənin nömrəsi", 47.0),
    ("Növü", 24.0),
    ("FİN", 16.0),
    ("Soyadı", 26.0),
    ("Adı", 22.0),
    ("Ata adı", 26.0),
    ("SSN", 26.0),
    ("SSN tarixi", 20.0),
    ("Ərizə tarixi", 20.0),
    ("SSŞ statusu", 22.0),
    ("Status", 24.0),
)


class ExportFormat(StrEnum):
    CSV = "CSV"
    PDF = "PDF"


@dataclass(frozen=True, slots=True)
class ExportFile:
    file_name: str
    content_type: str
    content: bytes
    rows: int


class RegistryExporter:
    def __init__(
        self, registration: RegistrationService, clock: Clock, max_rows: int = 10_000
    ) -> None:
        self.registration = registration
        self.clock = clock
        self.max_rows = max_rows

    def export(
        self, actor: Actor | None, query: ApplicationQuery, file_format: ExportFormat
    ) -> ExportFile:
        page_size = self.registration.max_page_size
        first = self.registration.search(actor, replace(query, page=1, page_size=page_size))
        if first.total > self.max_rows:
            raise ValidationFailed(
                f"{first.total} applications match; an export holds at most {self.max_rows}:"
                " narrow the filters (e.g. the application dates)",
                code="Client.Validation.ExportTooLarge",
            )
        rows = list(first.items)
        page = 1
        while len(rows) < first.total:
            page += 1
            more = self.registration.search(actor, replace(query, page=page,
                                                           page_size=page_size))
            if not more.items:
                break  # rows deleted meanwhile: export what is there
            rows.extend(more.items)
        now = self.clock()
        stem = f"reyestr-{query.insurer_voen}-{business_date(now).isoformat()}"
        if file_format is ExportFormat.CSV:
            return ExportFile(f"{stem}.csv", "text/csv; charset=utf-8", registry_csv(rows),
                              len(rows))
        return ExportFile(f"{stem}.pdf", "application/pdf",
                          registry_pdf(rows, query.insurer_voen, now), len(rows))


def _cells(app: Application) -> list[str]:
    person = app.person
    return [
        app.application_id,
        APPLICATION_TYPE_AZ.get(app.application_type.value, app.application_type.value),
        app.fin,
        person.surname if person else "",
        person.name if person else "",
        (person.patronymic or "") if person else "",
        app.ssn or "",
        app.ssn_date.isoformat() if app.ssn_date else "",
        business_date(app.created_at).isoformat(),
        CERTIFICATE_STATUS_AZ.get(app.certificate_status.value, app.certificate_status.value),
        STATUS_AZ.get(app.status.value, app.status.value),
    ]


def registry_csv(rows: Sequence[Application]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _ in COLUMNS])
    for app in rows:
        # A cell starting with = + - @ would be a formula in a spreadsheet: quote it as text.
        writer.writerow([f"'{c}" if c[:1] in ("=", "+", "-", "@") else c for c in _cells(app)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _asset(name: str) -> Path:
    return Path(str(resources.files("gateway.assets").joinpath(name)))


def registry_pdf(rows: Sequence[Application], voen: str, now: datetime) -> bytes:
    pdf = FPDF(orientation="L", format="A4")
    pdf.set_title(f"Reyestr {voen}")
    pdf.set_author("Dövlət Sosial Müdafiə Fondu")
    pdf.set_creator("dsmf-gateway")
    pdf.set_creation_date(now.astimezone(UTC))
    pdf.add_font(FONT, "", str(_asset("DejaVuSans.ttf")))
    pdf.add_font(FONT, "B", str(_asset("DejaVuSans-Bold.ttf")))
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font(FONT, "B", 13)
    pdf.cell(0, 8, "Ərizələrin reyestri", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 9)
    pdf.cell(0, 5, f"Sığortaedən VÖEN: {voen}    Tarix: {business_date(now).isoformat()}"
                   f"    Ərizələrin sayı: {len(rows)}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)

    def header() -> None:
        pdf.set_font(FONT, "B", 7)
        for name, width in COLUMNS:
            pdf.cell(width, 6, name, border=1)
        pdf.ln(6)
        pdf.set_font(FONT, "", 7)

    header()
    for app in rows:
        if pdf.will_page_break(5):
            pdf.add_page()
            header()
        for (_, width), value in zip(COLUMNS, _cells(app), strict=True):
            text = value
            while text and pdf.get_string_width(text) > width - 1.5:
                text = text[:-1]  # a long id or name is cut to its column, not wrapped
            pdf.cell(width, 5, text, border=1)
        pdf.ln(5)
    return bytes(pdf.output())
