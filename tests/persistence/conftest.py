"""Fixtures of the persistence tests: a migrated database per test, on SQLite and PostgreSQL
(``database_url`` from tests/conftest.py), and builders of domain objects."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from gateway.domain.model import (
    Application,
    ApplicationStatus,
    ApplicationType,
    CertificateStatus,
    IdentityDocument,
    PersonRecord,
    Signatory,
    StatusChange,
)
from gateway.domain.values import Address, Contacts, DocumentType, Sex
from persistence.db import Database
from persistence.migrate import upgrade
from persistence.seed import load_demo_data

VOEN_A = "1403567891"  # Xəzər Tikinti MMC (demo data)
VOEN_B = "1700345671"  # Gəncə Tekstil ASC (demo data)
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    upgrade(database_url)
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def seeded(db: Database) -> Database:
    load_demo_data(db)
    return db


def address(street: str = "Nizami küçəsi", house: str = "12") -> Address:
    return Address(
        region="Bakı şəhəri",
        city_or_district="Nəsimi rayonu",
        street=street,
        house=house,
        apartment="7",
        postal_code="AZ1000",
    )


def person(fin: str, surname: str = "Əliyev", name: str = "Rəşad",
           patronymic: str | None = "Vaqif oğlu") -> PersonRecord:
    return PersonRecord(
        fin=fin,
        surname=surname,
        name=name,
        patronymic=patronymic,
        birth_date=date(1988, 4, 17),
        sex=Sex.MALE,
        citizenship="AZE",
        document=IdentityDocument(
            document_type=DocumentType.ID_CARD,
            number="AA1234567",
            issue_date=date(2021, 5, 4),
            issuer="DİN",
            series="AA",
            expiry_date=date(2031, 5, 4),
        ),
        registration_address=address(),
        birth_place="Bakı",
    )


def application(
    fin: str,
    *,
    voen: str = VOEN_A,
    surname: str = "Əliyev",
    name: str = "Rəşad",
    patronymic: str | None = "Vaqif oğlu",
    status: ApplicationStatus = ApplicationStatus.DRAFT,
    application_type: ApplicationType = ApplicationType.INITIAL_REGISTRATION,
    created_at: datetime = T0,
    ssn: str | None = None,
    ssn_date: date | None = None,
    certificate_status: CertificateStatus = CertificateStatus.NOT_ISSUED,
    application_id: str | None = None,
) -> Application:
    history = [StatusChange(ApplicationStatus.DRAFT, created_at, "6ZK4T2P", "saved")]
    if status is not ApplicationStatus.DRAFT:
        history.append(StatusChange(status, created_at, "6ZK4T2P", None))
    return Application(
        application_id=application_id or str(uuid.uuid4()),
        insurer_voen=voen,
        application_type=application_type,
        status=status,
        document_type=DocumentType.ID_CARD,
        fin=fin,
        created_at=created_at,
        person=person(fin, surname, name, patronymic),
        registration_address=address(),
        actual_address_differs=True,
        actual_address=address("Füzuli küçəsi", "45"),
        contacts=Contacts(mobile_phone="+994501234567", email="isci@example.az"),
        ssn=ssn,
        ssn_date=ssn_date,
        certificate_status=certificate_status,
        signed_by=Signatory(fin="6ZK4T2P", name="Əliyev Rəşad", credential="CARD-0001")
        if status is not ApplicationStatus.DRAFT
        else None,
        history=tuple(history),
    )
