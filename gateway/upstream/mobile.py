"""The Asan İmza mobile-signature service over SOAP (``wsdl/upstream/mobile-signature.wsdl``).

Implements :class:`gateway.services.ports.MobileSignatureService` with ETSI TS 102 204 in the
asynchronous client-server mode: :meth:`~ZeepMobileSignatureService.start` sends
``MSS_SignatureReq`` with the SHA-256 hash to sign and returns the MSSP transaction id;
:meth:`~ZeepMobileSignatureService.status` sends ``MSS_StatusReq`` and reads the answer:

* 504 OUTSTANDING_TRANSACTION → :class:`MobileOutstanding`;
* 500 SIGNATURE / 502 VALID_SIGNATURE → :class:`MobileSigned` (raw signature value and the
  signer's certificate, unverified: the caller verifies both);
* a fault with an ETSI status code (208, 401, 402, 422, ...) → :class:`MobileRefused`, except
  104 UNAUTHORIZED_ACCESS and 900 INTERNAL_ERROR, which are our or the MSSP's failures
  (:class:`UpstreamFault`).

Starting is not idempotent (the phone is asked again), so it is never retried; status queries
are. At start, an ETSI-coded refusal raises :class:`MobileSignatureRefused`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import zeep.exceptions

from gateway.domain.errors import InternalError
from gateway.services.ports import MobileOutstanding, MobileRefused, MobileSigned, MobileStatus
from gateway.upstream.errors import MobileSignatureRefused, UpstreamError, UpstreamFault
from gateway.upstream.resilience import CircuitBreaker, Resilience
from gateway.upstream.transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    check_endpoint,
    fault_detail,
    service_proxy,
    translate,
)

__all__ = [
    "BINDING",
    "ETSI_STATUS_NAMES",
    "MSS_NS",
    "SIGNATURE_PROFILE",
    "ZeepMobileSignatureService",
]

MSS_NS = "http://uri.etsi.org/TS102204/v1.1.2#"
BINDING = "{urn:az:asan-imza:mobile-signature:v1}MobileSignatureBinding"
#: PKCS#1 v1.5 RSA over a SHA-256 hash computed by the application provider.
SIGNATURE_PROFILE = "urn:az:asan-imza:signature-profile:rsa-pkcs1-sha256-hash"
_WHAT = "the mobile-signature service"

#: ETSI TS 102 204 status codes (§ "Status codes") and their names.
ETSI_STATUS_NAMES: dict[int, str] = {
    100: "REQUEST_OK",
    101: "WRONG_PARAM",
    102: "MISSING_PARAM",
    103: "WRONG_DATA_LENGTH",
    104: "UNAUTHORIZED_ACCESS",
    105: "UNKNOWN_CLIENT",
    107: "INAPPROPRIATE_DATA",
    108: "INCOMPATIBLE_INTERFACE",
    109: "UNSUPPORTED_PROFILE",
    208: "EXPIRED_TRANSACTION",
    209: "OTA_ERROR",
    401: "USER_CANCEL",
    402: "PIN_BLOCKED",
    403: "CARD_BLOCKED",
    404: "NO_KEY_FOUND",
    406: "PB_SIGNATURE_PROCESS",
    422: "NO_CERT_FOUND",
    500: "SIGNATURE",
    501: "REVOKED_CERTIFICATE",
    502: "VALID_SIGNATURE",
    503: "INVALID_SIGNATURE",
    504: "OUTSTANDING_TRANSACTION",
    900: "INTERNAL_ERROR",
}
_REQUEST_OK = 100
_SIGNED = frozenset({500, 502})
_OUTSTANDING = 504
# Not the user's doing: our AP credentials, or the MSSP itself.
_SERVICE_FAILURES = frozenset({104, 900})

T = TypeVar("T")


class _EtsiFault(Exception):
    """A SOAP fault that carries an ETSI status code (internal to this module)."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message


class ZeepMobileSignatureService:
    """MobileSignatureService adapter for an ETSI TS 102 204 MSSP (Asan İmza)."""

    def __init__(
        self,
        wsdl_path: Path,
        endpoint: str,
        *,
        ap_id: str,
        ap_password: str | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        breaker: CircuitBreaker | None = None,
        connect_timeout: float | None = None,
        backoff: float = 0.1,
        signature_profile: str = SIGNATURE_PROFILE,
        mssp_uri: str | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.endpoint = check_endpoint(endpoint)
        self._service = service_proxy(
            Path(wsdl_path), BINDING, endpoint, timeout=timeout, connect_timeout=connect_timeout,
            max_response_bytes=max_response_bytes,
        )
        self.breaker = breaker or CircuitBreaker(_WHAT)
        self._resilience = Resilience(self.breaker, retries=retries, backoff=backoff)
        self._ap_id = ap_id
        self._ap_password = ap_password
        self._profile = signature_profile
        self._mssp_uri = mssp_uri
        self._clock = clock

    # -- port ---------------------------------------------------------------------------------

    def start(self, phone: str, user_id: str, digest: bytes, display_text: str) -> str:
        if len(digest) != hashlib.sha256().digest_size:
            raise InternalError("the mobile signature needs a 32-byte SHA-256 hash")
        request = {
            **self._envelope_fields(),
            "MobileUser": {"UserIdentifier": user_id, "MSISDN": phone},
            "DataToBeSigned": {
                "_value_1": base64.b64encode(digest).decode("ascii"),
                "MimeType": "application/octet-stream",
                "Encoding": "base64",
            },
            "DataToBeDisplayed": {
                "_value_1": display_text,
                "MimeType": "text/plain",
                "Encoding": "UTF-8",
            },
            "SignatureProfile": {"mssURI": self._profile},
            "MessagingMode": "asynchClientServer",
        }

        def attempt() -> str:
            try:
                answer = self._call(lambda: self._service.MSS_Signature(**request))
            except _EtsiFault as fault:
                if fault.code in _SERVICE_FAILURES:
                    raise UpstreamFault(f"{_WHAT} failed: {fault.message}") from fault
                raise MobileSignatureRefused(
                    f"{_WHAT} refused: {fault.message}",
                    reason=fault.name,
                    etsi_code=fault.code,
                ) from fault
            code = _status_code(answer)
            transaction_id = getattr(answer, "MSSP_TransID", None)
            if code != _REQUEST_OK or not transaction_id:
                raise UpstreamFault(f"{_WHAT} did not accept the request (status {code})")
            return str(transaction_id)

        return self._resilience.call(attempt, idempotent=False)

    def status(self, transaction_id: str) -> MobileStatus:
        request = {**self._envelope_fields(), "MSSP_TransID": transaction_id}

        def attempt() -> MobileStatus:
            try:
                answer = self._call(lambda: self._service.MSS_StatusQuery(**request))
            except _EtsiFault as fault:
                if fault.code in _SERVICE_FAILURES:
                    raise UpstreamFault(f"{_WHAT} failed: {fault.message}") from fault
                return MobileRefused(reason=fault.name, etsi_code=fault.code)
            return _status_of(answer)

        return self._resilience.call(attempt, idempotent=True)

    # -- helpers ------------------------------------------------------------------------------

    def _envelope_fields(self) -> dict[str, Any]:
        ap_info: dict[str, Any] = {
            "AP_ID": self._ap_id,
            # NCName: must not start with a digit.
            "AP_TransID": f"AP{secrets.token_hex(12)}",
            "Instant": self._clock(),
        }
        if self._ap_password is not None:
            ap_info["AP_PWD"] = self._ap_password
        return {
            "AP_Info": ap_info,
            "MSSP_Info": {"MSSP_ID": {"URI": self._mssp_uri}},
            "MajorVersion": 1,
            "MinorVersion": 1,
        }

    @staticmethod
    def _call(operation: Callable[[], T]) -> T:
        try:
            return operation()
        except zeep.exceptions.Fault as exc:
            etsi = _etsi_fault(exc)
            if etsi is not None:
                raise etsi from exc
            raise translate(exc, _WHAT, _no_mapping) from exc
        except Exception as exc:  # every zeep/requests/lxml error is translated here
            raise translate(exc, _WHAT, _no_mapping) from exc


def _no_mapping(fault: zeep.exceptions.Fault) -> UpstreamError | None:
    return None


def _etsi_fault(fault: zeep.exceptions.Fault) -> _EtsiFault | None:
    detail = fault_detail(fault, MSS_NS, "MSS_FaultDetail")
    if detail is None:
        return None
    code_element = detail.find(f"{{{MSS_NS}}}StatusCode")
    try:
        code = int(code_element.get("Value")) if code_element is not None else None
    except (TypeError, ValueError):
        code = None
    if code is None:
        return None
    status_message = detail.findtext(f"{{{MSS_NS}}}StatusMessage") or ""
    name = ETSI_STATUS_NAMES.get(code) or status_message or f"STATUS_{code}"
    text = fault.message or ""
    if not text.startswith(name):
        text = f"{name}: {text}" if text else name
    return _EtsiFault(code, name, text)


def _status_code(answer: Any) -> int | None:
    try:
        return int(answer.Status.StatusCode.Value)
    except (AttributeError, TypeError, ValueError):
        return None


def _status_of(answer: Any) -> MobileStatus:
    code = _status_code(answer)
    if code is None:
        raise UpstreamFault(f"{_WHAT} sent a status without a status code")
    if code == _OUTSTANDING:
        return MobileOutstanding()
    if code in _SIGNED:
        signature = getattr(getattr(answer, "MSS_Signature", None), "Base64Signature", None)
        detail = getattr(answer.Status, "StatusDetail", None)
        response = getattr(detail, "CertificateResponse", None)
        certificate = getattr(response, "X509Certificate", None)
        if not signature or not certificate:
            raise UpstreamFault(f"{_WHAT} reported a signature without signature or certificate")
        return MobileSigned(signature=bytes(signature), certificate_der=bytes(certificate))
    if code in _SERVICE_FAILURES:
        raise UpstreamFault(f"{_WHAT}: {ETSI_STATUS_NAMES[code]}")
    # Any other final status in a normal answer (503 INVALID_SIGNATURE, 501 REVOKED_CERTIFICATE):
    # the transaction is over without a usable signature.
    return MobileRefused(reason=ETSI_STATUS_NAMES.get(code, f"STATUS_{code}"), etsi_code=code)
