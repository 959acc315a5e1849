"""When a card signature is refused because the certificate has lapsed (expired, or not valid
yet), the employer's draft is kept with the reason (manual §3.1: "if signing fails, the
application is put into the Registry as a draft"), so it can be confirmed later with a valid
card. Nothing else changes: the request itself is still refused with its fault code.

Who signed is learned with the same verifier and trust list, with only the validity window
moved (``signing.trust.LapsedCertificateValidator``): a forged or wrapped message, an untrusted
or compromised certificate, or a person without authority for the insurer changes nothing.
"""

from __future__ import annotations

import logging

from lxml import etree

from gateway.domain.errors import GatewayError
from gateway.services.actors import ActorFactory
from gateway.services.registration import RegistrationService
from gateway.soap.contract import Contract
from gateway.soap.faults import TNS
from gateway.soap.operations.registration import registration_data_from_xml
from signing.errors import SigningError
from signing.verifier import EnvelopeVerifier

log = logging.getLogger("gateway.soap")

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

    def __call__(self, envelope: etree._Element, error: SigningError) -> None:
        try:
            verified = self.verifier.verify(envelope)
            payloads = [c for c in verified.body if isinstance(c.tag, str)]
            if len(payloads) != 1:
                return
            payload = payloads[0]
            name = etree.QName(payload)
            if name.namespace != TNS or name.localname not in SIGNING_OPERATIONS:
                return
            self.contract.validate(payload)
            voen = payload.findtext(f"{{{TNS}}}voen")
            application_id = payload.findtext(f"{{{TNS}}}applicationId")
            if not voen:
                return
            actor = self.actors.from_certificate(
                verified.certificate, operation=str(name.localname), user_id=None
            )
            reason = f"{error.code}: {error.message}"
            if application_id:
                self.registration.keep_as_draft(voen, application_id, reason, actor)
            elif payload.find(f"{{{TNS}}}fin") is not None:
                # Data that was never saved becomes the draft (manual §3.1).
                self.registration.keep_unsaved_as_draft(
                    actor, voen, registration_data_from_xml(payload), reason
                )
        except (GatewayError, SigningError) as exc:
            # Not attributable or not allowed: the refusal stands and nothing is written.
            log.info("lapsed signature not attributed: %s", getattr(exc, "code", exc))
