"""TrustStore's validation cache: a hit is exactly what a fresh validation would answer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from signing.errors import (
    CertificateExpired,
    CertificateRevoked,
    ConfigurationError,
    RevocationUnknown,
)
from signing.testpki import GOOD_IDENTITIES, TestPki
from signing.trust import (
    CrlRevocationChecker,
    LapsedCertificateValidator,
    RevocationResult,
    RevocationStatus,
    TrustStore,
    TrustStoreConfig,
    ValidatedPath,
)

NOW = datetime.now(UTC).replace(microsecond=0)


def issuing_key(pki: TestPki) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(
        (pki.directory / "ca" / "issuing-ca.key").read_bytes(), password=None
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def write_crl(
    path: Path, pki: TestPki, revoked: Sequence[tuple[int, datetime]] = (), *,
    last_update: datetime = NOW - timedelta(minutes=5),
    next_update: datetime = NOW + timedelta(days=1),
    reason: x509.ReasonFlags | None = None,
) -> Path:
    """A CRL of the issuing CA (signed with its key from the PKI directory)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.issuing.subject)
        .last_update(last_update)
        .next_update(next_update)
    )
    for serial, when in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    crl = builder.sign(issuing_key(pki), hashes.SHA256())
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return path


def cert(pki: TestPki, name: str) -> x509.Certificate:
    return pki.identities[name].certificate


def chain(pki: TestPki, name: str) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(p.read_bytes())
            for p in pki.identities[name].chain_paths]


def store_with(pki: TestPki, crls: Sequence[Path], **options: object) -> TrustStore:
    return TrustStore.from_paths(pki.trust_anchor_paths, crls, **options)  # type: ignore[arg-type]


# --- hits -----------------------------------------------------------------------------------------


def test_a_hit_returns_the_same_path(pki: TestPki) -> None:
    store = pki.trust_store()
    leaf, intermediates = cert(pki, "director"), chain(pki, "director")
    first = store.validate(leaf, intermediates, NOW)
    assert store.cache_info().size == 1
    again = store.validate(leaf, intermediates, NOW + timedelta(seconds=10))
    assert again.path is first.path
    assert again.anchor is first.anchor
    assert again.revocation == first.revocation
    assert again.validated_at == NOW + timedelta(seconds=10)
    same_moment = store.validate(leaf, intermediates, NOW)
    assert same_moment is first
    info = store.cache_info()
    assert (info.hits, info.misses) == (2, 1)


def test_a_parsed_copy_of_the_certificate_hits(pki: TestPki) -> None:
    store = pki.trust_store()
    leaf = cert(pki, "employee")
    first = store.validate(leaf, [], NOW)
    copy = x509.load_der_x509_certificate(leaf.public_bytes(serialization.Encoding.DER))
    assert store.validate(copy, [], NOW).path is first.path


def test_other_intermediates_are_another_key(pki: TestPki) -> None:
    store = pki.trust_store()
    leaf = cert(pki, "director")
    first = store.validate(leaf, [], NOW)
    second = store.validate(leaf, chain(pki, "director"), NOW)
    assert second.path is not first.path
    assert store.cache_info().size == 2


# --- a cached result ends exactly where a fresh validation would change ---------------------------


def test_not_used_after_the_certificate_expires(pki: TestPki, tmp_path: Path) -> None:
    leaf = cert(pki, "director")
    path = pki.trust_store().validate(leaf, [], NOW).path
    end = min(c.not_valid_after_utc for c in path)
    crl = write_crl(tmp_path / "wide.crl", pki, last_update=NOW,
                    next_update=end + timedelta(days=10))
    store = store_with(pki, [crl], cache_max_age_seconds=3600)
    first = store.validate(leaf, [], end - timedelta(seconds=10))
    assert store.validate(leaf, [], end).path is first.path  # notAfter itself is still valid
    with pytest.raises(CertificateExpired):
        store.validate(leaf, [], end + timedelta(seconds=1))


def test_not_used_after_the_crl_next_update(pki: TestPki, tmp_path: Path) -> None:
    next_update = NOW + timedelta(hours=1)
    crl = write_crl(tmp_path / "short.crl", pki, next_update=next_update)
    store = store_with(pki, [crl], cache_max_age_seconds=86_400)
    leaf = cert(pki, "employee")
    first = store.validate(leaf, [], NOW)
    assert store.validate(leaf, [], next_update).path is first.path
    with pytest.raises(RevocationUnknown, match="stale"):
        store.validate(leaf, [], next_update + timedelta(seconds=1))


def test_not_used_after_crl_max_age(pki: TestPki, tmp_path: Path) -> None:
    crl = write_crl(tmp_path / "c.crl", pki, last_update=NOW)
    store = store_with(pki, [crl], cache_max_age_seconds=86_400, crl_max_age_seconds=600)
    leaf = cert(pki, "employee")
    store.validate(leaf, [], NOW)
    with pytest.raises(RevocationUnknown):
        store.validate(leaf, [], NOW + timedelta(seconds=601))


def test_not_used_before_the_crl_or_the_certificate(pki: TestPki, tmp_path: Path) -> None:
    crl = write_crl(tmp_path / "c.crl", pki, last_update=NOW - timedelta(hours=1))
    store = store_with(pki, [crl], cache_max_age_seconds=86_400)
    leaf = cert(pki, "employee")
    first = store.validate(leaf, [], NOW)
    assert store.validate(leaf, [], NOW - timedelta(minutes=59)).path is first.path
    misses = store.cache_info().misses
    store.validate(leaf, [], NOW - timedelta(minutes=61))  # before lastUpdate: recomputed
    assert store.cache_info().misses == misses + 1


def test_not_used_when_a_newer_crl_lapsed_in_between(pki: TestPki, tmp_path: Path) -> None:
    # B (older, still fresh) says good; A (newer, lapsed an hour ago) says revoked. Earlier,
    # while A was fresh, A was the CRL to use: the answer of B must not be reused then.
    leaf = cert(pki, "employee")
    a = write_crl(tmp_path / "a.crl", pki, [(leaf.serial_number, NOW - timedelta(hours=3))],
                  last_update=NOW - timedelta(hours=2), next_update=NOW - timedelta(hours=1))
    b = write_crl(tmp_path / "b.crl", pki, last_update=NOW - timedelta(hours=4))
    store = store_with(pki, [a, b], cache_max_age_seconds=86_400)
    store.validate(leaf, [], NOW)
    with pytest.raises(CertificateRevoked):
        store.validate(leaf, [], NOW - timedelta(minutes=90))


def test_not_used_once_a_later_revocation_takes_effect(pki: TestPki, tmp_path: Path) -> None:
    leaf = cert(pki, "employee")
    when = NOW + timedelta(minutes=30)
    crl = write_crl(tmp_path / "c.crl", pki, [(leaf.serial_number, when)],
                    reason=x509.ReasonFlags.superseded)
    store = store_with(pki, [crl], cache_max_age_seconds=86_400)
    first = store.validate(leaf, [], NOW)  # revoked later: good now
    assert store.validate(leaf, [], when - timedelta(seconds=1)).path is first.path
    with pytest.raises(CertificateRevoked):
        store.validate(leaf, [], when)


def test_reload_crls_empties_the_cache(pki: TestPki, tmp_path: Path) -> None:
    path = write_crl(tmp_path / "issuing.crl", pki)
    store = store_with(pki, [path])
    leaf = cert(pki, "employee")
    first = store.validate(leaf, [], NOW)
    write_crl(path, pki, [(leaf.serial_number, NOW - timedelta(days=1))],
              reason=x509.ReasonFlags.key_compromise)
    assert store.validate(leaf, [], NOW).path is first.path  # not re-read yet: same as before
    store.reload_crls()
    assert store.cache_info().size == 0
    with pytest.raises(CertificateRevoked, match="key_compromise"):
        store.validate(leaf, [], NOW)


def test_a_checker_reloaded_directly_voids_its_answers(pki: TestPki, tmp_path: Path) -> None:
    path = write_crl(tmp_path / "issuing.crl", pki)
    checker = CrlRevocationChecker([path])
    store = TrustStore.from_paths(pki.trust_anchor_paths, [], revocation_checkers=[checker])
    leaf = cert(pki, "employee")
    store.validate(leaf, [], NOW)
    write_crl(path, pki, [(leaf.serial_number, NOW - timedelta(days=1))])
    checker.reload()
    with pytest.raises(CertificateRevoked):
        store.validate(leaf, [], NOW)


def test_max_age_in_validation_time(pki: TestPki) -> None:
    store = pki.trust_store(cache_max_age_seconds=60)
    leaf = cert(pki, "deputy")
    first = store.validate(leaf, [], NOW)
    assert store.validate(leaf, [], NOW + timedelta(seconds=60)).path is first.path
    later = store.validate(leaf, [], NOW + timedelta(seconds=61))
    assert later.path is not first.path
    assert store.cache_info().misses == 2


def test_max_age_in_wall_time(pki: TestPki, monkeypatch: pytest.MonkeyPatch) -> None:
    import signing.trust as trust_module

    store = pki.trust_store(cache_max_age_seconds=60)
    leaf = cert(pki, "deputy")
    first = store.validate(leaf, [], NOW)
    start = trust_module.time.monotonic()
    monkeypatch.setattr(trust_module.time, "monotonic", lambda: start + 61)
    assert store.validate(leaf, [], NOW).path is not first.path


# --- what is never cached -------------------------------------------------------------------------


def test_refusals_are_not_cached(pki: TestPki) -> None:
    store = pki.trust_store()
    for _ in range(2):
        with pytest.raises(CertificateRevoked):
            store.validate(cert(pki, "revoked"), [], NOW)
        with pytest.raises(CertificateExpired):
            store.validate(cert(pki, "expired"), [], NOW)
    assert store.cache_info().size == 0


def test_answers_without_a_validity_are_not_cached(pki: TestPki) -> None:
    class Ocsp:
        def check(
            self, certificate: x509.Certificate, issuer: x509.Certificate, at: datetime
        ) -> RevocationResult:
            return RevocationResult(RevocationStatus.GOOD, "ocsp:test")

    store = TrustStore.from_paths(pki.trust_anchor_paths, [], revocation_checkers=[Ocsp()])
    store.validate(cert(pki, "director"), [], NOW)
    assert store.cache_info().size == 0


def test_lapsed_validator_does_not_poison_the_cache(pki: TestPki) -> None:
    store = pki.trust_store()
    lapsed = LapsedCertificateValidator(store)
    expired = cert(pki, "expired")
    for _ in range(2):
        assert lapsed.validate(expired, [], NOW).certificate == expired
        with pytest.raises(CertificateExpired):
            store.validate(expired, [], NOW)
    assert store.cache_info().size == 0
    # a judgement at a moved revocation time is not kept either
    store.validate(cert(pki, "director"), [], NOW, revocation_at=NOW + timedelta(seconds=1))
    assert store.cache_info().size == 0


def test_revocation_at_outside_the_interval_misses(pki: TestPki, tmp_path: Path) -> None:
    leaf = cert(pki, "employee")
    when = NOW + timedelta(minutes=30)
    crl = write_crl(tmp_path / "c.crl", pki, [(leaf.serial_number, when)])
    store = store_with(pki, [crl], cache_max_age_seconds=86_400)
    store.validate(leaf, [], NOW)
    with pytest.raises(CertificateRevoked):
        store.validate(leaf, [], NOW, revocation_at=when + timedelta(seconds=1))


def test_cache_can_be_turned_off(pki: TestPki) -> None:
    for options in ({"cache_max_entries": 0}, {"cache_max_age_seconds": 0}):
        store = pki.trust_store(**options)
        store.validate(cert(pki, "director"), [], NOW)
        store.validate(cert(pki, "director"), [], NOW)
        assert store.cache_info().size == 0


# --- bounds, configuration, threads ---------------------------------------------------------------


def test_the_cache_is_bounded_lru(pki: TestPki) -> None:
    store = pki.trust_store(cache_max_entries=2)
    a, b, c = (cert(pki, n) for n in ("director", "deputy", "employee"))
    first_a = store.validate(a, [], NOW)
    store.validate(b, [], NOW)
    assert store.validate(a, [], NOW) is first_a  # a is now the most recent
    store.validate(c, [], NOW)  # evicts b
    assert store.cache_info().size == 2
    assert store.validate(a, [], NOW) is first_a
    misses = store.cache_info().misses
    store.validate(b, [], NOW)
    assert store.cache_info().misses == misses + 1
    for name in GOOD_IDENTITIES:
        store.validate(cert(pki, name), [], NOW)
    assert store.cache_info().size == 2


def test_cache_configuration(pki: TestPki) -> None:
    config = TrustStoreConfig.from_config(
        {"anchor_paths": ["a.pem"], "cache_max_entries": 5, "cache_max_age_seconds": 30}
    )
    assert (config.cache_max_entries, config.cache_max_age_seconds) == (5, 30)
    assert TrustStoreConfig(anchor_paths=("a",)).cache_max_entries == 10_000
    assert TrustStoreConfig(anchor_paths=("a",)).cache_max_age_seconds == 300
    with pytest.raises(ConfigurationError):
        TrustStoreConfig(anchor_paths=("a",), cache_max_entries=-1)
    with pytest.raises(ConfigurationError):
        TrustStoreConfig.from_config({"anchor_paths": ["a"], "cache_max_age_seconds": "300"})
    assert pki.trust_store(cache_max_entries=7).cache_info().max_size == 7


def test_concurrent_validation_is_consistent(pki: TestPki) -> None:
    store = pki.trust_store(cache_max_entries=3)
    names = [*GOOD_IDENTITIES[:4], "revoked", "expired"]
    reference: dict[str, type[Exception] | tuple[x509.Certificate, ...]] = {}
    for name in names:
        try:
            reference[name] = pki.trust_store().validate(cert(pki, name), [], NOW).path
        except (CertificateRevoked, CertificateExpired) as exc:
            reference[name] = type(exc)
    errors: list[str] = []
    barrier = threading.Barrier(4)

    def worker(offset: int) -> Callable[[], None]:
        def run() -> None:
            barrier.wait()
            for i in range(150):
                name = names[(i + offset) % len(names)]
                expected = reference[name]
                try:
                    got: ValidatedPath | type[Exception] = store.validate(
                        cert(pki, name), [], NOW + timedelta(seconds=i % 5)
                    )
                except (CertificateRevoked, CertificateExpired) as exc:
                    got = type(exc)
                if isinstance(got, ValidatedPath):
                    if got.path != expected or got.certificate != cert(pki, name):
                        errors.append(f"{name}: wrong path")
                elif got is not expected:
                    errors.append(f"{name}: {got.__name__}, expected {expected}")
                if offset == 0 and i % 50 == 0:
                    store.reload_crls()

        return run

    threads = [threading.Thread(target=worker(k)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    info = store.cache_info()
    assert info.size <= 3
    assert info.hits > 0
