"""Registration of insured persons (§3.1 İlkin uçot), correction (§3.2 Düzəliş) and the registry
(§3.3 Reyestr).

Lifecycle: DRAFT → SUBMITTED → REGISTERED (SSN issued) | REJECTED, each change recorded with its
time and actor. Every check runs before anything is written; each operation is one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from gateway.domain.calendar import business_date
from gateway.domain.errors import (
    Conflict,
    DocumentInvalid,
    GatewayError,
    NotFound,
    PersonNotFoundUpstream,
    SsnAlreadyIssued,
    UpstreamError,
    UpstreamUnavailable,
    ValidationFailed,
)
from gateway.domain.model import (
    Actor,
    Application,
    ApplicationStatus,
    ApplicationType,
    CertificateStatus,
    InsuredPerson,
    PersonRecord,
    Signatory,
)
from gateway.domain.text import fold
from gateway.domain.values import Address, Contacts, DocumentType, Fin, Voen
from gateway.services import validation
from gateway.services.authorization import authorize
from gateway.services.ports import (
    ApplicationQuery,
    Clock,
    Page,
    PopulationRegistry,
    UnitOfWork,
    UnitOfWorkFactory,
)
from gateway.services.recent import Recent

SUBMITTED_NOTE = (
    "accepted while the population registry does not answer: the person is registered and the"
    " SSN issued automatically when it is back; follow the application in the registry"
)


def outcome_message(app: Application) -> str | None:
    """What an answer about a signed application says besides its status: why it is not
    REGISTERED and what happens next."""
    if app.status is ApplicationStatus.SUBMITTED:
        return SUBMITTED_NOTE
    if app.status is ApplicationStatus.DRAFT:
        return app.draft_reason
    if app.status is ApplicationStatus.REJECTED and app.history:
        return app.history[-1].note
    return None


@dataclass(frozen=True, slots=True)
class PersonFound:
    person: PersonRecord


@dataclass(frozen=True, slots=True)
class SsnExists:
    """"The person's SSN exists" (şəxsin SSN-i mövcuddur): no new application is needed."""

    insured: InsuredPerson


@dataclass(frozen=True, slots=True)
class CurrentData:
    """An insured person's current data: what the latest registered application (initial or
    correction, of any insurer) holds, and since when (a Baku business date)."""

    insured: InsuredPerson
    person: PersonRecord | None
    registration_address: Address | None
    actual_address_differs: bool
    actual_address: Address | None
    contacts: Contacts | None
    since: date
    application_id: str | None


@dataclass(frozen=True, slots=True)
class RegistrationData:
    """What an insurer enters in the steps of §3.1 (all but the FIN may still be missing).

    There is no registration address: it always comes from the identity-document registry
    (the contract has no element for it)."""

    document_type: DocumentType
    fin: str
    actual_address_differs: bool = False
    actual_address: Address | None = None
    contacts: Contacts | None = None


class RegistrationService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        registry: PopulationRegistry,
        clock: Clock,
        max_page_size: int = 200,
        recent_people: Recent[tuple[str, DocumentType, str], PersonRecord] | None = None,
    ) -> None:
        """``recent_people``: the persons FindPerson fetched, by (insurer, document type,
        FIN), reused by that insurer's SaveDraft and SubmitRegistration of the FIN instead of
        asking the registry again (default: none kept)."""
        self.uow = uow
        self.registry = registry
        self.clock = clock
        self.max_page_size = max_page_size
        self.recent_people = recent_people if recent_people is not None else Recent(0)

    # -- §3.1 search ----------------------------------------------------------------------

    def find_person(
        self, actor: Actor | None, voen: str, document_type: DocumentType, fin: str
    ) -> PersonFound | SsnExists:
        voen = Voen.parse(voen).value
        fin = Fin.parse(fin, document_type).value
        with self.uow() as uow:
            authorize(uow, actor, voen, today=business_date(self.clock()))
            insured = uow.insured_persons.get(fin)
        if insured is not None:
            return SsnExists(insured)
        person = self.registry.find_person(document_type, fin)
        # The insurer's next step is usually SaveDraft or SubmitRegistration of this person:
        # they reuse this answer for a few seconds (keyed on the insurer: another insurer asks
        # the registry itself, after its own authorization).
        self.recent_people.put((voen, document_type, fin), person)
        return PersonFound(person)

    # -- drafts ---------------------------------------------------------------------------

    def save_draft(
        self,
        actor: Actor | None,
        voen: str,
        data: RegistrationData,
        application_id: str | None = None,
    ) -> Application:
        voen = Voen.parse(voen).value
        data = self._clean(data)
        now = self.clock()
        with self.uow() as uow:
            # Before the registry call: who may not act must not learn whether a FIN exists.
            authorize(uow, actor, voen, today=business_date(now))
            data = self._placed(uow, data)
        person = self.recent_people.get((voen, data.document_type, data.fin)) \
            or self._person_or_none(data)
        with self.uow() as uow:
            authorize(uow, actor, voen, today=business_date(now))
            self._refuse_if_taken(uow, voen, data.fin, but=application_id)
            if application_id is None:
                app = self._new_application(voen, data, person, now, actor)
                uow.applications.add(app)
            else:
                current = self._own_draft(uow, voen, application_id)
                app = self._apply(current, data, person)
                uow.applications.update(app)
            uow.commit()
        return app

    def delete_draft(self, actor: Actor | None, voen: str, application_id: str) -> None:
        voen = Voen.parse(voen).value
        with self.uow() as uow:
            authorize(uow, actor, voen, today=business_date(self.clock()))
            self._own_draft(uow, voen, application_id)
            uow.applications.delete(application_id)
            uow.commit()

    # -- submission -----------------------------------------------------------------------

    def submit(
        self,
        actor: Actor | None,
        voen: str,
        *,
        application_id: str | None = None,
        data: RegistrationData | None = None,
        check: Callable[[Application], None] | None = None,
    ) -> Application:
        """Sign-and-submit (Təsdiq et): issues the SSN, or accepts as SUBMITTED when the
        population registry is down (finished by :meth:`finish_submitted`).

        ``check`` sees the draft as loaded and may refuse it (the Asan İmza flow compares it
        with what the phone signed); exactly that snapshot is what gets registered.
        """
        voen = Voen.parse(voen).value
        if (application_id is None) == (data is None):
            raise ValidationFailed(
                "give either an applicationId of a draft or the registration data",
                code="Client.Validation.Application",
            )
        now = self.clock()
        clean = self._clean(data) if data is not None else None
        known = (self.recent_people.get((voen, clean.document_type, clean.fin))
                 if clean is not None else None)
        if clean is not None and known is not None:
            # A FindPerson of this insurer just fetched the person: no registry call, so the
            # checks and the writes need not be two transactions around it.
            with self.uow() as uow:
                authorize(uow, actor, voen, today=business_date(now))
                clean = self._placed(uow, clean)
                self._refuse_if_taken(uow, voen, clean.fin)
                app = self._new_application(voen, clean, None, now, actor)
                app = self._register(uow, replace(app, signed_by=_signatory(actor)), known, now,
                                     actor, True)
                uow.commit()
                return app
        with self.uow() as uow:
            authorize(uow, actor, voen, today=business_date(now))
            if application_id is not None:
                app = self._own_draft(uow, voen, application_id)
                if check is not None:
                    check(app)
                is_new = False
            else:
                assert clean is not None
                clean = self._placed(uow, clean)
                self._refuse_if_taken(uow, voen, clean.fin)
                app = self._new_application(voen, clean, None, now, actor)
                is_new = True
        # The registry call happens outside any transaction: it may be slow. A FindPerson of
        # this insurer a few seconds ago already asked it.
        person = self.recent_people.get((voen, app.document_type, app.fin))
        if person is None:
            try:
                person = self.registry.find_person(app.document_type, app.fin)
            except (PersonNotFoundUpstream, DocumentInvalid):
                raise
            except UpstreamError:
                person = None
        with self.uow() as uow:
            # Again, in the writing transaction: an authority revoked, or the draft deleted or
            # submitted elsewhere, while the registry answered must stop this submission.
            authorize(uow, actor, voen, today=business_date(now))
            if not is_new:
                self._own_draft(uow, voen, app.application_id)
            signer = _signatory(actor)
            if person is None:
                app = replace(app, signed_by=signer, draft_reason=None).with_status(
                    ApplicationStatus.SUBMITTED, now, _fin(actor), SUBMITTED_NOTE,
                )
                self._store(uow, app, is_new)
                uow.commit()
                return app
            app = self._register(uow, replace(app, signed_by=signer), person, now, actor, is_new)
            uow.commit()
            return app

    def finish_submitted(self, limit: int = 200) -> int:
        """Finish applications accepted while the registry was down; returns how many changed.

        Safe with any number of finishers on any number of hosts: the registry is asked outside
        any transaction, and the writing transaction re-reads the application locked and changes
        it only while it is still SUBMITTED, so one finisher can never overwrite what another
        one (or a client) did. Stops at the first registry outage, keeping the order."""
        done = 0
        with self.uow() as uow:
            pending = [a.application_id for a in
                       uow.applications.list_by_status(ApplicationStatus.SUBMITTED, limit)]
        for application_id in pending:
            with self.uow() as uow:
                app = uow.applications.get(application_id)
            if app is None or app.status is not ApplicationStatus.SUBMITTED:
                continue
            try:
                person = self.registry.find_person(app.document_type, app.fin)
            except (PersonNotFoundUpstream, DocumentInvalid) as exc:
                done += self._reject_submitted(application_id, f"{exc.code}: {exc}")
                continue
            except UpstreamError:
                break  # still down: try again later
            with self.uow() as uow:
                current = uow.applications.get_for_update(application_id)
                if current is None or current.status is not ApplicationStatus.SUBMITTED:
                    continue
                try:
                    self._register(uow, current, person, self.clock(), None, False)
                except Conflict as exc:
                    reason = f"{exc.code}: {exc.message}"
                else:
                    uow.commit()
                    done += 1
                    continue
            # The FIN got its SSN through another application meanwhile.
            done += self._reject_submitted(application_id, reason)
        return done

    def _reject_submitted(self, application_id: str, reason: str) -> int:
        with self.uow() as uow:
            current = uow.applications.get_for_update(application_id)
            if current is None or current.status is not ApplicationStatus.SUBMITTED:
                return 0
            uow.applications.update(current.with_status(
                ApplicationStatus.REJECTED, self.clock(), None, reason
            ))
            uow.commit()
        return 1

    def _register(
        self,
        uow: UnitOfWork,
        app: Application,
        person: PersonRecord,
        now: datetime,
        actor: Actor | None,
        is_new: bool,
    ) -> Application:
        # The person's actual address: the one given when it differs, else the registration
        # address (the registry's, below); stored with the person in the same insert.
        actual = (app.actual_address if app.actual_address_differs and app.actual_address
                  else app.actual_address or person.registration_address)
        insured = uow.insured_persons.issue(
            fin=app.fin, surname=person.surname, name=person.name,
            patronymic=person.patronymic, voen=app.insurer_voen, on=business_date(now),
            actual_address=actual, contacts=app.contacts,
        )
        # The registry's answer at registration time is what is registered (manual §3.1).
        registration_address = person.registration_address
        if app.status is not ApplicationStatus.SUBMITTED:
            app = app.with_status(ApplicationStatus.SUBMITTED, now, _fin(actor))
        app = replace(
            app, person=person, registration_address=registration_address,
            ssn=insured.ssn, ssn_date=insured.ssn_date,
            certificate_status=CertificateStatus.ISSUED, draft_reason=None,
        ).with_status(ApplicationStatus.REGISTERED, now, _fin(actor), f"SSN {insured.ssn}")
        self._store(uow, app, is_new)
        return app

    def keep_as_draft(
        self, voen: str, application_id: str, reason: str, actor: Actor | None,
        *, actor_fin: str | None = None,
    ) -> Application | None:
        """Signing failed after Confirm: the application stays a draft with the reason, and the
        failure is in its history (who tried, when, why). Only the insurer's own draft, and only
        for someone who may act for the insurer."""
        now = self.clock()
        with self.uow() as uow:
            if actor is not None:
                authorize(uow, actor, voen, today=business_date(now))
            app = uow.applications.get(application_id)
            if app is None or app.insurer_voen != voen or app.status is not ApplicationStatus.DRAFT:
                return None
            app = replace(app, draft_reason=reason).with_status(
                ApplicationStatus.DRAFT, now, _fin(actor) or actor_fin,
                f"signing failed: {reason}",
            )
            uow.applications.update(app)
            uow.commit()
            return app

    def keep_unsaved_as_draft(
        self, actor: Actor | None, voen: str, data: RegistrationData, reason: str,
        *, actor_fin: str | None = None,
    ) -> Application | None:
        """Signing failed after Confirm on data that was never saved (manual §3.1: "the
        application is put into the Registry as a draft"): the data becomes a draft with the
        reason, exactly as a saved draft whose signing failed. Only for a signer who may act for
        the insurer, only valid data, and only where SaveDraft would have stored it (no SSN
        yet; the insurer's open draft for the FIN, if any, takes the data instead of a second
        one). Otherwise nothing is written and ``None`` is returned.

        ``actor`` is None only for an Asan İmza signing whose starter was authorized when it
        started (``actor_fin`` names them): the phone refused, so there is no signer."""
        voen = Voen.parse(voen).value
        now = self.clock()
        by = actor.fin if actor is not None else actor_fin
        try:
            clean = self._clean(data)
            with self.uow() as uow:
                if actor is not None:
                    authorize(uow, actor, voen, today=business_date(now))
                clean = self._placed(uow, clean)
            person = self._person_or_none(clean)
            with self.uow() as uow:
                if actor is not None:
                    authorize(uow, actor, voen, today=business_date(now))
                _refuse_insured(uow.insured_persons.get(clean.fin))
                open_apps = list(uow.applications.find_open_for_person(voen, clean.fin))
                if any(a.status is not ApplicationStatus.DRAFT for a in open_apps):
                    return None
                note = f"signing failed: {reason}"
                if open_apps:
                    app = replace(self._apply(open_apps[0], clean, person),
                                  draft_reason=reason).with_status(
                        ApplicationStatus.DRAFT, now, by, note)
                    uow.applications.update(app)
                else:
                    app = replace(self._new_application(voen, clean, person, now, actor),
                                  draft_reason=reason)
                    app = replace(app, history=(
                        replace(app.history[-1], note=note, actor_fin=by),))
                    uow.applications.add(app)
                uow.commit()
                return app
        except GatewayError:
            return None  # not attributable, not allowed or not storable: nothing is kept

    # -- §3.2 correction ------------------------------------------------------------------

    def current_data(self, actor: Actor | None, voen: str, fin: str) -> CurrentData:
        """The person's current data (the correction's "Search" step, §3.2).

        Readable by anyone who may act for ``voen``, also for a person insured through another
        employer: the correction of such a person is allowed (see :meth:`correct`), and it must
        start from what is on record."""
        voen = Voen.parse(voen).value
        fin = Fin.parse(fin, DocumentType.TEMPORARY_RESIDENCE_PERMIT).value  # any valid length
        with self.uow() as uow:
            authorize(uow, actor, voen, today=business_date(self.clock()))
            insured, latest = self._on_record(uow, fin)
        if latest is not None:
            return _current_from(insured, latest)
        # Known to the Fund without an application here (e.g. from the Fund's reference data):
        # the registration address is the population registry's, nothing else is on record.
        person = self._lookup_any(fin)
        return CurrentData(
            insured=insured, person=person,
            registration_address=person.registration_address if person else None,
            actual_address_differs=False, actual_address=None, contacts=None,
            since=insured.ssn_date, application_id=None,
        )

    def correct(
        self,
        actor: Actor | None,
        voen: str,
        fin: str,
        actual_address: Address | None,
        contacts: Contacts | None,
        actual_address_differs: bool | None = None,
    ) -> Application:
        """A correction (düzəliş) changes only what it names, starting from the person's current
        data: a new actual address, or ``actual_address_differs=False`` (lives at the
        registration address again), and/or the contact fields given (the others are kept).

        Who may correct: anyone who may act for ``voen``, for any person who holds an SSN, also
        one insured through another employer (§3.1 says such a person needs no new application,
        so the new employer keeps their data up to date by correction). The gateway has no
        register of employment to check against; every correction is signed, attributed and
        kept in the correcting insurer's registry with the previous values in its history.
        """
        voen = Voen.parse(voen).value
        fin = Fin.parse(fin, DocumentType.TEMPORARY_RESIDENCE_PERMIT).value  # any valid length
        actual_address = validation.address(actual_address, "actualAddress")
        contacts = validation.contacts(contacts)
        if contacts is not None and contacts.is_empty():
            contacts = None
        if actual_address_differs is False and actual_address is not None:
            raise ValidationFailed(
                "actualAddressDiffers=false means the person lives at the registration address:"
                " give no actualAddress with it",
                code="Client.Validation.ActualAddress", field="actualAddress",
            )
        if actual_address_differs is True and actual_address is None:
            raise ValidationFailed(
                "the actual address differs: give it", code="Client.Validation.ActualAddress",
                field="actualAddress",
            )
        if actual_address is None and actual_address_differs is None and contacts is None:
            raise ValidationFailed(
                "a correction changes the actual address, the contacts, or both",
                code="Client.Validation.Correction",
            )
        now = self.clock()
        with self.uow() as uow:
            # Before the registry call: who may not act must not learn whether a FIN exists.
            authorize(uow, actor, voen, today=business_date(now))
            actual_address = _place(uow, actual_address, "actualAddress")
            insured, latest = self._on_record(uow, fin)
        # The registration address is always the registry's: refreshed when it answers.
        person = self._lookup(latest.document_type, fin) if latest else self._lookup_any(fin)
        if latest is None and person is None:
            raise UpstreamUnavailable(
                "the population registry is needed to correct a person with no application on"
                " record and did not answer; try again later",
                code="Server.Upstream.Unavailable",
            )
        with self.uow() as uow:
            # Again in the writing transaction: a correction committed meanwhile is the base.
            authorize(uow, actor, voen, today=business_date(now))
            insured, latest = self._on_record(uow, fin)
            current = (_current_from(insured, latest) if latest is not None else CurrentData(
                insured=insured, person=person, registration_address=None,
                actual_address_differs=False, actual_address=None, contacts=None,
                since=insured.ssn_date, application_id=None,
            ))
            if actual_address is not None:
                differs, actual = True, actual_address
            elif actual_address_differs is False:
                differs, actual = False, None
            else:
                differs, actual = current.actual_address_differs, current.actual_address
            identity = person or current.person
            registration_address = (
                person.registration_address if person is not None and person.registration_address
                else current.registration_address
            )
            assert identity is not None  # checked above: a person or an application on record
            # The correction keeps the old values in its history: nothing is overwritten.
            old = (f"previous actual address: {_current_address_text(current)}; "
                   f"previous contacts: {_contacts_text(current.contacts)}")
            app = Application(
                application_id=str(uuid.uuid4()),
                insurer_voen=voen,
                application_type=ApplicationType.CORRECTION,
                status=ApplicationStatus.DRAFT,
                document_type=(latest.document_type if latest is not None
                               else identity.document.document_type),
                fin=fin,
                created_at=now,
                person=identity,
                registration_address=registration_address,
                actual_address_differs=differs,
                actual_address=actual,
                contacts=_merge_contacts(current.contacts, contacts),
                ssn=insured.ssn,
                ssn_date=insured.ssn_date,
                certificate_status=(latest.certificate_status if latest is not None
                                    else CertificateStatus.ISSUED),
                signed_by=_signatory(actor),
            ).with_status(ApplicationStatus.SUBMITTED, now, _fin(actor), old)
            app = app.with_status(ApplicationStatus.REGISTERED, now, _fin(actor), "corrected")
            uow.applications.add(app)
            uow.commit()
        return app

    def _on_record(self, uow: UnitOfWork, fin: str) -> tuple[InsuredPerson, Application | None]:
        insured = uow.insured_persons.get(fin)
        if insured is None:
            raise NotFound(
                "no insured person with that FIN (no SSN): register them first",
                code="Client.NotFound.InsuredPerson", field="fin",
            )
        return insured, uow.applications.latest_registered_for_person(fin)

    def _lookup(self, document_type: DocumentType, fin: str) -> PersonRecord | None:
        try:
            return self.registry.find_person(document_type, fin)
        except UpstreamError:
            return None  # the stored data stays current; a correction needs no fresh identity

    def _lookup_any(self, fin: str) -> PersonRecord | None:
        """A person known only by FIN: the document type is unknown, so each that fits the
        FIN's length is asked (a 7-character FIN is an ID card's or a residence permit's)."""
        kinds = ([DocumentType.ID_CARD] if len(fin) == 7 else []) + [
            DocumentType.PERMANENT_RESIDENCE_PERMIT, DocumentType.TEMPORARY_RESIDENCE_PERMIT,
        ]
        for kind in kinds:
            try:
                return self.registry.find_person(kind, fin)
            except (PersonNotFoundUpstream, DocumentInvalid):
                continue
            except UpstreamError:
                return None
        return None

    # -- §3.3 registry --------------------------------------------------------------------

    def search(self, actor: Actor | None, query: ApplicationQuery) -> Page:
        Voen.parse(query.insurer_voen)
        if query.page < 1 or not 1 <= query.page_size <= self.max_page_size:
            raise ValidationFailed(
                f"page must be >= 1 and pageSize 1..{self.max_page_size}",
                code="Client.Validation.Paging",
            )
        with self.uow() as uow:
            authorize(uow, actor, query.insurer_voen, today=business_date(self.clock()))
            return uow.applications.search(query)

    def get(self, actor: Actor | None, voen: str, application_id: str) -> Application:
        voen = Voen.parse(voen).value
        with self.uow() as uow:
            authorize(uow, actor, voen, today=business_date(self.clock()))
            return self._own(uow, voen, application_id)

    # -- helpers ---------------------------------------------------------------------------

    def _clean(self, data: RegistrationData) -> RegistrationData:
        fin = Fin.parse(data.fin, data.document_type).value
        actual = validation.address(data.actual_address, "actualAddress")
        if data.actual_address_differs and actual is None:
            raise ValidationFailed(
                "the actual address differs: give it", code="Client.Validation.ActualAddress",
                field="actualAddress",
            )
        if not data.actual_address_differs and actual is not None:
            raise ValidationFailed(
                "an actual address is given only when it differs from the registration address",
                code="Client.Validation.ActualAddress", field="actualAddress",
            )
        return replace(
            data, fin=fin, actual_address=actual, contacts=validation.contacts(data.contacts),
        )

    def _person_or_none(self, data: RegistrationData) -> PersonRecord | None:
        try:
            return self.registry.find_person(data.document_type, data.fin)
        except (PersonNotFoundUpstream, DocumentInvalid):
            raise
        except UpstreamError:
            return None  # a draft can be saved while the registry is down

    @staticmethod
    def _placed(uow: UnitOfWork, data: RegistrationData) -> RegistrationData:
        return replace(data, actual_address=_place(uow, data.actual_address, "actualAddress"))

    def _refuse_if_taken(
        self, uow: UnitOfWork, voen: str, fin: str, but: str | None = None
    ) -> None:
        """Before a new application of the FIN: no SSN yet, and one open application per FIN
        and insurer (a second one would only fail later). ``but``: the draft being saved."""
        standing = uow.insured_persons.standing(voen, fin)
        _refuse_insured(standing.insured)
        for app in standing.open_applications:
            if app.application_id == but:
                continue
            if app.status is ApplicationStatus.DRAFT:
                raise Conflict(
                    f"the insurer already has a draft for this FIN: {app.application_id};"
                    " change it (SaveDraft with its applicationId) or confirm it",
                    code="Client.Conflict.DraftExists", field="fin",
                    params={"application": app.application_id},
                )
            raise Conflict(
                f"the insurer's application {app.application_id} for this FIN is SUBMITTED and"
                " is finished automatically when the population registry answers",
                code="Client.Conflict.AlreadySubmitted", field="fin",
                params={"application": app.application_id},
            )

    def _new_application(
        self,
        voen: str,
        data: RegistrationData,
        person: PersonRecord | None,
        now: datetime,
        actor: Actor | None,
    ) -> Application:
        app = Application(
            application_id=str(uuid.uuid4()),
            insurer_voen=voen,
            application_type=ApplicationType.INITIAL_REGISTRATION,
            status=ApplicationStatus.DRAFT,
            document_type=data.document_type,
            fin=data.fin,
            created_at=now,
        )
        app = self._apply(app, data, person)
        return app.with_status(ApplicationStatus.DRAFT, now, _fin(actor))

    def _apply(
        self, app: Application, data: RegistrationData, person: PersonRecord | None
    ) -> Application:
        return replace(
            app,
            document_type=data.document_type,
            fin=data.fin,
            person=person or (app.person if app.fin == data.fin else None),
            registration_address=(
                person.registration_address if person is not None
                else app.registration_address if app.fin == data.fin else None
            ),
            actual_address_differs=data.actual_address_differs,
            actual_address=data.actual_address,
            contacts=data.contacts,
        )

    def _own(self, uow: UnitOfWork, voen: str, application_id: str) -> Application:
        app = uow.applications.get(application_id)
        # Another insurer's application is "not found": its existence is not disclosed.
        if app is None or app.insurer_voen != voen:
            raise NotFound("no such application", code="Client.NotFound.Application",
                           field="applicationId")
        return app

    def _own_draft(self, uow: UnitOfWork, voen: str, application_id: str) -> Application:
        app = self._own(uow, voen, application_id)
        if app.status is not ApplicationStatus.DRAFT:
            raise Conflict(
                f"the application is {app.status.value}, not a draft",
                code="Client.Conflict.NotDraft", field="applicationId",
            )
        return app

    @staticmethod
    def _store(uow: UnitOfWork, app: Application, is_new: bool) -> None:
        if is_new:
            uow.applications.add(app)
        else:
            uow.applications.update(app)


def _place(uow: UnitOfWork, address: Address | None, field: str) -> Address | None:
    """An address given by the caller, checked against the address code list (when one is
    loaded) and written with the list's names: the region must be in it, and so must the city
    or district of a region whose districts are listed (e.g. Bakı's rayons)."""
    if address is None or not uow.insurers.has_regions():
        return address
    region = uow.insurers.region_named(address.region)
    if region is None:
        raise ValidationFailed(
            f"{field}: {address.region!r} is not a region of the address code list",
            code="Client.Validation.Region", field=f"{field}/region",
        )
    city = address.city_or_district
    if region.closed:
        wanted = fold(" ".join(city.split()))
        match = next((d for d in region.districts if fold(d.name) == wanted), None)
        if match is None:
            raise ValidationFailed(
                f"{field}: {city!r} is not a district of {region.name}",
                code="Client.Validation.District", field=f"{field}/cityOrDistrict",
            )
        city = match.name
    return replace(address, region=region.name, city_or_district=city)


def _fin(actor: Actor | None) -> str | None:
    return actor.fin if actor else None


def _signatory(actor: Actor | None) -> Signatory | None:
    if actor is None:
        return None
    return Signatory(fin=actor.fin, name=actor.name, credential=actor.credential)


def _current_address_text(current: CurrentData) -> str:
    if current.actual_address_differs and current.actual_address is not None:
        return current.actual_address.one_line()
    registration = current.registration_address
    return "as the registration address" + (f" ({registration.one_line()})"
                                            if registration else "")


def _merge_contacts(current: Contacts | None, given: Contacts | None) -> Contacts | None:
    """The contact fields given replace the current ones; the others stay."""
    if given is None:
        return current
    if current is None:
        return given
    return Contacts(
        mobile_phone=given.mobile_phone or current.mobile_phone,
        landline_phone=given.landline_phone or current.landline_phone,
        email=given.email or current.email,
    )


def _current_from(insured: InsuredPerson, app: Application) -> CurrentData:
    since = next((c.at for c in reversed(app.history)
                  if c.status is ApplicationStatus.REGISTERED), app.created_at)
    return CurrentData(
        insured=insured, person=app.person, registration_address=app.registration_address,
        actual_address_differs=app.actual_address_differs,
        actual_address=app.actual_address if app.actual_address_differs else None,
        contacts=app.contacts, since=business_date(since), application_id=app.application_id,
    )


def _contacts_text(contacts: Contacts | None) -> str:
    if contacts is None:
        return "-"
    parts: Sequence[str | None] = (contacts.mobile_phone, contacts.landline_phone, contacts.email)
    return ", ".join(p for p in parts if p) or "-"


def _refuse_insured(existing: InsuredPerson | None) -> None:
    if existing is not None:
        person = " ".join(
            part for part in (existing.surname, existing.name, existing.patronymic) if part
        )
        raise SsnAlreadyIssued(
            f"the person's SSN exists: {person} {existing.ssn}",
            ssn=existing.ssn, field="fin", params={"person": person},
        )
