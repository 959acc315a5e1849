"""Granting authority (§2.2 Səlahiyyətlərin verilməsi) and its registry.

The insurer's seal holder (möhür vurmaq səlahiyyəti) grants a person (FIN) the right to act in
one of the Fund's e-services, bound to one credential: an e-signature card (its card number) or
an Asan İmza phone (with the Asan user id). Validity is indefinite by default, or a date interval.
The person's name comes from the population registry, never from the caller.

Who may do what (``gateway.services.authorization``): granting and revoking need the insurer's
seal-authority signature; the registry of authorities may be read by the seal holder and by anyone
acting for the insurer under an active authority (and by a trusted system).

"Authority is active only while the person's e-signature certificate is valid": nothing to store
for that here. Every request is verified against the trust list at the time it arrives (validity
period, CRL), so a holder whose certificate expired or was revoked is refused before any authority
is looked at; the row's own period is checked by ``authorize`` on each request.

Audit: the authority row keeps who granted it and when (``granted_by_fin``/``granted_at``) and who
revoked it, when and why (``revoked_*``); rows are never deleted. The persistence adapter also
appends a GRANT / REVOKE event to its append-only ``authority_audit`` table on ``add`` and on the
``update`` that revokes, and the signed requests themselves are in the hash-chained message log.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from gateway.domain.calendar import business_date
from gateway.domain.errors import (
    Conflict,
    DocumentInvalid,
    NotAuthorized,
    NotFound,
    PersonNotFoundUpstream,
    ValidationFailed,
)
from gateway.domain.model import (
    Actor,
    Authority,
    AuthorityState,
    AuthorityType,
    CredentialKind,
    PersonRecord,
    SealHolder,
)
from gateway.domain.values import DocumentType, Fin, Voen
from gateway.services import validation
from gateway.services.authorization import authorize, bound_to
from gateway.services.ports import Clock, PopulationRegistry, UnitOfWork, UnitOfWorkFactory
from gateway.services.recent import Recent
from signing.identity import CardNumberSource, normalise_card_number

_PERMITS = (DocumentType.TEMPORARY_RESIDENCE_PERMIT, DocumentType.PERMANENT_RESIDENCE_PERMIT)
_LIVE = (AuthorityState.ACTIVE, AuthorityState.FUTURE)


class AuthorityService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        registry: PopulationRegistry,
        clock: Clock,
        max_page_size: int = 200,
        card_number_source: CardNumberSource = CardNumberSource.SERIAL,
        noted_signatures: Recent[tuple[object, ...], bool] | None = None,
    ) -> None:
        """``noted_signatures``: signers whose authorities and seal-holder record were found
        up to date (see :meth:`note_signature`); default: remembered for 30 seconds."""
        self.uow = uow
        self.registry = registry
        self.clock = clock
        self.max_page_size = max_page_size
        self.card_number_source = card_number_source
        self.noted = noted_signatures if noted_signatures is not None else Recent(30.0)

    # -- grant ----------------------------------------------------------------------------

    def grant(
        self,
        actor: Actor | None,
        voen: str,
        *,
        eservice_code: str,
        authority_type: AuthorityType,
        card_number: str | None,
        asan_phone: str | None,
        asan_user_id: str | None,
        fin: str,
        valid_from: date | None,
        valid_to: date | None,
        trusted: bool,
    ) -> Authority:
        voen = Voen.parse(voen).value
        now = self.clock()
        today = business_date(now)
        with self.uow() as uow:
            # Authorization first: someone who may not grant learns nothing about the request.
            authorize(uow, actor, voen, today=today, require_seal=True)
        granted_by = _seal_holder_fin(actor)
        if not trusted:
            raise ValidationFailed(
                "the seal holder must confirm the grant as trusted (etibar edilir)",
                code="Client.Validation.Trusted", field="trusted",
            )
        # Any length 5-7: the document (ID card or residence permit) is found below.
        fin = Fin.parse(fin, DocumentType.TEMPORARY_RESIDENCE_PERMIT).value
        card_number, asan_phone, asan_user_id = _credential(
            authority_type, card_number, asan_phone, asan_user_id, self.card_number_source
        )
        valid_from, valid_to = _period(valid_from, valid_to, today)
        with self.uow() as uow:
            eservice = uow.eservices.get(eservice_code)
            if eservice is None:
                raise NotFound(
                    f"no e-service {eservice_code}", code="Client.NotFound.EService",
                    field="eServiceCode",
                )
            if uow.insurers.get(voen) is None:
                raise NotFound(f"no insurer with VÖEN {voen}", code="Client.NotFound.Insurer")
        # The registry call happens outside any transaction: it may be slow.
        person = self._find_person(fin)
        authority = Authority(
            authority_id=str(uuid.uuid4()),
            insurer_voen=voen,
            eservice_code=eservice.code,
            authority_type=authority_type,
            fin=fin,
            surname=person.surname,
            name=person.name,
            patronymic=person.patronymic,
            granted_at=now,
            granted_by_fin=granted_by,
            card_number=card_number,
            asan_phone=asan_phone,
            asan_user_id=asan_user_id,
            valid_from=valid_from,
            valid_to=valid_to,
        )
        with self.uow() as uow:
            _refuse_duplicate(uow, authority, today)
            uow.authorities.add(authority)
            uow.commit()
        self.noted.clear()  # the grantee's next signature binds the new authority
        return authority

    # -- registry -------------------------------------------------------------------------

    def list(
        self,
        actor: Actor | None,
        voen: str,
        state: AuthorityState | None = None,
        page: int = 1,
        page_size: int = 50,
    ) -> tuple[int, Sequence[Authority]]:
        voen = Voen.parse(voen).value
        if page < 1 or not 1 <= page_size <= self.max_page_size:
            raise ValidationFailed(
                f"page must be >= 1 and pageSize 1..{self.max_page_size}",
                code="Client.Validation.Paging",
            )
        today = business_date(self.clock())
        with self.uow() as uow:
            authorize(uow, actor, voen, today=today)
            rows = list(uow.authorities.list_for_insurer(voen))
        if state is not None:
            rows = [a for a in rows if a.state(today) is state]
        # Newest first; the id breaks ties so pages are stable.
        rows.sort(key=lambda a: (a.granted_at, a.authority_id), reverse=True)
        start = (page - 1) * page_size
        return len(rows), rows[start:start + page_size]

    # -- revoke ---------------------------------------------------------------------------

    def revoke(
        self, actor: Actor | None, voen: str, authority_id: str, reason: str | None = None
    ) -> Authority:
        voen = Voen.parse(voen).value
        now = self.clock()
        with self.uow() as uow:
            authorize(uow, actor, voen, today=business_date(now), require_seal=True)
            revoked_by = _seal_holder_fin(actor)
            current = uow.authorities.get(authority_id)
            # Another insurer's authority is "not found": its existence is not disclosed.
            if current is None or current.insurer_voen != voen:
                raise NotFound(
                    "no such authority", code="Client.NotFound.Authority", field="authorityId"
                )
            if current.revoked_at is not None:
                raise Conflict(
                    f"the authority was already revoked at {current.revoked_at.isoformat()}",
                    code="Client.Conflict.AlreadyRevoked", field="authorityId",
                )
            revoked = replace(
                current, revoked_at=now, revoked_by_fin=revoked_by,
                revoke_reason=reason.strip() if reason and reason.strip() else None,
            )
            uow.authorities.update(revoked)
            uow.commit()
        self.noted.clear()
        return revoked

    # -- what a signature teaches ---------------------------------------------------------

    def note_signature(self, actor: Actor) -> None:
        """A person signed with a verified certificate. Their authorities bound to that card
        (or Asan phone) are bound to the certificate: when it was first used, and until when
        it is valid (the authority shows EXPIRED after that, §2.2). A seal-authority
        certificate also records its holder as a seal holder of the insurer, so the e-Gov
        portal may later act for them with X-Road userId (until the certificate expires).

        Every signed request calls this, and almost always nothing has changed since the
        signer's previous request: a signer found up to date is remembered for a few seconds
        (``noted``), sparing each request a transaction and three queries. Only an unchanged
        state is remembered (a write may still be rolled back with its request), and a grant
        or revocation here forgets everything; another process notes a new grant within the
        memory's seconds. Authorization never rests on this record."""
        if actor.fin is None or actor.certificate_not_after is None or actor.credential_kind \
                not in (CredentialKind.CARD, CredentialKind.ASAN):
            return
        not_after = actor.certificate_not_after
        key = (actor.fin, actor.voen, actor.credential_kind, actor.credential, not_after,
               actor.seal_authority)
        if self.noted.get(key):
            return
        now = self.clock()
        changed = False
        with self.uow() as uow:
            for authority in uow.authorities.list_for_holder(actor.fin):
                if authority.revoked_at is not None or not bound_to(authority, actor):
                    continue
                if authority.holder_not_after == not_after:
                    continue
                uow.authorities.update(replace(
                    authority, bound_at=authority.bound_at or now, holder_not_after=not_after,
                ))
                changed = True
            if actor.seal_authority and actor.voen and uow.insurers.get(actor.voen) is not None:
                known = uow.authorities.seal_holder(actor.voen, actor.fin)
                if known is None or known.not_after != not_after:
                    uow.authorities.record_seal_holder(SealHolder(
                        insurer_voen=actor.voen, fin=actor.fin, name=actor.name,
                        source="SIGN_IN", seen_at=now, not_after=not_after,
                    ))
                    changed = True
            if changed:
                uow.commit()
        if not changed:
            self.noted.put(key, True)

    # -- helpers --------------------------------------------------------------------------

    def _find_person(self, fin: str) -> PersonRecord:
        """The grantee as the population registry knows them: by ID card (7-character FINs),
        else by temporary or permanent residence permit (whose FINs are 5 to 7 characters)."""
        kinds = ((DocumentType.ID_CARD, *_PERMITS) if len(fin) == 7 else _PERMITS)
        invalid: DocumentInvalid | None = None
        missing: PersonNotFoundUpstream | None = None
        for kind in kinds:
            try:
                return self.registry.find_person(kind, fin)
            except PersonNotFoundUpstream as exc:
                missing = missing or exc
            except DocumentInvalid as exc:
                invalid = invalid or exc
        # A known person whose only document is invalid says more than "not found".
        error = invalid or missing
        assert error is not None
        raise error


def _seal_holder_fin(actor: Actor | None) -> str:
    """The FIN of the person who passed ``authorize(require_seal=True)``."""
    if actor is None or not actor.fin:
        raise NotAuthorized(
            "only a person's seal-authority signature may grant or revoke",
            code="Client.NotAuthorized.NotSealHolder",
        )
    return actor.fin


def _credential(
    authority_type: AuthorityType,
    card_number: str | None,
    asan_phone: str | None,
    asan_user_id: str | None,
    card_number_source: CardNumberSource = CardNumberSource.SERIAL,
) -> tuple[str | None, str | None, str | None]:
    """The one credential the authority is bound to, checked and normalised (a card number
    the way the gateway reads it from the certificate: by default its serial in hex)."""
    card = (card_number or "").strip() or None
    phone = (asan_phone or "").strip() or None
    user_id = (asan_user_id or "").strip() or None
    if authority_type is AuthorityType.E_SIGNATURE_CARD:
        if card is None:
            raise ValidationFailed(
                "an e-signature card authority needs the card number",
                code="Client.Validation.CardNumber", field="cardNumber",
            )
        if phone is not None or user_id is not None:
            raise ValidationFailed(
                "an e-signature card authority is bound to the card only: "
                "give no Asan phone or user id",
                code="Client.Validation.Credential", field="asanPhone",
            )
        try:
            return normalise_card_number(card, card_number_source), None, None
        except ValueError as exc:
            raise ValidationFailed(
                f"{exc} (got {card!r})", code="Client.Validation.CardNumber",
                field="cardNumber",
            ) from exc
    if card is not None:
        raise ValidationFailed(
            "an Asan İmza authority is bound to the phone: give no card number",
            code="Client.Validation.Credential", field="cardNumber",
        )
    if phone is None:
        raise ValidationFailed(
            "an Asan İmza authority needs the Asan phone number",
            code="Client.Validation.Phone", field="asanPhone",
        )
    if user_id is None or not user_id.isdigit():
        raise ValidationFailed(
            "an Asan İmza authority needs the Asan user id (digits)",
            code="Client.Validation.AsanUserId", field="asanUserId",
        )
    return None, validation.mobile_number(phone, "asanPhone"), user_id


def _period(
    valid_from: date | None, valid_to: date | None, today: date
) -> tuple[date | None, date | None]:
    """Both absent: indefinite (müddətsiz). Otherwise an interval that has not ended; a missing
    start means today (as the contract says), a missing end means until revoked."""
    if valid_from is None and valid_to is None:
        return None, None
    if valid_from is not None and valid_from < today:
        # Backdating would make the registry say someone could act when they could not.
        raise ValidationFailed(
            "validFrom is in the past", code="Client.Validation.Period", field="validFrom"
        )
    if valid_to is not None and valid_to < today:
        raise ValidationFailed(
            "validTo is in the past", code="Client.Validation.Period", field="validTo"
        )
    start = valid_from if valid_from is not None else today
    if valid_to is not None and start > valid_to:
        raise ValidationFailed(
            "validFrom is after validTo", code="Client.Validation.Period", field="validFrom"
        )
    return start, valid_to


def _refuse_duplicate(uow: UnitOfWork, new: Authority, today: date) -> None:
    """A live grant (active or future) to the same person, for the same e-service and the same
    credential, whose period overlaps the new one, would make the new grant redundant."""
    for old in uow.authorities.list_for_person(new.insurer_voen, new.fin):
        if (old.eservice_code == new.eservice_code
                and old.authority_type is new.authority_type
                and _same_credential(old, new)
                and old.state(today) in _LIVE
                and _overlap(old, new)):
            raise Conflict(
                f"{new.fin} already holds authority {old.authority_id} for "
                f"{new.eservice_code} with this credential",
                code="Client.Conflict.DuplicateAuthority", field="fin",
            )


def _same_credential(a: Authority, b: Authority) -> bool:
    if a.authority_type is AuthorityType.E_SIGNATURE_CARD:
        return (a.card_number or "").upper() == (b.card_number or "").upper()
    return a.asan_phone == b.asan_phone


def _overlap(a: Authority, b: Authority) -> bool:
    a_from, a_to = a.valid_from or date.min, a.valid_to or date.max
    b_from, b_to = b.valid_from or date.min, b.valid_to or date.max
    return a_from <= b_to and b_from <= a_to
