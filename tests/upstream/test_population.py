"""The population-registry client against the real simulator on loopback."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

import pytest

from gateway.domain.errors import DocumentInvalid, PersonNotFoundUpstream, UpstreamFault
from gateway.domain.model import PersonRecord
from gateway.domain.values import DocumentType, Sex
from gateway.upstream.population import ZeepPopulationRegistry
from gateway.wsgi_server import RunningServer, WsgiApp
from simulators.people import NOT_FOUND_FIN, PEOPLE, SeedPerson
from simulators.population import PATH, PopulationDirectory, create_population_app
from simulators.synthetic import synthetic_person
from tests.upstream.conftest import POPULATION_WSDL, WSDL_DIR

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


# -- any valid FIN (benchmarks, load tests) ------------------------------------------------------


@pytest.fixture
def any_fin_registry(serve: Callable[[WsgiApp], RunningServer]) -> ZeepPopulationRegistry:
    server = serve(create_population_app(WSDL_DIR, PopulationDirectory(any_fin=True)))
    return ZeepPopulationRegistry(POPULATION_WSDL, server.url.rstrip("/") + PATH, timeout=5.0)


def test_any_fin_answers_an_unknown_fin_with_the_same_synthetic_citizen_every_time(
    any_fin_registry: ZeepPopulationRegistry, registry: ZeepPopulationRegistry
) -> None:
    with pytest.raises(PersonNotFoundUpstream):  # the default simulator does not know it
        registry.find_person(DocumentType.ID_CARD, "7BX4K2M")
    person = any_fin_registry.find_person(DocumentType.ID_CARD, "7BX4K2M")
    assert person == any_fin_registry.find_person(DocumentType.ID_CARD, "7BX4K2M")
    # ... and the same from the generator itself, i.e. from another process or run.
    generated = synthetic_person("7BX4K2M", "ID_CARD")
    assert generated is not None and person == _expected(generated)
    assert person.fin == "7BX4K2M" and person.citizenship == "AZE"
    assert person.document.document_type is DocumentType.ID_CARD
    assert person.document.series == "AA" and re.fullmatch(r"\d{7}", person.document.number)
    assert person.document.expiry_date is not None and person.document.expiry_date.year > 2030
    assert person.patronymic is not None
    ending = "qızı" if person.sex is Sex.FEMALE else "oğlu"
    assert person.patronymic.endswith(f" {ending}")
    assert person.registration_address is not None
    assert person.registration_address.postal_code is not None
    assert re.fullmatch(r"AZ\d{4}", person.registration_address.postal_code)


def test_any_fin_gives_thousands_of_distinct_people_with_azerbaijani_names() -> None:
    fins = [f"B{n:06d}" for n in range(2000)]
    people = [synthetic_person(fin, "ID_CARD") for fin in fins]
    assert all(p is not None for p in people)
    names = {(p.surname, p.name, p.patronymic, p.birth_date) for p in people if p}
    assert len(names) > 1900  # distinct people, not a handful repeated
    letters = "".join(f"{p.surname}{p.name}" for p in people if p)
    assert set("əğıöüçşƏİÇŞÖÜ") & set(letters) >= set("əğıüçş")
    women = [p for p in people if p and p.sex == "F"]
    assert 800 < len(women) < 1200
    assert all(p.surname.endswith(("a", "li", "lı", "zadə")) for p in women)


@pytest.mark.parametrize("fin", ["M3N5P", "M3N5P7"])
def test_any_fin_knows_no_id_card_with_a_fin_shorter_than_seven(
    any_fin_registry: ZeepPopulationRegistry, fin: str
) -> None:
    with pytest.raises(PersonNotFoundUpstream):
        any_fin_registry.find_person(DocumentType.ID_CARD, fin)


def test_any_fin_answers_residence_permits_with_foreigners(
    any_fin_registry: ZeepPopulationRegistry,
) -> None:
    person = any_fin_registry.find_person(DocumentType.PERMANENT_RESIDENCE_PERMIT, "M3N5P")
    assert person.fin == "M3N5P" and person.citizenship != "AZE" and person.patronymic is None
    assert person.document.document_type is DocumentType.PERMANENT_RESIDENCE_PERMIT
    assert person.document.issuer.startswith("MİX")


def test_any_fin_keeps_the_demo_people_as_they_are(
    any_fin_registry: ZeepPopulationRegistry,
) -> None:
    for seed in VALID_PEOPLE:
        kind = DocumentType(seed.document.document_type.value)
        assert any_fin_registry.find_person(kind, seed.fin) == _expected(seed)
    with pytest.raises(DocumentInvalid):
        any_fin_registry.find_person(DocumentType.ID_CARD, "1EX9PR3")
    with pytest.raises(PersonNotFoundUpstream):  # the demo's "nobody" stays nobody
        any_fin_registry.find_person(DocumentType.ID_CARD, NOT_FOUND_FIN)
    with pytest.raises(PersonNotFoundUpstream):  # a demo person's FIN with another document
        any_fin_registry.find_person(DocumentType.TEMPORARY_RESIDENCE_PERMIT, "6ZK4T2P")


def test_a_person_answer_is_read_as_findtext_reads_it(
    serve: Callable[[WsgiApp], RunningServer],
) -> None:
    # The answer is read in one pass per level: the first element of a name counts, an empty
    # one reads as "", comments are skipped; a missing required
    # field is an answer outside the contract.
    ns = "urn:az:iamas:population-registry:v1"

    def person(extra: str = "", document: str = "<p:number>1234567</p:number>") -> bytes:
        return (
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
            f'<p:GetPersonByDocumentResponse xmlns:p="{ns}"><p:person><!-- c -->'
            "<p:fin>5GH3J7K</p:fin><p:surname>Nəsibova</p:surname><p:surname>Other</p:surname>"
            f"<p:name>Şəhla</p:name><p:patronymic/>{extra}<p:birthDate>1990-01-02</p:birthDate>"
            "<p:sex>F</p:sex><p:citizenship>AZE</p:citizenship><p:document>"
            f"<p:documentType>ID_CARD</p:documentType>{document}"
            "<p:issueDate>2020-01-01</p:issueDate><p:issuer>ASAN</p:issuer></p:document>"
            "<p:registrationAddress><p:region>Bakı</p:region><p:cityOrDistrict>Nəsimi"
            "</p:cityOrDistrict><p:street>Azadlıq</p:street><p:house>1</p:house>"
            "</p:registrationAddress></p:person></p:GetPersonByDocumentResponse></s:Body>"
            "</s:Envelope>"
        ).encode()

    answers = [person(), person(document="")]

    def app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        body = answers.pop(0)
        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    server = serve(app)
    registry = ZeepPopulationRegistry(POPULATION_WSDL, server.url.rstrip("/") + PATH, retries=0)
    found = registry.find_person(DocumentType.ID_CARD, "5GH3J7K")
    assert (found.surname, found.name, found.patronymic, found.birth_place) == (
        "Nəsibova", "Şəhla", "", None)
    assert found.document.number == "1234567" and found.document.series is None
    assert found.registration_address is not None
    assert found.registration_address.street == "Azadlıq"
    with pytest.raises(UpstreamFault):
        registry.find_person(DocumentType.ID_CARD, "5GH3J7K")  # no document number
