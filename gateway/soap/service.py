"""The spyne service: one method per operation of ``wsdl/gateway.wsdl``, no behaviour.

Each method hands the request object to ``ctx.udc.dispatch(operation, request)``; the
composition root puts the dispatcher into ``ctx.udc`` and the handlers behind it live in
``gateway/services``. The methods are document/literal "bare": the request element is named
like the operation and its type is ``<Op>Request``, the response is ``<Op>Response``, exactly
as in the authored XSD.

spyne refuses an empty model as the argument of a bare method, so the operations with an
empty request (``ListEServices``, ``ListLocalOffices``, ``listMethods``) take no argument and
dispatch a fresh empty request object. On the wire nothing differs: the request is the empty
element ``tns:<Op>``.
"""

from __future__ import annotations

from typing import Final

from spyne import Application, MethodContext, ServiceBase, rpc
from spyne.protocol.soap import Soap11

from gateway.soap.models import (
    TNS,
    ConfirmDraftRequest,
    ConfirmDraftResponse,
    DeleteDraftRequest,
    DeleteDraftResponse,
    ExportApplicationsRequest,
    ExportApplicationsResponse,
    FindPersonRequest,
    FindPersonResponse,
    GetApplicationRequest,
    GetApplicationResponse,
    GetInsuredPersonRequest,
    GetInsuredPersonResponse,
    GetInsurerRequest,
    GetInsurerResponse,
    GetMobileSigningStatusRequest,
    GetMobileSigningStatusResponse,
    GetNotificationRequest,
    GetNotificationResponse,
    GrantAuthorityRequest,
    GrantAuthorityResponse,
    ListAuthoritiesRequest,
    ListAuthoritiesResponse,
    ListEServicesRequest,
    ListEServicesResponse,
    ListLocalOfficesRequest,
    ListLocalOfficesResponse,
    ListMethodsRequest,
    ListMethodsResponse,
    RevokeAuthorityRequest,
    RevokeAuthorityResponse,
    SaveDraftRequest,
    SaveDraftResponse,
    SearchApplicationsRequest,
    SearchApplicationsResponse,
    StartMobileLoginRequest,
    StartMobileLoginResponse,
    StartMobileSigningRequest,
    StartMobileSigningResponse,
    SubmitCorrectionRequest,
    SubmitCorrectionResponse,
    SubmitRegistrationBatchRequest,
    SubmitRegistrationBatchResponse,
    SubmitRegistrationRequest,
    SubmitRegistrationResponse,
)

APPLICATION_NAME: Final = "InsuredRegistration"

OPERATIONS: Final[tuple[str, ...]] = (
    "GetInsurer",
    "ListEServices",
    "ListLocalOffices",
    "GrantAuthority",
    "ListAuthorities",
    "RevokeAuthority",
    "FindPerson",
    "SaveDraft",
    "DeleteDraft",
    "SubmitRegistration",
    "ConfirmDraft",
    "SubmitCorrection",
    "GetInsuredPerson",
    "SearchApplications",
    "ExportApplications",
    "GetApplication",
    "GetNotification",
    "StartMobileLogin",
    "StartMobileSigning",
    "GetMobileSigningStatus",
    "SubmitRegistrationBatch",
    "listMethods",
)
"""Every operation of the contract, in the order of the WSDL."""


class InsuredRegistrationService(ServiceBase):
    """Online registration of insured persons (Sığortaolunanın onlayn uçota alınması)."""

    # -- 2.1 insurer ----------------------------------------------------------------------

    @rpc(
        GetInsurerRequest,
        _body_style="bare",
        _returns=GetInsurerResponse,
        _in_message_name="GetInsurer",
        _out_message_name="GetInsurerResponse",
    )
    def GetInsurer(ctx: MethodContext, request: GetInsurerRequest) -> GetInsurerResponse:
        return ctx.udc.dispatch("GetInsurer", request)

    # -- 2.2 authorities ------------------------------------------------------------------

    @rpc(
        _body_style="bare",
        _returns=ListEServicesResponse,
        _in_message_name="ListEServices",
        _out_message_name="ListEServicesResponse",
    )
    def ListEServices(ctx: MethodContext) -> ListEServicesResponse:
        return ctx.udc.dispatch("ListEServices", ListEServicesRequest())

    @rpc(
        _body_style="bare",
        _returns=ListLocalOfficesResponse,
        _in_message_name="ListLocalOffices",
        _out_message_name="ListLocalOfficesResponse",
    )
    def ListLocalOffices(ctx: MethodContext) -> ListLocalOfficesResponse:
        return ctx.udc.dispatch("ListLocalOffices", ListLocalOfficesRequest())

    @rpc(
        GrantAuthorityRequest,
        _body_style="bare",
        _returns=GrantAuthorityResponse,
        _in_message_name="GrantAuthority",
        _out_message_name="GrantAuthorityResponse",
    )
    def GrantAuthority(
        ctx: MethodContext, request: GrantAuthorityRequest
    ) -> GrantAuthorityResponse:
        return ctx.udc.dispatch("GrantAuthority", request)

    @rpc(
        ListAuthoritiesRequest,
        _body_style="bare",
        _returns=ListAuthoritiesResponse,
        _in_message_name="ListAuthorities",
        _out_message_name="ListAuthoritiesResponse",
    )
    def ListAuthorities(
        ctx: MethodContext, request: ListAuthoritiesRequest
    ) -> ListAuthoritiesResponse:
        return ctx.udc.dispatch("ListAuthorities", request)

    @rpc(
        RevokeAuthorityRequest,
        _body_style="bare",
        _returns=RevokeAuthorityResponse,
        _in_message_name="RevokeAuthority",
        _out_message_name="RevokeAuthorityResponse",
    )
    def RevokeAuthority(
        ctx: MethodContext, request: RevokeAuthorityRequest
    ) -> RevokeAuthorityResponse:
        return ctx.udc.dispatch("RevokeAuthority", request)

    # -- 3.1 initial registration, 3.2 correction -----------------------------------------

    @rpc(
        FindPersonRequest,
        _body_style="bare",
        _returns=FindPersonResponse,
        _in_message_name="FindPerson",
        _out_message_name="FindPersonResponse",
    )
    def FindPerson(ctx: MethodContext, request: FindPersonRequest) -> FindPersonResponse:
        return ctx.udc.dispatch("FindPerson", request)

    @rpc(
        SaveDraftRequest,
        _body_style="bare",
        _returns=SaveDraftResponse,
        _in_message_name="SaveDraft",
        _out_message_name="SaveDraftResponse",
    )
    def SaveDraft(ctx: MethodContext, request: SaveDraftRequest) -> SaveDraftResponse:
        return ctx.udc.dispatch("SaveDraft", request)

    @rpc(
        DeleteDraftRequest,
        _body_style="bare",
        _returns=DeleteDraftResponse,
        _in_message_name="DeleteDraft",
        _out_message_name="DeleteDraftResponse",
    )
    def DeleteDraft(ctx: MethodContext, request: DeleteDraftRequest) -> DeleteDraftResponse:
        return ctx.udc.dispatch("DeleteDraft", request)

    @rpc(
        SubmitRegistrationRequest,
        _body_style="bare",
        _returns=SubmitRegistrationResponse,
        _in_message_name="SubmitRegistration",
        _out_message_name="SubmitRegistrationResponse",
    )
    def SubmitRegistration(
        ctx: MethodContext, request: SubmitRegistrationRequest
    ) -> SubmitRegistrationResponse:
        return ctx.udc.dispatch("SubmitRegistration", request)

    @rpc(
        ConfirmDraftRequest,
        _body_style="bare",
        _returns=ConfirmDraftResponse,
        _in_message_name="ConfirmDraft",
        _out_message_name="ConfirmDraftResponse",
    )
    def ConfirmDraft(ctx: MethodContext, request: ConfirmDraftRequest) -> ConfirmDraftResponse:
        return ctx.udc.dispatch("ConfirmDraft", request)

    @rpc(
        SubmitCorrectionRequest,
        _body_style="bare",
        _returns=SubmitCorrectionResponse,
        _in_message_name="SubmitCorrection",
        _out_message_name="SubmitCorrectionResponse",
    )
    def SubmitCorrection(
        ctx: MethodContext, request: SubmitCorrectionRequest
    ) -> SubmitCorrectionResponse:
        return ctx.udc.dispatch("SubmitCorrection", request)

    @rpc(
        GetInsuredPersonRequest,
        _body_style="bare",
        _returns=GetInsuredPersonResponse,
        _in_message_name="GetInsuredPerson",
        _out_message_name="GetInsuredPersonResponse",
    )
    def GetInsuredPerson(
        ctx: MethodContext, request: GetInsuredPersonRequest
    ) -> GetInsuredPersonResponse:
        return ctx.udc.dispatch("GetInsuredPerson", request)

    # -- 3.3 registry ---------------------------------------------------------------------

    @rpc(
        SearchApplicationsRequest,
        _body_style="bare",
        _returns=SearchApplicationsResponse,
        _in_message_name="SearchApplications",
        _out_message_name="SearchApplicationsResponse",
    )
    def SearchApplications(
        ctx: MethodContext, request: SearchApplicationsRequest
    ) -> SearchApplicationsResponse:
        return ctx.udc.dispatch("SearchApplications", request)

    @rpc(
        ExportApplicationsRequest,
        _body_style="bare",
        _returns=ExportApplicationsResponse,
        _in_message_name="ExportApplications",
        _out_message_name="ExportApplicationsResponse",
    )
    def ExportApplications(
        ctx: MethodContext, request: ExportApplicationsRequest
    ) -> ExportApplicationsResponse:
        return ctx.udc.dispatch("ExportApplications", request)

    @rpc(
        GetApplicationRequest,
        _body_style="bare",
        _returns=GetApplicationResponse,
        _in_message_name="GetApplication",
        _out_message_name="GetApplicationResponse",
    )
    def GetApplication(
        ctx: MethodContext, request: GetApplicationRequest
    ) -> GetApplicationResponse:
        return ctx.udc.dispatch("GetApplication", request)

    @rpc(
        GetNotificationRequest,
        _body_style="bare",
        _returns=GetNotificationResponse,
        _in_message_name="GetNotification",
        _out_message_name="GetNotificationResponse",
    )
    def GetNotification(
        ctx: MethodContext, request: GetNotificationRequest
    ) -> GetNotificationResponse:
        return ctx.udc.dispatch("GetNotification", request)

    # -- Asan İmza ------------------------------------------------------------------------

    @rpc(
        StartMobileLoginRequest,
        _body_style="bare",
        _returns=StartMobileLoginResponse,
        _in_message_name="StartMobileLogin",
        _out_message_name="StartMobileLoginResponse",
    )
    def StartMobileLogin(
        ctx: MethodContext, request: StartMobileLoginRequest
    ) -> StartMobileLoginResponse:
        return ctx.udc.dispatch("StartMobileLogin", request)

    @rpc(
        StartMobileSigningRequest,
        _body_style="bare",
        _returns=StartMobileSigningResponse,
        _in_message_name="StartMobileSigning",
        _out_message_name="StartMobileSigningResponse",
    )
    def StartMobileSigning(
        ctx: MethodContext, request: StartMobileSigningRequest
    ) -> StartMobileSigningResponse:
        return ctx.udc.dispatch("StartMobileSigning", request)

    @rpc(
        GetMobileSigningStatusRequest,
        _body_style="bare",
        _returns=GetMobileSigningStatusResponse,
        _in_message_name="GetMobileSigningStatus",
        _out_message_name="GetMobileSigningStatusResponse",
    )
    def GetMobileSigningStatus(
        ctx: MethodContext, request: GetMobileSigningStatusRequest
    ) -> GetMobileSigningStatusResponse:
        return ctx.udc.dispatch("GetMobileSigningStatus", request)

    # -- bulk -----------------------------------------------------------------------------

    @rpc(
        SubmitRegistrationBatchRequest,
        _body_style="bare",
        _returns=SubmitRegistrationBatchResponse,
        _in_message_name="SubmitRegistrationBatch",
        _out_message_name="SubmitRegistrationBatchResponse",
    )
    def SubmitRegistrationBatch(
        ctx: MethodContext, request: SubmitRegistrationBatchRequest
    ) -> SubmitRegistrationBatchResponse:
        return ctx.udc.dispatch("SubmitRegistrationBatch", request)

    # -- X-Road metaservice ---------------------------------------------------------------

    @rpc(
        _body_style="bare",
        _returns=ListMethodsResponse,
        _in_message_name="listMethods",
        _out_message_name="listMethodsResponse",
    )
    def listMethods(ctx: MethodContext) -> ListMethodsResponse:
        return ctx.udc.dispatch("listMethods", ListMethodsRequest())


def build_application() -> Application:
    """The spyne application of the contract; ``ctx.udc`` must be set per call by the caller.

    Input validation is off (``validator=None``): the gateway validates the signed body with
    lxml against the authored XSD before spyne reads it.
    """
    return Application(
        [InsuredRegistrationService],
        tns=TNS,
        name=APPLICATION_NAME,
        in_protocol=Soap11(validator=None),
        out_protocol=Soap11(),
    )
