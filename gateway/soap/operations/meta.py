"""X-Road metaservice ``listMethods`` and the e-service catalogue."""

from __future__ import annotations

from typing import Any

from gateway.soap import models as m
from gateway.soap.endpoint import Operation, RequestScope
from gateway.soap.service import OPERATIONS


def operations(services: Any) -> dict[str, Operation]:
    def list_methods(scope: RequestScope, request: Any) -> m.ListMethodsResponse:
        provider = services.provider
        return m.ListMethodsResponse(service=[
            m.XRoadServiceIdentifier(
                xRoadInstance=provider.instance, memberClass=provider.member_class,
                memberCode=provider.member_code, subsystemCode=provider.subsystem_code,
                serviceCode=name, serviceVersion="v1", objectType="SERVICE",
            )
            for name in OPERATIONS
        ])

    def list_eservices(scope: RequestScope, request: Any) -> m.ListEServicesResponse:
        return m.ListEServicesResponse(eService=[
            m.EService(code=e.code, name=e.name) for e in services.insurers.list_eservices()
        ])

    def list_offices(scope: RequestScope, request: Any) -> m.ListLocalOfficesResponse:
        return m.ListLocalOfficesResponse(localOffice=[
            m.LocalOffice(code=o.code, name=o.name) for o in services.insurers.list_offices()
        ])

    return {"listMethods": list_methods, "ListEServices": list_eservices,
            "ListLocalOffices": list_offices}
