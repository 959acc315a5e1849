"""Identity extraction: FIN, VÖEN, seal authority and card number for each test person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from signing.errors import CertificateError, ConfigurationError
from signing.identity import (
    SEAL_AUTHORITY_POLICY_OID,
    CardNumberSource,
    IdentityMapping,
    IdentityMemo,
    card_number_of,
    extract_identity,
)
from signing.testpki import TestPki

PEOPLE = [
    # name, FIN, VÖEN, seal, surname, given name, organisation
    ("director", "6ZK4T2P", "1403567891", True, "Əliyev", "Rəşad", "Xəzər Tikinti MMC"),
    ("deputy", "3HN8B5Q", "1403567891", False, "Hüseynova", "Gülnarə", "Xəzər Tikinti MMC"),
    ("employee", "7MX2C9R", "1403567891", False, "Quliyev", "Ülvi", "Xəzər Tikinti MMC"),
    ("director_b", "2RT5Y8U", "1700345671", True, "İsmayılov", "Ömər", "Gəncə Tekstil ASC"),
    ("asan", "4PD6W1S", "1700345671", True, "Məmmədova", "Çiçək", "Gəncə Tekstil ASC"),
    ("asan_deputy", "8LV4N2X", "1403567891", False, "Bağırov", "Tural", "Xəzər Tikinti MMC"),
]


@pytest.mark.parametrize(
    ("name", "fin", "voen", "seal", "surname", "given", "org"), PEOPLE, ids=[p[0] for p in PEOPLE]
)
def test_people(
    pki: TestPki, name: str, fin: str, voen: str, seal: bool, surname: str, given: str, org: str
) -> None:
    issued = pki.identities[name]
    identity = extract_identity(issued.certificate)
    assert identity.fin == fin == issued.fin
    assert identity.voen == voen == issued.voen
    assert identity.seal_authority is seal is issued.seal
    assert identity.card_number == issued.card_number == card_number_of(issued.certificate)
    assert identity.card_number == format(issued.certificate.serial_number, "X")
    assert identity.surname == surname and identity.given_name == given
    assert identity.common_name == f"{surname} {given}"
    assert identity.organization == org
    assert identity.is_system is False
    assert identity.fingerprint_sha256 == issued.certificate.fingerprint(hashes.SHA256()).hex()


def test_system_certificate(pki: TestPki) -> None:
    identity = extract_identity(pki.identities["system"].certificate)
    assert identity.fin is None and identity.is_system
    assert identity.voen == "1500000001"
    assert identity.organization == "e-Gov Portal"
    assert identity.seal_authority is False


def test_gateway_certificate(pki: TestPki) -> None:
    identity = extract_identity(pki.identities["gateway"].certificate)
    assert identity.is_system and identity.fin is None and identity.voen is None
    assert identity.common_name == "DSMF Insured Registration Gateway"


def test_seal_policy_is_configurable(pki: TestPki) -> None:
    other = IdentityMapping(seal_policy_oid="1.2.3.4")
    assert extract_identity(pki.identities["director"].certificate, other).seal_authority is False
    assert SEAL_AUTHORITY_POLICY_OID in extract_identity(
        pki.identities["director"].certificate
    ).policy_oids


def test_card_number_sources(pki: TestPki) -> None:
    cert = pki.identities["deputy"].certificate
    by_subject = IdentityMapping(card_number_source=CardNumberSource.SUBJECT_SERIAL)
    assert extract_identity(cert, by_subject).card_number == "PNOAZ-3HN8B5Q"
    by_fp = IdentityMapping.from_config({"card_number_source": "fingerprint"})
    assert extract_identity(cert, by_fp).card_number == cert.fingerprint(hashes.SHA256()).hex(
    ).upper()


def test_other_prefixes(pki: TestPki) -> None:
    mapping = IdentityMapping(serial_number_prefix="IDCAZ-")
    identity = extract_identity(pki.identities["director"].certificate, mapping)
    assert identity.fin is None and identity.is_system  # the PNOAZ- value is not read as FIN


def _cert_with(attrs: list[x509.NameAttribute]) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(attrs)
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(0x0ABC)
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def test_malformed_fin_is_refused() -> None:
    cert = _cert_with([x509.NameAttribute(NameOID.SERIAL_NUMBER, "PNOAZ-12")])
    with pytest.raises(CertificateError):
        extract_identity(cert)


def test_duplicate_identity_attribute_is_refused() -> None:
    cert = _cert_with([
        x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, "TINAZ-1403567891"),
        x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, "TINAZ-1700345671"),
    ])
    with pytest.raises(CertificateError):
        extract_identity(cert)


def test_seal_needs_an_organisation() -> None:
    cert = _cert_with([x509.NameAttribute(NameOID.SERIAL_NUMBER, "PNOAZ-6ZK4T2P")])
    identity = extract_identity(cert)
    assert identity.fin == "6ZK4T2P" and identity.voen is None and not identity.seal_authority
    assert identity.card_number == "ABC"


def test_mapping_from_config() -> None:
    mapping = IdentityMapping.from_config(
        {"serial_number_prefix": "PNOAZ-", "seal_policy_oid": "1.3.6.1.4.1.63311.1.1"}
    )
    assert mapping == IdentityMapping()
    with pytest.raises(ConfigurationError, match="unknown"):
        IdentityMapping.from_config({"seal_oid": "1.2.3"})
    with pytest.raises(ConfigurationError):
        IdentityMapping.from_config({"seal_policy_oid": "not an oid"})
    with pytest.raises(ConfigurationError):
        IdentityMapping.from_config({"card_number_source": "phase of the moon"})


# -- the memo of the request path ---------------------------------------------------------------


def test_the_memo_answers_what_extract_identity_answers_for_every_certificate(
    pki: TestPki,
) -> None:
    memo = IdentityMemo(IdentityMapping(), max_entries=2)
    names = [*pki.identities, *pki.identities]  # twice: misses, evictions and hits
    for name in names:
        certificate = pki.identities[name].certificate
        # a fresh object with the same bytes, as a later request's token decodes to
        fresh = x509.load_der_x509_certificate(certificate.public_bytes(Encoding.DER))
        assert memo(certificate) == extract_identity(certificate)
        assert memo(fresh) == extract_identity(fresh)
    assert len(memo._entries) == 2


def test_the_memo_never_mistakes_one_certificate_for_another(pki: TestPki) -> None:
    memo = IdentityMemo()
    director = memo(pki.identities["director"].certificate)
    deputy = memo(pki.identities["deputy"].certificate)
    assert director.fin == "6ZK4T2P" and deputy.fin == "3HN8B5Q"
    # the same subject under another key and serial is another certificate
    reissued = _cert_with(list(pki.identities["director"].certificate.subject))
    assert memo(reissued).card_number == "ABC"
    assert memo(pki.identities["director"].certificate) == director


def test_the_memo_keeps_its_mapping_and_refusals_are_not_remembered(pki: TestPki) -> None:
    other_seal = IdentityMemo(IdentityMapping(seal_policy_oid="1.2.3.4"))
    assert other_seal(pki.identities["director"].certificate).seal_authority is False
    memo = IdentityMemo()
    malformed = _cert_with([x509.NameAttribute(NameOID.SERIAL_NUMBER, "PNOAZ-12")])
    for _ in range(2):
        with pytest.raises(CertificateError):
            memo(malformed)
    assert malformed not in memo._entries


def test_a_memo_of_zero_remembers_nothing(pki: TestPki) -> None:
    memo = IdentityMemo(max_entries=0)
    assert memo(pki.identities["deputy"].certificate).fin == "3HN8B5Q"
    assert len(memo._entries) == 0
    with pytest.raises(ConfigurationError):
        IdentityMemo(max_entries=-1)
