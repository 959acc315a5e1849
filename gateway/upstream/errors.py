"""Errors of the upstream adapters.

Everything the adapters raise is a :class:`gateway.domain.errors.GatewayError`; no zeep,
requests or lxml exception leaves :mod:`gateway.upstream`. The mapping, most specific first:

    UpstreamError                                   (gateway.domain.errors)
    ├── UpstreamUnavailable     Server.Upstream.Unavailable
    │   │                         connection refused, DNS failure, connect timeout, reset,
    │   │                         HTTP 5xx without a SOAP fault
    │   └── CircuitOpen         Server.Upstream.Unavailable   (not even tried: breaker open)
    ├── UpstreamTimeout         Server.Upstream.Timeout       connected, no answer in time
    ├── UpstreamFault           Server.Upstream.Fault
    │                             a SOAP fault we have no better name for, an answer that does
    │                             not match the contract, other HTTP errors
    ├── PersonNotFoundUpstream  Client.Person.NotFound        registry fault PERSON_NOT_FOUND
    ├── DocumentInvalid         Client.Person.DocumentInvalid registry fault DOCUMENT_INVALID
    └── MobileSignatureRefused  Client.Mobile.<Reason>        the MSSP refused to start signing
                                  (ETSI 101 WRONG_PARAM, 105 UNKNOWN_CLIENT, 422 NO_CERT_FOUND,
                                  ...; ``reason`` and ``etsi_code`` say which)
    InternalError
    └── UpstreamConfigurationError  Server.Internal           a WSDL that does not load

Only UpstreamUnavailable (not CircuitOpen) and UpstreamTimeout are retried, and only for
idempotent reads; only they count as failures for the circuit breaker.
"""

from __future__ import annotations

from gateway.domain.errors import (
    DocumentInvalid,
    InternalError,
    PersonNotFoundUpstream,
    UpstreamError,
    UpstreamFault,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = [
    "CircuitOpen",
    "DocumentInvalid",
    "MobileSignatureRefused",
    "PersonNotFoundUpstream",
    "UpstreamConfigurationError",
    "UpstreamError",
    "UpstreamFault",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class CircuitOpen(UpstreamUnavailable):
    """The circuit breaker is open: the call was refused without touching the network."""


class UpstreamConfigurationError(InternalError):
    """The local contract of an upstream service could not be loaded."""


class MobileSignatureRefused(UpstreamError):
    """The mobile-signature service refused to start a signing transaction.

    ``reason`` is the ETSI TS 102 204 status name (``"NO_CERT_FOUND"``), ``etsi_code`` its
    number (422); the fault code is ``Client.Mobile.<Reason>`` (``Client.Mobile.NoCertFound``).
    """

    def __init__(self, message: str, *, reason: str, etsi_code: int) -> None:
        camel = "".join(part.capitalize() for part in reason.split("_"))
        super().__init__(message, code=f"Client.Mobile.{camel}")
        self.reason = reason
        self.etsi_code = etsi_code
