"""Round trips of every repository and store through the real databases."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, text

from gateway.domain.errors import Conflict, GatewayError, NotFound
from gateway.domain.mobile import MobileKind, MobileState, MobileTransaction
from gateway.domain.model import (
    REGISTRATION_ESERVICE,
    ApplicationStatus,
    ApplicationType,
    Authority,
    AuthorityType,
    CertificateStatus,
    EService,
    Insurer,
    InsurerType,
    LocalOffice,
    SealHolder,
)
from gateway.domain.values import Address, Contacts
from gateway.services.ports import OpenApplication, PersonStanding, UnitOfWork
from persistence.db import Database
from persistence.errors import (
    ConcurrentUpdate,
    DuplicateKey,
    HistoryRewritten,
    StorageError,
    StorageUnavailable,
)
from persistence.stores import MobileStore, SessionStore, token_hash
from persistence.tables import AuthorityEvent
from persistence.unit_of_work import SqlUnitOfWork

from .conftest import T0, VOEN_A, VOEN_B, address, application


def test_sql_unit_of_work_is_the_port(seeded: Database) -> None:
    uow: UnitOfWork = seeded.unit_of_work()
    with uow:
        assert uow.insurers.get(VOEN_A) is not None


def test_insurers_offices_and_eservices(db: Database) -> None:
    office = LocalOffice("0999", "Test rayon şöbəsi")
    insurer = Insurer(VOEN_A, "Xəzər Tikinti MMC", InsurerType.LEGAL_ENTITY, "DSMF-0999-000001",
                      "Əliyev Rəşad Vaqif oğlu", office)
    with db.unit_of_work() as uow:
        uow.insurers.upsert(insurer)
        uow.eservices.upsert(EService(REGISTRATION_ESERVICE, "Sığortaolunanın onlayn uçotu"))
        uow.eservices.upsert(EService("OTHER", "Başqa"))
        uow.commit()
    renamed = dataclasses.replace(insurer, full_name="Xəzər Tikinti MMC (yeni)")
    with db.unit_of_work() as uow:
        assert uow.insurers.get(VOEN_A) == insurer
        assert uow.insurers.get("9999999991") is None
        uow.insurers.upsert(renamed)
        uow.eservices.upsert(EService(REGISTRATION_ESERVICE, "Yeni ad"))
        uow.commit()
    with db.unit_of_work() as uow:
        assert uow.insurers.get(VOEN_A) == renamed
        assert [e.code for e in uow.eservices.list()] == [REGISTRATION_ESERVICE, "OTHER"]
        assert uow.eservices.get(REGISTRATION_ESERVICE) == EService(REGISTRATION_ESERVICE,
                                                                    "Yeni ad")
        assert uow.eservices.get("NOPE") is None


def test_leaving_without_commit_rolls_back(db: Database) -> None:
    with db.unit_of_work() as uow:
        uow.insurers.upsert_office(LocalOffice("0998", "X"))
    with db.unit_of_work() as uow:
        uow.insurers.upsert_office(LocalOffice("0997", "Y"))
        uow.rollback()
        uow.commit()
    with pytest.raises(RuntimeError), db.unit_of_work() as uow:
        uow.insurers.upsert_office(LocalOffice("0996", "Z"))
        raise RuntimeError("handler failed")
    with db.unit_of_work() as uow:
        assert isinstance(uow, SqlUnitOfWork)
        assert uow.sql.insurers.list_offices() == []


def _authority(**changes: object) -> Authority:
    base = Authority(
        authority_id="a-1",
        insurer_voen=VOEN_A,
        eservice_code=REGISTRATION_ESERVICE,
        authority_type=AuthorityType.E_SIGNATURE_CARD,
        fin="3HN8B5Q",
        surname="Hüseynova",
        name="Gülnarə",
        patronymic="Şahin qızı",
        granted_at=T0,
        granted_by_fin="6ZK4T2P",
        card_number="CARD-7781",
        valid_from=date(2026, 3, 1),
        valid_to=date(2026, 4, 1),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_the_authorization_reads_return_every_field_and_see_this_transactions_writes(
        seeded: Database) -> None:
    """``list_for_person`` and ``seal_holder`` (read on every request, on the driver's cursor):
    every field as stored (dates, UTC times, revocation), in grant order, and what this unit of
    work has just written."""
    first = _authority(holder_not_after=T0 + timedelta(days=300), bound_at=T0)
    second = _authority(authority_id="a-2", granted_at=T0 + timedelta(hours=1), valid_to=None,
                        card_number="CARD-9000")
    other_person = _authority(authority_id="a-3", fin="7MX2C9R")
    holder = SealHolder(insurer_voen=VOEN_A, fin="6ZK4T2P", name="Əliyev Rəşad",
                        source="SIGN_IN", seen_at=T0, not_after=T0 + timedelta(days=365))
    with seeded.unit_of_work() as uow:
        assert uow.authorities.list_for_person(VOEN_A, "3HN8B5Q") == []
        assert uow.authorities.seal_holder(VOEN_A, "6ZK4T2P") is None
        uow.authorities.add(second)
        uow.authorities.add(first)
        uow.authorities.add(other_person)
        uow.authorities.record_seal_holder(holder)
        read = uow.authorities.list_for_person(VOEN_A, "3HN8B5Q")
        assert read == [first, second]
        assert read[0].holder_not_after is not None and read[0].holder_not_after.tzinfo
        assert uow.authorities.seal_holder(VOEN_A, "6ZK4T2P") == holder
        revoked = dataclasses.replace(first, revoked_at=T0 + timedelta(days=2),
                                      revoked_by_fin="6ZK4T2P", revoke_reason="bitdi")
        uow.authorities.update(revoked)
        assert uow.authorities.list_for_person(VOEN_A, "3HN8B5Q") == [revoked, second]
        uow.commit()
    with seeded.unit_of_work() as uow:
        assert uow.authorities.list_for_person(VOEN_A, "3HN8B5Q") == [revoked, second]
        assert uow.authorities.list_for_person(VOEN_B, "3HN8B5Q") == []
        assert uow.authorities.seal_holder(VOEN_B, "6ZK4T2P") is None


def test_authorities_round_trip_and_audit(seeded: Database) -> None:
    granted = _authority()
    asan = _authority(authority_id="a-2", authority_type=AuthorityType.ASAN_IMZA,
                      card_number=None, asan_phone="+994501112233", asan_user_id="123456",
                      valid_from=None, valid_to=None, fin="7MX2C9R", granted_at=T0 + timedelta(1))
    with seeded.unit_of_work() as uow:
        uow.authorities.add(granted)
        uow.authorities.add(asan)
        uow.commit()
    revoked = dataclasses.replace(granted, revoked_at=T0 + timedelta(days=2),
                                  revoked_by_fin="6ZK4T2P", revoke_reason="məzuniyyət bitdi")
    with seeded.unit_of_work() as uow:
        assert uow.authorities.get("a-1") == granted
        assert uow.authorities.list_for_insurer(VOEN_A) == [granted, asan]
        assert uow.authorities.list_for_insurer(VOEN_B) == []
        assert uow.authorities.list_for_person(VOEN_A, "7MX2C9R") == [asan]
        uow.authorities.update(revoked)
        uow.commit()
    with seeded.unit_of_work() as uow:
        assert isinstance(uow, SqlUnitOfWork)
        assert uow.authorities.get("a-1") == revoked
        trail = uow.sql.authorities.audit_trail("a-1")
        assert [e.event for e in trail] == [AuthorityEvent.GRANT, AuthorityEvent.REVOKE]
        assert trail[1].actor_fin == "6ZK4T2P"
        assert trail[1].detail == {"reason": "məzuniyyət bitdi"}
        with pytest.raises(NotFound):
            uow.authorities.update(_authority(authority_id="missing"))
        with pytest.raises(DuplicateKey) as caught:
            uow.authorities.add(asan)
        assert caught.value.code == "Client.Conflict.Duplicate"


def test_application_round_trip(seeded: Database) -> None:
    app = application("5GH3J7K", status=ApplicationStatus.SUBMITTED)
    with seeded.unit_of_work() as uow:
        uow.applications.add(app)
        uow.commit()
    with seeded.unit_of_work() as uow:
        assert uow.applications.get(app.application_id) == app
        assert uow.applications.get("no-such-id") is None


def test_minimal_application_round_trip(seeded: Database) -> None:
    app = dataclasses.replace(
        application("5GH3J7K"), person=None, registration_address=None,
        actual_address_differs=False, actual_address=None, contacts=None, history=(),
    )
    with seeded.unit_of_work() as uow:
        uow.applications.add(app)
        uow.commit()
    with seeded.unit_of_work() as uow:
        assert uow.applications.get(app.application_id) == app


def test_history_is_append_only(seeded: Database) -> None:
    app = application("5GH3J7K")
    with seeded.unit_of_work() as uow:
        uow.applications.add(app)
        uow.commit()
    submitted = app.with_status(ApplicationStatus.SUBMITTED, T0 + timedelta(minutes=5),
                                "6ZK4T2P", "imzalandı")
    registered = dataclasses.replace(
        submitted.with_status(ApplicationStatus.REGISTERED, T0 + timedelta(minutes=6), None),
        ssn="1000000000017", ssn_date=date(2026, 3, 2),
        certificate_status=CertificateStatus.ISSUED,
    )
    with seeded.unit_of_work() as uow:
        loaded = uow.applications.get(app.application_id)
        assert loaded is not None
        uow.applications.update(submitted)
        uow.applications.update(registered)
        uow.commit()
    with seeded.unit_of_work() as uow:
        stored = uow.applications.get(app.application_id)
        assert stored == registered
        assert [h.status for h in stored.history] == [
            ApplicationStatus.DRAFT, ApplicationStatus.SUBMITTED, ApplicationStatus.REGISTERED,
        ]
        with pytest.raises(HistoryRewritten):
            uow.applications.update(dataclasses.replace(registered, history=registered.history[:1]))
    # The rows themselves: one per change, in order, never rewritten.
    with seeded.transaction() as session:
        rows = session.execute(
            text("SELECT seq, status FROM application_status_history "
                 "WHERE application_id = :a ORDER BY seq"), {"a": app.application_id}
        ).all()
    assert [tuple(r) for r in rows] == [(0, "DRAFT"), (1, "SUBMITTED"), (2, "REGISTERED")]


def test_optimistic_lock_between_units_of_work(seeded: Database) -> None:
    app = application("5GH3J7K", status=ApplicationStatus.SUBMITTED)
    with seeded.unit_of_work() as uow:
        uow.applications.add(app)
        uow.commit()
    with seeded.unit_of_work() as first:
        mine = first.applications.get(app.application_id)
        assert mine is not None
        first.commit()  # end the read transaction (SQLite would block the other writer)
        with seeded.unit_of_work() as second:
            theirs = second.applications.get(app.application_id)
            assert theirs is not None
            second.applications.update(
                theirs.with_status(ApplicationStatus.REJECTED, T0, None, "other worker")
            )
            second.commit()
        with pytest.raises(ConcurrentUpdate) as caught:
            first.applications.update(
                mine.with_status(ApplicationStatus.REGISTERED, T0, None, "this worker")
            )
        assert caught.value.code == "Client.Conflict.Concurrent"
        assert isinstance(caught.value, Conflict)


def test_delete_list_and_open_applications(seeded: Database) -> None:
    draft = application("5GH3J7K", created_at=T0)
    submitted1 = application("5GH3J7K", status=ApplicationStatus.SUBMITTED,
                             created_at=T0 + timedelta(hours=1))
    submitted2 = application("8LP2M4N", status=ApplicationStatus.SUBMITTED,
                             created_at=T0 + timedelta(hours=2), voen=VOEN_B)
    registered = application("5GH3J7K", status=ApplicationStatus.REGISTERED,
                             created_at=T0 + timedelta(hours=3))
    with seeded.unit_of_work() as uow:
        for a in (submitted2, registered, draft, submitted1):
            uow.applications.add(a)
        uow.commit()
    with seeded.unit_of_work() as uow:
        assert uow.applications.list_by_status(ApplicationStatus.SUBMITTED, 10) == [
            submitted1, submitted2,
        ]
        assert uow.applications.list_by_status(ApplicationStatus.SUBMITTED, 1) == [submitted1]
        assert uow.applications.find_open_for_person(VOEN_A, "5GH3J7K") == [draft, submitted1]
        assert uow.applications.find_open_for_person(VOEN_B, "5GH3J7K") == []
        uow.applications.delete(draft.application_id)
        with pytest.raises(NotFound):
            uow.applications.delete(draft.application_id)
        uow.commit()
    with seeded.unit_of_work() as uow:
        assert uow.applications.get(draft.application_id) is None
        assert uow.applications.find_open_for_person(VOEN_A, "5GH3J7K") == [submitted1]


def test_a_persons_standing_is_its_ssn_and_the_insurers_open_applications(
        seeded: Database) -> None:
    fin, other = "5GH3J7K", "8LP2M4N"
    later = application(fin, status=ApplicationStatus.SUBMITTED,
                        created_at=T0 + timedelta(hours=1))
    draft = application(fin, created_at=T0)
    others = [application(fin, status=ApplicationStatus.SUBMITTED, voen=VOEN_B,
                          created_at=T0 + timedelta(hours=2)),
              application(fin, status=ApplicationStatus.REJECTED,
                          created_at=T0 + timedelta(hours=3)),
              application(other, created_at=T0)]
    with seeded.unit_of_work() as uow:
        assert uow.insured_persons.standing(VOEN_A, fin) == PersonStanding(None, ())
        for a in (later, *others, draft):
            uow.applications.add(a)
        uow.commit()
    with seeded.unit_of_work() as uow:
        # Oldest first; another insurer's, a closed one and another FIN's are not in the way.
        assert uow.insured_persons.standing(VOEN_A, fin) == PersonStanding(None, (
            OpenApplication(draft.application_id, ApplicationStatus.DRAFT),
            OpenApplication(later.application_id, ApplicationStatus.SUBMITTED),
        ))
        insured = uow.insured_persons.issue(fin=fin, surname="Əliyev", name="Rəşad",
                                            patronymic="Elçin oğlu", voen=VOEN_B, on=T0.date())
        # Seen in the same transaction, whole, with or without open applications.
        assert uow.insured_persons.standing(VOEN_A, fin).insured == insured
        assert uow.insured_persons.standing(VOEN_A, fin).open_applications != ()
        assert uow.insured_persons.standing("9900000018", fin) == PersonStanding(insured, ())
        assert uow.insured_persons.get(fin) == insured


def test_correction_keeps_previous_values(seeded: Database) -> None:
    fin = "5GH3J7K"
    with seeded.unit_of_work() as uow:
        uow.insured_persons.issue(fin=fin, surname="Əliyev", name="Rəşad",
                                  patronymic="Vaqif oğlu", voen=VOEN_A, on=date(2026, 3, 2))
        uow.applications.add(application(fin, status=ApplicationStatus.REGISTERED))
        uow.commit()
    new_address = Address("Bakı şəhəri", "Yasamal rayonu", "Şərifzadə küçəsi", "3")
    new_contacts = Contacts(mobile_phone="+994557654321")
    correction = dataclasses.replace(
        application(fin, application_type=ApplicationType.CORRECTION,
                    status=ApplicationStatus.REGISTERED),
        person=None, registration_address=None, actual_address_differs=True,
        actual_address=new_address, contacts=new_contacts,
    )
    with seeded.unit_of_work() as uow:
        uow.applications.add(correction)
        uow.commit()
    with seeded.unit_of_work() as uow:
        assert isinstance(uow, SqlUnitOfWork)
        stored = uow.applications.get(correction.application_id)
        assert stored is not None
        assert (stored.actual_address, stored.contacts) == (new_address, new_contacts)
        previous = uow.sql.applications.previous_values(correction.application_id)
        assert previous is not None
        assert previous.actual_address == address("Füzuli küçəsi", "45")
        assert previous.contacts == Contacts(mobile_phone="+994501234567",
                                             email="isci@example.az")
        current = uow.sql.insured_persons.current_contact_data(fin)
        assert current is not None
        assert (current.actual_address, current.contacts) == (new_address, new_contacts)
        # Without a person snapshot the correction still carries the names, for the search.
        assert stored.person is None
        from gateway.services.ports import ApplicationQuery

        found = uow.applications.search(ApplicationQuery(VOEN_A, surname="əli",
                                                         application_type=ApplicationType.CORRECTION))
        assert [a.application_id for a in found.items] == [correction.application_id]


def test_mobile_store(seeded: Database) -> None:
    store = MobileStore(seeded)
    tx = MobileTransaction(
        transaction_id="tx-1", kind=MobileKind.SIGNING, phone="+994501112233", user_id="123456",
        state=MobileState.OUTSTANDING, verification_code="0427", data_hash="ab" * 32,
        created_at=T0, expires_at=T0 + timedelta(minutes=2), voen=VOEN_A, fin="4PD6W1S",
        pending=b"<ds:SignedInfo/>",
    )
    store.create(tx)
    assert store.get("tx-1") == tx
    assert store.get("nope") is None
    done = dataclasses.replace(tx, state=MobileState.SIGNED, signature=b"\x01\x02",
                               certificate=b"\x30\x82", completed_at=T0 + timedelta(seconds=9))
    assert store.update(done, expected_state=MobileState.OUTSTANDING) is True
    assert store.update(done, expected_state=MobileState.OUTSTANDING) is False
    assert store.get("tx-1") == done
    other = dataclasses.replace(tx, transaction_id="tx-2", kind=MobileKind.LOGIN)
    store.create(other)
    assert store.expire_overdue(T0 + timedelta(minutes=3)) == 1
    expired = store.get("tx-2")
    assert expired is not None and expired.state is MobileState.EXPIRED
    assert expired.fault_code == "208"
    with pytest.raises(NotFound):
        store.update(dataclasses.replace(tx, transaction_id="missing"))


def test_session_store_keeps_only_the_hash(seeded: Database) -> None:
    store = SessionStore(seeded)
    token = "s3cr3t-token-value"
    now = datetime.now(UTC)
    record = store.create(token, fin="4PD6W1S", voen=VOEN_B, name="Məmmədova Çiçək",
                          credential="+994501112233", seal_authority=True,
                          expires_at=now + timedelta(minutes=30), role="SEAL")
    assert record.session_id == token_hash(token)
    assert store.get(token) == record
    assert store.get_valid(token) == record
    assert store.get("other") is None
    with seeded.transaction() as session:
        stored = session.execute(text("SELECT token_hash FROM sessions")).scalars().all()
    assert stored == [token_hash(token)]
    extended = store.extend(token, now + timedelta(hours=1))
    assert extended is not None and store.get(token) == extended
    assert store.revoke(token) is True
    assert store.revoke(token) is False
    assert store.get_valid(token) is None
    assert store.purge_expired(now + timedelta(days=1)) == 1


def test_unreachable_database_is_storage_unavailable() -> None:
    """A unit of work connects at its first statement: that statement fails with the storage
    error, whether it goes to the driver (the request path's reads) or through the ORM."""
    database = Database("postgresql+psycopg://nobody@127.0.0.1:9/none")
    try:
        with pytest.raises(StorageUnavailable) as caught, database.unit_of_work() as uow:
            uow.insured_persons.get("5GH3J7K")  # on the driver's cursor
        assert caught.value.code == "Server.Storage.Unavailable"
        with pytest.raises(StorageUnavailable), database.unit_of_work() as uow:
            uow.insurers.get(VOEN_A)  # an ORM query
        with pytest.raises(StorageUnavailable):
            database.ping()
    finally:
        database.dispose()


def test_a_unit_of_work_that_runs_no_statement_sends_nothing(seeded: Database) -> None:
    """No checkout, no BEGIN, no ROLLBACK (on SQLite no write lock) for a unit of work that
    reads nothing, e.g. an authorization that needs no read; the next one works as before."""
    sent: list[str] = []
    seeded.watch_statements(lambda statement, _parameters: sent.append(statement))
    begins: list[object] = []
    event.listen(seeded.engine, "begin", begins.append)
    checked_out = seeded.engine.pool.checkedout()  # type: ignore[attr-defined]
    with seeded.unit_of_work() as uow:
        assert seeded.engine.pool.checkedout() == checked_out  # type: ignore[attr-defined]
        uow.commit()
    with seeded.unit_of_work():
        pass
    assert sent == [] and begins == []
    with seeded.unit_of_work() as uow:
        assert uow.insurers.get(VOEN_A) is not None
    assert len(begins) == 1 and sent
    assert seeded.engine.pool.checkedout() == checked_out  # type: ignore[attr-defined]


def test_no_sqlalchemy_error_escapes(seeded: Database) -> None:
    app = application("5GH3J7K", voen="9999999991")  # no such insurer: foreign key
    with pytest.raises(GatewayError) as caught, seeded.unit_of_work() as uow:
        uow.applications.add(app)
    assert isinstance(caught.value, StorageError)
    assert caught.value.code == "Server.Storage.Constraint"
