"""Errors of the evidence tools.

    GatewayError
    └── EvidenceError                Server.MessageLog
        ├── TimestampUnavailable     Server.MessageLog.TsaUnavailable  (no answer, refused)
        └── TimestampInvalid         Server.MessageLog.TsaInvalid      (a token that does not
                                                                        check out)
"""

from __future__ import annotations

from gateway.domain.errors import GatewayError


class EvidenceError(GatewayError):
    code = "Server.MessageLog"


class TimestampUnavailable(EvidenceError):
    code = "Server.MessageLog.TsaUnavailable"


class TimestampInvalid(EvidenceError):
    code = "Server.MessageLog.TsaInvalid"
