"""Population-registry simulator: a spyne service for ``wsdl/upstream/population-registry.wsdl``.

It answers from the synthetic people of :mod:`simulators.people` and, when asked to
(``PopulationDirectory(any_fin=True)``), for any other valid FIN with a deterministic synthetic
person (:mod:`simulators.synthetic`). The spyne models
below mirror the authored WSDL type for type (names, order, occurrence, facets); the authored
WSDL is what ``?wsdl`` serves and what clients are built from, and the tests validate the
simulator's answers against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree
from spyne import (
    Application,
    ComplexModel,
    Date,
    DateTime,
    Enum,
    ServiceBase,
    Unicode,
    rpc,
)
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from simulators import people as seed
from simulators._serving import (
    ContractServingApp,
    ScriptedFault,
    install_fault_filter,
    state_of,
)
from simulators.synthetic import synthetic_person

__all__ = ["NS", "PATH", "PopulationDirectory", "create_population_app"]

NS = "urn:az:iamas:population-registry:v1"
PATH = "/population-registry"
WSDL_NAME = "population-registry.wsdl"


def _required(model: Any) -> Any:
    return model.customize(min_occurs=1, nillable=False)


def _optional(model: Any) -> Any:
    return model.customize(min_occurs=0, nillable=False)


DocumentType = Enum(
    "ID_CARD",
    "TEMPORARY_RESIDENCE_PERMIT",
    "PERMANENT_RESIDENCE_PERMIT",
    type_name="DocumentType",
    __namespace__=NS,
)
Fin = Unicode(pattern="[A-HJ-NP-Z0-9]{5,7}", type_name="Fin", __namespace__=NS)
Sex = Enum("M", "F", type_name="Sex", __namespace__=NS)
CountryCode = Unicode(pattern="[A-Z]{3}", type_name="CountryCode", __namespace__=NS)
Text = Unicode(min_len=1, max_len=200, type_name="Text", __namespace__=NS)
Echo = Unicode(max_len=64, type_name="Echo", __namespace__=NS)
FaultCode = Enum("PERSON_NOT_FOUND", "DOCUMENT_INVALID", type_name="FaultCode", __namespace__=NS)
DocumentInvalidReason = Enum(
    "EXPIRED", "INVALIDATED", "REPORTED_LOST", type_name="DocumentInvalidReason", __namespace__=NS
)


class GetPersonByDocumentRequest(ComplexModel):
    __namespace__ = NS
    documentType = _required(DocumentType)
    fin = _required(Fin)


class IdentityDocument(ComplexModel):
    __namespace__ = NS
    documentType = _required(DocumentType)
    series = _optional(Text)
    number = _required(Text)
    issueDate = _required(Date)
    issuer = _required(Text)
    expiryDate = _optional(Date)


class Address(ComplexModel):
    __namespace__ = NS
    region = _required(Text)
    cityOrDistrict = _required(Text)
    street = _required(Text)
    house = _required(Text)
    apartment = _optional(Text)
    postalCode = _optional(Text)


class Person(ComplexModel):
    __namespace__ = NS
    fin = _required(Fin)
    surname = _required(Text)
    name = _required(Text)
    patronymic = _optional(Text)
    birthDate = _required(Date)
    birthPlace = _optional(Text)
    sex = _required(Sex)
    citizenship = _required(CountryCode)
    document = _required(IdentityDocument)
    registrationAddress = _required(Address)


class GetPersonByDocumentResponse(ComplexModel):
    __namespace__ = NS
    person = _required(Person)


class PingRequest(ComplexModel):
    __namespace__ = NS
    echo = _optional(Echo)


class PingResponse(ComplexModel):
    __namespace__ = NS
    status = _required(Text)
    serverTime = _required(DateTime)
    echo = _optional(Echo)


class PopulationDirectory:
    """The people one simulator instance knows (default: the seed data).

    With ``any_fin``, a valid FIN that none of ``people`` holds (and that is not
    :data:`simulators.people.NOT_FOUND_FIN`, which stays nobody's) is answered with the
    deterministic synthetic person of :mod:`simulators.synthetic`; the listed people are answered
    exactly as without it (their document types, their invalid documents).
    """

    def __init__(
        self, people: Sequence[seed.SeedPerson] = seed.PEOPLE, *, any_fin: bool = False
    ) -> None:
        self._by_fin = {person.fin: person for person in people}
        self.any_fin = any_fin

    def find(self, document_type: str, fin: str) -> seed.SeedPerson | None:
        person = self._by_fin.get(fin)
        if person is None:
            if self.any_fin and fin != seed.NOT_FOUND_FIN:
                return synthetic_person(fin, document_type)
            return None
        if person.document.document_type != document_type:
            return None
        return person


def _registry_fault(code: str, message: str, reason: str | None = None) -> ScriptedFault:
    detail = etree.Element(f"{{{NS}}}RegistryFault", nsmap={"pr": NS})
    etree.SubElement(detail, f"{{{NS}}}code").text = code
    etree.SubElement(detail, f"{{{NS}}}message").text = message
    if reason is not None:
        etree.SubElement(detail, f"{{{NS}}}reason").text = reason
    return ScriptedFault(faultcode="Client", faultstring=message, detail=detail)


def _person_model(person: seed.SeedPerson) -> Person:
    doc = person.document
    address = person.registration_address
    return Person(
        fin=person.fin,
        surname=person.surname,
        name=person.name,
        patronymic=person.patronymic,
        birthDate=person.birth_date,
        birthPlace=person.birth_place,
        sex=person.sex,
        citizenship=person.citizenship,
        document=IdentityDocument(
            documentType=doc.document_type.value,
            series=doc.series,
            number=doc.number,
            issueDate=doc.issue_date,
            issuer=doc.issuer,
            expiryDate=doc.expiry_date,
        ),
        registrationAddress=Address(
            region=address.region,
            cityOrDistrict=address.city_or_district,
            street=address.street,
            house=address.house,
            apartment=address.apartment,
            postalCode=address.postal_code,
        ),
    )


class PopulationRegistryService(ServiceBase):  # type: ignore[misc]
    @rpc(  # type: ignore[misc]
        GetPersonByDocumentRequest,
        _body_style="bare",
        _returns=GetPersonByDocumentResponse,
        _in_message_name="GetPersonByDocument",
        _out_message_name="GetPersonByDocumentResponse",
    )
    def GetPersonByDocument(ctx: Any, request: Any) -> GetPersonByDocumentResponse:
        directory: PopulationDirectory = state_of(ctx)
        document_type = str(request.documentType)  # spyne's Enum value is not a str
        person = directory.find(document_type, request.fin)
        if person is None:
            raise _registry_fault(
                "PERSON_NOT_FOUND", f"no {document_type} with FIN {request.fin} in the registry"
            )
        reason = person.document.invalid_reason
        if reason is not None:
            expiry = person.document.expiry_date
            what = f"{document_type} of FIN {person.fin}"
            if reason is seed.InvalidReason.EXPIRED and expiry is not None:
                message = f"{what} expired on {expiry.isoformat()}"
            else:
                message = f"{what} is {reason.lower().replace('_', ' ')}"
            raise _registry_fault("DOCUMENT_INVALID", message, reason.value)
        return GetPersonByDocumentResponse(person=_person_model(person))

    @rpc(  # type: ignore[misc]
        PingRequest,
        _body_style="bare",
        _returns=PingResponse,
        _in_message_name="Ping",
        _out_message_name="PingResponse",
    )
    def Ping(ctx: Any, request: Any) -> PingResponse:
        return PingResponse(status="OK", serverTime=datetime.now(UTC), echo=request.echo)


@lru_cache(maxsize=1)
def _soap_app() -> WsgiApplication:
    install_fault_filter()
    application = Application(
        [PopulationRegistryService],
        tns=NS,
        name="PopulationRegistry",
        in_protocol=Soap11(validator="lxml"),
        out_protocol=Soap11(),
    )
    return WsgiApplication(application)


def create_population_app(
    wsdl_dir: Path, directory: PopulationDirectory | None = None
) -> ContractServingApp:
    """The WSGI app of one population-registry simulator (serve it at :data:`PATH`)."""
    return ContractServingApp(
        wsdl_dir / WSDL_NAME, _soap_app(), directory or PopulationDirectory(), PATH
    )
