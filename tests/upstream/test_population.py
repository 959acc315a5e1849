"""The population-registry client against the real simulator on loopback."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.domain.errors import DocumentInvalid, PersonNotFoundUpstream, UpstreamFault
from gateway.domain.model import PersonRecord
from gateway.domain.values import DocumentType, Sex
from gateway.upstream.population import ZeepPopulationRegistry
from simulators.people import NOT_FOUND_FIN, PEOPLE, SeedPerson

VALID_PEOPLE = [p for p in PEOPLE if p.document.invalid_reason is None]


def _expected(seed: SeedPerson) -> PersonRecord:
    from gateway.domain.model import IdentityDocument
    from gateway.domain.values import Address

    doc, addr = seed.document, seed.registration_address
    return PersonRecord(
        fin=seed.fin,
        surname=seed.surname,
        name=seed.name,
        patronymic=seed.patronymic,
        birth_date=seed.birth_date,
        sex=Sex(seed.sex),
        citizenship=seed.citizenship,
        document=IdentityDocument(
            document_type=DocumentType(doc.document_type.value),
            number=doc.number,
            issue_date=doc.issue_date,
            issuer=doc.issuer,
            series=doc.series,
            expiry_date=doc.expiry_date,
        ),
        registration_address=Address(
            region=addr.region,
            city_or_district=addr.city_or_district,
            street=addr.street,
            house=addr.house,
            apartment=addr.apartment,
            postal_code=addr.postal_code,
        ),
        birth_place=seed.birth_place,
    )


@pytest.mark.parametrize("seed", VALID_PEOPLE, ids=lambda p: p.fin)
def test_every_seeded_person_is_found_as_seeded(
    registry: ZeepPopulationRegistry, seed: SeedPerson
) -> None:
    person = registry.find_person(DocumentType(seed.document.document_type.value), seed.fin)
    assert person == _expected(seed)


def test_azerbaijani_letters_survive_the_round_trip(registry: ZeepPopulationRegistry) -> None:
    rashad = registry.find_person(DocumentType.ID_CARD, "6ZK4T2P")
    assert (rashad.surname, rashad.name, rashad.patronymic) == ("Əliyev", "Rəşad", "Vaqif oğlu")
    assert rashad.sex is Sex.MALE and rashad.birth_date == date(1979, 3, 14)
    assert rashad.birth_place == "Bakı" and rashad.citizenship == "AZE"
    assert rashad.document.series == "AA" and len(rashad.document.number) == 7
    assert rashad.registration_address is not None
    assert rashad.registration_address.city_or_district == "Nəsimi rayonu"
    assert rashad.registration_address.postal_code == "AZ1022"

    cicek = registry.find_person(DocumentType.ID_CARD, "4PD6W1S")
    assert cicek.full_name == "Məmmədova Çiçək Ağasəf qızı"
    assert cicek.sex is Sex.FEMALE
    omer = registry.find_person(DocumentType.ID_CARD, "2RT5Y8U")
    assert omer.full_name == "İsmayılov Ömər Şükür oğlu" and omer.birth_place == "Gəncə"
    assert registry.find_person(DocumentType.ID_CARD, "7MX2C9R").name == "Ülvi"
    assert registry.find_person(DocumentType.ID_CARD, "5GH3J7K").full_name == (
        "Nəsibova Şəhla Oqtay qızı"
    )


@pytest.mark.parametrize(
    ("fin", "document_type", "surname", "citizenship", "patronymic"),
    [
        ("A1B2C", DocumentType.TEMPORARY_RESIDENCE_PERMIT, "Yılmaz", "TUR", None),
        ("Z9Y8X7", DocumentType.PERMANENT_RESIDENCE_PERMIT, "Beridze", "GEO", None),
        ("K4M7P2Q", DocumentType.PERMANENT_RESIDENCE_PERMIT, "Petrov", "RUS", "Sergeyevich"),
    ],
)
def test_residence_permit_fins_of_five_six_and_seven_characters(
    registry: ZeepPopulationRegistry,
    fin: str,
    document_type: DocumentType,
    surname: str,
    citizenship: str,
    patronymic: str | None,
) -> None:
    person = registry.find_person(document_type, fin)
    assert (person.fin, person.surname, person.citizenship) == (fin, surname, citizenship)
    assert person.patronymic == patronymic
    assert person.document.document_type is document_type
    assert person.document.issuer.startswith("MİX")


def test_unknown_fin_is_person_not_found(registry: ZeepPopulationRegistry) -> None:
    with pytest.raises(PersonNotFoundUpstream) as caught:
        registry.find_person(DocumentType.ID_CARD, NOT_FOUND_FIN)
    assert caught.value.code == "Client.Person.NotFound"
    assert NOT_FOUND_FIN in caught.value.message


def test_expired_id_card_is_document_invalid_with_the_reason(
    registry: ZeepPopulationRegistry,
) -> None:
    with pytest.raises(DocumentInvalid) as caught:
        registry.find_person(DocumentType.ID_CARD, "1EX9PR3")
    assert caught.value.code == "Client.Person.DocumentInvalid"
    assert "EXPIRED" in caught.value.message
    assert "2022-05-15" in caught.value.message


@pytest.mark.parametrize(
    ("document_type", "fin"),
    [
        (DocumentType.TEMPORARY_RESIDENCE_PERMIT, "6ZK4T2P"),  # an ID-card holder
        (DocumentType.PERMANENT_RESIDENCE_PERMIT, "A1B2C"),  # holds a temporary permit
        (DocumentType.ID_CARD, "K4M7P2Q"),  # holds a permanent permit
    ],
)
def test_wrong_document_type_is_person_not_found(
    registry: ZeepPopulationRegistry, document_type: DocumentType, fin: str
) -> None:
    with pytest.raises(PersonNotFoundUpstream):
        registry.find_person(document_type, fin)


def test_a_malformed_fin_is_refused_by_the_registry_as_a_fault(
    registry: ZeepPopulationRegistry,
) -> None:
    # The registry validates against its schema; the gateway validates FINs before calling.
    with pytest.raises(UpstreamFault):
        registry.find_person(DocumentType.ID_CARD, "IOIOIOI")


def test_ping(registry: ZeepPopulationRegistry) -> None:
    registry.ping()
