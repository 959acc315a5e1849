"""An Asan İmza (mobile signature) transaction, as the service keeps it and the store saves it.

States follow ETSI TS 102 204: OUTSTANDING (504, waiting for the phone), SIGNED (500/502: a
signature came back; ``completed_at`` unset while it is being checked), REFUSED (401 user cancel
and the other refusals), EXPIRED (208), FAILED (a service fault).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class MobileKind(StrEnum):
    LOGIN = "LOGIN"
    SIGNING = "SIGNING"


class MobileState(StrEnum):
    OUTSTANDING = "OUTSTANDING"
    SIGNED = "SIGNED"
    REFUSED = "REFUSED"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class MobileTransaction:
    """One request to a phone and what came back.

    ``pending`` is the unsigned document while outstanding, the signed one once completed;
    ``data_hash`` the hex digest sent to the phone, from which ``verification_code`` is derived;
    ``fault_code`` / ``fault_reason`` the refusal.
    """

    transaction_id: str
    kind: MobileKind
    phone: str
    user_id: str
    state: MobileState
    verification_code: str
    data_hash: str
    created_at: datetime
    expires_at: datetime
    application_id: str | None = None
    voen: str | None = None
    fin: str | None = None
    pending: bytes | None = None
    upstream_id: str | None = None
    completed_at: datetime | None = None
    signature: bytes | None = None
    certificate: bytes | None = None
    fault_code: str | None = None
    fault_reason: str | None = None

    def is_open(self, now: datetime) -> bool:
        return self.state is MobileState.OUTSTANDING and now < self.expires_at
