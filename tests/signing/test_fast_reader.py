"""The fast SignedInfo reader never changes an outcome (issue #16, item 4).

``signing.verifier`` reads a plain ``SignedInfo`` with one regular expression over its canonical
bytes and anything else element by element. The fast reader only ever accepts (with the policy's
own URIs) or hands over; the full reader decides every refusal. Here every attack of the corpus,
every harmless variant and pairs of attacks applied to one message go through the verifier with
and without the fast reader, under the default policy and under narrower ones, and the outcomes
(accepted, or the same error class, code and reason) must be equal.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

import signing.verifier as verifier_module
from signing import ns
from signing.algorithms import DigestMethod, SignatureMethod
from signing.errors import VerificationError
from signing.parser import parse_xml
from signing.policy import SecurityPolicy
from signing.testpki import TestPki
from signing.trust import TrustStore
from signing.verifier import EnvelopeVerifier
from tests.signing import attacks
from tests.signing.attacks import ACCEPTED, ATTACKS, Attack, Sender

NOW = datetime.now(UTC).replace(microsecond=0)

POLICIES = {
    "default": SecurityPolicy(),
    # Narrower than the fast reader's shape: each must refuse exactly as the full reader does.
    "no-transforms": SecurityPolicy(transforms=frozenset()),
    "no-enveloped": SecurityPolicy(transforms=frozenset({ns.EXC_C14N})),
    "no-c14n": SecurityPolicy(canonicalization_methods=frozenset()),
    "sha512-only": SecurityPolicy(digest_methods=frozenset({DigestMethod.SHA512.value})),
    "pss-only": SecurityPolicy(
        signature_methods=frozenset({SignatureMethod.RSA_PSS_SHA256.value})
    ),
    "three-references": SecurityPolicy(max_references=3),
}

Outcome = tuple[str, str, str]


def outcome(verifier: EnvelopeVerifier, data: bytes) -> Outcome:
    try:
        verifier.verify(parse_xml(data))
    except VerificationError as exc:
        return (type(exc).__name__, exc.code, str(exc))
    return ("accepted", "", "")


def both_outcomes(
    trust: TrustStore, policy: SecurityPolicy, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> tuple[Outcome, Outcome]:
    verifier = EnvelopeVerifier(trust, policy, None, lambda: NOW)
    with_fast = outcome(verifier, data)
    with monkeypatch.context() as m:
        m.setattr(verifier_module, "_read_plain_signature", lambda signature, policy: None)
        full_only = outcome(verifier, data)
    return with_fast, full_only


@pytest.fixture(scope="module")
def trust(pki: TestPki) -> TrustStore:
    return pki.trust_store()


@pytest.fixture(scope="module", params=["director", "gateway"], ids=["rsa", "ecdsa"])
def sender(request: pytest.FixtureRequest, pki: TestPki) -> Sender:
    return Sender.from_identity(pki.identity(request.param))


def messages(sender: Sender) -> Iterator[tuple[str, bytes]]:
    yield "plain", attacks.serialize(attacks.signed(sender, now=NOW))
    for name, attack in sorted(ATTACKS.items()):
        yield name, attack.craft(sender, now=NOW)
    for name in sorted(ACCEPTED):
        yield name, attacks.craft_accepted(name, sender, now=NOW)


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
def test_every_attack_and_variant_has_one_outcome(
    policy_name: str, sender: Sender, trust: TrustStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    differ = {}
    for name, data in messages(sender):
        fast, full = both_outcomes(trust, POLICIES[policy_name], data, monkeypatch)
        if fast != full:
            differ[name] = (fast, full)
    assert differ == {}


def _combined(first: Attack, second: Attack, sender: Sender) -> bytes | None:
    """Both mutations on one message (re-signed after each that asks for it), or None when the
    second no longer applies to what the first left (e.g. the Signature is gone)."""
    envelope = attacks.signed(sender, now=NOW)
    try:
        for attack in (first, second):
            attack.mutate(attacks.parts(envelope), sender)
            if attack.resign:
                attacks.refresh(envelope, sender)
    except (AssertionError, LookupError, AttributeError, TypeError, ValueError, StopIteration):
        return None
    return attacks.serialize(envelope)


# The attacks that touch SignedInfo or what the readers look at; pairs of them are the
# multi-defect messages where an early refusal of one reader could differ from the other's.
_SIGNED_INFO_ATTACKS = sorted(
    name for name, a in ATTACKS.items()
    if a.resign or any(word in name for word in (
        "digest", "signature", "method", "hmac", "transform", "keyinfo", "retrieval", "object",
    ))
)


def test_pairs_of_attacks_have_one_outcome(
    pki: TestPki, trust: TrustStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = Sender.from_identity(pki.identity("director"))
    tried = 0
    differ = {}
    for first, second in itertools.permutations(_SIGNED_INFO_ATTACKS, 2):
        data = _combined(ATTACKS[first], ATTACKS[second], sender)
        if data is None:
            continue
        tried += 1
        for policy_name in ("default", "no-enveloped"):
            fast, full = both_outcomes(trust, POLICIES[policy_name], data, monkeypatch)
            if fast != full:
                differ[(first, second, policy_name)] = (fast, full)
    assert tried > 500
    assert differ == {}


def test_fast_reader_result_equals_the_full_readers(sender: Sender) -> None:
    """Where the fast reader accepts, it reads exactly what the full reader reads."""
    for name, data in messages(sender):
        signature = next(parse_xml(data).iter(ns.DS_SIGNATURE), None)
        if signature is None:
            continue
        for policy in POLICIES.values():
            fast = verifier_module._read_plain_signature(signature, policy)
            if fast is None:
                continue
            full = verifier_module._read_full_signature(signature, policy, document=False)
            assert (fast.method, fast.value, fast.c14n_prefixes, fast.references) == (
                full.method, full.value, full.c14n_prefixes, full.references
            ), name


def test_node_soap_shape_takes_the_fast_path(sender: Sender) -> None:
    """The enveloped + exc-C14N transforms node-soap sends are read fast, as the policy allows."""
    data = attacks.craft_accepted("enveloped_transform_on_every_reference", sender, now=NOW)
    signature = next(parse_xml(data).iter(ns.DS_SIGNATURE))
    assert verifier_module._read_plain_signature(signature, SecurityPolicy()) is not None
    narrow = SecurityPolicy(transforms=frozenset({ns.EXC_C14N}))
    assert verifier_module._read_plain_signature(signature, narrow) is None
