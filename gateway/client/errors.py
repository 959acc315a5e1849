"""Errors of the employer's desk tool (``dsmf-client``). Each carries the sentence to show.

    ClientError                 -- root; the command prints ``message`` and exits non-zero
    ├── InputError              -- the spreadsheet cannot be read (bad rows are reported instead)
    ├── CardError               -- the signing key: wrong PIN, locked, no token, expired certificate
    ├── TrustError              -- no or unreadable trust list for the answers
    ├── AnswerNotTrusted        -- an answer's signature did not verify: it is not used
    ├── TransportError          -- the gateway could not be reached (raised after the retries)
    └── GatewayFault            -- the gateway refused a whole request (``code``, correlation id)
"""

from __future__ import annotations


class ClientError(Exception):
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(ClientError):
    exit_code = 2


class CardError(ClientError):
    exit_code = 4


class TrustError(ClientError):
    exit_code = 4


class AnswerNotTrusted(ClientError):
    exit_code = 5

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class TransportError(ClientError):
    exit_code = 6


class GatewayFault(ClientError):
    """A SOAP fault for the whole request. ``server_message`` is the gateway's own text."""

    exit_code = 7

    def __init__(self, message: str, *, code: str, server_message: str = "",
                 correlation_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.server_message = server_message
        self.correlation_id = correlation_id

    @property
    def is_server_side(self) -> bool:
        """``Server.*``: the gateway or a system behind it failed; worth retrying later."""
        return self.code.startswith("Server.")
