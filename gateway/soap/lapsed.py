"""When a card signature is refused because the certificate has lapsed (expired, or not valid
yet), the employer's draft is kept with the reason (manual §3.1: "if signing fails, the
application is put into the Registry as a draft"), so it can be confirmed later with a valid
card. Nothing else changes: the request itself is still refused with its fault code.

Who signed is learned with the same verifier and trust list, with only the validity window
moved (``signing.trust.LapsedCertificateValidator``): a forged or wrapped message, an untrusted
or compromised certificate, or a person without authority for the insurer changes nothing.

This is no side door: the endpoint (``SoapEndpoint._keep_lapsed``) takes such a request through
the same steps as every signed one -- the signed X-Road headers checked against the operation,
the request ledger on the signer and message id -- and only then asks :meth:`DraftKeeper.keep`.
"""

from __future__ import annotations

from lxml import etree

from gateway.domain.model import Actor
from gateway.services.actors import ActorFactory
from gateway.services.registration import RegistrationService
from gateway.soap.contract import Contract
from gateway.soap.faults import TNS
from gateway.soap.operations.registration import registration_data_from_xml
from signing.errors import SigningError
from signing.verifier import EnvelopeVerifier, VerifiedMessage

SIGNING_OPERATIONS = frozenset({"ConfirmDraft", "SubmitRegistration"})


class DraftKeeper:
    def __init__(
        self,
        lapsed_verifier: EnvelopeVerifier,
        contract: Contract,
        actors: ActorFactory,
        registration: RegistrationService,
    ) -> None:
        self.verifier = lapsed_verifier
        self.contract = contract
        self.actors = actors
        self.registration = registration

    def attribute(self, envelope: etree._Element) -> VerifiedMessage:
        """The message verified as strictly as any other, validity window aside; raises a
        SigningError when it identifies nobody."""
        return self.verifier.verify(envelope)

    def actor(self, verified: VerifiedMessage, operation: str) -> Actor:
        """The card holder themself (never a userId on whose behalf a system would act)."""
        return self.actors.from_certificate(verified.certificate, operation=operation,
                                            user_id=None)

    def keep(
        self, payload: etree._Element, operation: str, actor: Actor, error: SigningError
    ) -> None:
        """Keep the named draft with the reason; raises GatewayError when not allowed."""
        if operation not in SIGNING_OPERATIONS or etree.QName(payload).namespace != TNS:
            return
        self.contract.validate(payload)
        voen = payload.findtext(f"{{{TNS}}}voen")
        application_id = payload.findtext(f"{{{TNS}}}applicationId")
        if not voen:
            return
        reason = f"{error.code}: {error.message}"
        if application_id:
            self.registration.keep_as_draft(voen, application_id, reason, actor)
        elif payload.find(f"{{{TNS}}}fin") is not None:
            # Data that was never saved becomes the draft (manual §3.1).
            self.registration.keep_unsaved_as_draft(
                actor, voen, registration_data_from_xml(payload), reason
            )
