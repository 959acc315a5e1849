"""sign_envelope / EnvelopeVerifier: round trips, interop with xmlsec1 and signxml, every attack.

The attack corpus lives in :mod:`tests.signing.attacks` (shared with the gateway's e2e tests);
each case asserts the exact error class *and* its fault code.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from signing import ns
from signing.algorithms import DigestMethod, SignatureMethod
from signing.errors import (
    AlgorithmNotAllowed,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    CertificateUntrusted,
    ConfigurationError,
    KeyUsageNotAllowed,
    ReplayDetected,
    SecurityHeaderMalformed,
    SignatureCreationError,
    SignatureInvalid,
    SignatureWrapping,
    TimestampExpired,
    TimestampInFuture,
    VerificationError,
    WeakKey,
    XmlMalformed,
)
from signing.parser import parse_xml, serialize
from signing.policy import SecurityPolicy
from signing.testpki import TestPki
from signing.trust import TrustStore
from signing.verifier import EnvelopeVerifier, InMemoryReplayCache, VerifiedMessage
from signing.wsse import (
    complete_envelope_signature,
    prepare_document_signature,
    prepare_envelope_signature,
    sign_document,
    sign_envelope,
)
from tests.signing import attacks
from tests.signing.attacks import ACCEPTED, ATTACKS, Sender, request_envelope

NOW = datetime.now(UTC).replace(microsecond=0)


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("DSMF_TEST_REQUIRE_ALL") == "1":
            pytest.fail(f"{tool} is required (DSMF_TEST_REQUIRE_ALL=1)")
        pytest.skip(f"{tool} is not installed")
    return path


@pytest.fixture(scope="module")
def trust(pki: TestPki) -> TrustStore:
    return pki.trust_store()


@pytest.fixture
def verifier(trust: TrustStore) -> EnvelopeVerifier:
    return EnvelopeVerifier(trust, SecurityPolicy(), InMemoryReplayCache(lambda: NOW), lambda: NOW)


@pytest.fixture(scope="module", params=["director", "gateway"], ids=["rsa-person", "ecdsa-system"])
def sender(request: pytest.FixtureRequest, pki: TestPki) -> Sender:
    return Sender.from_identity(pki.identity(request.param))


def roundtrip(envelope: etree._Element) -> etree._Element:
    """Serialize and parse again with the hardened parser, as the gateway receives it."""
    return parse_xml(serialize(envelope))


def assert_refused(
    verify: Callable[[], object], expected: type[VerificationError], *, match: str | None = None
) -> VerificationError:
    with pytest.raises(VerificationError) as info:
        verify()
    assert type(info.value) is expected, f"{type(info.value).__name__}: {info.value}"
    assert info.value.code == expected.code
    if match is not None:
        assert match in str(info.value)
    return info.value


# --- round trips ---------------------------------------------------------------------------------


def test_round_trip_returns_the_signed_elements(sender: Sender, verifier: EnvelopeVerifier) -> None:
    envelope = request_envelope(message_id="msg-1", headers=(*attacks.DEFAULT_HEADERS, "userId"))
    sign_envelope(envelope, sender.signer(), now=NOW)
    received = roundtrip(envelope)

    result = verifier.verify(received)

    assert isinstance(result, VerifiedMessage)
    assert result.body is received.find(ns.SOAP_BODY)
    assert set(result.signed_headers) == {"client", "service", "id", "protocolVersion", "userId"}
    assert all(
        el.getparent() is received.find(ns.SOAP_HEADER) for el in result.signed_headers.values()
    )
    assert result.message_id == "msg-1"
    assert result.certificate == sender.certificate
    assert result.signed_at == NOW
    assert result.expires_at == NOW + timedelta(seconds=300)


@pytest.mark.parametrize(
    ("method", "digest"),
    [
        (SignatureMethod.RSA_SHA256, DigestMethod.SHA256),
        (SignatureMethod.RSA_SHA512, DigestMethod.SHA384),
        (SignatureMethod.RSA_PSS_SHA256, DigestMethod.SHA256),
        (SignatureMethod.RSA_PSS_SHA512, DigestMethod.SHA512),
    ],
    ids=lambda v: v.name,
)
def test_every_rsa_method_round_trips(
    pki: TestPki, verifier: EnvelopeVerifier, method: SignatureMethod, digest: DigestMethod
) -> None:
    envelope = sign_envelope(
        request_envelope(), pki.signer("employee"), method=method, digest=digest, now=NOW
    )
    assert verifier.verify(roundtrip(envelope)).signature_method is method


@pytest.mark.parametrize(
    "method",
    [SignatureMethod.ECDSA_SHA256, SignatureMethod.ECDSA_SHA384, SignatureMethod.ECDSA_SHA512],
)
def test_every_ecdsa_method_round_trips(
    pki: TestPki, verifier: EnvelopeVerifier, method: SignatureMethod
) -> None:
    envelope = sign_envelope(request_envelope(), pki.signer("gateway"), method=method, now=NOW)
    assert verifier.verify(roundtrip(envelope)).signature_method is method


def test_signed_response_with_request_hash_round_trips(
    pki: TestPki, verifier: EnvelopeVerifier
) -> None:
    envelope = request_envelope(headers=(*attacks.DEFAULT_HEADERS, "requestHash"))
    sign_envelope(envelope, pki.signer("gateway"), now=NOW)
    result = verifier.verify(roundtrip(envelope))
    assert "requestHash" in result.signed_headers


def test_envelope_without_wsu_declaration_still_signs(
    pki: TestPki, verifier: EnvelopeVerifier
) -> None:
    envelope = parse_xml(
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        b'<s:Body><m:Ping xmlns:m="urn:m"/></s:Body></s:Envelope>'
    )
    sign_envelope(envelope, pki.signer("director"), now=NOW)
    result = verifier.verify(roundtrip(envelope))
    assert result.message_id is None
    assert result.signed_headers == {}


def test_sign_envelope_refuses_a_signed_envelope(pki: TestPki) -> None:
    envelope = sign_envelope(request_envelope(), pki.signer("director"), now=NOW)
    with pytest.raises(ConfigurationError):
        sign_envelope(envelope, pki.signer("director"), now=NOW)


def test_remote_signing_completes_the_same_structure(
    pki: TestPki, verifier: EnvelopeVerifier
) -> None:
    """Asan İmza: SignedInfo bytes go out, a bare signature value comes back minutes later."""
    signer = pki.signer("asan")
    envelope = request_envelope()
    pending = prepare_envelope_signature(envelope, signer.certificate, chain=signer.chain, now=NOW)
    h = hashes.Hash(hashes.SHA256())
    h.update(pending.signed_info)
    assert pending.digest == h.finalize()

    value = signer.sign(pending.signed_info, pending.method)  # what the phone returns
    completed = complete_envelope_signature(pending, value)

    assert completed is envelope
    assert verifier.verify(roundtrip(completed)).certificate == signer.certificate


def test_remote_signing_accepts_der_ecdsa_and_refuses_a_wrong_value(
    pki: TestPki, verifier: EnvelopeVerifier
) -> None:
    signer = pki.signer("gateway")
    key = serialization.load_pem_private_key(pki.identity("gateway").key_path.read_bytes(), None)
    pending = prepare_envelope_signature(request_envelope(), signer.certificate, now=NOW)
    with pytest.raises(SignatureCreationError):
        complete_envelope_signature(pending, b"\x01" * 64)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    der = key.sign(pending.signed_info, ec.ECDSA(hashes.SHA256()))
    verifier.verify(roundtrip(complete_envelope_signature(pending, der)))


# --- interoperability -----------------------------------------------------------------------------


def _xmlsec_id_args(envelope: etree._Element) -> list[str]:
    args = []
    for local in sorted({etree.QName(el).localname for el in envelope.iter() if el.get(ns.WSU_ID)}):
        args += ["--id-attr:Id", local]
    return args


def test_xmlsec1_verifies_our_envelope(sender: Sender, tmp_path: Path) -> None:
    xmlsec1 = require("xmlsec1")
    envelope = sign_envelope(request_envelope(), sender.signer(), now=NOW)
    message = tmp_path / "signed.xml"
    message.write_bytes(serialize(envelope))
    cert = tmp_path / "cert.pem"
    cert.write_bytes(sender.certificate.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        [
            xmlsec1,
            "--verify",
            *_xmlsec_id_args(envelope),
            "--pubkey-cert-pem",
            str(cert),
            str(message),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all): 6/6" in result.stderr


def test_signxml_verifies_our_envelope(sender: Sender) -> None:
    from signxml import XMLVerifier

    envelope = sign_envelope(request_envelope(), sender.signer(), now=NOW)
    pem = sender.certificate.public_bytes(serialization.Encoding.PEM).decode()
    results = XMLVerifier().verify(serialize(envelope), x509_cert=pem, expect_references=6)
    assert isinstance(results, list)
    signed = {etree.QName(r.signed_xml).localname for r in results}
    assert signed == {"Timestamp", "client", "service", "id", "protocolVersion", "Body"}


def _xmlsec_template(sender: Sender) -> etree._Element:
    """An envelope with the full Security header, digests and value left for xmlsec1 to fill."""
    envelope = sign_envelope(request_envelope(), sender.signer(), now=NOW)
    for element in envelope.iter(ns.DS_DIGEST_VALUE, ns.DS_SIGNATURE_VALUE):
        element.text = ""
    return envelope


def test_envelope_signed_by_xmlsec1_is_accepted(
    sender: Sender, verifier: EnvelopeVerifier, tmp_path: Path
) -> None:
    xmlsec1 = require("xmlsec1")
    template = _xmlsec_template(sender)
    source = tmp_path / "template.xml"
    source.write_bytes(serialize(template))
    key = tmp_path / "key.pem"
    key.write_bytes(
        sender.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    out = tmp_path / "signed.xml"
    result = subprocess.run(
        [
            xmlsec1,
            "--sign",
            *_xmlsec_id_args(template),
            "--privkey-pem",
            str(key),
            "--output",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    signed = parse_xml(out.read_bytes())
    assert next(signed.iter(ns.DS_SIGNATURE_VALUE)).text  # xmlsec1 did fill it in
    assert verifier.verify(signed).certificate == sender.certificate


def test_the_wrapping_trap_other_libraries_fall_into(
    sender: Sender, verifier: EnvelopeVerifier
) -> None:
    """DESIGN §2: signxml accepts the moved-Body envelope; only our structural checks stop it."""
    from signxml import XMLVerifier

    data = ATTACKS["body_moved_to_header"].craft(sender, now=NOW)
    pem = sender.certificate.public_bytes(serialization.Encoding.PEM).decode()
    XMLVerifier().verify(data, x509_cert=pem, expect_references=6)  # signxml: "fine"
    assert_refused(lambda: verifier.verify(parse_xml(data)), SignatureWrapping)


# --- the attack corpus ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_refused_with_its_code(
    name: str, sender: Sender, verifier: EnvelopeVerifier
) -> None:
    attack = ATTACKS[name]
    data = attack.craft(sender, now=NOW)
    assert_refused(lambda: verifier.verify(parse_xml(data)), attack.expected)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_refused_alike_without_the_fast_reader(
    name: str, sender: Sender, verifier: EnvelopeVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plain-SignedInfo fast path never changes an outcome; the full reader decides alone."""
    import signing.verifier as verifier_module

    monkeypatch.setattr(verifier_module, "_read_plain_signature", lambda signature, policy: None)
    attack = ATTACKS[name]
    data = attack.craft(sender, now=NOW)
    assert_refused(lambda: verifier.verify(parse_xml(data)), attack.expected)


def test_fast_and_full_readers_agree_on_plain_signatures(
    sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signing.verifier as verifier_module

    envelope = sign_envelope(request_envelope(), sender.signer(), now=NOW)
    signature = next(roundtrip(envelope).iter(ns.DS_SIGNATURE))
    fast = verifier_module._read_plain_signature(signature, SecurityPolicy())
    monkeypatch.setattr(verifier_module, "_read_plain_signature", lambda signature, policy: None)
    full = verifier_module._read_signature(signature, SecurityPolicy(), document=False)
    assert fast is not None
    assert (fast.method, fast.value, fast.references) == (full.method, full.value, full.references)


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_harmless_variant_is_accepted(
    name: str, sender: Sender, verifier: EnvelopeVerifier
) -> None:
    data = attacks.craft_accepted(name, sender, now=NOW)
    result = verifier.verify(parse_xml(data))
    assert etree.QName(result.body).localname == "Body"


def test_attacks_cover_every_refusal_class() -> None:
    covered = {a.expected for a in ATTACKS.values()}
    assert {
        SignatureWrapping,
        SecurityHeaderMalformed,
        AlgorithmNotAllowed,
        SignatureInvalid,
        TimestampExpired,
        TimestampInFuture,
    } <= covered


# --- certificates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        ("expired", CertificateExpired),
        ("not_yet_valid", CertificateNotYetValid),
        ("revoked", CertificateRevoked),
        ("wrong_usage", KeyUsageNotAllowed),
        ("foreign", CertificateUntrusted),
        ("rsa1024", WeakKey),
    ],
)
def test_bad_certificates_are_refused(
    pki: TestPki, verifier: EnvelopeVerifier, identity: str, expected: type[VerificationError]
) -> None:
    envelope = sign_envelope(request_envelope(), pki.signer(identity), now=NOW)
    assert_refused(lambda: verifier.verify(roundtrip(envelope)), expected)


def test_rsa1024_is_weak_even_with_a_lenient_trust_store(pki: TestPki) -> None:
    lenient = pki.trust_store(min_rsa_bits=1024)
    verifier = EnvelopeVerifier(lenient, SecurityPolicy(), None, lambda: NOW)
    envelope = sign_envelope(request_envelope(), pki.signer("rsa1024"), now=NOW)
    assert_refused(lambda: verifier.verify(roundtrip(envelope)), WeakKey)


def test_certificate_is_checked_before_the_signature(
    pki: TestPki, verifier: EnvelopeVerifier
) -> None:
    data = ATTACKS["signature_value_tampered"].craft(
        Sender.from_identity(pki.identity("foreign")), now=NOW
    )
    assert_refused(lambda: verifier.verify(parse_xml(data)), CertificateUntrusted)


# --- freshness and replay ------------------------------------------------------------------------


def test_timestamp_within_skew_is_accepted(pki: TestPki, verifier: EnvelopeVerifier) -> None:
    ahead = sign_envelope(
        request_envelope(), pki.signer("director"), now=NOW + timedelta(seconds=50)
    )
    verifier.verify(roundtrip(ahead))
    old = sign_envelope(
        request_envelope(), pki.signer("director"), now=NOW - timedelta(seconds=350)
    )
    verifier.verify(roundtrip(old))  # expired 50 s ago, within the 60 s skew


def test_timestamp_just_past_skew_is_expired(pki: TestPki, verifier: EnvelopeVerifier) -> None:
    old = sign_envelope(
        request_envelope(), pki.signer("director"), now=NOW - timedelta(seconds=361)
    )
    assert_refused(lambda: verifier.verify(roundtrip(old)), TimestampExpired)


def test_replayed_message_is_refused(pki: TestPki, verifier: EnvelopeVerifier) -> None:
    envelope = sign_envelope(request_envelope(message_id="once"), pki.signer("director"), now=NOW)
    data = serialize(envelope)
    verifier.verify(parse_xml(data))
    assert_refused(lambda: verifier.verify(parse_xml(data)), ReplayDetected)
    # Same id, new signature: still a replay of the message id.
    again = sign_envelope(request_envelope(message_id="once"), pki.signer("director"), now=NOW)
    assert_refused(lambda: verifier.verify(roundtrip(again)), ReplayDetected)


def test_replay_cache_forgets_after_expiry() -> None:
    clock = [NOW]
    cache = InMemoryReplayCache(lambda: clock[0])
    assert cache.remember("a", NOW + timedelta(seconds=360))
    assert not cache.remember("a", NOW + timedelta(seconds=360))
    clock[0] = NOW + timedelta(seconds=361)
    assert cache.remember("a", clock[0] + timedelta(seconds=360))


def test_verifier_without_replay_cache_accepts_repeats(trust: TrustStore, pki: TestPki) -> None:
    verifier = EnvelopeVerifier(trust, SecurityPolicy(), None, lambda: NOW)
    data = serialize(
        sign_envelope(request_envelope(message_id="x"), pki.signer("director"), now=NOW)
    )
    verifier.verify(parse_xml(data))
    verifier.verify(parse_xml(data))


# --- policy ---------------------------------------------------------------------------------------


def test_policy_from_config_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigurationError, match="unknown"):
        SecurityPolicy.from_config({"max_timestamp_lifetime": 300, "allow_sha1": True})


def test_policy_from_config_reads_values() -> None:
    policy = SecurityPolicy.from_config(
        {
            "max_timestamp_lifetime": 120,
            "clock_skew": 30,
            "signature_methods": [SignatureMethod.ECDSA_SHA256.value],
            "required_header_refs": ["id", "client"],
        }
    )
    assert policy.max_timestamp_lifetime == timedelta(seconds=120)
    assert policy.signature_methods == {SignatureMethod.ECDSA_SHA256.value}


@pytest.mark.parametrize(
    "config",
    [
        {"signature_methods": ["http://www.w3.org/2000/09/xmldsig#rsa-sha1"]},
        {"digest_methods": ["http://www.w3.org/2000/09/xmldsig#sha1"]},
        {"canonicalization_methods": [ns.C14N10]},
        {"transforms": ["http://www.w3.org/TR/1999/REC-xslt-19991116"]},
        {"min_rsa_bits": 1024},
        {"required_header_refs": ["sessionToken"]},
        {"clock_skew": "60"},
    ],
)
def test_policy_cannot_be_configured_outside_the_profile(config: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SecurityPolicy.from_config(config)


def test_narrower_policy_refuses_rsa(pki: TestPki, trust: TrustStore) -> None:
    policy = SecurityPolicy(signature_methods=frozenset({SignatureMethod.ECDSA_SHA256.value}))
    verifier = EnvelopeVerifier(trust, policy, None, lambda: NOW)
    envelope = sign_envelope(request_envelope(), pki.signer("director"), now=NOW)
    assert_refused(lambda: verifier.verify(roundtrip(envelope)), AlgorithmNotAllowed)


def test_header_signing_follows_the_policy(pki: TestPki, trust: TrustStore) -> None:
    """Headers the policy requires must be signed; others may be, and are reported as signed."""
    policy = SecurityPolicy(required_header_refs=frozenset({"id"}))
    verifier = EnvelopeVerifier(trust, policy, None, lambda: NOW)
    body_only = sign_envelope(request_envelope(), pki.signer("director"), now=NOW, sign_headers=[])
    assert_refused(lambda: verifier.verify(roundtrip(body_only)), SignatureWrapping, match="id")
    only_id = sign_envelope(
        request_envelope(), pki.signer("director"), now=NOW, sign_headers=[ns.q(ns.XRD, "id")]
    )
    assert set(verifier.verify(roundtrip(only_id)).signed_headers) == {"id"}
    full = sign_envelope(request_envelope(), pki.signer("director"), now=NOW)
    assert set(verifier.verify(roundtrip(full)).signed_headers) == set(attacks.DEFAULT_HEADERS)


def test_unsigned_message_id_replay_keys_on_the_signature(
    pki: TestPki, trust: TrustStore
) -> None:
    """Without a signed id, the same signature under another (unsigned) id is still a replay."""
    verifier = EnvelopeVerifier(trust, SecurityPolicy(), InMemoryReplayCache(lambda: NOW),
                                lambda: NOW)
    envelope = sign_envelope(request_envelope(), pki.signer("director"), now=NOW, sign_headers=[])
    first = verifier.verify(roundtrip(envelope))
    assert first.message_id is None and first.replay_id.startswith("signature:")
    message_id = envelope.find(f"{ns.SOAP_HEADER}/{ns.q(ns.XRD, 'id')}")
    assert message_id is not None
    message_id.text = "another-id"
    assert_refused(lambda: verifier.verify(roundtrip(envelope)), ReplayDetected)


def test_signature_value_is_bound_to_signed_info(
    sender: Sender, verifier: EnvelopeVerifier
) -> None:
    envelope = sign_envelope(request_envelope(), sender.signer(), now=NOW)
    value = next(envelope.iter(ns.DS_SIGNATURE_VALUE))
    assert value.text and base64.b64decode(value.text)


# --- standalone documents (the notice, a stored application) --------------------------------------

NOTICE = (
    '<n:Notice xmlns:n="urn:az:dsmf:notice:v1" n:version="1">\n'
    "  <n:Ssn>1234567890123</n:Ssn>\n"
    "  <n:Person>Əliyev Rəşad</n:Person>\n"
    "</n:Notice>"
).encode()


def test_document_round_trip(sender: Sender, verifier: EnvelopeVerifier) -> None:
    document = sign_document(parse_xml(NOTICE), sender.signer())
    received = parse_xml(serialize(document))
    result = verifier.verify_document(received)
    assert result.document is received
    assert result.certificate == sender.certificate
    assert result.intermediates  # the issuing CA travels in X509Data


def test_document_can_be_verified_at_a_past_moment(pki: TestPki, trust: TrustStore) -> None:
    verifier = EnvelopeVerifier(trust, SecurityPolicy(), None, lambda: NOW)
    document = parse_xml(serialize(sign_document(parse_xml(NOTICE), pki.signer("director"))))
    result = verifier.verify_document(document, at=NOW - timedelta(days=1))
    assert result.verified_at == NOW - timedelta(days=1)


def test_xmlsec1_verifies_our_document(sender: Sender, pki: TestPki, tmp_path: Path) -> None:
    xmlsec1 = require("xmlsec1")
    path = tmp_path / "notice.xml"
    path.write_bytes(serialize(sign_document(parse_xml(NOTICE), sender.signer())))
    anchors = [a for p in pki.trust_anchor_paths for a in ("--trusted-pem", str(p))]
    result = subprocess.run(
        [xmlsec1, "--verify", *anchors, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_signxml_verifies_our_document(sender: Sender) -> None:
    from signxml import XMLVerifier

    data = serialize(sign_document(parse_xml(NOTICE), sender.signer()))
    pem = sender.certificate.public_bytes(serialization.Encoding.PEM).decode()
    result = XMLVerifier().verify(data, x509_cert=pem)
    assert not isinstance(result, list)
    assert etree.QName(result.signed_xml).localname == "Notice"


def _pem_key(sender: Sender) -> bytes:
    return sender.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_document_signed_by_signxml_is_accepted(sender: Sender, verifier: EnvelopeVerifier) -> None:
    from signxml import XMLSigner, methods
    from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm
    from signxml.algorithms import SignatureMethod as SignxmlMethod

    method = (
        SignxmlMethod.RSA_SHA256
        if isinstance(sender.key, rsa.RSAPrivateKey)
        else SignxmlMethod.ECDSA_SHA256
    )
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm=method,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    cert_pem = sender.certificate.public_bytes(serialization.Encoding.PEM).decode()
    signed = signer.sign(etree.fromstring(NOTICE), key=_pem_key(sender), cert=[cert_pem])
    result = verifier.verify_document(parse_xml(etree.tostring(signed)))
    assert result.certificate == sender.certificate


def test_document_signed_by_xmlsec1_is_accepted(
    sender: Sender, verifier: EnvelopeVerifier, tmp_path: Path
) -> None:
    xmlsec1 = require("xmlsec1")
    pending = prepare_document_signature(parse_xml(NOTICE), sender.certificate, chain=sender.chain)
    for element in pending.root.iter(ns.DS_DIGEST_VALUE, ns.DS_SIGNATURE_VALUE):
        element.text = ""
    template = tmp_path / "template.xml"
    template.write_bytes(serialize(pending.root))
    key = tmp_path / "key.pem"
    key.write_bytes(_pem_key(sender))
    out = tmp_path / "signed.xml"
    result = subprocess.run(
        [xmlsec1, "--sign", "--privkey-pem", str(key), "--output", str(out), str(template)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert verifier.verify_document(parse_xml(out.read_bytes())).certificate == sender.certificate


def _signed_notice(pki: TestPki) -> etree._Element:
    return parse_xml(serialize(sign_document(parse_xml(NOTICE), pki.signer("director"))))


def test_tampered_document_is_invalid(pki: TestPki, verifier: EnvelopeVerifier) -> None:
    document = _signed_notice(pki)
    document[0].text = "9999999999999"
    assert_refused(lambda: verifier.verify_document(document), SignatureInvalid)


def test_document_signature_must_sit_on_the_root(pki: TestPki, verifier: EnvelopeVerifier) -> None:
    document = _signed_notice(pki)
    signature = document.find(ns.DS_SIGNATURE)
    assert signature is not None
    document[0].append(signature)
    assert_refused(lambda: verifier.verify_document(document), SignatureWrapping)


def test_document_with_a_second_signature_is_wrapping(
    pki: TestPki, verifier: EnvelopeVerifier
) -> None:
    document = _signed_notice(pki)
    holder = etree.SubElement(document, "{urn:attacker}Holder")
    holder.append(parse_xml(serialize(sign_document(parse_xml(NOTICE), pki.signer("deputy")))))
    assert_refused(lambda: verifier.verify_document(document), SignatureWrapping)


def test_document_reference_to_a_part_is_wrapping(pki: TestPki, verifier: EnvelopeVerifier) -> None:
    """A signature over one child only must not pass for the whole document."""
    sender = Sender.from_identity(pki.identity("director"))
    document = parse_xml(NOTICE)
    document[0].set("Id", "part")
    sign_document(document, sender.signer())
    reference = next(document.iter(ns.DS_REFERENCE))
    reference.set("URI", "#part")
    attacks.redigest(document)
    attacks.resign(document, sender.key)
    assert_refused(
        lambda: verifier.verify_document(parse_xml(serialize(document))), SignatureWrapping
    )


def test_document_reference_to_the_root_id_is_accepted(
    pki: TestPki, verifier: EnvelopeVerifier
) -> None:
    sender = Sender.from_identity(pki.identity("director"))
    document = parse_xml(NOTICE)
    document.set("Id", "notice-1")
    sign_document(document, sender.signer())
    next(document.iter(ns.DS_REFERENCE)).set("URI", "#notice-1")
    attacks.resign(document, sender.key)
    verifier.verify_document(parse_xml(serialize(document)))


def test_document_signed_with_a_bad_certificate_is_refused(
    pki: TestPki, verifier: EnvelopeVerifier
) -> None:
    document = parse_xml(serialize(sign_document(parse_xml(NOTICE), pki.signer("revoked"))))
    assert_refused(lambda: verifier.verify_document(document), CertificateRevoked)


def test_document_without_x509_certificate_is_malformed(
    pki: TestPki, verifier: EnvelopeVerifier
) -> None:
    document = _signed_notice(pki)
    key_info = next(document.iter(ns.DS_KEY_INFO))
    key_info.clear()
    etree.SubElement(key_info, ns.q(ns.DS, "KeyName")).text = "director"
    assert_refused(lambda: verifier.verify_document(document), SecurityHeaderMalformed)


def test_text_after_the_signature_is_signed_content(
    pki: TestPki, verifier: EnvelopeVerifier
) -> None:
    """The enveloped transform removes the Signature element, not the text that follows it."""
    document = parse_xml(NOTICE)
    sign_document(document, pki.signer("director"))
    signature = document.find(ns.DS_SIGNATURE)
    assert signature is not None
    signature.tail = "\n"  # a pretty-printer's newline after the signature...
    with pytest.raises(SignatureInvalid):
        verifier.verify_document(parse_xml(serialize(document)))  # ...is signed content
    signature.tail = None
    verifier.verify_document(parse_xml(serialize(document)))


def test_relative_namespace_in_a_signed_body_is_malformed_xml(
    pki: TestPki, verifier: EnvelopeVerifier
) -> None:
    """C14N forbids relative namespace URIs (xml-crypto's valid_signature_wsu.xml uses them)."""
    sender = Sender.from_identity(pki.identity("director"))
    data = attacks.serialize(attacks.signed(sender, now=NOW)).replace(
        b'xmlns:r="urn:az:dsmf:insured-registration:v1"', b'xmlns:r="relative"'
    )
    assert_refused(lambda: verifier.verify(parse_xml(data)), XmlMalformed)


def test_clock_must_be_timezone_aware(trust: TrustStore, pki: TestPki) -> None:
    verifier = EnvelopeVerifier(trust, SecurityPolicy(), None, lambda: datetime(2030, 1, 1))
    envelope = sign_envelope(request_envelope(), pki.signer("director"), now=NOW)
    with pytest.raises(ConfigurationError):
        verifier.verify(roundtrip(envelope))


def test_document_signed_info_depends_only_on_the_key_type(pki: TestPki) -> None:
    """The Asan İmza flow sends the digest before the holder's certificate is known."""
    first = prepare_document_signature(parse_xml(NOTICE), pki.identity("asan").certificate)
    second = prepare_document_signature(parse_xml(NOTICE), pki.identity("director").certificate)
    assert first.signed_info == second.signed_info
    assert first.digest == second.digest


@pytest.mark.parametrize("kind", ["envelope", "document"])
def test_signed_info_is_written_in_canonical_form(sender: Sender, kind: str) -> None:
    """SignedInfo is generated as text; it must equal lxml's exc-C14N of what was inserted."""
    from signing.parser import canonicalize

    if kind == "envelope":
        pending = prepare_envelope_signature(
            request_envelope(), sender.certificate, chain=sender.chain, now=NOW
        )
    else:
        pending = prepare_document_signature(parse_xml(NOTICE), sender.certificate)
    signed_info = pending.signature.find(ns.DS_SIGNED_INFO)
    assert signed_info is not None
    assert canonicalize(signed_info) == pending.signed_info
    reparsed = parse_xml(serialize(pending.root)).find(f".//{ns.DS_SIGNED_INFO}")
    assert reparsed is not None and canonicalize(reparsed) == pending.signed_info


def test_comment_truncation_does_not_shorten_what_verify_returns(
    sender: Sender, verifier: EnvelopeVerifier
) -> None:
    """CVE-2017-11427 class: a comment spliced into signed text must not cut the value read."""
    data = attacks.craft_accepted(
        "comment_truncation_in_signed_text",
        sender,
        now=NOW,
        base=lambda: request_envelope(message_id="msg-0123456789"),
    )
    assert b"<!--" in data
    result = verifier.verify(parse_xml(data))
    assert result.message_id == "msg-0123456789"
    assert result.signed_headers["id"].text == "msg-0123456789"
    voen = next(result.body.iter("{urn:az:dsmf:insured-registration:v1}voen"))
    assert voen.text == "1403567891"


def test_comment_in_signature_of_a_tree_built_elsewhere_is_malformed(
    sender: Sender, verifier: EnvelopeVerifier
) -> None:
    """parse_xml drops comments; a tree from another parser still gets no comment through."""
    data = attacks.craft_accepted("comment_in_digest_value", sender, now=NOW)
    tree = etree.fromstring(data)  # lxml's default parser keeps comments
    assert_refused(lambda: verifier.verify(tree), SecurityHeaderMalformed)
    assert verifier.verify(parse_xml(data)).certificate == sender.certificate
