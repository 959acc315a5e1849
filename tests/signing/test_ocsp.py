"""OCSP as a revocation source, against the OCSP responder simulator over HTTP on loopback.

Real OCSP messages both ways (cryptography's ``x509.ocsp``): the request with a nonce, the
response signed by the issuing CA or by a delegated responder. Each way a response can be
untrustworthy makes the status UNKNOWN, and the certificate is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.wsgi_server import serve_in_thread
from signing.errors import CertificateRevoked, RevocationUnknown
from signing.ocsp import OcspConfig, OcspRevocationChecker
from signing.testpki import TestPki
from signing.trust import CrlRevocationChecker, RevocationChecker, RevocationStatus, TrustStore
from simulators.ocsp import PATH, OcspResponder

NOW = datetime.now(UTC)


@pytest.fixture
def responder(pki: TestPki) -> Iterator[tuple[OcspResponder, str]]:
    app = OcspResponder.from_test_pki(pki.directory)
    server = serve_in_thread(app)
    try:
        yield app, server.url.rstrip("/") + PATH
    finally:
        server.stop()


def store(pki: TestPki, *checkers: RevocationChecker, **options: object) -> TrustStore:
    return TrustStore.from_paths(pki.trust_anchor_paths, [], revocation_checkers=list(checkers),
                                 **options)  # type: ignore[arg-type]


def ocsp(url: str, **options: object) -> OcspRevocationChecker:
    return OcspRevocationChecker(OcspConfig(url=url, **options))  # type: ignore[arg-type]


@pytest.mark.parametrize("who", ["delegated", "ca"])
def test_good_and_revoked_from_an_authorised_responder(
    pki: TestPki, responder: tuple[OcspResponder, str], who: str
) -> None:
    app, url = responder
    app.set_responder(who)  # type: ignore[arg-type]
    trust = store(pki, ocsp(url))
    result = trust.validate(pki.identities["director"].certificate, [], NOW)
    assert [r.status for r in result.revocation] == [RevocationStatus.GOOD]
    assert result.revocation[0].source.startswith("ocsp:")
    with pytest.raises(CertificateRevoked, match="key_compromise"):
        trust.validate(pki.identities["revoked"].certificate, [], NOW)


def test_responder_without_the_ocsp_signing_purpose_is_not_believed(
    pki: TestPki, responder: tuple[OcspResponder, str]
) -> None:
    """A certificate the CA issued for something else may not speak for the CA."""
    app, url = responder
    app.set_responder("unauthorised")
    with pytest.raises(RevocationUnknown, match="authorised"):
        store(pki, ocsp(url)).validate(pki.identities["director"].certificate, [], NOW)


def test_replayed_response_with_another_nonce_is_refused(
    pki: TestPki, responder: tuple[OcspResponder, str]
) -> None:
    """An old GOOD answer (e.g. from before the revocation) replayed by a man in the middle."""
    app, url = responder
    store(pki, ocsp(url)).validate(pki.identities["director"].certificate, [], NOW)
    app.replay_previous = True
    with pytest.raises(RevocationUnknown, match="nonce"):
        store(pki, ocsp(url)).validate(pki.identities["director"].certificate, [], NOW)


def test_nonce_less_answers_only_when_allowed(
    pki: TestPki, responder: tuple[OcspResponder, str]
) -> None:
    app, url = responder
    app.echo_nonce = False
    director = pki.identities["director"].certificate
    with pytest.raises(RevocationUnknown, match="nonce"):
        store(pki, ocsp(url)).validate(director, [], NOW)
    store(pki, ocsp(url, require_nonce=False)).validate(director, [], NOW)


def test_answers_are_cached_until_next_update(
    pki: TestPki, responder: tuple[OcspResponder, str]
) -> None:
    app, url = responder
    checker = ocsp(url)
    director = pki.identities["director"].certificate
    now = datetime.now(UTC)
    first = checker.check(director, pki.issuing, now)
    assert first.status is RevocationStatus.GOOD
    assert first.valid_until is not None and first.valid_until > now
    served = app.requests_served
    again = checker.check(director, pki.issuing, now + timedelta(minutes=1))
    assert again.status is RevocationStatus.GOOD and app.requests_served == served
    # After nextUpdate the cached answer is not used for that time.
    checker.check(director, pki.issuing, first.valid_until + timedelta(seconds=1))
    assert app.requests_served == served + 1


def test_sha256_cert_id(pki: TestPki, responder: tuple[OcspResponder, str]) -> None:
    _, url = responder
    trust = store(pki, ocsp(url, cert_id_hash="sha256"))
    with pytest.raises(CertificateRevoked):
        trust.validate(pki.identities["revoked"].certificate, [], NOW)


def test_responder_down_is_unknown_then_the_next_source_decides(
    pki: TestPki, responder: tuple[OcspResponder, str]
) -> None:
    app, url = responder
    down = ocsp("http://127.0.0.1:9/ocsp", timeout_seconds=2)
    director = pki.identities["director"].certificate
    with pytest.raises(RevocationUnknown, match="could not be asked"):
        store(pki, down).validate(director, [], NOW)
    # Configured order: OCSP first, the CRL as the fall-back.
    crl = CrlRevocationChecker(pki.crl_paths)
    result = store(pki, down, crl).validate(director, [], NOW)
    assert [r.status for r in result.revocation] == [RevocationStatus.GOOD]
    assert result.revocation[0].source.startswith("crl:")
    # CRL first: the OCSP responder is not asked when the CRL answers.
    served = app.requests_served
    store(pki, crl, ocsp(url)).validate(director, [], NOW)
    assert app.requests_served == served
    # Soft fail only when explicitly configured.
    lax = store(pki, down, require_crl=False)
    assert [r.status for r in lax.validate(director, [], NOW).revocation] == [
        RevocationStatus.UNKNOWN]


def test_certificate_of_another_issuer_is_unauthorised(
    pki: TestPki, responder: tuple[OcspResponder, str]
) -> None:
    """The intermediate (issued by the root) is not this responder's: no answer counts."""
    _, url = responder
    trust = TrustStore.from_paths([pki.trust_anchor_paths[0]], [],
                                  revocation_checkers=[ocsp(url)])
    with pytest.raises(RevocationUnknown, match="UNAUTHORIZED"):
        trust.validate(pki.identities["director"].certificate, [pki.issuing], NOW)


def test_simulators_start_the_ocsp_responder_when_asked(pki: TestPki) -> None:
    from simulators.runner import start_simulators

    with start_simulators(pki.directory, approve_delay=0.1, ocsp=True) as sims:
        assert sims.ocsp_url is not None
        trust = store(pki, ocsp(sims.ocsp_url))
        trust.validate(pki.identities["director"].certificate, [], NOW)
    with start_simulators(pki.directory, approve_delay=0.1) as sims:
        assert sims.ocsp_url is None
