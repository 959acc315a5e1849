"""Synthetic people of the population-registry simulator (all invented; any likeness is chance).

Ten citizens with ID cards (şəxsiyyət vəsiqəsi, FIN of 7 characters) and three foreigners with
residence permits (müvəqqəti / daimi yaşamaq icazəsi, FIN of 5, 6 and 7 characters). Two
citizens are the demo Asan İmza holders of the test PKI: 4PD6W1S (identity ``asan``) and
8LV4N2X (``asan_deputy``). One ID card has expired (1EX9PR3), and the FIN 0NF7ND0 belongs to
nobody.

ID cards carry the series "AA" and a 7-digit number and are issued by ASAN xidmət or the passport
office of the Ministry of Internal Affairs (DİN); residence permits are issued by offices of the
State Migration Service (Dövlət Miqrasiya Xidməti, DMX), named "MİX ..." in the issuer field.
Whether a document is valid is part of the seed data (``invalid_reason``), not computed from
today's date, so the simulator answers the same way in every year.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

__all__ = [
    "NOT_FOUND_FIN",
    "PEOPLE",
    "InvalidReason",
    "SeedAddress",
    "SeedDocument",
    "SeedDocumentType",
    "SeedPerson",
]


class SeedDocumentType(StrEnum):
    ID_CARD = "ID_CARD"
    TEMPORARY_RESIDENCE_PERMIT = "TEMPORARY_RESIDENCE_PERMIT"
    PERMANENT_RESIDENCE_PERMIT = "PERMANENT_RESIDENCE_PERMIT"


class InvalidReason(StrEnum):
    EXPIRED = "EXPIRED"
    INVALIDATED = "INVALIDATED"
    REPORTED_LOST = "REPORTED_LOST"


@dataclass(frozen=True, slots=True)
class SeedAddress:
    region: str
    city_or_district: str
    street: str
    house: str
    apartment: str | None = None
    postal_code: str | None = None


@dataclass(frozen=True, slots=True)
class SeedDocument:
    document_type: SeedDocumentType
    number: str
    issue_date: date
    issuer: str
    series: str | None = None
    expiry_date: date | None = None
    invalid_reason: InvalidReason | None = None


@dataclass(frozen=True, slots=True)
class SeedPerson:
    fin: str
    surname: str
    name: str
    patronymic: str | None
    birth_date: date
    birth_place: str | None
    sex: str  # "M" | "F"
    citizenship: str  # ISO 3166-1 alpha-3
    document: SeedDocument
    registration_address: SeedAddress


NOT_FOUND_FIN = "0NF7ND0"

_ID = SeedDocumentType.ID_CARD
_ASAN = "ASAN xidmət"
_DIN = "DİN Pasport qeydiyyat idarəsi"


def _id_card(
    number: str, issued: date, issuer: str, invalid_reason: InvalidReason | None = None
) -> SeedDocument:
    expiry = date(issued.year + 10, issued.month, issued.day)  # ID cards: 10 years
    return SeedDocument(
        document_type=_ID,
        series="AA",
        number=number,
        issue_date=issued,
        issuer=issuer,
        expiry_date=expiry,
        invalid_reason=invalid_reason,
    )


PEOPLE: tuple[SeedPerson, ...] = (
    SeedPerson(
        fin="6ZK4T2P",
        surname="Əliyev",
        name="Rəşad",
        patronymic="Vaqif oğlu",
        birth_date=date(1979, 3, 14),
        birth_place="Bakı",
        sex="M",
        citizenship="AZE",
        document=_id_card("1234567", date(2021, 4, 12), _ASAN),
        registration_address=SeedAddress(
            "Bakı şəhəri", "Nəsimi rayonu", "Azadlıq prospekti", "27", "14", "AZ1022"
        ),
    ),
    SeedPerson(
        fin="3HN8B5Q",
        surname="Hüseynova",
        name="Gülnarə",
        patronymic="Şahin qızı",
        birth_date=date(1985, 7, 2),
        birth_place="Bakı",
        sex="F",
        citizenship="AZE",
        document=_id_card("2345678", date(2022, 9, 5), _DIN),
        registration_address=SeedAddress(
            "Bakı şəhəri", "Yasamal rayonu", "Şərifzadə küçəsi", "112", "45", "AZ1065"
        ),
    ),
    SeedPerson(
        fin="7MX2C9R",
        surname="Quliyev",
        name="Ülvi",
        patronymic="İlqar oğlu",
        birth_date=date(1992, 11, 23),
        birth_place="Sumqayıt",
        sex="M",
        citizenship="AZE",
        document=_id_card("3456789", date(2023, 1, 17), _ASAN),
        registration_address=SeedAddress(
            "Sumqayıt şəhəri", "9-cu mikrorayon", "Sülh küçəsi", "5", "31", "AZ5003"
        ),
    ),
    SeedPerson(
        fin="2RT5Y8U",
        surname="İsmayılov",
        name="Ömər",
        patronymic="Şükür oğlu",
        birth_date=date(1968, 1, 30),
        birth_place="Gəncə",
        sex="M",
        citizenship="AZE",
        document=_id_card("4567890", date(2020, 6, 8), _DIN),
        registration_address=SeedAddress(
            "Gəncə şəhəri", "Kəpəz rayonu", "Atatürk prospekti", "64", None, "AZ2000"
        ),
    ),
    SeedPerson(
        fin="4PD6W1S",
        surname="Məmmədova",
        name="Çiçək",
        patronymic="Ağasəf qızı",
        birth_date=date(1981, 9, 9),
        birth_place="Bakı",
        sex="F",
        citizenship="AZE",
        document=_id_card("5678901", date(2024, 2, 20), _ASAN),
        registration_address=SeedAddress(
            "Bakı şəhəri", "Xətai rayonu", "Babək prospekti", "18", "7", "AZ1025"
        ),
    ),
    SeedPerson(
        fin="8LV4N2X",
        surname="Bağırov",
        name="Tural",
        patronymic="Ağa oğlu",
        birth_date=date(1988, 4, 17),
        birth_place="Şəki",
        sex="M",
        citizenship="AZE",
        document=_id_card("6789012", date(2022, 11, 3), _ASAN),
        registration_address=SeedAddress(
            "Bakı şəhəri", "Binəqədi rayonu", "M. Ə. Rəsulzadə küçəsi", "9", "52", "AZ1106"
        ),
    ),
    SeedPerson(
        fin="5GH3J7K",
        surname="Nəsibova",
        name="Şəhla",
        patronymic="Oqtay qızı",
        birth_date=date(1995, 12, 5),
        birth_place="Lənkəran",
        sex="F",
        citizenship="AZE",
        document=_id_card("7890123", date(2025, 3, 11), _DIN),
        registration_address=SeedAddress(
            "Lənkəran şəhəri", "Lənkəran", "H. Aslanov küçəsi", "33", None, "AZ4200"
        ),
    ),
    SeedPerson(
        fin="9QW3E5R",
        surname="Rzayev",
        name="Elçin",
        patronymic="Kamal oğlu",
        birth_date=date(1975, 6, 28),
        birth_place="Bakı",
        sex="M",
        citizenship="AZE",
        document=_id_card("8901234", date(2021, 10, 1), _ASAN),
        registration_address=SeedAddress(
            "Bakı şəhəri", "Səbail rayonu", "Neftçilər prospekti", "153", "20", "AZ1010"
        ),
    ),
    SeedPerson(
        fin="6TY2U8P",
        surname="Cəfərli",
        name="Gülşən",
        patronymic="Əli qızı",
        birth_date=date(2000, 2, 29),
        birth_place="Naxçıvan",
        sex="F",
        citizenship="AZE",
        document=_id_card("9012345", date(2023, 8, 14), _DIN),
        registration_address=SeedAddress(
            "Bakı şəhəri", "Nərimanov rayonu", "Təbriz küçəsi", "44", "3", "AZ1052"
        ),
    ),
    SeedPerson(
        fin="1EX9PR3",
        surname="Şükürov",
        name="Əkbər",
        patronymic="Ələkbər oğlu",
        birth_date=date(1960, 10, 10),
        birth_place="Quba",
        sex="M",
        citizenship="AZE",
        document=_id_card(
            "0123456", date(2012, 5, 15), _DIN, invalid_reason=InvalidReason.EXPIRED
        ),
        registration_address=SeedAddress(
            "Quba rayonu", "Quba şəhəri", "Heydər Əliyev prospekti", "71", None, "AZ4000"
        ),
    ),
    SeedPerson(
        fin="A1B2C",
        surname="Yılmaz",
        name="Ayşe",
        patronymic=None,
        birth_date=date(1990, 5, 12),
        birth_place="İstanbul",
        sex="F",
        citizenship="TUR",
        document=SeedDocument(
            document_type=SeedDocumentType.TEMPORARY_RESIDENCE_PERMIT,
            number="0045821",
            issue_date=date(2025, 2, 28),
            issuer="MİX Bakı şəhəri üzrə (Dövlət Miqrasiya Xidməti)",
            expiry_date=date(2028, 2, 27),
        ),
        registration_address=SeedAddress(
            "Bakı şəhəri", "Nəsimi rayonu", "Füzuli küçəsi", "49", "8", "AZ1014"
        ),
    ),
    SeedPerson(
        fin="Z9Y8X7",
        surname="Beridze",
        name="Giorgi",
        patronymic=None,
        birth_date=date(1983, 8, 19),
        birth_place="Tbilisi",
        sex="M",
        citizenship="GEO",
        document=SeedDocument(
            document_type=SeedDocumentType.PERMANENT_RESIDENCE_PERMIT,
            number="0012733",
            issue_date=date(2023, 6, 15),
            issuer="MİX Gəncə regional idarəsi (Dövlət Miqrasiya Xidməti)",
            expiry_date=date(2028, 6, 14),
        ),
        registration_address=SeedAddress(
            "Gəncə şəhəri", "Nizami rayonu", "Cavadxan küçəsi", "12", None, "AZ2001"
        ),
    ),
    SeedPerson(
        fin="K4M7P2Q",
        surname="Petrov",
        name="Nikolay",
        patronymic="Sergeyevich",
        birth_date=date(1977, 2, 3),
        birth_place="Moskva",
        sex="M",
        citizenship="RUS",
        document=SeedDocument(
            document_type=SeedDocumentType.PERMANENT_RESIDENCE_PERMIT,
            number="0009914",
            issue_date=date(2024, 9, 2),
            issuer="MİX Sumqayıt regional idarəsi (Dövlət Miqrasiya Xidməti)",
            expiry_date=date(2029, 9, 1),
        ),
        registration_address=SeedAddress(
            "Sumqayıt şəhəri", "3-cü mikrorayon", "Səməd Vurğun küçəsi", "17", "64", "AZ5001"
        ),
    ),
)
