"""TrustStore: each good certificate validates; each bad one fails with its exact error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from signing.errors import (
    CertificateError,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    CertificateUntrusted,
    ConfigurationError,
    KeyUsageNotAllowed,
    RevocationUnknown,
    WeakKey,
)
from signing.testpki import GOOD_IDENTITIES, TestPki
from signing.trust import (
    RevocationChecker,
    RevocationResult,
    RevocationStatus,
    TrustStore,
    TrustStoreConfig,
)

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def store(pki: TestPki) -> TrustStore:
    return pki.trust_store()


def ca_key(pki: TestPki, stem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(
        (pki.directory / "ca" / f"{stem}.key").read_bytes(), password=None
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def write_crl(
    path: Path, pki: TestPki, serials: list[int], *, signer: str = "issuing-ca",
    last_update: datetime | None = None, next_update: datetime | None = None,
) -> Path:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.issuing.subject)
        .last_update(last_update or NOW - timedelta(minutes=5))
        .next_update(next_update or NOW + timedelta(days=1))
    )
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial)
            .revocation_date(NOW - timedelta(days=1)).build()
        )
    crl = builder.sign(ca_key(pki, signer), hashes.SHA256())
    path.write_bytes(crl.public_bytes(serialization.Encoding.DER))
    return path


@pytest.mark.parametrize("name", GOOD_IDENTITIES)
def test_good_certificates_validate(store: TrustStore, pki: TestPki, name: str) -> None:
    cert = pki.identities[name].certificate
    result = store.validate(cert, [], NOW)
    assert result.certificate == cert
    assert result.path == (cert, pki.issuing)  # the issuing CA is itself an anchor
    assert result.anchor == pki.issuing
    assert [r.status for r in result.revocation] == [RevocationStatus.GOOD]


@pytest.mark.parametrize(
    ("name", "error", "code"),
    [
        ("expired", CertificateExpired, "Client.Certificate.Expired"),
        ("not_yet_valid", CertificateNotYetValid, "Client.Certificate.NotYetValid"),
        ("revoked", CertificateRevoked, "Client.Certificate.Revoked"),
        ("wrong_usage", KeyUsageNotAllowed, "Client.Certificate.KeyUsage"),
        ("foreign", CertificateUntrusted, "Client.Certificate.Untrusted"),
        ("rsa1024", WeakKey, "Client.Certificate.WeakKey"),
    ],
)
def test_bad_certificates_fail_precisely(
    store: TrustStore, pki: TestPki, name: str, error: type[CertificateError], code: str
) -> None:
    issued = pki.identities[name]
    chain = [x509.load_pem_x509_certificate(p.read_bytes()) for p in issued.chain_paths]
    with pytest.raises(error) as info:
        store.validate(issued.certificate, chain, NOW)
    assert type(info.value) is error
    assert info.value.code == code


def test_root_only_anchor_needs_the_intermediate(pki: TestPki) -> None:
    store = TrustStore.from_paths([pki.trust_anchor_paths[0]], pki.crl_paths)
    cert = pki.identities["director"].certificate
    with pytest.raises(CertificateUntrusted):
        store.validate(cert, [], NOW)
    result = store.validate(cert, [pki.issuing], NOW)
    assert result.path == (cert, pki.issuing, pki.root)
    # The intermediate from the message is revocation-checked too (by the root's CRL).
    assert [r.status for r in result.revocation] == [RevocationStatus.GOOD] * 2
    assert "AZ Test Root CA" in result.revocation[1].source


def test_intermediate_from_message_without_root_crl(pki: TestPki) -> None:
    store = TrustStore.from_paths([pki.trust_anchor_paths[0]], [pki.crl_path])
    # No CRL of the root covers the issuing CA offered in the message.
    with pytest.raises(RevocationUnknown):
        store.validate(pki.identities["director"].certificate, [pki.issuing], NOW)


def test_self_signed_leaf_is_untrusted(store: TrustStore) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Me Myself")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(CertificateUntrusted, match="self-signed"):
        store.validate(cert, [], NOW)


def test_impostor_issuer_with_same_name_is_untrusted(store: TrustStore, pki: TestPki) -> None:
    """A leaf naming the real issuing CA but signed by another key has no path."""
    impostor_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = pki.identities["director"].certificate
    forged = (
        x509.CertificateBuilder().subject_name(leaf.subject).issuer_name(pki.issuing.subject)
        .public_key(leaf.public_key()).serial_number(7)
        .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(leaf.extensions.get_extension_for_class(x509.KeyUsage).value, True)
        .sign(impostor_key, hashes.SHA256())
    )
    with pytest.raises(CertificateUntrusted):
        store.validate(forged, [], NOW)


def test_ca_certificate_as_leaf_is_untrusted(store: TrustStore, pki: TestPki) -> None:
    with pytest.raises(CertificateUntrusted):
        store.validate(pki.issuing, [], NOW)


def test_revoked_for_key_compromise_even_before_the_date(store: TrustStore, pki: TestPki) -> None:
    revoked = pki.identities["revoked"].certificate
    entry = pki.crl.get_revoked_certificate_by_serial_number(revoked.serial_number)
    assert entry is not None
    with pytest.raises(CertificateRevoked, match="key_compromise"):
        store.validate(revoked, [], entry.revocation_date_utc - timedelta(hours=1))


def test_revocation_without_reason_counts_from_its_date(pki: TestPki, tmp_path: Path) -> None:
    revoked = pki.identities["revoked"].certificate
    crl = write_crl(tmp_path / "c.crl", pki, [revoked.serial_number])
    store = TrustStore.from_paths(pki.trust_anchor_paths, [crl])
    store.validate(revoked, [], NOW - timedelta(days=1, hours=1))  # before: fine
    with pytest.raises(CertificateRevoked):
        store.validate(revoked, [], NOW)


def test_no_crl_means_unknown_unless_allowed(pki: TestPki) -> None:
    cert = pki.identities["director"].certificate
    strict = TrustStore.from_paths(pki.trust_anchor_paths, [])
    with pytest.raises(RevocationUnknown) as info:
        strict.validate(cert, [], NOW)
    assert info.value.code == "Client.Certificate.RevocationUnknown"
    lax = TrustStore.from_paths(pki.trust_anchor_paths, [], require_crl=False)
    result = lax.validate(cert, [], NOW)
    assert [r.status for r in result.revocation] == [RevocationStatus.UNKNOWN]


def test_stale_crl_means_unknown(store: TrustStore, pki: TestPki) -> None:
    with pytest.raises(RevocationUnknown, match="stale"):
        store.validate(pki.identities["director"].certificate, [], NOW + timedelta(days=31))


def test_crl_max_age(pki: TestPki) -> None:
    store = TrustStore.from_paths(pki.trust_anchor_paths, [pki.crl_path], crl_max_age_seconds=60)
    with pytest.raises(RevocationUnknown):
        store.validate(pki.identities["director"].certificate, [], NOW)


def test_crl_with_a_forged_signature_is_ignored(pki: TestPki, tmp_path: Path) -> None:
    # Issuer name of the issuing CA, signed by another key, and without the revoked serial.
    forged = write_crl(tmp_path / "forged.crl", pki, [], signer="foreign-root-ca")
    store = TrustStore.from_paths(pki.trust_anchor_paths, [forged])
    with pytest.raises(RevocationUnknown, match="signature"):
        store.validate(pki.identities["revoked"].certificate, [], NOW)


def test_reload_crls(pki: TestPki, tmp_path: Path) -> None:
    path = write_crl(tmp_path / "issuing.crl", pki, [])
    store = TrustStore.from_paths(pki.trust_anchor_paths, [path])
    revoked = pki.identities["revoked"].certificate
    store.validate(revoked, [], NOW)
    write_crl(path, pki, [revoked.serial_number])
    store.validate(revoked, [], NOW)  # not yet re-read
    store.reload_crls()
    with pytest.raises(CertificateRevoked):
        store.validate(revoked, [], NOW)


def test_key_strength_options(pki: TestPki) -> None:
    strong = pki.trust_store(min_rsa_bits=3072)
    with pytest.raises(WeakKey):
        strong.validate(pki.identities["director"].certificate, [], NOW)
    p384_only = pki.trust_store(allowed_curves=("secp384r1",))
    with pytest.raises(WeakKey):
        p384_only.validate(pki.identities["gateway"].certificate, [], NOW)


def test_key_usage_option(pki: TestPki, store: TrustStore) -> None:
    only_digital = pki.trust_store(allowed_key_usages=("digital_signature",))
    with pytest.raises(KeyUsageNotAllowed):
        only_digital.validate(pki.identities["director"].certificate, [], NOW)
    only_digital.validate(pki.identities["system"].certificate, [], NOW)


class _OcspStandIn:
    """A second revocation source, as an OCSP client would be: it knows one revoked serial."""

    def __init__(self, revoked_serial: int) -> None:
        self.revoked_serial = revoked_serial

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, at: datetime
    ) -> RevocationResult:
        if certificate.serial_number == self.revoked_serial:
            return RevocationResult(RevocationStatus.REVOKED, "ocsp:test", at, "superseded")
        return RevocationResult(RevocationStatus.UNKNOWN, "ocsp:test", detail="not asked")


def test_pluggable_revocation_checker(pki: TestPki) -> None:
    director = pki.identities["director"].certificate
    checker = _OcspStandIn(director.serial_number)
    assert isinstance(checker, RevocationChecker)
    store = TrustStore.from_paths(pki.trust_anchor_paths, [], revocation_checkers=[checker])
    with pytest.raises(CertificateRevoked):
        store.validate(director, [], NOW)
    with pytest.raises(RevocationUnknown, match="ocsp:test"):
        store.validate(pki.identities["deputy"].certificate, [], NOW)


def test_naive_time_is_refused(store: TrustStore, pki: TestPki) -> None:
    with pytest.raises(ConfigurationError):
        store.validate(pki.identities["director"].certificate, [], datetime.now())


def test_default_time_is_now(store: TrustStore, pki: TestPki) -> None:
    assert store.validate(pki.identities["director"].certificate).validated_at <= datetime.now(UTC)


def test_config_from_mapping(pki: TestPki) -> None:
    base = pki.directory
    config = TrustStoreConfig.from_config(
        {"anchor_paths": ["ca/root-ca.pem", "ca/issuing-ca.pem"],
         "crl_paths": ["crl/issuing-ca.crl.pem"], "require_crl": True},
        base_dir=base,
    )
    assert config.anchor_paths[0] == str(base / "ca/root-ca.pem")
    store = TrustStore.from_config(config)
    store.validate(pki.identities["director"].certificate, [], NOW)
    with pytest.raises(ConfigurationError, match="unknown"):
        TrustStoreConfig.from_config({"anchor_paths": ["x"], "trust_system_store": True})
    with pytest.raises(ConfigurationError):
        TrustStoreConfig.from_config({"anchor_paths": ["x"], "require_crl": "yes"})
    with pytest.raises(ConfigurationError):
        TrustStoreConfig.from_config({"crl_paths": []})


def test_leaf_as_anchor_is_refused(pki: TestPki) -> None:
    with pytest.raises(ConfigurationError, match="not a CA"):
        TrustStore.from_paths([pki.identities["director"].cert_path], [])


def test_repr_lists_anchors(store: TrustStore) -> None:
    assert "AZ Test Root CA" in repr(store)
