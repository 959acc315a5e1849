"""Registry search (§3.3): the ten filters alone and together, Azerbaijani folding, paging,
sorting and insurer isolation, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from gateway.domain.errors import ValidationFailed
from gateway.domain.model import (
    Application,
    ApplicationStatus,
    ApplicationType,
    CertificateStatus,
)
from gateway.domain.ssn import SsnFormat
from gateway.services.ports import ApplicationQuery, SortField
from persistence.db import Database, StorageOptions

from .conftest import VOEN_A, VOEN_B, application

R = ApplicationStatus.REGISTERED
FMT = SsnFormat()
SSN1, SSN2, SSN3 = FMT.format(101), FMT.format(102), FMT.format(103)


def at(day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Registry:
    db: Database
    apps: dict[str, Application]

    def search(self, voen: str = VOEN_A, **filters: object) -> list[str]:
        """Keys of the matching applications, in the returned order (all on one page)."""
        page = self.page(voen, page_size=200, **filters)
        assert page[0] == len(page[1])
        return page[1]

    def page(self, voen: str = VOEN_A, **filters: object) -> tuple[int, list[str]]:
        by_id = {a.application_id: key for key, a in self.apps.items()}
        with self.db.unit_of_work() as uow:
            found = uow.applications.search(ApplicationQuery(voen, **filters))  # type: ignore[arg-type]
        for item in found.items:
            assert item == self.apps[by_id[item.application_id]]  # full objects, with history
        return found.total, [by_id[a.application_id] for a in found.items]


@pytest.fixture
def registry(seeded: Database) -> Iterator[Registry]:
    apps = {
        "a1": application("5GH3J7K", surname="İsmayılov", name="Ömər", patronymic="Şükür oğlu",
                          status=R, ssn=SSN1, ssn_date=date(2026, 3, 2),
                          certificate_status=CertificateStatus.ISSUED, created_at=at(1)),
        "a2": application("6ZK4T2P", surname="Əliyev", name="Rəşad", patronymic="Vaqif oğlu",
                          created_at=at(2, 8)),
        "a3": application("3HN8B5Q", surname="Işıqlı", name="Gülnarə", patronymic="Şahin qızı",
                          status=ApplicationStatus.SUBMITTED, created_at=at(3)),
        "a4": application("7MX2C9R", surname="Çələbi", name="Ülvi", patronymic="İlqar oğlu",
                          application_type=ApplicationType.CORRECTION, status=R, ssn=SSN2,
                          ssn_date=date(2026, 2, 10), certificate_status=CertificateStatus.ISSUED,
                          created_at=at(4)),
        "a5": application("2RT5Y8U", surname="Ağayev", name="Çiçək", patronymic="Ağasəf qızı",
                          status=ApplicationStatus.REJECTED, created_at=at(5)),
        "a6": application("4PD6W1S", surname="İsmayılova", name="Səbinə", patronymic="Rauf qızı",
                          status=R, ssn=SSN3, ssn_date=date(2026, 3, 6),
                          certificate_status=CertificateStatus.ANNULLED, created_at=at(6)),
        # 23:30 in Baku on 7 March ...
        "a7": application("8LP2M4N", surname="Ümidov", name="Şahin", patronymic="Ağa oğlu",
                          status=ApplicationStatus.SUBMITTED, created_at=at(7, 19, 30)),
        # ... and 01:00 in Baku on 8 March, though still 7 March in UTC.
        "a8": application("2BC3D4F", surname="Özdəmir", name="Nərgiz", patronymic="Oqtay qızı",
                          created_at=at(7, 21)),
        # Another insurer, same people: never visible to VOEN_A.
        "b1": application("5GH3J7K", voen=VOEN_B, surname="İsmayılov", name="Ömər",
                          patronymic="Şükür oğlu", status=R, ssn=SSN1,
                          ssn_date=date(2026, 3, 2), certificate_status=CertificateStatus.ISSUED,
                          created_at=at(1)),
        "b2": application("6ZK4T2P", voen=VOEN_B, surname="Əliyev", name="Rəşad",
                          created_at=at(2, 8)),
    }
    with seeded.unit_of_work() as uow:
        for app in apps.values():
            uow.applications.add(app)
        uow.commit()
    yield Registry(seeded, apps)


ALL_A = {"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"}


# One registry per test is costly on PostgreSQL (a database + migration), so the cases are
# tables checked in a loop; a failure names its case.
FILTER_CASES: list[tuple[dict[str, object], set[str]]] = [
        ({}, ALL_A),
        ({"application_type": ApplicationType.CORRECTION}, {"a4"}),
        ({"application_type": ApplicationType.INITIAL_REGISTRATION}, ALL_A - {"a4"}),
        ({"fin": "5gh3j7k"}, {"a1"}),
        ({"fin": "5GH3J7"}, set()),  # FIN is exact, not a prefix
        ({"surname": "İsm"}, {"a1", "a6"}),  # prefix
        ({"name": "Rəşad"}, {"a2"}),
        ({"patronymic": "Rauf"}, {"a6"}),
        ({"ssn": SSN2}, {"a4"}),
        ({"ssn_date_from": date(2026, 3, 1), "ssn_date_to": date(2026, 3, 6)}, {"a1", "a6"}),
        ({"ssn_date_from": date(2026, 3, 2), "ssn_date_to": date(2026, 3, 2)}, {"a1"}),
        ({"ssn_date_from": date(2026, 3, 6)}, {"a6"}),
        ({"ssn_date_to": date(2026, 2, 10)}, {"a4"}),
        ({"application_date_from": date(2026, 3, 7),
          "application_date_to": date(2026, 3, 7)}, {"a7"}),
        ({"application_date_from": date(2026, 3, 8)}, {"a8"}),
        ({"application_date_to": date(2026, 3, 2)}, {"a1", "a2"}),
        ({"certificate_status": CertificateStatus.ANNULLED}, {"a6"}),
        ({"certificate_status": CertificateStatus.ISSUED}, {"a1", "a4"}),
        ({"status": ApplicationStatus.SUBMITTED}, {"a3", "a7"}),
        ({"status": ApplicationStatus.DRAFT}, {"a2", "a8"}),
]


def test_each_filter_alone(registry: Registry) -> None:
    for filters, expected in FILTER_CASES:
        assert set(registry.search(**filters)) == expected, filters
    covered = {n.removesuffix("_from").removesuffix("_to") for f, _ in FILTER_CASES for n in f}
    assert len(covered) == 10, covered


ALL_TEN_FOR_A1: dict[str, object] = {
    "application_type": ApplicationType.INITIAL_REGISTRATION,
    "fin": "5GH3J7K",
    "surname": "İSMAYILOV",
    "name": "ömər",
    "patronymic": "ŞÜKÜR",
    "ssn": SSN1,
    "ssn_date_from": date(2026, 3, 2),
    "ssn_date_to": date(2026, 3, 2),
    "application_date_from": date(2026, 3, 1),
    "application_date_to": date(2026, 3, 1),
    "certificate_status": CertificateStatus.ISSUED,
    "status": R,
}


def test_all_ten_filters_combined(registry: Registry) -> None:
    assert registry.search(**ALL_TEN_FOR_A1) == ["a1"]
    assert registry.search(VOEN_B, **ALL_TEN_FOR_A1) == ["b1"]


SPOILERS: list[tuple[str, object]] = [
        ("application_type", ApplicationType.CORRECTION),
        ("fin", "6ZK4T2P"),
        ("surname", "Əli"),
        ("name", "Səbinə"),
        ("patronymic", "Rauf"),
        ("ssn", SSN3),
        ("ssn_date_from", date(2026, 3, 3)),
        ("application_date_to", date(2026, 2, 28)),
        ("certificate_status", CertificateStatus.ANNULLED),
        ("status", ApplicationStatus.SUBMITTED),
]


def test_each_filter_narrows_the_combination(registry: Registry) -> None:
    for spoiler, value in SPOILERS:
        assert registry.search(**{**ALL_TEN_FOR_A1, spoiler: value}) == [], spoiler


def test_pairs_of_filters(registry: Registry) -> None:
    assert set(registry.search(status=R, surname="ismayıl")) == {"a1", "a6"}
    assert registry.search(status=R, surname="ismayıl",
                           certificate_status=CertificateStatus.ISSUED) == ["a1"]
    assert set(registry.search(patronymic="ağa")) == {"a5", "a7"}
    assert registry.search(patronymic="ağa", status=ApplicationStatus.SUBMITTED) == ["a7"]
    assert registry.search(application_type=ApplicationType.CORRECTION, ssn=SSN1) == []


FOLDING_CASES: list[tuple[str, str, set[str]]] = [
        ("surname", "İSMAYILOV", {"a1", "a6"}),  # İ/i
        ("surname", "ismayılov", {"a1", "a6"}),
        ("surname", "İsmayılova", {"a6"}),
        ("surname", "ISMAYILOV", set()),  # dotless I is another letter
        ("surname", "IŞIQ", {"a3"}),  # I/ı
        ("surname", "ışıqlı", {"a3"}),
        ("surname", "işiq", set()),
        ("surname", "ƏLİYEV", {"a2"}),  # Ə/ə
        ("surname", "əliyev", {"a2"}),
        ("surname", "eliyev", set()),
        ("surname", "ÖZDƏMİR", {"a8"}),  # Ö/ö
        ("surname", "ozdəmir", set()),
        ("surname", "ÜMİDOV", {"a7"}),  # Ü/ü
        ("name", "ÜLVİ", {"a4"}),
        ("surname", "ÇƏLƏBİ", {"a4"}),  # Ç/ç
        ("name", "çiçək", {"a5"}),
        ("patronymic", "ŞÜKÜR", {"a1"}),  # Ş/ş
        ("name", "şahin", {"a7"}),
        ("patronymic", "AĞASƏF", {"a5"}),  # Ğ/ğ
        ("surname", "AĞAYEV", {"a5"}),
        ("surname", "  ağa  ", {"a5"}),  # trimmed
        ("surname", "%", set()),  # LIKE wildcards are literal
        ("surname", "_sm", set()),
]


def test_azerbaijani_folding(registry: Registry) -> None:
    for field, typed, expected in FOLDING_CASES:
        assert set(registry.search(**{field: typed})) == expected, (field, typed)


def test_insurer_isolation(registry: Registry) -> None:
    assert set(registry.search(VOEN_A)) == ALL_A
    assert set(registry.search(VOEN_B)) == {"b1", "b2"}
    assert registry.search(VOEN_B, fin="5GH3J7K") == ["b1"]
    assert registry.search("2004512342") == []


BY_DATE = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"]


def test_paging_default_sort_newest_first(registry: Registry) -> None:
    pages = [registry.page(page=n, page_size=3) for n in (1, 2, 3, 4)]
    assert [p[0] for p in pages] == [8, 8, 8, 8]
    assert [p[1] for p in pages] == [["a8", "a7", "a6"], ["a5", "a4", "a3"], ["a2", "a1"], []]


SORT_CASES: list[tuple[SortField, list[str]]] = [
        (SortField.APPLICATION_DATE, BY_DATE),
        # Azerbaijani alphabet: A < Ç < Ə < I < İ < Ö < Ü
        (SortField.SURNAME, ["a5", "a4", "a2", "a3", "a1", "a6", "a8", "a7"]),
        (SortField.FIN, ["a8", "a5", "a3", "a6", "a1", "a2", "a4", "a7"]),
]


def test_sorting(registry: Registry) -> None:
    for sort, ascending in SORT_CASES:
        assert registry.search(sort_field=sort, descending=False) == ascending, sort
        assert registry.search(sort_field=sort, descending=True) == ascending[::-1], sort


def test_sorting_with_ties_and_nulls_is_total(registry: Registry) -> None:
    # SSN date: NULLs last in both directions; equal keys ordered by application id.
    asc = registry.search(sort_field=SortField.SSN_DATE, descending=False)
    desc = registry.search(sort_field=SortField.SSN_DATE, descending=True)
    assert asc[:3] == ["a4", "a1", "a6"] and desc[:3] == ["a6", "a1", "a4"]
    assert set(asc[3:]) == set(desc[3:]) == {"a2", "a3", "a5", "a7", "a8"}
    ids = {k: registry.apps[k].application_id for k in asc[3:]}
    assert asc[3:] == sorted(ids, key=ids.__getitem__)
    # Status: lifecycle order DRAFT < SUBMITTED < REGISTERED < REJECTED, ties by id.
    by_status = registry.search(sort_field=SortField.STATUS, descending=False)
    statuses = [registry.apps[k].status for k in by_status]
    assert statuses == [ApplicationStatus.DRAFT] * 2 + [ApplicationStatus.SUBMITTED] * 2 + [
        R] * 3 + [ApplicationStatus.REJECTED]
    # Pages of a tied sort never overlap and cover everything.
    pages = [registry.page(sort_field=SortField.STATUS, descending=False, page=n,
                           page_size=3)[1] for n in (1, 2, 3)]
    assert [key for page in pages for key in page] == by_status


def test_paging_limits(registry: Registry) -> None:
    for paging in ({"page": 0}, {"page_size": 0}, {"page_size": 201}, {"page": -1}):
        with pytest.raises(ValidationFailed) as caught:
            registry.page(**paging)
        assert caught.value.code == "Client.Validation.Paging", paging
    assert registry.page(page_size=200)[0] == 8


def test_total_is_exact_up_to_the_count_limit_then_says_more(registry: Registry) -> None:
    # 8 matches; counted exactly up to max(limit, page × size), beyond that limit + 1.
    capped = Registry(Database(registry.db.engine, options=StorageOptions(search_count_limit=3)),
                      registry.apps)
    cases = [  # (page, page_size) -> total
        ((1, 2), 4),  # more than 3
        ((2, 2), 5),  # more than 4: the count reaches the end of the page asked for
        ((3, 3), 8),  # the last page: exact
        ((4, 2), 8),  # a full last page: counted up to 8, exact
        ((5, 2), 8),  # beyond the end: exact
        ((1, 8), 8),
    ]
    for (page, size), total in cases:
        found, keys = capped.page(page=page, page_size=size)
        assert found == total, (page, size)
        assert keys == BY_DATE[::-1][(page - 1) * size:page * size], (page, size)
        # "Is there a next page?" has the same answer as with an exact count.
        assert (found > page * size) == (8 > page * size), (page, size)
    # With the default limit every total is exact.
    assert [registry.page(page=n, page_size=3)[0] for n in (1, 2, 3, 4)] == [8, 8, 8, 8]
    assert capped.page(status=ApplicationStatus.SUBMITTED, page_size=1) == (2, ["a7"])
    assert capped.page(fin="5GH3J7K") == (1, ["a1"])
