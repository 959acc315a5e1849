"""CRLs per RFC 5280: a delta applies on top of its base, scope (IssuingDistributionPoint) is
honoured, and a CRL with a critical extension we cannot process is not used at all.

Every CRL here is a real one, signed with the test PKI's issuing-CA key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from signing.errors import CertificateRevoked, RevocationSourceUnusable, RevocationUnknown
from signing.testpki import TestPki, write_crl
from signing.trust import RevocationStatus, TrustStore

NOW = datetime.now(UTC)
UNKNOWN_OID = ObjectIdentifier("1.3.6.1.4.1.99999.1.2.3")


def store_with(pki: TestPki, *crls: Path) -> TrustStore:
    return TrustStore.from_paths(pki.trust_anchor_paths, list(crls))


def revoked_serial(pki: TestPki) -> int:
    return pki.identities["revoked"].certificate.serial_number


def test_empty_delta_does_not_hide_the_base(pki: TestPki, tmp_path: Path) -> None:
    """The finding: an empty delta CRL, newer than the base that lists a card revoked for key
    compromise, made the card valid again (the newest CRL alone was consulted)."""
    base = write_crl(pki, tmp_path / "base.crl", [revoked_serial(pki)], crl_number=10,
                     last_update=NOW - timedelta(hours=2))
    delta = write_crl(pki, tmp_path / "delta.crl", [], crl_number=11, delta_of=10,
                      last_update=NOW - timedelta(minutes=1))
    store = store_with(pki, base, delta)
    with pytest.raises(CertificateRevoked) as info:
        store.validate(pki.identities["revoked"].certificate, [], NOW)
    assert info.value.code == "Client.Certificate.Revoked"
    # The others stay good, judged by base + delta.
    result = store.validate(pki.identities["director"].certificate, [], NOW)
    assert [r.status for r in result.revocation] == [RevocationStatus.GOOD]


def test_delta_alone_proves_nothing(pki: TestPki, tmp_path: Path) -> None:
    delta = write_crl(pki, tmp_path / "delta.crl", [], crl_number=11, delta_of=10)
    store = store_with(pki, delta)
    with pytest.raises(RevocationUnknown) as info:
        store.validate(pki.identities["revoked"].certificate, [], NOW)
    assert info.value.code == "Client.Certificate.RevocationUnknown"


def test_delta_revokes_what_the_base_does_not_list(pki: TestPki, tmp_path: Path) -> None:
    director = pki.identities["director"].certificate
    base = write_crl(pki, tmp_path / "base.crl", [], crl_number=10,
                     last_update=NOW - timedelta(hours=2))
    delta = write_crl(pki, tmp_path / "delta.crl", [director.serial_number], crl_number=11,
                      delta_of=10)
    with pytest.raises(CertificateRevoked):
        store_with(pki, base, delta).validate(director, [], NOW)


def test_delta_for_a_newer_base_is_not_applied(pki: TestPki, tmp_path: Path) -> None:
    """BaseCRLNumber 12 > the base we hold (10): the delta cannot be combined with it."""
    director = pki.identities["director"].certificate
    base = write_crl(pki, tmp_path / "base.crl", [], crl_number=10,
                     last_update=NOW - timedelta(hours=2))
    delta = write_crl(pki, tmp_path / "delta.crl", [director.serial_number], crl_number=13,
                      delta_of=12)
    result = store_with(pki, base, delta).validate(director, [], NOW)
    assert [r.status for r in result.revocation] == [RevocationStatus.GOOD]


def test_remove_from_crl_only_lifts_a_hold(pki: TestPki, tmp_path: Path) -> None:
    serial = revoked_serial(pki)
    revoked = pki.identities["revoked"].certificate
    held = write_crl(pki, tmp_path / "held.crl", [serial], crl_number=10,
                     reason=x509.ReasonFlags.certificate_hold,
                     last_update=NOW - timedelta(hours=2))
    compromised = write_crl(pki, tmp_path / "compromised.crl", [serial], crl_number=10,
                            last_update=NOW - timedelta(hours=2))
    lift = write_crl(pki, tmp_path / "lift.crl", [serial], crl_number=11, delta_of=10,
                     reason=x509.ReasonFlags.remove_from_crl)
    store_with(pki, held, lift).validate(revoked, [], NOW)
    with pytest.raises(CertificateRevoked):
        store_with(pki, compromised, lift).validate(revoked, [], NOW)


@pytest.mark.parametrize("where", ["crl", "entry"])
def test_unknown_critical_extension_makes_the_crl_unusable(
    pki: TestPki, tmp_path: Path, where: str
) -> None:
    """Before, such a CRL was used as if the extension were absent (here it would say
    'good' for the director)."""
    director = pki.identities["director"].certificate
    unknown = x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00")
    if where == "crl":
        crl = write_crl(pki, tmp_path / "c.crl", [], crl_number=10,
                        extensions=[(unknown, True)])
    else:
        crl = write_crl(pki, tmp_path / "c.crl", [12345], crl_number=10,
                        entry_extensions=[(unknown, True)])
    with pytest.raises(RevocationSourceUnusable) as info:
        store_with(pki, crl).validate(director, [], NOW)
    assert info.value.code == "Client.Certificate.RevocationUnusable"


def test_unknown_non_critical_extension_is_ignored(pki: TestPki, tmp_path: Path) -> None:
    unknown = x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00")
    crl = write_crl(pki, tmp_path / "c.crl", [], crl_number=10, extensions=[(unknown, False)])
    store_with(pki, crl).validate(pki.identities["director"].certificate, [], NOW)


def test_unusable_newer_crl_does_not_replace_a_usable_one(pki: TestPki, tmp_path: Path) -> None:
    base = write_crl(pki, tmp_path / "base.crl", [revoked_serial(pki)], crl_number=10,
                     last_update=NOW - timedelta(hours=2))
    unknown = x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00")
    newer = write_crl(pki, tmp_path / "newer.crl", [], crl_number=11,
                      extensions=[(unknown, True)])
    with pytest.raises(CertificateRevoked):
        store_with(pki, base, newer).validate(pki.identities["revoked"].certificate, [], NOW)


def test_ca_only_crl_does_not_speak_for_end_entities(pki: TestPki, tmp_path: Path) -> None:
    """A newer, empty CRL scoped to CA certificates used to hide the complete CRL."""
    base = write_crl(pki, tmp_path / "base.crl", [revoked_serial(pki)], crl_number=10,
                     last_update=NOW - timedelta(hours=2))
    ca_only = write_crl(pki, tmp_path / "ca.crl", [], crl_number=11, scope=_scope(ca=True))
    store = store_with(pki, base, ca_only)
    with pytest.raises(CertificateRevoked):
        store.validate(pki.identities["revoked"].certificate, [], NOW)
    with pytest.raises(RevocationUnknown):
        store_with(pki, ca_only).validate(pki.identities["director"].certificate, [], NOW)


def test_user_only_crl_covers_end_entities(pki: TestPki, tmp_path: Path) -> None:
    crl = write_crl(pki, tmp_path / "users.crl", [revoked_serial(pki)], crl_number=10,
                    scope=_scope(users=True))
    store = store_with(pki, crl)
    store.validate(pki.identities["director"].certificate, [], NOW)
    with pytest.raises(CertificateRevoked):
        store.validate(pki.identities["revoked"].certificate, [], NOW)


def test_partitioned_crl_covers_only_certificates_pointing_to_it(
    pki: TestPki, tmp_path: Path
) -> None:
    """Our test cards carry no CRL distribution point: a CRL for one partition says nothing
    about them."""
    point = x509.UniformResourceIdentifier("http://crl.test.az/partition-7.crl")
    crl = write_crl(pki, tmp_path / "p7.crl", [], crl_number=10,
                    scope=x509.IssuingDistributionPoint(
                        full_name=[point], relative_name=None, only_contains_user_certs=False,
                        only_contains_ca_certs=False, only_some_reasons=None,
                        indirect_crl=False, only_contains_attribute_certs=False))
    with pytest.raises(RevocationUnknown):
        store_with(pki, crl).validate(pki.identities["director"].certificate, [], NOW)


def test_reason_limited_crl_revokes_but_never_proves_good(pki: TestPki, tmp_path: Path) -> None:
    some = frozenset({x509.ReasonFlags.key_compromise})
    scope = x509.IssuingDistributionPoint(
        full_name=None, relative_name=None, only_contains_user_certs=False,
        only_contains_ca_certs=False, only_some_reasons=some, indirect_crl=False,
        only_contains_attribute_certs=False)
    partial = write_crl(pki, tmp_path / "kc.crl", [revoked_serial(pki)], crl_number=10,
                        scope=scope)
    with pytest.raises(RevocationUnknown):
        store_with(pki, partial).validate(pki.identities["director"].certificate, [], NOW)
    complete = write_crl(pki, tmp_path / "all.crl", [], crl_number=9,
                         last_update=NOW - timedelta(hours=3))
    store = store_with(pki, complete, partial)
    store.validate(pki.identities["director"].certificate, [], NOW)
    with pytest.raises(CertificateRevoked):
        store.validate(pki.identities["revoked"].certificate, [], NOW)


def test_cached_good_answer_ends_when_the_delta_lapses(pki: TestPki, tmp_path: Path) -> None:
    """The cache keeps a combined answer only while both base and delta are fresh."""
    director = pki.identities["director"].certificate
    base = write_crl(pki, tmp_path / "base.crl", [], crl_number=10,
                     last_update=NOW - timedelta(hours=2), next_update=NOW + timedelta(days=5))
    delta = write_crl(pki, tmp_path / "delta.crl", [], crl_number=11, delta_of=10,
                      next_update=NOW + timedelta(hours=1))
    store = store_with(pki, base, delta)
    result = store.validate(director, [], NOW)
    (answer,) = result.revocation
    assert answer.valid_until is not None and answer.valid_until <= NOW + timedelta(hours=1)


def _scope(*, ca: bool = False, users: bool = False) -> x509.IssuingDistributionPoint:
    return x509.IssuingDistributionPoint(
        full_name=None, relative_name=None, only_contains_user_certs=users,
        only_contains_ca_certs=ca, only_some_reasons=None, indirect_crl=False,
        only_contains_attribute_certs=False)
