"""Cheap refusals before expensive work (issue #16, finding 5).

Attacker-made P-521 "CA" tokens sharing one name and key used to send the path builder through
every permutation of them (~325 P-521 signature checks, ~0.18 s of CPU per request). Now the
tokens are counted and measured before they are decoded, the intermediates before any path is
built, only offered CAs that reach an anchor are tried, and a repeated unknown issuer is
remembered briefly. CPU time is measured in bench/bench_trust_path.py; here the number of
signature checks is counted (the real checks, counted on the way through).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

import signing.trust
from signing.errors import CertificateUntrusted, TokenLimitExceeded
from signing.policy import SecurityPolicy
from signing.testpki import TestPki
from signing.verifier import EnvelopeVerifier
from tests.signing.attacks import request_envelope
from tests.signing.fake_cas import fake_ca_identity, fake_ca_request

NOW = datetime.now(UTC)


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many certificate signatures the trust store verifies."""
    calls = [0]
    real = signing.trust._signed_by

    def counted(child: x509.Certificate, issuer: x509.Certificate) -> bool:
        calls[0] += 1
        return real(child, issuer)

    monkeypatch.setattr(signing.trust, "_signed_by", counted)
    yield calls


def test_five_fake_ca_tokens_are_refused_before_decoding(pki: TestPki,
                                                         signature_checks: list[int]) -> None:
    signer, fakes = fake_ca_identity(5)
    envelope = fake_ca_request(request_envelope, signer, fakes)
    with pytest.raises(TokenLimitExceeded) as info:
        EnvelopeVerifier(pki.trust_store(), SecurityPolicy()).verify(envelope)
    assert info.value.code == "Client.Signature.TokenLimit"
    assert signature_checks[0] == 0


def test_oversized_token_is_refused(pki: TestPki) -> None:
    signer, fakes = fake_ca_identity(1)
    envelope = fake_ca_request(request_envelope, signer, fakes)
    with pytest.raises(TokenLimitExceeded):
        EnvelopeVerifier(pki.trust_store(), SecurityPolicy(max_token_bytes=512)).verify(envelope)


def test_fake_cas_within_the_token_limit_cost_no_signature_checks(
    pki: TestPki, signature_checks: list[int]
) -> None:
    """Allowed in by a wider limit, the five fakes reach the path builder: before, 325 P-521
    signature checks; now none, since none of them leads to an anchor."""
    signer, fakes = fake_ca_identity(5)
    envelope = fake_ca_request(request_envelope, signer, fakes)
    with pytest.raises(CertificateUntrusted) as info:
        EnvelopeVerifier(pki.trust_store(), SecurityPolicy(max_tokens=8)).verify(envelope)
    assert info.value.code == "Client.Certificate.Untrusted"
    assert signature_checks[0] <= len(fakes)


def test_more_intermediates_than_a_path_may_hold(pki: TestPki,
                                                 signature_checks: list[int]) -> None:
    signer, fakes = fake_ca_identity(4)
    store = pki.trust_store(max_path_length=3)
    with pytest.raises(CertificateUntrusted, match="intermediate"):
        store.validate(signer.certificate, fakes, NOW)
    assert signature_checks[0] == 0


def test_unknown_issuer_is_remembered_briefly(pki: TestPki, signature_checks: list[int]) -> None:
    signer, fakes = fake_ca_identity(3)
    store = pki.trust_store()
    with pytest.raises(CertificateUntrusted):
        store.validate(signer.certificate, fakes, NOW)
    with pytest.raises(CertificateUntrusted, match="seen again"):
        store.validate(signer.certificate, fakes, NOW)
    off = pki.trust_store(negative_cache_seconds=0)
    for _ in range(2):
        with pytest.raises(CertificateUntrusted) as info:
            off.validate(signer.certificate, fakes, NOW)
        assert "seen again" not in str(info.value)


def test_impostor_of_a_known_issuer_is_not_remembered(pki: TestPki) -> None:
    """Only "no candidate issuer at all" is cached: a leaf naming the real issuing CA (with its
    key id) but signed by another key is refused, and the genuine cards stay valid."""
    store = pki.trust_store()
    director = pki.identities["director"].certificate
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    aki = director.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    forged = (
        x509.CertificateBuilder().subject_name(director.subject).issuer_name(pki.issuing.subject)
        .public_key(director.public_key()).serial_number(99)
        .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(director.extensions.get_extension_for_class(x509.KeyUsage).value, True)
        .add_extension(aki, critical=False)
        .sign(other, hashes.SHA256())
    )
    for _ in range(2):
        with pytest.raises(CertificateUntrusted) as info:
            store.validate(forged, [], NOW)
        assert "seen again" not in str(info.value)
    store.validate(director, [], NOW)


def test_genuine_chain_from_the_message_still_builds(pki: TestPki) -> None:
    store = signing.trust.TrustStore.from_paths([pki.trust_anchor_paths[0]], pki.crl_paths)
    director = pki.identities["director"].certificate
    result = store.validate(director, [pki.issuing], NOW)
    assert result.path == (director, pki.issuing, pki.root)
