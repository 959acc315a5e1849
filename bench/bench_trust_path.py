"""CPU cost of refusing a request whose signer chains to attacker-made "CAs" (issue #16 §5).

    python bench/bench_trust_path.py [--rounds 5]

For 0, 3 and 5 fake P-521 CA tokens (one key, one self-issued name: each can pass for the issuer
of the leaf and of every other one), the verifier is given the whole signed envelope, as the
gateway would be, and refuses it; printed is the CPU time per refusal (process time, median of
``rounds``, a fresh fake PKI each round so nothing is cached between rounds), the fault code,
and the same for a good card request as the yardstick, with ratios from the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signing.errors import VerificationError
from signing.policy import SecurityPolicy
from signing.testpki import build_test_pki
from signing.verifier import EnvelopeVerifier
from signing.wsse import sign_envelope
from tests.signing.attacks import request_envelope
from tests.signing.fake_cas import fake_ca_identity, fake_ca_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = build_test_pki(Path(tmp))
        rows: list[tuple[str, float, str]] = []

        good_times = []
        for _ in range(args.rounds):
            verifier = EnvelopeVerifier(pki.trust_store(), SecurityPolicy())
            envelope = sign_envelope(request_envelope(), pki.signer("director"))
            started = time.process_time()
            verifier.verify(envelope)
            good_times.append(time.process_time() - started)
        good = statistics.median(good_times)
        rows.append(("good card (first sight, uncached)", good, "accepted"))

        # (fake tokens, token limit of the policy); 8 lets the five fakes reach the path builder.
        for count, max_tokens in ((0, 4), (3, 4), (5, 4), (5, 8)):
            times, again, code = [], [], ""
            for _ in range(args.rounds):
                verifier = EnvelopeVerifier(pki.trust_store(), _policy(max_tokens))
                signer, fakes = fake_ca_identity(count)
                envelope = fake_ca_request(request_envelope, signer, fakes)
                started = time.process_time()
                try:
                    verifier.verify(envelope)
                    code = "ACCEPTED (!)"
                except VerificationError as exc:
                    code = exc.code
                times.append(time.process_time() - started)
                started = time.process_time()  # the same request again (negative cache)
                try:
                    verifier.verify(envelope)
                except VerificationError:
                    pass
                again.append(time.process_time() - started)
            label = f"{count} fake P-521 CA tokens (max_tokens={max_tokens})"
            rows.append((label, statistics.median(times), code))
            rows.append(("  the same again", statistics.median(again), ""))

        for name, seconds, code in rows:
            print(f"{name:46s} {seconds * 1000:9.2f} ms CPU  x{seconds / good:7.1f}  {code}")


def _policy(max_tokens: int) -> SecurityPolicy:
    # Older policies have no token limit: the bench runs against them too, for the "before".
    try:
        return SecurityPolicy(max_tokens=max_tokens)  # type: ignore[call-arg,unused-ignore]
    except TypeError:
        return SecurityPolicy()


if __name__ == "__main__":
    main()
