"""Throughput of the storage layer on SQLite (WAL file) and PostgreSQL (DESIGN.md §5, §7).

    .venv/bin/python bench/bench_persistence.py [--n 1000] [--seconds 10]

Per database, one transaction per operation (as the gateway does per request), one thread:
  * application insert through the repository (Core INSERTs) vs the same rows through the ORM
    unit of work (``session.add``), to show what Core buys;
  * SSN issue (serial allocation + insert);
  * a whole registration's writes: add application, issue SSN, update to REGISTERED;
  * message-log append (a plain insert), replay-cache remember;
  * a registry search (surname prefix, first page of 20) over what was inserted.
PostgreSQL runs when DSMF_TEST_POSTGRES_URL is set (a throwaway database is created and dropped).
Each measurement stops after --n operations or --seconds, whichever comes first. Not a test.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.domain.model import (
    Application,
    ApplicationStatus,
    ApplicationType,
    CertificateStatus,
    IdentityDocument,
    PersonRecord,
    StatusChange,
)
from gateway.domain.text import collation_key, fold
from gateway.domain.values import Address, Contacts, DocumentType, Sex
from gateway.services.ports import ApplicationQuery
from persistence import codec
from persistence.db import Database, scratch_postgres_database
from persistence.message_log import MessageLog
from persistence.migrate import upgrade
from persistence.seed import load_demo_data
from persistence.stores import SqlReplayCache
from persistence.tables import ApplicationRow, StatusHistoryRow

VOEN = "1403567891"
SURNAMES = ["Əliyev", "İsmayılov", "Hüseynova", "Quliyev", "Məmmədova", "Çələbi", "Şükürov"]
_FIN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def fresh_fin() -> str:
    return "".join(secrets.choice(_FIN_ALPHABET) for _ in range(7))


def make_application(i: int) -> Application:
    fin = fresh_fin()
    now = datetime.now(UTC)
    address = Address("Bakı şəhəri", "Nəsimi rayonu", "Nizami küçəsi", str(i % 200 + 1))
    person = PersonRecord(
        fin=fin, surname=SURNAMES[i % len(SURNAMES)], name="Rəşad", patronymic="Vaqif oğlu",
        birth_date=date(1990, 1, 1), sex=Sex.MALE, citizenship="AZE",
        document=IdentityDocument(DocumentType.ID_CARD, "AA1234567", date(2020, 1, 1), "DİN"),
        registration_address=address,
    )
    return Application(
        application_id=str(uuid.uuid4()), insurer_voen=VOEN,
        application_type=ApplicationType.INITIAL_REGISTRATION,
        status=ApplicationStatus.SUBMITTED, document_type=DocumentType.ID_CARD, fin=fin,
        created_at=now, person=person, registration_address=address,
        contacts=Contacts(mobile_phone="+994501234567"),
        history=(StatusChange(ApplicationStatus.SUBMITTED, now, "6ZK4T2P", None),),
    )


def measure(label: str, n: int, seconds: float, operation: Callable[[int], object]) -> float:
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    done = 0
    while done < n and time.perf_counter() < deadline:
        operation(done)
        done += 1
    elapsed = time.perf_counter() - started
    rate = done / elapsed if elapsed else 0.0
    print(f"  {label:<44} {rate:9.0f}/s   ({done} in {elapsed:.2f} s)")
    return rate


def orm_insert(db: Database, app: Application) -> None:
    """The same rows as SqlApplicationRepository.add, through the ORM unit of work."""
    assert app.person is not None
    with db.sessions() as session, session.begin():
        session.add(ApplicationRow(
            application_id=app.application_id, insurer_voen=app.insurer_voen,
            application_type=app.application_type.value, status=app.status.value,
            document_type=app.document_type.value, fin=app.fin,
            surname=app.person.surname, name=app.person.name, patronymic=app.person.patronymic,
            surname_folded=fold(app.person.surname), name_folded=fold(app.person.name),
            patronymic_folded=fold(app.person.patronymic or ""),
            name_sort_key=collation_key(app.person.full_name),
            person=codec.person_to_json(app.person),
            registration_address=codec.address_to_json(app.registration_address),
            actual_address_differs=False, actual_address=None,
            mobile_phone=app.contacts.mobile_phone if app.contacts else None,
            landline_phone=None, email=None, previous_values=None, ssn=None, ssn_date=None,
            certificate_status=app.certificate_status.value, draft_reason=None,
            signed_by_fin=None, signed_by_name=None, signed_by_credential=None,
            created_at=app.created_at, updated_at=app.created_at, version=1,
        ))
        session.flush()  # the parent row first (no relationship() to order the inserts)
        for seq, change in enumerate(app.history):
            session.add(StatusHistoryRow(
                application_id=app.application_id, seq=seq, status=change.status.value,
                at=change.at, actor_fin=change.actor_fin, note=change.note,
            ))


def run(db: Database, n: int, seconds: float) -> None:
    upgrade(str(db.engine.url.render_as_string(hide_password=False)))
    load_demo_data(db)

    def add_core(i: int) -> None:
        with db.unit_of_work() as uow:
            uow.applications.add(make_application(i))
            uow.commit()

    def issue(i: int) -> None:
        with db.unit_of_work() as uow:
            uow.insured_persons.issue(fin=fresh_fin(), surname="Əliyev", name="Rəşad",
                                      patronymic=None, voen=VOEN, on=date.today())
            uow.commit()

    def registration(i: int) -> None:
        app = make_application(i)
        with db.unit_of_work() as uow:
            uow.applications.add(app)
            assert app.person is not None
            insured = uow.insured_persons.issue(
                fin=app.fin, surname=app.person.surname, name=app.person.name,
                patronymic=app.person.patronymic, voen=VOEN, on=date.today(),
            )
            done = replace(
                app.with_status(ApplicationStatus.REGISTERED, datetime.now(UTC), None),
                ssn=insured.ssn, ssn_date=insured.ssn_date,
                certificate_status=CertificateStatus.ISSUED,
            )
            uow.applications.update(done)
            uow.commit()

    log = MessageLog(db)
    payload = b"<soapenv:Envelope>" + b"x" * 5000 + b"</soapenv:Envelope>"
    cache = SqlReplayCache(db)
    until = datetime.now(UTC) + timedelta(minutes=5)

    def search(i: int) -> None:
        with db.unit_of_work() as uow:
            uow.applications.search(ApplicationQuery(VOEN, surname=SURNAMES[i % 7][:3]))

    measure("application insert, repository (Core)", n, seconds, add_core)
    measure("application insert, ORM session.add", n, seconds,
            lambda i: orm_insert(db, make_application(i)))
    measure("SSN issue", n, seconds, issue)
    measure("registration: add + issue + update", n, seconds, registration)
    measure("message log append (5 KB)", n, seconds,
            lambda i: log.append("IN", payload, message_id=f"m-{i}", correlation_id=f"c-{i}",
                                 actor_fin="6ZK4T2P", voen=VOEN, operation="Submit"))
    measure("replay cache remember", n, seconds,
            lambda i: cache.remember(f"bench-{uuid.uuid4()}", until))
    measure("registry search (prefix, page of 20)", n, seconds, search)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="operations per measurement")
    parser.add_argument("--seconds", type=float, default=10.0, help="time cap per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        print(f"SQLite (WAL, synchronous=NORMAL): {url}")
        db = Database(url)
        run(db, args.n, args.seconds)
        db.dispose()
    base = os.environ.get("DSMF_TEST_POSTGRES_URL")
    if base:
        with scratch_postgres_database(base) as url:
            print("PostgreSQL (loopback):")
            db = Database(url)
            run(db, args.n, args.seconds)
            db.dispose()
    else:
        print("PostgreSQL: skipped (set DSMF_TEST_POSTGRES_URL)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
