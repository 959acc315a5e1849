"""Synthetic people for any valid FIN: the population registry's "any FIN" mode.

Benchmarks and load tests need thousands of distinct people; the thirteen demo people of
:mod:`simulators.people` are not enough. In this mode the simulator answers a FIN it does not
know with a person derived from the FIN alone (SHA-256 of document type and FIN picks every
field), so the same FIN always gives the same person, in every process and every run.

Citizens (ID card, FIN of 7 characters) get Azerbaijani names with the patronymic in the
"… oğlu" / "… qızı" form and the surname in the form of their sex (Əliyev / Əliyeva); holders of
residence permits (FIN of 5 to 7 characters) are foreigners without a patronymic. Addresses are
in real towns and districts with invented street numbers. The documents are issued in 2021-2025
and run ten years, so they are valid until well after 2030.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta

from simulators.people import SeedAddress, SeedDocument, SeedDocumentType, SeedPerson

__all__ = ["is_valid_fin", "synthetic_person"]

# Latin capitals and digits without I and O (gateway.domain.values.Fin, the registry's Fin type).
_ID_CARD_FIN = re.compile(r"[A-HJ-NP-Z0-9]{7}")
_PERMIT_FIN = re.compile(r"[A-HJ-NP-Z0-9]{5,7}")

# Surname stems: the male form; the female form adds "a" (Əliyev → Əliyeva).
_SURNAMES = (
    "Əliyev", "Məmmədov", "Həsənov", "Hüseynov", "Quliyev", "İsmayılov", "Abdullayev",
    "Rzayev", "Bağırov", "Cəfərov", "Süleymanov", "Kərimov", "Rəhimov", "Nəsibov", "Şükürov",
    "Babayev", "Qasımov", "Musayev", "Sadıqov", "Orucov", "Zeynalov", "Vəliyev", "İbrahimov",
    "Əhmədov", "Mustafayev", "Nağıyev", "Paşayev", "Yusifov", "Tağıyev", "Çələbiyev",
)
# Surnames without a gendered ending.
_PLAIN_SURNAMES = ("Cəfərli", "Həsənli", "Əlizadə", "Hacızadə", "Quluzadə", "Rüstəmli")
_MALE_NAMES = (
    "Rəşad", "Ülvi", "Ömər", "Tural", "Elçin", "Əkbər", "Vüqar", "Orxan", "Kamran", "Fərid",
    "İlqar", "Şahin", "Ağasəf", "Oqtay", "Vaqif", "Elnur", "Cavid", "Səbuhi", "Nicat", "Ramil",
)
_FEMALE_NAMES = (
    "Gülnarə", "Çiçək", "Şəhla", "Gülşən", "Aynur", "Nigar", "Ləman", "Səbinə", "Günel",
    "Aysel", "Xədicə", "Ülkər", "Nərgiz", "Lalə", "Türkan", "Sevinc", "Rəna", "Könül",
)
_PLACES = (
    # (region, city or district, streets, postal code prefix)
    ("Bakı şəhəri", "Nəsimi rayonu", ("Azadlıq prospekti", "Füzuli küçəsi"), "AZ10"),
    ("Bakı şəhəri", "Yasamal rayonu", ("Şərifzadə küçəsi", "Ş. Mehdiyev küçəsi"), "AZ10"),
    ("Bakı şəhəri", "Xətai rayonu", ("Babək prospekti", "Xocalı prospekti"), "AZ10"),
    ("Bakı şəhəri", "Nərimanov rayonu", ("Təbriz küçəsi", "Ağa Nemətulla küçəsi"), "AZ10"),
    ("Bakı şəhəri", "Səbail rayonu", ("Neftçilər prospekti", "İstiqlaliyyət küçəsi"), "AZ10"),
    ("Sumqayıt şəhəri", "9-cu mikrorayon", ("Sülh küçəsi", "Səməd Vurğun küçəsi"), "AZ50"),
    ("Gəncə şəhəri", "Kəpəz rayonu", ("Atatürk prospekti", "Cavadxan küçəsi"), "AZ20"),
    ("Lənkəran şəhəri", "Lənkəran", ("H. Aslanov küçəsi", "Mirzə Fətəli küçəsi"), "AZ42"),
    ("Şəki şəhəri", "Şəki", ("M. F. Axundzadə prospekti", "Rəsulzadə küçəsi"), "AZ55"),
    ("Quba rayonu", "Quba şəhəri", ("Heydər Əliyev prospekti", "Ərdəbil küçəsi"), "AZ40"),
)
_BIRTH_PLACES = ("Bakı", "Sumqayıt", "Gəncə", "Lənkəran", "Şəki", "Quba", "Naxçıvan", "Şamaxı")
_ID_ISSUERS = ("ASAN xidmət", "DİN Pasport qeydiyyat idarəsi")
_PERMIT_ISSUER = "MİX Bakı şəhəri üzrə (Dövlət Miqrasiya Xidməti)"
# (citizenship, male names, female names, surnames) of residence-permit holders.
_FOREIGNERS = (
    ("TUR", ("Mehmet", "Emre", "Burak"), ("Ayşe", "Elif", "Zeynep"), ("Yılmaz", "Kaya", "Demir")),
    ("GEO", ("Giorgi", "Levan", "Davit"), ("Nino", "Tamar", "Mariam"), ("Beridze", "Kapanadze")),
    ("RUS", ("Nikolay", "Sergey", "Ivan"), ("Olga", "Anna", "Elena"), ("Petrov", "Smirnov")),
    ("UKR", ("Andriy", "Oleh", "Taras"), ("Oksana", "Iryna", "Olena"), ("Shevchenko", "Bondar")),
)
_EPOCH = date(1960, 1, 1)


def is_valid_fin(fin: str, document_type: str) -> bool:
    """The FIN's alphabet and length for this document type (7 for an ID card, else 5-7)."""
    pattern = _ID_CARD_FIN if document_type == SeedDocumentType.ID_CARD.value else _PERMIT_FIN
    return pattern.fullmatch(fin) is not None


def _ten_years_after(day: date) -> date:
    # 29 February has no twin ten years on; the document then runs to the 28th.
    return day.replace(year=day.year + 10, day=min(day.day, 28) if day.month == 2 else day.day)


class _Picks:
    """Deterministic choices drawn from a SHA-256 stream seeded by the document and FIN."""

    def __init__(self, seed: str) -> None:
        self._seed = seed.encode()
        self._block = 0
        self._pool = b""

    def number(self, below: int) -> int:
        while len(self._pool) < 4:
            self._pool += hashlib.sha256(self._seed + self._block.to_bytes(4, "big")).digest()
            self._block += 1
        value, self._pool = int.from_bytes(self._pool[:4], "big"), self._pool[4:]
        return value % below

    def one(self, options: tuple[str, ...]) -> str:
        return options[self.number(len(options))]


def synthetic_person(fin: str, document_type: str) -> SeedPerson | None:
    """The synthetic holder of ``fin`` with a document of ``document_type`` (a
    :class:`SeedDocumentType` value), or ``None`` when the FIN is not valid for that document."""
    try:
        kind = SeedDocumentType(document_type)
    except ValueError:
        return None
    if not is_valid_fin(fin, kind.value):
        return None
    pick = _Picks(f"{kind.value}:{fin}")
    female = pick.number(2) == 1
    birth_date = _EPOCH + timedelta(days=pick.number(40 * 365))  # born 1960-1999
    region, district, streets, postal = _PLACES[pick.number(len(_PLACES))]
    address = SeedAddress(
        region=region,
        city_or_district=district,
        street=pick.one(streets),
        house=str(1 + pick.number(150)),
        apartment=str(1 + pick.number(80)) if pick.number(3) else None,
        postal_code=f"{postal}{pick.number(100):02d}",
    )
    issued = date(2021, 1, 1) + timedelta(days=pick.number(5 * 365))  # 2021-2025
    if kind is SeedDocumentType.ID_CARD:
        if pick.number(5) == 0:
            surname = pick.one(_PLAIN_SURNAMES)
        else:
            surname = pick.one(_SURNAMES) + ("a" if female else "")
        father = pick.one(_MALE_NAMES)
        return SeedPerson(
            fin=fin,
            surname=surname,
            name=pick.one(_FEMALE_NAMES if female else _MALE_NAMES),
            patronymic=f"{father} {'qızı' if female else 'oğlu'}",
            birth_date=birth_date,
            birth_place=pick.one(_BIRTH_PLACES),
            sex="F" if female else "M",
            citizenship="AZE",
            document=SeedDocument(
                document_type=kind,
                series="AA",
                number=f"{pick.number(10_000_000):07d}",
                issue_date=issued,
                issuer=pick.one(_ID_ISSUERS),
                expiry_date=_ten_years_after(issued),  # ID cards: 10 years
            ),
            registration_address=address,
        )
    citizenship, men, women, surnames = _FOREIGNERS[pick.number(len(_FOREIGNERS))]
    return SeedPerson(
        fin=fin,
        surname=pick.one(surnames),
        name=pick.one(women if female else men),
        patronymic=None,
        birth_date=birth_date,
        birth_place=None,
        sex="F" if female else "M",
        citizenship=citizenship,
        document=SeedDocument(
            document_type=kind,
            number=f"{pick.number(10_000_000):07d}",
            issue_date=issued,
            issuer=_PERMIT_ISSUER,
            # Permits here run 10 years from issue, so none lapses while the demo is in use.
            expiry_date=_ten_years_after(issued),
        ),
        registration_address=address,
    )
