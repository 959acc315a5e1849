"""The population registry over SOAP (``wsdl/upstream/population-registry.wsdl``), via zeep.

Implements :class:`gateway.services.ports.PopulationRegistry`. The WSDL is read from the local
contract directory and the service bound to the configured endpoint; the peer's own ``?wsdl``
is never fetched. Reads are idempotent, so they are retried on transport failures (never on
an answer such as PERSON_NOT_FOUND); a circuit breaker stops calling a registry that is down.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import zeep.exceptions

from gateway.domain.model import IdentityDocument, PersonRecord
from gateway.domain.values import Address, DocumentType, Sex
from gateway.upstream.errors import (
    DocumentInvalid,
    PersonNotFoundUpstream,
    UpstreamError,
    UpstreamFault,
)
from gateway.upstream.resilience import CircuitBreaker, Resilience
from gateway.upstream.transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    FaultMapper,
    check_endpoint,
    fault_detail,
    service_proxy,
    translate,
)

__all__ = ["BINDING", "NS", "ZeepPopulationRegistry"]

NS = "urn:az:iamas:population-registry:v1"
BINDING = f"{{{NS}}}PopulationRegistryBinding"
_WHAT = "the population registry"

T = TypeVar("T")


class ZeepPopulationRegistry:
    """PopulationRegistry adapter: ``find_person`` and ``ping`` over SOAP."""

    def __init__(
        self,
        wsdl_path: Path,
        endpoint: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        breaker: CircuitBreaker | None = None,
        connect_timeout: float | None = None,
        backoff: float = 0.1,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        """``timeout``: seconds for the whole answer (``connect_timeout`` defaults to it too);
        ``retries``: extra attempts after a transport failure; ``breaker``: shared per registry
        (default: a private one that opens after 5 failed calls and half-opens after 30 s)."""
        self.endpoint = check_endpoint(endpoint)
        self._service = service_proxy(
            Path(wsdl_path), BINDING, endpoint, timeout=timeout, connect_timeout=connect_timeout,
            max_response_bytes=max_response_bytes,
        )
        self.breaker = breaker or CircuitBreaker(_WHAT)
        self._resilience = Resilience(self.breaker, retries=retries, backoff=backoff)

    def find_person(self, document_type: DocumentType, fin: str) -> PersonRecord:
        """Raises PersonNotFoundUpstream, DocumentInvalid, UpstreamUnavailable/Timeout/Fault."""

        def map_fault(fault: zeep.exceptions.Fault) -> UpstreamError | None:
            return _registry_fault(fault, document_type, fin)

        def attempt() -> PersonRecord:
            answer = self._call(
                lambda: self._service.GetPersonByDocument(
                    documentType=document_type.value, fin=fin
                ),
                map_fault,
            )
            try:
                return _person(answer)
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                raise UpstreamFault(f"{_WHAT} sent a person that cannot be read: {exc}") from exc

        return self._resilience.call(attempt, idempotent=True)

    def ping(self) -> None:
        """Raises an UpstreamError when the registry cannot be reached or is not well."""

        def attempt() -> None:
            answer = self._call(lambda: self._service.Ping(), _no_fault_mapping)
            if getattr(answer, "status", None) != "OK":
                raise UpstreamFault(f"{_WHAT} reports status {getattr(answer, 'status', None)!r}")

        self._resilience.call(attempt, idempotent=True)

    @staticmethod
    def _call(operation: Callable[[], T], map_fault: FaultMapper) -> T:
        try:
            return operation()
        except Exception as exc:  # every zeep/requests/lxml error is translated here
            raise translate(exc, _WHAT, map_fault) from exc


def _no_fault_mapping(fault: zeep.exceptions.Fault) -> UpstreamError | None:
    return None


def _registry_fault(
    fault: zeep.exceptions.Fault, document_type: DocumentType, fin: str
) -> UpstreamError | None:
    detail = fault_detail(fault, NS, "RegistryFault")
    if detail is None:
        return None
    code = detail.findtext(f"{{{NS}}}code")
    message = detail.findtext(f"{{{NS}}}message") or fault.message
    if code == "PERSON_NOT_FOUND":
        return PersonNotFoundUpstream(
            f"the population registry has no {document_type.value} with FIN {fin}", field="fin"
        )
    if code == "DOCUMENT_INVALID":
        reason = detail.findtext(f"{{{NS}}}reason") or "UNSPECIFIED"
        return DocumentInvalid(
            f"the {document_type.value} of FIN {fin} is not valid ({reason}): {message}",
            field="fin",
        )
    return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _person(answer: Any) -> PersonRecord:
    # zeep unwraps a response element with a single child (here: person) to that child.
    person = getattr(answer, "person", None) or answer
    document = person.document
    address = person.registrationAddress
    return PersonRecord(
        fin=str(person.fin),
        surname=str(person.surname),
        name=str(person.name),
        patronymic=_text(person.patronymic),
        birth_date=_date(person.birthDate),
        sex=Sex(person.sex),
        citizenship=str(person.citizenship),
        document=IdentityDocument(
            document_type=DocumentType(document.documentType),
            number=str(document.number),
            issue_date=_date(document.issueDate),
            issuer=str(document.issuer),
            series=_text(document.series),
            expiry_date=_date(document.expiryDate) if document.expiryDate is not None else None,
        ),
        registration_address=Address(
            region=str(address.region),
            city_or_district=str(address.cityOrDistrict),
            street=str(address.street),
            house=str(address.house),
            apartment=_text(address.apartment),
            postal_code=_text(address.postalCode),
        ),
        birth_place=_text(person.birthPlace),
    )


def _date(value: Any) -> date:
    if not isinstance(value, date):
        raise TypeError(f"expected a date, got {type(value).__name__}")
    return value
