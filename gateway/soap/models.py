"""spyne mirror of the authored contract (``xsd/gateway.xsd``, ``xsd/xroad-identifiers.xsd``).

The XSD is the source of truth: it is what ``?wsdl`` serves and what lxml validates every
request body against *before* spyne sees it. These classes only let spyne read a validated body
into objects and write response objects back out, so what must match the XSD exactly is each
complex type's name, namespace, child element names, their order and their min/max occurs
(``tests/contract`` compares them with spyne's generated schema). Simple-type facets are
repeated here for readers but spyne does not enforce them (``validator=None``).

Every element is declared non-nillable, because the contract omits absent values and never
sends ``xsi:nil``. Repeated elements (``max_occurs`` > 1) are Python lists.

Class names are the XSD type names, except that the two X-Road identifier types drop the
``Type`` suffix and the request type of ``listMethods`` is ``ListMethodsRequest`` in Python.
"""

from __future__ import annotations

from typing import Any, Final

from spyne import (
    Boolean,
    ByteArray,
    ComplexModel,
    Date,
    DateTime,
    Integer32,
    Token,
    Unicode,
    XmlAttribute,
)

TNS: Final = "urn:az:dsmf:insured-registration:v1"
XROAD_IDENTIFIERS_NS: Final = "http://x-road.eu/xsd/identifiers"

UNBOUNDED: Final = "unbounded"


# -- occurrence helpers ---------------------------------------------------------------------


def _one(t: Any) -> Any:
    """Exactly one occurrence (XSD default ``minOccurs=1 maxOccurs=1``)."""
    return t.customize(min_occurs=1, max_occurs=1, nillable=False)


def _opt(t: Any) -> Any:
    """Optional: ``minOccurs=0``."""
    return t.customize(min_occurs=0, max_occurs=1, nillable=False)


def _many(t: Any, min_occurs: int = 0, max_occurs: int | str = UNBOUNDED) -> Any:
    """Repeated element, a list in Python."""
    return t.customize(min_occurs=min_occurs, max_occurs=max_occurs, nillable=False)


def _string(type_name: str, **facets: Any) -> Any:
    return Unicode.customize(type_name=type_name, __namespace__=TNS, **facets)


def _token(type_name: str, **facets: Any) -> Any:
    return Token.customize(type_name=type_name, __namespace__=TNS, **facets)


def _enum(type_name: str, *values: str) -> Any:
    return Unicode.customize(type_name=type_name, __namespace__=TNS, values=list(values))


# -- identifiers and codes ------------------------------------------------------------------

Voen = _string("Voen", pattern="[0-9]{9}[12]")
"""VÖEN, the insurer's tax id: 10 digits, last 1 (legal entity) or 2 (natural person)."""
Fin = _string("Fin", pattern="[A-HJ-NP-Z0-9]{5,7}")
"""FIN: 7 characters on an ID card, 5-7 on residence permits (length per document type is a
domain rule)."""
Ssn = _string("Ssn", pattern="[0-9]{6,20}")
PhoneNumber = _string("PhoneNumber", pattern=r"\+?[(0-9][0-9 ()\-]{6,22}")
Email = _string("Email", min_len=3, max_len=254, pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+")
CardNumber = _token("CardNumber", min_len=1, max_len=64)
AsanUserId = _string("AsanUserId", pattern="[0-9]{6,10}")
VerificationCode = _string("VerificationCode", pattern="[0-9]{4}")
ApplicationId = _string("ApplicationId", pattern=r"[A-Za-z0-9][A-Za-z0-9\-]{0,39}")
AuthorityId = _string("AuthorityId", pattern=r"[A-Za-z0-9][A-Za-z0-9\-]{0,39}")
TransactionId = _string("TransactionId", pattern=r"[A-Za-z0-9][A-Za-z0-9\-]{0,63}")
SessionToken = _string("SessionToken", pattern=r"[A-Za-z0-9_\-.~+/=]{16,512}")
EServiceCode = _string("EServiceCode", pattern=r"[A-Z0-9][A-Z0-9_\-]{0,63}")
LocalOfficeCode = _string("LocalOfficeCode", pattern="[A-Z0-9]{1,10}")
InsurerRegistrationNumber = _string(
    "InsurerRegistrationNumber", pattern=r"[A-Z0-9][A-Z0-9\-/]{0,29}"
)
DocumentSeries = _string("DocumentSeries", pattern="[A-Z]{1,5}")
DocumentNumber = _string("DocumentNumber", pattern="[A-Z0-9]{1,20}")
CountryCode = _string("CountryCode", pattern="[A-Z]{3}")
PostalCode = _string("PostalCode", pattern="AZ ?[0-9]{4}")
ClientReference = _token("ClientReference", min_len=1, max_len=64)
FileName = _string("FileName", pattern=r"[A-Za-z0-9][A-Za-z0-9._\-]{0,254}")
FaultCode = _string("FaultCode", pattern=r"(Client|Server)(\.[A-Za-z0-9_]+)*")
CorrelationId = _token("CorrelationId", min_len=1, max_len=64)

# -- texts and numbers ----------------------------------------------------------------------

NamePart = _token("NamePart", min_len=1, max_len=100)
Text20 = _token("Text20", min_len=1, max_len=20)
Text100 = _token("Text100", min_len=1, max_len=100)
Text200 = _token("Text200", min_len=1, max_len=200)
Text500 = _token("Text500", min_len=1, max_len=500)
Message = _string("Message", min_len=1, max_len=2000)
PageNumber = Integer32.customize(type_name="PageNumber", __namespace__=TNS, ge=1)
PageSize = Integer32.customize(type_name="PageSize", __namespace__=TNS, ge=1, le=200)
TotalCount = Integer32.customize(type_name="TotalCount", __namespace__=TNS, ge=0)

# -- enumerations ---------------------------------------------------------------------------

InsurerType = _enum("InsurerType", "LEGAL_ENTITY", "INDIVIDUAL_ENTREPRENEUR", "OTHER")
AuthorityType = _enum("AuthorityType", "E_SIGNATURE_CARD", "ASAN_IMZA")
AuthorityState = _enum("AuthorityState", "ACTIVE", "FUTURE", "EXPIRED", "REVOKED")
DocumentType = _enum(
    "DocumentType", "ID_CARD", "TEMPORARY_RESIDENCE_PERMIT", "PERMANENT_RESIDENCE_PERMIT"
)
Sex = _enum("Sex", "M", "F")
FindPersonOutcome = _enum("FindPersonOutcome", "FOUND", "SSN_EXISTS")
ApplicationType = _enum("ApplicationType", "INITIAL_REGISTRATION", "CORRECTION")
ApplicationStatus = _enum("ApplicationStatus", "DRAFT", "SUBMITTED", "REGISTERED", "REJECTED")
CertificateStatus = _enum("CertificateStatus", "NOT_ISSUED", "ISSUED", "ANNULLED")
ApplicationSortField = _enum(
    "ApplicationSortField", "APPLICATION_DATE", "SSN_DATE", "SURNAME", "FIN", "STATUS"
)
SortDirection = _enum("SortDirection", "ASC", "DESC")
ExportFormat = _enum("ExportFormat", "CSV", "PDF")
MobileSigningState = _enum("MobileSigningState", "OUTSTANDING", "DONE", "REFUSED")
MobileSigningRefusalReason = _enum(
    "MobileSigningRefusalReason",
    "USER_CANCEL",
    "EXPIRED_TRANSACTION",
    "NO_CERT_FOUND",
    "PIN_BLOCKED",
    "CARD_BLOCKED",
    "SIGNATURE_MISMATCH",
    "CERTIFICATE_REVOKED",
    "CERTIFICATE_EXPIRED",
    "NOT_AUTHORIZED",
    "INTERNAL_ERROR",
)
BatchItemOutcome = _enum("BatchItemOutcome", "REGISTERED", "SUBMITTED", "SSN_EXISTS", "FAILED")


# -- base class -----------------------------------------------------------------------------


class _Model(ComplexModel):
    """Base of the contract's complex types (namespace tns)."""

    __namespace__ = TNS


# -- X-Road identifiers (xsd/xroad-identifiers.xsd) -----------------------------------------

XRoadIdentifierPart = Unicode.customize(
    type_name="XRoadIdentifierPart",
    __namespace__=XROAD_IDENTIFIERS_NS,
    min_len=1,
    max_len=255,
)


class XRoadClientIdentifier(ComplexModel):
    """X-Road client: a member (objectType MEMBER) or its subsystem (SUBSYSTEM)."""

    __namespace__ = XROAD_IDENTIFIERS_NS
    __type_name__ = "XRoadClientIdentifierType"

    xRoadInstance = _one(XRoadIdentifierPart)
    memberClass = _one(XRoadIdentifierPart)
    memberCode = _one(XRoadIdentifierPart)
    subsystemCode = _opt(XRoadIdentifierPart)
    # Qualified attribute id:objectType, as on the X-Road wire.
    objectType = XmlAttribute(
        Unicode(values=["MEMBER", "SUBSYSTEM"]), use="required", ns=XROAD_IDENTIFIERS_NS
    )


class XRoadServiceIdentifier(ComplexModel):
    """X-Road service: serviceCode is the operation name, serviceVersion the contract version."""

    __namespace__ = XROAD_IDENTIFIERS_NS
    __type_name__ = "XRoadServiceIdentifierType"

    xRoadInstance = _one(XRoadIdentifierPart)
    memberClass = _one(XRoadIdentifierPart)
    memberCode = _one(XRoadIdentifierPart)
    subsystemCode = _opt(XRoadIdentifierPart)
    serviceCode = _one(XRoadIdentifierPart)
    serviceVersion = _opt(XRoadIdentifierPart)
    objectType = XmlAttribute(Unicode(values=["SERVICE"]), use="required", ns=XROAD_IDENTIFIERS_NS)


# -- shared structures ----------------------------------------------------------------------


class Paging(_Model):
    """Page to return; absent in a request means page 1, pageSize 50."""

    page = _one(PageNumber)
    pageSize = _one(PageSize)


class PersonName(_Model):
    surname = _one(NamePart)
    name = _one(NamePart)
    patronymic = _opt(NamePart)


class LocalOffice(_Model):
    """Local DSMF office (yerli şöbə) where the insurer is registered."""

    code = _one(LocalOfficeCode)
    name = _one(Text200)


class Insurer(_Model):
    """Insurer (sığortaedən) data, read-only (manual §2.1)."""

    fullName = _one(Text500)
    insurerType = _one(InsurerType)
    registrationNumber = _one(InsurerRegistrationNumber)
    voen = _one(Voen)
    responsiblePerson = _one(PersonName)
    localOffice = _one(LocalOffice)


class EService(_Model):
    code = _one(EServiceCode)
    name = _one(Text200)


class Authority(_Model):
    """A row of the registry of authorities (səlahiyyətlərin reyestri)."""

    authorityId = _one(AuthorityId)
    eServiceCode = _one(EServiceCode)
    eServiceName = _one(Text200)
    authorityType = _one(AuthorityType)
    cardNumber = _opt(CardNumber)
    asanPhone = _opt(PhoneNumber)
    fin = _one(Fin)
    surname = _one(NamePart)
    name = _one(NamePart)
    patronymic = _opt(NamePart)
    validFrom = _opt(Date)
    validTo = _opt(Date)
    state = _one(AuthorityState)
    grantedAt = _one(DateTime)
    grantedByFin = _one(Fin)
    revokedAt = _opt(DateTime)
    revokedByFin = _opt(Fin)
    revokeReason = _opt(Message)
    asanUserId = _opt(AsanUserId)
    boundAt = _opt(DateTime)
    holderCertificateValidTo = _opt(DateTime)


class Address(_Model):
    region = _one(Text100)
    cityOrDistrict = _one(Text100)
    street = _one(Text200)
    house = _one(Text20)
    apartment = _opt(Text20)
    postalCode = _opt(PostalCode)


class Contacts(_Model):
    mobilePhone = _opt(PhoneNumber)
    landlinePhone = _opt(PhoneNumber)
    email = _opt(Email)


class IdentityDocument(_Model):
    documentType = _one(DocumentType)
    series = _opt(DocumentSeries)
    number = _one(DocumentNumber)
    issueDate = _one(Date)
    issuer = _one(Text200)
    expiryDate = _opt(Date)


class Person(_Model):
    """Identity data of a natural person from the population registry."""

    fin = _one(Fin)
    surname = _one(NamePart)
    name = _one(NamePart)
    patronymic = _opt(NamePart)
    birthDate = _one(Date)
    birthPlace = _opt(Text200)
    sex = _one(Sex)
    citizenship = _one(CountryCode)
    document = _one(IdentityDocument)


class ExistingInsured(_Model):
    """The person already has an SSN ("şəxsin SSN-i mövcuddur")."""

    surname = _one(NamePart)
    name = _one(NamePart)
    patronymic = _opt(NamePart)
    ssn = _one(Ssn)


class ApplicationResult(_Model):
    applicationId = _one(ApplicationId)
    status = _one(ApplicationStatus)
    ssn = _opt(Ssn)
    ssnDate = _opt(Date)
    message = _opt(Message)


class ApplicationSummary(_Model):
    """A row of the registry (reyestr)."""

    applicationId = _one(ApplicationId)
    applicationType = _one(ApplicationType)
    fin = _one(Fin)
    surname = _opt(NamePart)
    name = _opt(NamePart)
    patronymic = _opt(NamePart)
    ssn = _opt(Ssn)
    ssnDate = _opt(Date)
    applicationDate = _one(Date)
    status = _one(ApplicationStatus)
    certificateStatus = _one(CertificateStatus)


class ApplicationSort(_Model):
    field = _one(ApplicationSortField)
    direction = _one(SortDirection)


class Signatory(_Model):
    fin = _one(Fin)
    name = _one(Text500)
    credentialType = _one(AuthorityType)
    credential = _one(CardNumber)


class ApplicationDetail(_Model):
    summary = _one(ApplicationSummary)
    documentType = _one(DocumentType)
    registrationAddress = _opt(Address)
    actualAddressDiffers = _one(Boolean)
    actualAddress = _opt(Address)
    contacts = _opt(Contacts)
    signedBy = _opt(Signatory)
    draftReason = _opt(Message)
    person = _opt(Person)


class StatusChange(_Model):
    status = _one(ApplicationStatus)
    at = _one(DateTime)
    actorFin = _opt(Fin)
    note = _opt(Message)


class BatchRegistrationItem(_Model):
    clientRef = _one(ClientReference)
    documentType = _one(DocumentType)
    fin = _one(Fin)
    actualAddressDiffers = _one(Boolean)
    actualAddress = _opt(Address)
    contacts = _opt(Contacts)


class BatchItemResult(_Model):
    clientRef = _one(ClientReference)
    outcome = _one(BatchItemOutcome)
    applicationId = _opt(ApplicationId)
    ssn = _opt(Ssn)
    faultCode = _opt(FaultCode)
    message = _opt(Message)


class FaultDetail(_Model):
    """Detail of every SOAP fault (element tns:FaultDetail)."""

    code = _one(FaultCode)
    correlationId = _one(CorrelationId)
    message = _one(Message)
    field = _opt(Text500)


# -- 2.1 insurer ----------------------------------------------------------------------------


class GetInsurerRequest(_Model):
    voen = _one(Voen)


class GetInsurerResponse(_Model):
    insurer = _one(Insurer)


# -- 2.2 authorities ------------------------------------------------------------------------


class ListEServicesRequest(_Model):
    """Empty request (spyne cannot take an empty model as a bare argument; see service.py)."""


class ListEServicesResponse(_Model):
    eService = _many(EService)


class ListLocalOfficesRequest(_Model):
    """Empty request (spyne cannot take an empty model as a bare argument; see service.py)."""


class ListLocalOfficesResponse(_Model):
    localOffice = _many(LocalOffice)


class GrantAuthorityRequest(_Model):
    voen = _one(Voen)
    eServiceCode = _one(EServiceCode)
    authorityType = _one(AuthorityType)
    cardNumber = _opt(CardNumber)
    asanPhone = _opt(PhoneNumber)
    asanUserId = _opt(AsanUserId)
    fin = _one(Fin)
    validFrom = _opt(Date)
    validTo = _opt(Date)
    trusted = _one(Boolean)


class GrantAuthorityResponse(_Model):
    authority = _one(Authority)


class ListAuthoritiesRequest(_Model):
    voen = _one(Voen)
    state = _opt(AuthorityState)
    paging = _opt(Paging)


class ListAuthoritiesResponse(_Model):
    total = _one(TotalCount)
    page = _one(PageNumber)
    pageSize = _one(PageSize)
    authority = _many(Authority, max_occurs=200)


class RevokeAuthorityRequest(_Model):
    voen = _one(Voen)
    authorityId = _one(AuthorityId)
    reason = _opt(Message)


class RevokeAuthorityResponse(_Model):
    authority = _one(Authority)


# -- 3.1 initial registration, 3.2 correction -----------------------------------------------


class FindPersonRequest(_Model):
    voen = _one(Voen)
    documentType = _one(DocumentType)
    fin = _one(Fin)


class FindPersonResponse(_Model):
    outcome = _one(FindPersonOutcome)
    person = _opt(Person)
    registrationAddress = _opt(Address)
    existingInsured = _opt(ExistingInsured)


class SaveDraftRequest(_Model):
    voen = _one(Voen)
    applicationId = _opt(ApplicationId)
    documentType = _one(DocumentType)
    fin = _one(Fin)
    actualAddressDiffers = _one(Boolean)
    actualAddress = _opt(Address)
    contacts = _opt(Contacts)


class SaveDraftResponse(_Model):
    applicationId = _one(ApplicationId)
    status = _one(ApplicationStatus)
    savedAt = _one(DateTime)


class DeleteDraftRequest(_Model):
    voen = _one(Voen)
    applicationId = _one(ApplicationId)


class DeleteDraftResponse(_Model):
    applicationId = _one(ApplicationId)
    deleted = _one(Boolean)


class SubmitRegistrationRequest(_Model):
    """Either ``applicationId`` of a draft, or the full data (as in SaveDraft) without it."""

    voen = _one(Voen)
    applicationId = _opt(ApplicationId)
    documentType = _opt(DocumentType)
    fin = _opt(Fin)
    actualAddressDiffers = _opt(Boolean)
    actualAddress = _opt(Address)
    contacts = _opt(Contacts)


class SubmitRegistrationResponse(_Model):
    result = _one(ApplicationResult)


class ConfirmDraftRequest(_Model):
    voen = _one(Voen)
    applicationId = _one(ApplicationId)


class ConfirmDraftResponse(_Model):
    result = _one(ApplicationResult)


class SubmitCorrectionRequest(_Model):
    voen = _one(Voen)
    fin = _one(Fin)
    actualAddressDiffers = _opt(Boolean)
    actualAddress = _opt(Address)
    contacts = _opt(Contacts)


class SubmitCorrectionResponse(_Model):
    applicationId = _one(ApplicationId)
    status = _one(ApplicationStatus)
    correctedAt = _one(DateTime)


class GetInsuredPersonRequest(_Model):
    voen = _one(Voen)
    fin = _one(Fin)


class GetInsuredPersonResponse(_Model):
    fin = _one(Fin)
    surname = _one(NamePart)
    name = _one(NamePart)
    patronymic = _opt(NamePart)
    ssn = _one(Ssn)
    ssnDate = _one(Date)
    registrationAddress = _opt(Address)
    actualAddressDiffers = _one(Boolean)
    actualAddress = _opt(Address)
    contacts = _opt(Contacts)
    since = _one(Date)
    applicationId = _opt(ApplicationId)


# -- 3.3 registry ---------------------------------------------------------------------------


class SearchApplicationsRequest(_Model):
    voen = _one(Voen)
    applicationType = _opt(ApplicationType)
    fin = _opt(Fin)
    surname = _opt(NamePart)
    name = _opt(NamePart)
    patronymic = _opt(NamePart)
    ssn = _opt(Ssn)
    ssnDateFrom = _opt(Date)
    ssnDateTo = _opt(Date)
    applicationDateFrom = _opt(Date)
    applicationDateTo = _opt(Date)
    certificateStatus = _opt(CertificateStatus)
    status = _opt(ApplicationStatus)
    paging = _opt(Paging)
    sort = _opt(ApplicationSort)


class SearchApplicationsResponse(_Model):
    total = _one(TotalCount)
    page = _one(PageNumber)
    pageSize = _one(PageSize)
    application = _many(ApplicationSummary, max_occurs=200)


class ExportApplicationsRequest(_Model):
    voen = _one(Voen)
    applicationType = _opt(ApplicationType)
    fin = _opt(Fin)
    surname = _opt(NamePart)
    name = _opt(NamePart)
    patronymic = _opt(NamePart)
    ssn = _opt(Ssn)
    ssnDateFrom = _opt(Date)
    ssnDateTo = _opt(Date)
    applicationDateFrom = _opt(Date)
    applicationDateTo = _opt(Date)
    certificateStatus = _opt(CertificateStatus)
    status = _opt(ApplicationStatus)
    sort = _opt(ApplicationSort)
    format = _one(ExportFormat)


class ExportApplicationsResponse(_Model):
    fileName = _one(Text200)
    contentType = _one(Text100)
    rows = _one(TotalCount)
    content = _one(ByteArray)


class GetApplicationRequest(_Model):
    voen = _one(Voen)
    applicationId = _one(ApplicationId)


class GetApplicationResponse(_Model):
    application = _one(ApplicationDetail)
    history = _many(StatusChange)


class GetNotificationRequest(_Model):
    voen = _one(Voen)
    applicationId = _one(ApplicationId)


class GetNotificationResponse(_Model):
    applicationId = _one(ApplicationId)
    notificationXml = _one(ByteArray)
    pdf = _one(ByteArray)
    fileName = _one(FileName)


# -- Asan İmza ------------------------------------------------------------------------------


class StartMobileLoginRequest(_Model):
    phone = _one(PhoneNumber)
    userId = _one(AsanUserId)
    voen = _opt(Voen)


class StartMobileLoginResponse(_Model):
    transactionId = _one(TransactionId)
    verificationCode = _one(VerificationCode)
    expiresAt = _one(DateTime)


class MobileOperation(_Model):
    grantAuthority = _opt(GrantAuthorityRequest)
    revokeAuthority = _opt(RevokeAuthorityRequest)
    submitCorrection = _opt(SubmitCorrectionRequest)
    submitRegistration = _opt(SubmitRegistrationRequest)


class StartMobileSigningRequest(_Model):
    voen = _one(Voen)
    applicationId = _opt(ApplicationId)
    operation = _opt(MobileOperation)
    phone = _one(PhoneNumber)
    userId = _one(AsanUserId)


class StartMobileSigningResponse(_Model):
    transactionId = _one(TransactionId)
    verificationCode = _one(VerificationCode)
    expiresAt = _one(DateTime)


class GetMobileSigningStatusRequest(_Model):
    transactionId = _one(TransactionId)


class GetMobileSigningStatusResponse(_Model):
    state = _one(MobileSigningState)
    reason = _opt(MobileSigningRefusalReason)
    sessionToken = _opt(SessionToken)
    sessionExpiresAt = _opt(DateTime)
    result = _opt(ApplicationResult)
    authority = _opt(Authority)


# -- bulk -----------------------------------------------------------------------------------


class SubmitRegistrationBatchRequest(_Model):
    voen = _one(Voen)
    item = _many(BatchRegistrationItem, min_occurs=1, max_occurs=500)


class SubmitRegistrationBatchResponse(_Model):
    result = _many(BatchItemResult, min_occurs=1, max_occurs=500)


# -- X-Road metaservice ---------------------------------------------------------------------


class ListMethodsRequest(_Model):
    """Empty request of ``listMethods`` (XSD type ``listMethodsRequest``)."""

    __type_name__ = "listMethodsRequest"


class ListMethodsResponse(_Model):
    """One X-Road service identifier per operation (serviceVersion ``v1``)."""

    __type_name__ = "listMethodsResponse"

    service = _many(XRoadServiceIdentifier)
