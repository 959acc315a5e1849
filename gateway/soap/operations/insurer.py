"""§2.1 Insurer data (Sığortaedən məlumatları)."""

from __future__ import annotations

from typing import Any

from gateway.soap import models as m
from gateway.soap.endpoint import Operation, RequestScope


def _split_name(full: str) -> tuple[str, str, str | None]:
    parts = full.split(" ", 2)
    if len(parts) == 1:
        return parts[0], parts[0], None
    return parts[0], parts[1], parts[2] if len(parts) > 2 else None


def operations(services: Any) -> dict[str, Operation]:
    def get_insurer(scope: RequestScope, request: Any) -> m.GetInsurerResponse:
        insurer = services.insurers.get_insurer(scope.actor, request.voen)
        surname, name, patronymic = _split_name(insurer.responsible_person)
        return m.GetInsurerResponse(insurer=m.Insurer(
            fullName=insurer.full_name,
            insurerType=insurer.insurer_type.value,
            registrationNumber=insurer.registration_number,
            voen=insurer.voen,
            responsiblePerson=m.PersonName(surname=surname, name=name, patronymic=patronymic),
            localOffice=m.LocalOffice(
                code=insurer.local_office.code, name=insurer.local_office.name
            ),
        ))

    return {"GetInsurer": get_insurer}
