"""Authorization on every operation (DESIGN.md §1).

A request acting for insurer V by person F with credential C is allowed if C is a seal-authority
certificate of V (möhür vurmaq səlahiyyəti), or V has granted F an active authority for this
e-service bound to C (card number, or Asan phone) whose period contains today. Granting and
revoking need seal authority. A trusted system (X-Road userId) may read. Each refusal has its own
code so the caller learns what to fix; nothing is written before this check passes.
"""

from __future__ import annotations

from datetime import date

from gateway.domain.errors import NotAuthorized
from gateway.domain.model import (
    REGISTRATION_ESERVICE,
    Actor,
    Authority,
    AuthorityState,
    AuthorityType,
    CredentialKind,
)
from gateway.services.ports import UnitOfWork


def authorize(
    uow: UnitOfWork,
    actor: Actor | None,
    voen: str,
    *,
    today: date,
    eservice: str = REGISTRATION_ESERVICE,
    require_seal: bool = False,
) -> None:
    if actor is None:
        raise NotAuthorized("this operation needs a signed request", code="Client.NotAuthorized")
    if actor.credential_kind is CredentialKind.SYSTEM:
        if require_seal:
            raise NotAuthorized(
                "a system certificate cannot grant or revoke",
                code="Client.NotAuthorized.NotSealHolder",
            )
        # A trusted system (read-only, checked when the actor was made) reads for the person in
        # X-Road userId, and only what that person may read: an active authority from this
        # insurer for this e-service. The system authenticated the person; which card or
        # phone they used is the system's business, so the credential is not compared.
        active = [
            a for a in uow.authorities.list_for_person(voen, actor.fin or "")
            if a.eservice_code == eservice and a.state(today) is AuthorityState.ACTIVE
        ]
        if active:
            return
        # The insurer's seal holder needs no granted authority (§2.2); the system has no
        # certificate of theirs, so the gateway goes by what it learned from their own
        # seal-card signatures or from the insurer reference data (DESIGN: seal holders).
        seal = uow.authorities.seal_holder(voen, actor.fin or "")
        if seal is not None and (seal.not_after is None or today <= seal.not_after.date()):
            return
        raise NotAuthorized(
            "the person named in userId is neither a known seal holder of this insurer nor"
            " holds an active authority from it",
            code="Client.NotAuthorized.NoAuthority",
        )
    if actor.voen == voen and actor.seal_authority:
        return
    if require_seal:
        code = ("Client.NotAuthorized.NotSealHolder" if actor.voen == voen
                else "Client.NotAuthorized.OtherInsurer")
        raise NotAuthorized(
            "only the insurer's seal-authority holder may do this", code=code
        )
    granted = [a for a in uow.authorities.list_for_person(voen, actor.fin or "")]
    if not granted:
        if actor.voen != voen:
            raise NotAuthorized(
                "the signer acts for another insurer and holds no authority for this one",
                code="Client.NotAuthorized.OtherInsurer",
            )
        raise NotAuthorized(
            "the signer holds no authority from this insurer",
            code="Client.NotAuthorized.NoAuthority",
        )
    for_service = [a for a in granted if a.eservice_code == eservice]
    if not for_service:
        raise NotAuthorized(
            "the signer's authority is for another e-service",
            code="Client.NotAuthorized.WrongEService",
        )
    bound = [a for a in for_service if bound_to(a, actor)]
    if not bound:
        raise NotAuthorized(
            "the authority is bound to another card or phone than the one that signed",
            code="Client.NotAuthorized.WrongCredential",
        )
    states = {a.state(today) for a in bound}
    if AuthorityState.ACTIVE in states:
        return
    if AuthorityState.FUTURE in states:
        raise NotAuthorized(
            "the authority is not valid yet", code="Client.NotAuthorized.AuthorityNotYetValid"
        )
    if AuthorityState.EXPIRED in states:
        raise NotAuthorized(
            "the authority has expired", code="Client.NotAuthorized.AuthorityExpired"
        )
    raise NotAuthorized(
        "the authority was revoked", code="Client.NotAuthorized.AuthorityRevoked"
    )


def bound_to(authority: Authority, actor: Actor) -> bool:
    """Whether ``authority`` is bound to the card or phone ``actor`` signed with."""
    if authority.authority_type is AuthorityType.E_SIGNATURE_CARD:
        return (actor.credential_kind is CredentialKind.CARD
                and authority.card_number is not None
                and authority.card_number.upper() == actor.credential.upper())
    return (actor.credential_kind in (CredentialKind.ASAN, CredentialKind.SESSION)
            and authority.asan_phone == actor.credential)
