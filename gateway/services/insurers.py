"""Insurer data (§2.1, Sığortaedən məlumatları) and the e-service catalogue."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.domain.calendar import business_date
from gateway.domain.errors import NotFound
from gateway.domain.model import Actor, EService, Insurer, LocalOffice
from gateway.domain.values import Voen
from gateway.services.authorization import authorize
from gateway.services.ports import Clock, UnitOfWorkFactory


class InsurerService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self.uow = uow
        self.clock = clock

    def get_insurer(self, actor: Actor | None, voen: str) -> Insurer:
        voen = Voen.parse(voen).value
        with self.uow() as uow:
            authorize(uow, actor, voen, today=business_date(self.clock()))
            insurer = uow.insurers.get(voen)
        if insurer is None:
            raise NotFound(f"no insurer with VÖEN {voen}", code="Client.NotFound.Insurer")
        return insurer

    def list_eservices(self) -> Sequence[EService]:
        with self.uow() as uow:
            return list(uow.eservices.list())

    def list_offices(self) -> Sequence[LocalOffice]:
        """The local DSMF offices, by code (public reference data, like the e-services)."""
        with self.uow() as uow:
            return list(uow.insurers.list_offices())
