"""§3.3 The registry (Reyestr): search, print/export, details."""

from __future__ import annotations

from typing import Any

from gateway.domain.model import ApplicationStatus, ApplicationType, CertificateStatus
from gateway.services.export import ExportFormat
from gateway.services.ports import ApplicationQuery, SortField
from gateway.soap import convert
from gateway.soap import models as m
from gateway.soap.endpoint import Operation, RequestScope

DEFAULT_PAGE_SIZE = 50


def operations(services: Any) -> dict[str, Operation]:
    reg = services.registration

    def search(scope: RequestScope, r: Any) -> m.SearchApplicationsResponse:
        page = r.paging.page if r.paging else 1
        size = r.paging.pageSize if r.paging else DEFAULT_PAGE_SIZE
        query = _query(r, page, size)
        result = reg.search(scope.actor, query)
        return m.SearchApplicationsResponse(
            total=result.total, page=page, pageSize=size,
            application=[convert.application_summary(a) for a in result.items],
        )

    def export(scope: RequestScope, r: Any) -> m.ExportApplicationsResponse:
        exported = services.export.export(
            scope.actor, _query(r, 1, DEFAULT_PAGE_SIZE), ExportFormat(r.format))
        return m.ExportApplicationsResponse(
            fileName=exported.file_name, contentType=exported.content_type,
            rows=exported.rows, content=exported.content,
        )

    def get_application(scope: RequestScope, r: Any) -> m.GetApplicationResponse:
        app = reg.get(scope.actor, r.voen, r.applicationId)
        return m.GetApplicationResponse(
            application=convert.application_detail(app, scope.locale),
            history=[convert.status_change(c, scope.locale) for c in app.history],
        )

    return {"SearchApplications": search, "ExportApplications": export,
            "GetApplication": get_application}


def _query(r: Any, page: int, size: int) -> ApplicationQuery:
    """The registry filters of a SearchApplications or ExportApplications request."""
    return ApplicationQuery(
        insurer_voen=r.voen,
        application_type=ApplicationType(r.applicationType) if r.applicationType else None,
        fin=r.fin,
        surname=r.surname,
        name=r.name,
        patronymic=r.patronymic,
        ssn=r.ssn,
        ssn_date_from=r.ssnDateFrom,
        ssn_date_to=r.ssnDateTo,
        application_date_from=r.applicationDateFrom,
        application_date_to=r.applicationDateTo,
        certificate_status=(
            CertificateStatus(r.certificateStatus) if r.certificateStatus else None
        ),
        status=ApplicationStatus(r.status) if r.status else None,
        page=page,
        page_size=size,
        sort_field=SortField(r.sort.field) if r.sort else SortField.APPLICATION_DATE,
        descending=(r.sort.direction == "DESC") if r.sort else True,
    )
