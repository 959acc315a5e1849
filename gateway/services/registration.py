"""Registration of insured persons (§3.1 İlkin uçot) and correction (§3.2 Düzəliş)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.domain.model import Actor, InsuredPerson, PersonRecord
from gateway.domain.values import DocumentType, Fin, Voen
from gateway.services.authorization import authorize
from gateway.services.ports import Clock, PopulationRegistry, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class PersonFound:
    person: PersonRecord


@dataclass(frozen=True, slots=True)
class SsnExists:
    """"The person's SSN exists" (şəxsin SSN-i mövcuddur): no new application is needed."""

    insured: InsuredPerson


class RegistrationService:
    def __init__(
        self, uow: UnitOfWorkFactory, registry: PopulationRegistry, clock: Clock
    ) -> None:
        self.uow = uow
        self.registry = registry
        self.clock = clock

    def find_person(
        self, actor: Actor | None, voen: str, document_type: DocumentType, fin: str
    ) -> PersonFound | SsnExists:
        voen = Voen.parse(voen).value
        fin = Fin.parse(fin, document_type).value
        with self.uow() as uow:
            authorize(uow, actor, voen, today=self.clock().date())
            insured = uow.insured_persons.get(fin)
        if insured is not None:
            return SsnExists(insured)
        return PersonFound(self.registry.find_person(document_type, fin))
