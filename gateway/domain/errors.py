"""Errors of the domain and of the service layer.

Every error has a ``code``: the SOAP fault code the gateway answers with (one table in
``gateway.soap.faults`` maps the rest). Handlers raise these; adapters translate third-party errors
into them at their edge, so nothing foreign crosses into the service layer.

    GatewayError
    ├── ValidationFailed            Client.Validation[.Fin|.Voen|.Phone|.Email|.Address|...]
    ├── NotFound                    Client.NotFound[.Insurer|.Application|.Person|.Authority|...]
    ├── NotAuthorized               Client.NotAuthorized[.OtherInsurer|.NoAuthority|.NotSealHolder|
    │                                 .AuthorityNotYetValid|.AuthorityExpired|.AuthorityRevoked|
    │                                 .WrongCredential|.WrongEService|.SessionExpired|...]
    ├── Conflict                    Client.Conflict[.SsnExists|.NotDraft|.Duplicate|...]
    ├── RateLimited                 Client.RateLimit.Exceeded (one caller, too many unsigned calls)
    ├── UpstreamError               Server.Upstream[.Unavailable|.Timeout|.Fault]
    │   └── PersonNotFoundUpstream  Client.Person.NotFound (the registry knows no such person)
    ├── NotImplementedOperation     Server.NotImplemented
    └── InternalError               Server.Internal
"""

from __future__ import annotations

from collections.abc import Mapping


class GatewayError(Exception):
    """``message`` is the developer's English text (for the log); the user reads the catalogue's
    text for ``code`` (``gateway.messages``), filled with ``field`` and the named ``params``."""

    code: str = "Server.Internal"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 params: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.params: Mapping[str, object] = dict(params or {})
        if code is not None:
            self.code = code


class ValidationFailed(GatewayError):
    code = "Client.Validation"


class NotFound(GatewayError):
    code = "Client.NotFound"


class NotAuthorized(GatewayError):
    code = "Client.NotAuthorized"


class Conflict(GatewayError):
    code = "Client.Conflict"


class RateLimited(GatewayError):
    code = "Client.RateLimit.Exceeded"


class SsnAlreadyIssued(Conflict):
    """The person already holds an SSN (şəxsin SSN-i mövcuddur); ``ssn`` is it, when known."""

    code = "Client.Conflict.SsnExists"

    def __init__(self, message: str, *, ssn: str | None = None, field: str | None = None,
                 params: Mapping[str, object] | None = None) -> None:
        super().__init__(message, field=field,
                         params={"ssn": ssn, **(params or {})} if ssn else params)
        self.ssn = ssn


class UpstreamError(GatewayError):
    code = "Server.Upstream"


class UpstreamUnavailable(UpstreamError):
    code = "Server.Upstream.Unavailable"


class UpstreamTimeout(UpstreamError):
    code = "Server.Upstream.Timeout"


class UpstreamFault(UpstreamError):
    code = "Server.Upstream.Fault"


class PersonNotFoundUpstream(UpstreamError):
    """The population registry answered that it knows no such person/document."""

    code = "Client.Person.NotFound"


class DocumentInvalid(UpstreamError):
    """The population registry says the identity document is expired or invalidated."""

    code = "Client.Person.DocumentInvalid"


class NotImplementedOperation(GatewayError):
    code = "Server.NotImplemented"


class InternalError(GatewayError):
    code = "Server.Internal"
