"""The test PKI: structure, profile, files, reload, idempotent demo init."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from signing.errors import ConfigurationError
from signing.identity import (
    QUALIFIED_PERSON_POLICY_OID,
    SEAL_AUTHORITY_POLICY_OID,
    policy_oids_of,
)
from signing.testpki import (
    BAD_IDENTITIES,
    GOOD_IDENTITIES,
    IDENTITY_SPECS,
    MANIFEST_NAME,
    Defect,
    TestPki,
    build_test_pki,
    init_demo_pki,
    load_test_pki,
)

FIN_RE = re.compile(r"[A-HJ-NP-Z0-9]{7}")


def test_hierarchy(pki: TestPki) -> None:
    assert pki.root.issuer == pki.root.subject
    pki.issuing.verify_directly_issued_by(pki.root)
    assert pki.foreign_root.subject != pki.root.subject
    for name in (*GOOD_IDENTITIES, "expired", "revoked", "wrong_usage", "rsa1024"):
        pki.identities[name].certificate.verify_directly_issued_by(pki.issuing)
    pki.identities["foreign"].certificate.verify_directly_issued_by(pki.foreign_root)
    assert [p.name for p in pki.trust_anchor_paths] == ["root-ca.pem", "issuing-ca.pem"]


def test_all_declared_identities_exist(pki: TestPki) -> None:
    assert set(pki.identities) == {s.name for s in IDENTITY_SPECS}
    assert set(BAD_IDENTITIES) == {
        "expired", "not_yet_valid", "revoked", "wrong_usage", "foreign", "rsa1024"
    }


def test_fins_are_distinct_and_well_formed(pki: TestPki) -> None:
    fins = [i.fin for i in pki.identities.values() if i.fin is not None]
    assert len(fins) == len(set(fins))
    assert all(FIN_RE.fullmatch(f) for f in fins)
    for name in BAD_IDENTITIES:
        assert pki.identities[name].voen == "1403567891"


def test_person_profile(pki: TestPki) -> None:
    director = pki.identities["director"]
    subject = director.certificate.subject

    def attr(oid: x509.ObjectIdentifier) -> str:
        return str(subject.get_attributes_for_oid(oid)[0].value)

    assert attr(NameOID.COMMON_NAME) == "Əliyev Rəşad"
    assert attr(NameOID.SURNAME) == "Əliyev"
    assert attr(NameOID.GIVEN_NAME) == "Rəşad"
    assert attr(NameOID.SERIAL_NUMBER) == "PNOAZ-6ZK4T2P"
    assert attr(NameOID.ORGANIZATION_IDENTIFIER) == "TINAZ-1403567891"
    assert attr(NameOID.ORGANIZATION_NAME) == "Xəzər Tikinti MMC"
    assert attr(NameOID.COUNTRY_NAME) == "AZ"
    ku = director.certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.content_commitment and not ku.value.digital_signature
    assert policy_oids_of(director.certificate) == {
        QUALIFIED_PERSON_POLICY_OID, SEAL_AUTHORITY_POLICY_OID
    }
    assert policy_oids_of(pki.identities["employee"].certificate) == {QUALIFIED_PERSON_POLICY_OID}
    bc = director.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    aki = director.certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    ski = pki.issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.value.key_identifier == ski.value.digest


def test_key_types(pki: TestPki) -> None:
    gateway_key = pki.identities["gateway"].certificate.public_key()
    assert isinstance(gateway_key, ec.EllipticCurvePublicKey)
    assert gateway_key.curve.name == "secp256r1"
    weak = pki.identities["rsa1024"].certificate.public_key()
    assert isinstance(weak, rsa.RSAPublicKey) and weak.key_size == 1024
    person = pki.identities["employee"].certificate.public_key()
    assert isinstance(person, rsa.RSAPublicKey) and person.key_size == 2048


def test_system_and_gateway_profile(pki: TestPki) -> None:
    for name in ("system", "gateway"):
        cert = pki.identities[name].certificate
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert ku.digital_signature and not ku.content_commitment
        assert not cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    system = pki.identities["system"].certificate.subject
    assert system.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value == (
        "TINAZ-1500000001"
    )
    gateway = pki.identities["gateway"].certificate.subject
    assert gateway.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "DSMF Insured Registration Gateway"
    )


def test_defects_are_what_they_claim(pki: TestPki) -> None:
    now = datetime.now(UTC)
    assert pki.identities["expired"].certificate.not_valid_after_utc < now
    assert pki.identities["not_yet_valid"].certificate.not_valid_before_utc > now
    ku = pki.identities["wrong_usage"].certificate.extensions.get_extension_for_class(
        x509.KeyUsage
    ).value
    assert ku.key_encipherment and not ku.content_commitment and not ku.digital_signature
    crl = pki.crl
    assert crl.next_update_utc is not None and crl.next_update_utc > now
    assert crl.is_signature_valid(pki.issuing.public_key())
    revoked = pki.identities["revoked"].certificate.serial_number
    assert crl.get_revoked_certificate_by_serial_number(revoked) is not None
    assert pki.identities["revoked"].defect is Defect.REVOKED
    root_crl = x509.load_pem_x509_crl(pki.root_crl_path.read_bytes())
    assert root_crl.is_signature_valid(pki.root.public_key())
    assert len(root_crl) == 0


def test_card_number_is_serial_hex(pki: TestPki) -> None:
    issued = pki.identities["deputy"]
    assert issued.card_number == format(issued.certificate.serial_number, "X")


def test_load_reads_back_the_same(pki: TestPki) -> None:
    again = load_test_pki(pki.directory)
    assert again.root == pki.root and again.issuing == pki.issuing
    for name, issued in pki.identities.items():
        assert again.identities[name] == issued
    assert again.identities["director"].patronymic == "Vaqif oğlu"


def test_files_are_usable(pki: TestPki) -> None:
    issued = pki.identities["employee"]
    for path in (issued.key_path, issued.cert_path, issued.p12_path, *issued.chain_paths):
        assert path.is_file()
    assert issued.key_path.stat().st_mode & 0o077 == 0
    assert b"BEGIN PRIVATE KEY" in issued.key_path.read_bytes()


def test_build_with_fixed_clock(tmp_path: Path) -> None:
    then = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
    built = build_test_pki(tmp_path / "p", now=then)
    director = built.identities["director"].certificate
    assert director.not_valid_before_utc <= then < director.not_valid_after_utc
    assert built.crl.last_update_utc < then


def test_init_demo_pki_is_idempotent(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    first = init_demo_pki(directory)
    second = init_demo_pki(directory)
    assert second.identities["director"].card_number == first.identities["director"].card_number
    # A stale CRL is re-signed; certificates (card numbers) stay.
    later = datetime.now(UTC) + timedelta(days=40)
    third = init_demo_pki(directory, now=later)
    assert third.identities["director"].card_number == first.identities["director"].card_number
    assert third.crl.next_update_utc is not None and third.crl.next_update_utc > later
    # Once 'not_yet_valid' would become valid, the PKI is rebuilt.
    much_later = datetime.now(UTC) + timedelta(days=400)
    fourth = init_demo_pki(directory, now=much_later)
    assert fourth.root != first.root


def test_init_demo_pki_rebuilds_an_incomplete_build(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    first = init_demo_pki(directory)
    (directory / "identities" / "director" / "cert.pem").unlink()
    second = init_demo_pki(directory)
    assert second.root != first.root
    assert (directory / MANIFEST_NAME).is_file()


def test_init_demo_pki_refuses_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigurationError):
        init_demo_pki(tmp_path)


def test_signer_of_test_pki(pki: TestPki) -> None:
    signer = pki.signer("director")
    assert signer.certificate == pki.identities["director"].certificate
    assert list(signer.chain) == [pki.issuing, pki.root]
