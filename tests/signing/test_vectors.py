"""Every public XML-DSig vector in ``vectors/`` (beside this file) through our verifier, one test
id each. The vectors are copied into the repository with their origins' READMEs and licences.

``vectors_expected.json`` holds, per file: what the folder README says (``readme``: verify /
fail / reject / unsupported / depends / data / undocumented) and what *we* answer
(``expected``: ``verify`` or the exact error class). Invariants checked on top of the table:

* nothing a README calls ``fail`` or ``reject`` is ever accepted;
* a vector we accept is one its README says verifies, and it is inside our profile
  (exclusive C14N, SHA-2 digests, RSA ≥ 2048 / PSS / ECDSA, an X.509 certificate);
* every refusal is one of our :class:`~signing.errors.VerificationError` classes — no crash,
  no third-party exception.

Most "verify" vectors are refused *by policy* (SHA-1, HMAC, DSA, inclusive C14N, enveloping
``ds:Object``, KeyValue-only, RSA-1024...), with the reason recorded in the table. Trust here is
a pin on the certificate the vector's README names (the test is about XML-DSig, not PKI); no
other certificate is trusted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from signing import errors, ns
from signing.errors import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateUntrusted,
    SigningError,
    VerificationError,
)
from signing.parser import canonicalize, parse_xml
from signing.verifier import EnvelopeVerifier

VECTORS = Path(__file__).with_name("vectors")
TABLE = Path(__file__).with_name("vectors_expected.json")

ENTRIES: list[dict[str, Any]] = json.loads(TABLE.read_text(encoding="utf-8"))


class PinnedTrust:
    """Trusts exactly the pinned certificates (by public key), at their validity dates."""

    def __init__(self, pinned: Sequence[x509.Certificate]) -> None:
        self._keys = [c.public_key() for c in pinned]

    def validate(
        self, certificate: x509.Certificate, intermediates: Sequence[x509.Certificate], at: datetime
    ) -> None:
        if certificate.public_key() not in self._keys:
            raise CertificateUntrusted("not the pinned certificate")
        if certificate.not_valid_after_utc < at:
            raise CertificateExpired(f"expired {certificate.not_valid_after_utc}")
        if certificate.not_valid_before_utc > at:
            raise CertificateNotYetValid(f"valid from {certificate.not_valid_before_utc}")


def outcome_of(entry: dict[str, Any]) -> str:
    """``"verify"`` or the name of the error class our verifier answers with."""
    pins = []
    if "pin" in entry:
        pins = x509.load_pem_x509_certificates((VECTORS / entry["pin"]).read_bytes())
    verifier = EnvelopeVerifier(PinnedTrust(pins), clock=lambda: datetime.now(UTC))
    try:
        root = parse_xml((VECTORS / entry["path"]).read_bytes())
        if root.tag in (ns.SOAP_ENVELOPE, ns.q(ns.SOAP12, "Envelope")):
            verifier.verify(root)
        else:
            verifier.verify_document(root)
    except SigningError as exc:
        return type(exc).__name__
    return "verify"


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["path"] for e in ENTRIES])
def test_vector(entry: dict[str, Any]) -> None:
    outcome = outcome_of(entry)
    assert outcome == entry["expected"], f"{entry['path']}: {outcome} ({entry['note']})"
    if entry["readme"] in ("fail", "reject"):
        assert outcome != "verify"
    if outcome == "verify":
        assert entry["readme"] == "verify"
    else:
        assert issubclass(getattr(errors, outcome), VerificationError)


def test_table_covers_every_vector_file() -> None:
    on_disk = {p.relative_to(VECTORS).as_posix() for p in VECTORS.rglob("*.xml")}
    assert on_disk == {e["path"] for e in ENTRIES}


def test_some_vectors_are_inside_the_profile_and_verify() -> None:
    assert any(e["expected"] == "verify" for e in ENTRIES)


def test_exclusive_c14n_matches_santuario_reference_output() -> None:
    folder = VECTORS / "santuario/org/apache/xml/security/c14n/inExcl"
    envelope = parse_xml((folder / "plain-soap-1.1.xml").read_bytes())
    body = envelope.find(ns.SOAP_BODY)
    assert body is not None
    assert canonicalize(body) == (folder / "plain-soap-c14nized.xml").read_bytes()
