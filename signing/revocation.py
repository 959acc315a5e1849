"""What a revocation source answers, and the interface every source implements.

Sources: CRL files (:mod:`signing.crl`) and OCSP responders (:mod:`signing.ocsp`); the trust
store (:mod:`signing.trust`) asks them in the configured order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol, runtime_checkable

from cryptography import x509

#: Open ends of a validity interval, and the smallest step between two datetimes.
FAR_PAST = datetime.min.replace(tzinfo=UTC)
FAR_FUTURE = datetime.max.replace(tzinfo=UTC)
TICK = timedelta(microseconds=1)


class RevocationStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class RevocationResult:
    """One checker's answer about one certificate.

    ``valid_from``/``valid_until`` (inclusive) bound the validation times at which the source, as
    loaded, gives this same answer; ``valid_until`` None means "unknown", and a validation using
    such an answer is not cached.
    """

    status: RevocationStatus
    source: str
    revoked_at: datetime | None = None
    reason: str | None = None
    detail: str = ""
    valid_from: datetime | None = field(default=None, compare=False)
    valid_until: datetime | None = field(default=None, compare=False)
    #: UNKNOWN because the source's data exists but may not be used (RFC 5280: a CRL with a
    #: critical extension we cannot process), not merely because it is missing or stale.
    unusable: bool = field(default=False, compare=False)


@runtime_checkable
class RevocationChecker(Protocol):
    """A revocation source (CRLs, OCSP, ...). Must not raise for
    "don't know": answer UNKNOWN and let the next checker or ``require_crl`` decide."""

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, at: datetime
    ) -> RevocationResult: ...
