"""Mobile-signature (Asan İmza) simulator: ``wsdl/upstream/mobile-signature.wsdl`` in spyne.

An MSSP in the asynchronous client-server mode of ETSI TS 102 204: ``MSS_Signature`` opens a
transaction and answers 100 REQUEST_OK; ``MSS_StatusQuery`` answers 504 OUTSTANDING_TRANSACTION
until the scripted phone "answers" (after ``approve_delay`` seconds), then the signature
(502 VALID_SIGNATURE, with the signer's certificate) or a fault with the ETSI status code.

The phone signs exactly the SHA-256 hash it was sent: RSA PKCS#1 v1.5 over its DigestInfo
(``key.sign(hash, PKCS1v15(), Prehashed(SHA256()))``), with the key of the Asan İmza holder of the
demo PKI (:mod:`signing.testpki`). Only the "mismatch" script signs something else.

Scripted outcomes, one row per demo number (:data:`SCRIPTS`):

=============== ======= =========== ===============================================
MSISDN          user id holder      outcome
=============== ======= =========== ===============================================
+994501234567   100001  asan        approves after the delay (502 VALID_SIGNATURE)
+994551234567   100002  asan_deputy approves after the delay (502 VALID_SIGNATURE)
+994701111111   100003  --          declines after the delay (401 USER_CANCEL)
+994702222222   100004  --          never answers (208 EXPIRED_TRANSACTION after the timeout)
+994703333333   any     --          not an Asan İmza user (422 NO_CERT_FOUND at once)
+994704444444   100006  --          PIN blocked, reported after the delay (402 PIN_BLOCKED)
+994705555555   100007  asan        signs DIFFERENT data after the delay (500 SIGNATURE)
=============== ======= =========== ===============================================

A known number with another user id, or an unknown number, is 105 UNKNOWN_CLIENT. Transactions
live in memory (thread-safe, at most ``max_transactions``, the oldest evicted first).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from lxml import etree
from spyne import (
    AnyUri,
    Application,
    ByteArray,
    ComplexModel,
    DateTime,
    Enum,
    Integer,
    NCName,
    ServiceBase,
    Unicode,
    XmlAttribute,
    XmlData,
    rpc,
)
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from simulators._serving import (
    ContractServingApp,
    ScriptedFault,
    install_fault_filter,
    state_of,
)

__all__ = [
    "MSS_NS",
    "PATH",
    "SCRIPTS",
    "SIGNATURE_PROFILE",
    "EtsiStatus",
    "MobileSignatureSimulator",
    "Outcome",
    "Script",
    "create_mobile_app",
]

MSS_NS = "http://uri.etsi.org/TS102204/v1.1.2#"
PATH = "/mobile-signature"
WSDL_NAME = "mobile-signature.wsdl"
MSSP_ID_URI = "urn:az:asan-imza:mssp:simulator"
#: The one signature profile this MSSP offers: PKCS#1 v1.5 RSA over a SHA-256 hash given by the AP.
SIGNATURE_PROFILE = "urn:az:asan-imza:signature-profile:rsa-pkcs1-sha256-hash"
_MSISDN = re.compile(r"^\+[1-9][0-9]{7,14}$")


class EtsiStatus(IntEnum):
    """ETSI TS 102 204 status codes this MSSP uses (the value is the code, the name the message)."""

    REQUEST_OK = 100
    WRONG_PARAM = 101
    UNAUTHORIZED_ACCESS = 104
    UNKNOWN_CLIENT = 105
    EXPIRED_TRANSACTION = 208
    USER_CANCEL = 401
    PIN_BLOCKED = 402
    NO_CERT_FOUND = 422
    SIGNATURE = 500
    VALID_SIGNATURE = 502
    OUTSTANDING_TRANSACTION = 504
    INTERNAL_ERROR = 900


class Outcome(StrEnum):
    APPROVE = "APPROVE"
    USER_CANCEL = "USER_CANCEL"
    NEVER_ANSWER = "NEVER_ANSWER"
    NO_CERT_FOUND = "NO_CERT_FOUND"
    PIN_BLOCKED = "PIN_BLOCKED"
    SIGN_OTHER_DATA = "SIGN_OTHER_DATA"


@dataclass(frozen=True, slots=True)
class Script:
    """What the phone with this number does. ``user_id`` None: any user id is the same."""

    msisdn: str
    user_id: str | None
    outcome: Outcome
    identity: str | None = None  # name in the test PKI whose key signs


#: The demo numbers (E.164) and what each does; see the module docstring.
SCRIPTS: tuple[Script, ...] = (
    Script("+994501234567", "100001", Outcome.APPROVE, "asan"),
    Script("+994551234567", "100002", Outcome.APPROVE, "asan_deputy"),
    Script("+994701111111", "100003", Outcome.USER_CANCEL),
    Script("+994702222222", "100004", Outcome.NEVER_ANSWER),
    Script("+994703333333", None, Outcome.NO_CERT_FOUND),
    Script("+994704444444", "100006", Outcome.PIN_BLOCKED),
    Script("+994705555555", "100007", Outcome.SIGN_OTHER_DATA, "asan"),
)

# --------------------------------------------------------------------------------------------
# spyne models: mirror the authored WSDL (names, order, attributes, occurrence).
# --------------------------------------------------------------------------------------------


def _required(model: Any) -> Any:
    return model.customize(min_occurs=1, nillable=False)


def _optional(model: Any) -> Any:
    return model.customize(min_occurs=0, nillable=False)


MessagingModeType = Enum(
    "synch",
    "asynchClientServer",
    "asynchServerServer",
    type_name="MessagingModeType",
    __namespace__=MSS_NS,
)


class AP_InfoType(ComplexModel):  # ETSI names, kept as they are
    __namespace__ = MSS_NS
    AP_ID = XmlAttribute(AnyUri(min_occurs=1))
    AP_TransID = XmlAttribute(NCName(min_occurs=1))
    AP_PWD = XmlAttribute(Unicode)
    Instant = XmlAttribute(DateTime(min_occurs=1))


class MeshMemberType(ComplexModel):
    __namespace__ = MSS_NS
    URI = _optional(AnyUri)


class MSSP_InfoType(ComplexModel):
    __namespace__ = MSS_NS
    MSSP_ID = _required(MeshMemberType)
    Instant = XmlAttribute(DateTime)


class MobileUserType(ComplexModel):
    __namespace__ = MSS_NS
    UserIdentifier = _optional(Unicode)
    MSISDN = _optional(Unicode)


class DataType(ComplexModel):
    __namespace__ = MSS_NS
    MimeType = XmlAttribute(Unicode)
    Encoding = XmlAttribute(Unicode)
    value = XmlData(Unicode)


class mssURIType(ComplexModel):
    __namespace__ = MSS_NS
    mssURI = _required(AnyUri)


class StatusCodeType(ComplexModel):
    __namespace__ = MSS_NS
    Value = XmlAttribute(Integer(min_occurs=1))


class CertificateResponseType(ComplexModel):
    __namespace__ = MSS_NS
    X509Certificate = _required(ByteArray)


class StatusDetailType(ComplexModel):
    __namespace__ = MSS_NS
    CertificateResponse = _optional(CertificateResponseType)


class StatusType(ComplexModel):
    __namespace__ = MSS_NS
    StatusCode = _required(StatusCodeType)
    StatusMessage = _optional(Unicode)
    StatusDetail = _optional(StatusDetailType)


class SignatureType(ComplexModel):
    __namespace__ = MSS_NS
    Base64Signature = _required(ByteArray)


class MSS_SignatureReqType(ComplexModel):
    __namespace__ = MSS_NS
    AP_Info = _required(AP_InfoType)
    MSSP_Info = _required(MSSP_InfoType)
    MobileUser = _required(MobileUserType)
    DataToBeSigned = _required(DataType)
    DataToBeDisplayed = _optional(DataType)
    SignatureProfile = _optional(mssURIType)
    MajorVersion = XmlAttribute(Integer(min_occurs=1))
    MinorVersion = XmlAttribute(Integer(min_occurs=1))
    MessagingMode = XmlAttribute(MessagingModeType.customize(min_occurs=1))


class MSS_SignatureRespType(ComplexModel):
    __namespace__ = MSS_NS
    AP_Info = _required(AP_InfoType)
    MSSP_Info = _required(MSSP_InfoType)
    MobileUser = _required(MobileUserType)
    Status = _required(StatusType)
    MajorVersion = XmlAttribute(Integer(min_occurs=1))
    MinorVersion = XmlAttribute(Integer(min_occurs=1))
    MSSP_TransID = XmlAttribute(NCName(min_occurs=1))


class MSS_StatusReqType(ComplexModel):
    __namespace__ = MSS_NS
    AP_Info = _required(AP_InfoType)
    MSSP_Info = _required(MSSP_InfoType)
    MajorVersion = XmlAttribute(Integer(min_occurs=1))
    MinorVersion = XmlAttribute(Integer(min_occurs=1))
    MSSP_TransID = XmlAttribute(NCName(min_occurs=1))


class MSS_StatusRespType(ComplexModel):
    __namespace__ = MSS_NS
    AP_Info = _required(AP_InfoType)
    MSSP_Info = _required(MSSP_InfoType)
    MobileUser = _required(MobileUserType)
    MSS_Signature = _optional(SignatureType)
    Status = _required(StatusType)
    MajorVersion = XmlAttribute(Integer(min_occurs=1))
    MinorVersion = XmlAttribute(Integer(min_occurs=1))


# --------------------------------------------------------------------------------------------
# The simulated MSSP
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Holder:
    key: rsa.RSAPrivateKey
    certificate_der: bytes


@dataclass
class _Transaction:
    mssp_trans_id: str
    ap_id: str
    script: Script
    msisdn: str
    user_id: str | None
    digest: bytes
    started: float
    signature: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True, slots=True)
class _Answer:
    """What a status query finds: a status code, and the signature when there is one."""

    status: EtsiStatus
    signature: bytes | None = None
    certificate_der: bytes | None = None


class MssError(Exception):
    """An ETSI status that is answered as a SOAP fault."""

    def __init__(self, status: EtsiStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class MobileSignatureSimulator:
    """The state of one simulated MSSP: holders' keys, scripts, open transactions."""

    def __init__(
        self,
        holders: Mapping[str, tuple[rsa.RSAPrivateKey, x509.Certificate]],
        *,
        scripts: Collection[Script] = SCRIPTS,
        approve_delay: float = 2.0,
        transaction_timeout: float = 60.0,
        max_transactions: int = 10_000,
        ap_ids: Collection[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if approve_delay < 0 or transaction_timeout <= 0 or max_transactions < 1:
            raise ValueError("approve_delay >= 0, transaction_timeout > 0, max_transactions >= 1")
        self._holders = {
            name: _Holder(key, cert.public_bytes(serialization.Encoding.DER))
            for name, (key, cert) in holders.items()
        }
        self._scripts = {script.msisdn: script for script in scripts}
        for script in self._scripts.values():
            if script.identity is not None and script.identity not in self._holders:
                raise ValueError(f"script {script.msisdn} needs the key of {script.identity!r}")
        self.approve_delay = approve_delay
        self.transaction_timeout = transaction_timeout
        self._max = max_transactions
        self._ap_ids = frozenset(ap_ids) if ap_ids is not None else None
        self._clock = clock
        self._lock = threading.Lock()
        self._transactions: OrderedDict[str, _Transaction] = OrderedDict()

    @classmethod
    def from_test_pki(cls, pki_dir: Path, **options: Any) -> MobileSignatureSimulator:
        """Holders' keys from the demo PKI written by :func:`signing.testpki.build_test_pki`."""
        from signing.testpki import load_test_pki

        pki = load_test_pki(pki_dir)
        needed = {s.identity for s in options.get("scripts", SCRIPTS) if s.identity}
        holders: dict[str, tuple[rsa.RSAPrivateKey, x509.Certificate]] = {}
        for name in sorted(needed):
            identity = pki.identities[name]
            key = serialization.load_pem_private_key(identity.key_path.read_bytes(), None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"the Asan İmza key of {name!r} is not RSA")
            holders[name] = (key, identity.certificate)
        return cls(holders, **options)

    def __len__(self) -> int:
        with self._lock:
            return len(self._transactions)

    def check_ap(self, ap_id: str) -> None:
        if self._ap_ids is not None and ap_id not in self._ap_ids:
            raise MssError(EtsiStatus.UNAUTHORIZED_ACCESS, f"AP {ap_id!r} is not registered")

    def start(
        self, *, ap_id: str, msisdn: str, user_id: str | None, digest: bytes
    ) -> _Transaction:
        """Opens a transaction, or raises MssError (101, 104, 105, 422)."""
        self.check_ap(ap_id)
        if not _MSISDN.match(msisdn):
            raise MssError(EtsiStatus.WRONG_PARAM, "MSISDN must be in E.164 form (+994...)")
        if len(digest) != hashlib.sha256().digest_size:
            raise MssError(EtsiStatus.WRONG_PARAM, "DataToBeSigned must be a SHA-256 hash")
        script = self._scripts.get(msisdn)
        if script is None:
            raise MssError(EtsiStatus.UNKNOWN_CLIENT, "no Asan İmza user with this number")
        if script.outcome is Outcome.NO_CERT_FOUND:
            raise MssError(EtsiStatus.NO_CERT_FOUND, "no valid signing certificate for the user")
        if script.user_id is not None and user_id != script.user_id:
            raise MssError(EtsiStatus.UNKNOWN_CLIENT, "the user id does not match the number")
        transaction = _Transaction(
            mssp_trans_id=f"MSSP{secrets.token_hex(10)}",
            ap_id=ap_id,
            script=script,
            msisdn=msisdn,
            user_id=user_id,
            digest=digest,
            started=self._clock(),
        )
        with self._lock:
            self._transactions[transaction.mssp_trans_id] = transaction
            while len(self._transactions) > self._max:
                self._transactions.popitem(last=False)
        return transaction

    def find(self, ap_id: str, mssp_trans_id: str) -> _Transaction:
        self.check_ap(ap_id)
        with self._lock:
            transaction = self._transactions.get(mssp_trans_id)
        # Another AP's transaction is as unknown as a missing one.
        if transaction is None or transaction.ap_id != ap_id:
            raise MssError(EtsiStatus.WRONG_PARAM, f"unknown MSSP_TransID {mssp_trans_id}")
        return transaction

    def answer(self, transaction: _Transaction) -> _Answer:
        """The transaction's status now, or MssError (208, 401, 402) once the phone refused."""
        elapsed = self._clock() - transaction.started
        answered = self.approve_delay < self.transaction_timeout and elapsed >= self.approve_delay
        outcome = transaction.script.outcome
        if not answered or outcome is Outcome.NEVER_ANSWER:
            if elapsed >= self.transaction_timeout:
                raise MssError(EtsiStatus.EXPIRED_TRANSACTION, "the user did not answer in time")
            return _Answer(EtsiStatus.OUTSTANDING_TRANSACTION)
        if outcome is Outcome.USER_CANCEL:
            raise MssError(EtsiStatus.USER_CANCEL, "the user declined the request")
        if outcome is Outcome.PIN_BLOCKED:
            raise MssError(EtsiStatus.PIN_BLOCKED, "the signing PIN is blocked")
        assert transaction.script.identity is not None
        holder = self._holders[transaction.script.identity]
        with transaction.lock:
            if transaction.signature is None:
                transaction.signature = self._sign(holder, transaction)
        status = (
            EtsiStatus.SIGNATURE
            if outcome is Outcome.SIGN_OTHER_DATA
            else EtsiStatus.VALID_SIGNATURE
        )
        return _Answer(status, transaction.signature, holder.certificate_der)

    @staticmethod
    def _sign(holder: _Holder, transaction: _Transaction) -> bytes:
        digest = transaction.digest
        if transaction.script.outcome is Outcome.SIGN_OTHER_DATA:
            digest = hashlib.sha256(b"not what was sent: " + digest).digest()
        return holder.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))


# --------------------------------------------------------------------------------------------
# The SOAP face
# --------------------------------------------------------------------------------------------


def _fault(error: MssError) -> ScriptedFault:
    detail = etree.Element(f"{{{MSS_NS}}}MSS_FaultDetail", nsmap={"mss": MSS_NS})
    etree.SubElement(detail, f"{{{MSS_NS}}}StatusCode").set("Value", str(int(error.status)))
    etree.SubElement(detail, f"{{{MSS_NS}}}StatusMessage").text = error.status.name
    faultcode = "Server" if error.status is EtsiStatus.INTERNAL_ERROR else "Client"
    return ScriptedFault(
        faultcode=faultcode, faultstring=f"{error.status.name}: {error.detail}", detail=detail
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _ap_info(request: Any) -> AP_InfoType:
    info = request.AP_Info
    return AP_InfoType(AP_ID=info.AP_ID, AP_TransID=info.AP_TransID, Instant=info.Instant)


def _mssp_info() -> MSSP_InfoType:
    return MSSP_InfoType(MSSP_ID=MeshMemberType(URI=MSSP_ID_URI), Instant=_now())


def _status(code: EtsiStatus, detail: StatusDetailType | None = None) -> StatusType:
    return StatusType(
        StatusCode=StatusCodeType(Value=int(code)), StatusMessage=code.name, StatusDetail=detail
    )


def _decode_digest(data: Any) -> bytes:
    encoding = (data.Encoding or "base64").lower()
    if encoding != "base64":
        raise MssError(EtsiStatus.WRONG_PARAM, "DataToBeSigned must be base64-encoded")
    try:
        return base64.b64decode(data.value or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MssError(EtsiStatus.WRONG_PARAM, "DataToBeSigned is not valid base64") from exc


class MobileSignatureService(ServiceBase):  # type: ignore[misc]
    @rpc(  # type: ignore[misc]
        MSS_SignatureReqType,
        _body_style="bare",
        _returns=MSS_SignatureRespType,
        _in_message_name="MSS_SignatureReq",
        _out_message_name="MSS_SignatureResp",
        _operation_name="MSS_Signature",
    )
    def MSS_Signature(ctx: Any, request: Any) -> MSS_SignatureRespType:
        mssp: MobileSignatureSimulator = state_of(ctx)
        try:
            if str(request.MessagingMode) != "asynchClientServer":
                raise MssError(EtsiStatus.WRONG_PARAM, "only asynchClientServer is offered")
            profile = request.SignatureProfile
            if profile is not None and str(profile.mssURI) != SIGNATURE_PROFILE:
                raise MssError(EtsiStatus.WRONG_PARAM, f"unknown profile {profile.mssURI}")
            user = request.MobileUser
            transaction = mssp.start(
                ap_id=str(request.AP_Info.AP_ID),
                msisdn=user.MSISDN or "",
                user_id=user.UserIdentifier,
                digest=_decode_digest(request.DataToBeSigned),
            )
        except MssError as error:
            raise _fault(error) from error
        except Exception as exc:  # an MSSP answers 900, never a stack trace
            raise _fault(MssError(EtsiStatus.INTERNAL_ERROR, "internal error")) from exc
        return MSS_SignatureRespType(
            AP_Info=_ap_info(request),
            MSSP_Info=_mssp_info(),
            MobileUser=MobileUserType(UserIdentifier=user.UserIdentifier, MSISDN=user.MSISDN),
            Status=_status(EtsiStatus.REQUEST_OK),
            MajorVersion=1,
            MinorVersion=1,
            MSSP_TransID=transaction.mssp_trans_id,
        )

    @rpc(  # type: ignore[misc]
        MSS_StatusReqType,
        _body_style="bare",
        _returns=MSS_StatusRespType,
        _in_message_name="MSS_StatusReq",
        _out_message_name="MSS_StatusResp",
        _operation_name="MSS_StatusQuery",
    )
    def MSS_StatusQuery(ctx: Any, request: Any) -> MSS_StatusRespType:
        mssp: MobileSignatureSimulator = state_of(ctx)
        try:
            transaction = mssp.find(str(request.AP_Info.AP_ID), str(request.MSSP_TransID))
            answer = mssp.answer(transaction)
        except MssError as error:
            raise _fault(error) from error
        except Exception as exc:  # an MSSP answers 900, never a stack trace
            raise _fault(MssError(EtsiStatus.INTERNAL_ERROR, "internal error")) from exc
        signature = detail = None
        if answer.signature is not None:
            signature = SignatureType(Base64Signature=[answer.signature])
            detail = StatusDetailType(
                CertificateResponse=CertificateResponseType(
                    X509Certificate=[answer.certificate_der]
                )
            )
        return MSS_StatusRespType(
            AP_Info=_ap_info(request),
            MSSP_Info=_mssp_info(),
            MobileUser=MobileUserType(
                UserIdentifier=transaction.user_id, MSISDN=transaction.msisdn
            ),
            MSS_Signature=signature,
            Status=_status(answer.status, detail),
            MajorVersion=1,
            MinorVersion=1,
        )


@lru_cache(maxsize=1)
def _soap_app() -> WsgiApplication:
    install_fault_filter()
    application = Application(
        [MobileSignatureService],
        tns=MSS_NS,
        name="MobileSignature",
        in_protocol=Soap11(validator="lxml"),
        out_protocol=Soap11(),
    )
    return WsgiApplication(application)


def create_mobile_app(wsdl_dir: Path, mssp: MobileSignatureSimulator) -> ContractServingApp:
    """The WSGI app of one mobile-signature simulator (serve it at :data:`PATH`)."""
    return ContractServingApp(wsdl_dir / WSDL_NAME, _soap_app(), mssp, PATH)
