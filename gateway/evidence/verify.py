"""``dsmf-gateway log verify``: everything the database holds about the log, recomputed.

For each seal, oldest first: its stored bytes hash to the stored digest; it parses and names
the right number; it chains to the previous seal and its token; its TSA token stamps exactly
its bytes and checks out (``gateway.evidence.tsa``); its XML signature verifies with a trusted
certificate valid at the token's time; its leaves are its entries, none missing, each leaf
recomputed from the entry's row, each payload (unless erased by retention) hashing to its
digest, and the tree head recomputed. Then: no entry older than the settle window is left
without a seal (an entry slipped in later), and, given the anchor file, the newest seal it
names is still there (the tail was not cut off). Every finding is listed, not only the first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from gateway.domain.errors import GatewayError
from gateway.evidence.merkle import leaf_data, leaf_hash, tree_head
from gateway.evidence.seal import ZERO_HASH, read_seal
from gateway.evidence.tsa import check_token
from persistence.message_log import MessageLog, StoredSeal, iterate_seals
from signing.errors import SigningError
from signing.parser import ParserLimits, parse_xml
from signing.verifier import EnvelopeVerifier

_SEAL_LIMITS = ParserLimits(max_bytes=256 * 1024, max_depth=16, max_elements=200)


@dataclass
class LogReport:
    seals: int = 0
    sealed_entries: int = 0
    unsealed_entries: int = 0
    erased_entries: int = 0
    last_seal: int | None = None
    last_seal_time: datetime | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok, "seals": self.seals, "sealed_entries": self.sealed_entries,
            "unsealed_entries": self.unsealed_entries, "erased_entries": self.erased_entries,
            "last_seal": self.last_seal,
            "last_seal_time": self.last_seal_time.isoformat() if self.last_seal_time else None,
            "problems": self.problems,
        }


class LogVerifier:
    def __init__(
        self,
        log: MessageLog,
        tsa_trust: Sequence[x509.Certificate],
        document_verifier: EnvelopeVerifier | None,
        *,
        settle: timedelta = timedelta(seconds=300),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.log = log
        self.tsa_trust = list(tsa_trust)
        self.document_verifier = document_verifier
        self.settle = settle
        self.clock = clock

    def verify(
        self, *, anchor: Path | None = None, max_seal_age: timedelta | None = None
    ) -> LogReport:
        report = LogReport()
        previous: StoredSeal | None = None
        for seal in iterate_seals(self.log):
            self._check_seal(seal, previous, report)
            previous = seal
        if previous is not None:
            report.last_seal, report.last_seal_time = previous.number, previous.tsa_time
        self._check_unsealed(report)
        if anchor is not None:
            self._check_anchor(anchor, report)
        now = self.clock()
        if max_seal_age is not None and (
                previous is None or now - previous.sealed_at > max_seal_age):
            report.problems.append(
                "the newest seal is older than expected: entries or seals may have been cut "
                "off the end of the log")
        return report

    def _check_seal(self, seal: StoredSeal, previous: StoredSeal | None, report: LogReport) -> None:
        report.seals += 1
        n = seal.number
        problems = report.problems
        if hashlib.sha256(seal.seal_xml).hexdigest() != seal.seal_sha256:
            problems.append(f"seal {n}: its bytes do not match its digest")
        expected_number = (previous.number if previous else 0) + 1
        if n != expected_number:
            problems.append(f"seal {n}: expected seal {expected_number} (a seal is missing)")
        try:
            root = parse_xml(seal.seal_xml, _SEAL_LIMITS)
            fields = read_seal(root)
        except GatewayError as error:
            problems.append(f"seal {n}: unreadable ({error.message})")
            return
        except SigningError as error:
            problems.append(f"seal {n}: unreadable ({error})")
            return
        if fields.number != n:
            problems.append(f"seal {n}: the document says seal {fields.number}")
        if fields.previous_seal != (previous.seal_sha256 if previous else ZERO_HASH):
            problems.append(f"seal {n}: does not chain to the previous seal")
        previous_token = hashlib.sha256(previous.tsa_token).hexdigest() if previous else ZERO_HASH
        if fields.previous_timestamp != previous_token:
            problems.append(f"seal {n}: does not chain to the previous seal's time-stamp")
        if (fields.sealed_at, fields.first_entry, fields.last_entry) != (
                seal.sealed_at, seal.first_entry_id, seal.last_entry_id):
            problems.append(f"seal {n}: its row differs from its signed document")
        stamped_at = seal.tsa_time
        try:
            stamped_at = check_token(seal.tsa_token, seal.seal_xml, self.tsa_trust).time
            if stamped_at != seal.tsa_time:
                problems.append(f"seal {n}: its row's time differs from its time-stamp")
        except GatewayError as error:
            problems.append(f"seal {n}: time-stamp token invalid ({error.message})")
        if self.document_verifier is not None:
            try:
                self.document_verifier.verify_document(root, at=stamped_at)
            except (SigningError, GatewayError) as error:
                problems.append(f"seal {n}: signature invalid ({error})")
        if fields.crls:
            archived = self.log.crls(fields.crls)
            for digest in fields.crls:
                data = archived.get(digest)
                if data is None or hashlib.sha256(data).hexdigest() != digest:
                    problems.append(f"seal {n}: CRL {digest[:16]}… missing or changed")
        self._check_leaves(seal, fields.tree_head, fields.entry_count, report)

    def _check_leaves(
        self, seal: StoredSeal, head: str, count: int, report: LogReport
    ) -> None:
        n = seal.number
        problems = report.problems
        rows = self.log.sealed_entries(n)
        if len(rows) != count or count != seal.entry_count:
            problems.append(f"seal {n}: covers {count} entries, {len(rows)} leaves found")
        hashes: list[str] = []
        for index, (leaf, entry) in enumerate(rows):
            if leaf.leaf_index != index:
                problems.append(f"seal {n}: leaf {index} is missing")
            if entry is None:
                problems.append(f"entry {leaf.entry_id}: deleted (sealed in seal {n})")
                hashes.append(leaf.leaf_hash)
                continue
            report.sealed_entries += 1
            recomputed = leaf_hash(leaf_data(entry))
            hashes.append(recomputed)
            if recomputed != leaf.leaf_hash:
                problems.append(f"entry {entry.id}: changed after sealing (seal {n})")
            if entry.erased_at is not None:
                report.erased_entries += 1
                if entry.payload:
                    problems.append(f"entry {entry.id}: erased but a payload is stored")
            elif hashlib.sha256(entry.payload).hexdigest() != entry.payload_sha256:
                problems.append(f"entry {entry.id}: payload changed (digest differs)")
        if tree_head(hashes) != head or head != seal.tree_head:
            problems.append(f"seal {n}: tree head does not recompute from its entries")

    def _check_unsealed(self, report: LogReport) -> None:
        limit = self.clock() - self.settle
        for entry in self.log.entries_without_leaf(limit=100_000):
            report.unsealed_entries += 1
            if entry.at < limit and report.last_seal_time and entry.at < report.last_seal_time:
                report.problems.append(
                    f"entry {entry.id}: logged {entry.at.isoformat()} but in no seal since "
                    "(inserted later?)")

    def _check_anchor(self, anchor: Path, report: LogReport) -> None:
        try:
            named = json.loads(anchor.read_text(encoding="utf-8"))
            number, digest = int(named["number"]), str(named["seal_sha256"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            report.problems.append(f"anchor {anchor}: unreadable ({error})")
            return
        if report.last_seal is None or report.last_seal < number:
            report.problems.append(
                f"the anchor names seal {number}, the log ends at seal {report.last_seal}: "
                "the tail of the log was cut off")
            return
        try:
            if self.log.seal(number).seal_sha256 != digest:
                report.problems.append(f"seal {number}: differs from the anchored seal")
        except GatewayError as error:
            report.problems.append(f"anchored seal {number}: {error.message}")
