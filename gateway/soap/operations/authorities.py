"""§2.2 Granting authority (Səlahiyyətlərin verilməsi) and the registry of authorities."""

from __future__ import annotations

from datetime import date
from typing import Any

from gateway.domain.calendar import business_date
from gateway.domain.model import Authority, AuthorityState, AuthorityType
from gateway.soap import convert
from gateway.soap import models as m
from gateway.soap.endpoint import Operation, RequestScope

DEFAULT_PAGE_SIZE = 50


def operations(services: Any) -> dict[str, Operation]:
    def row(authority: Authority, today: date) -> m.Authority:
        names = {e.code: e.name for e in services.insurers.list_eservices()}
        return convert.authority(
            authority, names.get(authority.eservice_code, authority.eservice_code), today
        )

    def grant(scope: RequestScope, r: Any) -> m.GrantAuthorityResponse:
        authority = services.authorities.grant(
            scope.actor, r.voen,
            eservice_code=r.eServiceCode,
            authority_type=AuthorityType(r.authorityType),
            card_number=r.cardNumber,
            asan_phone=r.asanPhone,
            asan_user_id=r.asanUserId,
            fin=r.fin,
            valid_from=r.validFrom,
            valid_to=r.validTo,
            trusted=bool(r.trusted),
        )
        return m.GrantAuthorityResponse(authority=row(authority, business_date(scope.received_at)))

    def list_authorities(scope: RequestScope, r: Any) -> m.ListAuthoritiesResponse:
        page = r.paging.page if r.paging else 1
        size = r.paging.pageSize if r.paging else DEFAULT_PAGE_SIZE
        total, items = services.authorities.list(
            scope.actor, r.voen, AuthorityState(r.state) if r.state else None, page, size
        )
        today = business_date(scope.received_at)
        names = {e.code: e.name for e in services.insurers.list_eservices()}
        return m.ListAuthoritiesResponse(
            total=total, page=page, pageSize=size,
            authority=[
                convert.authority(a, names.get(a.eservice_code, a.eservice_code), today)
                for a in items
            ],
        )

    def revoke(scope: RequestScope, r: Any) -> m.RevokeAuthorityResponse:
        authority = services.authorities.revoke(scope.actor, r.voen, r.authorityId, r.reason)
        return m.RevokeAuthorityResponse(authority=row(authority, business_date(scope.received_at)))

    return {
        "GrantAuthority": grant,
        "ListAuthorities": list_authorities,
        "RevokeAuthority": revoke,
    }
