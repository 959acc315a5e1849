"""The seal of a batch of log entries, and the sealer that makes them.

A seal is a small XML document, signed by the gateway's key (enveloped XML-DSig, verifiable
with xmlsec1) and then time-stamped by a TSA (RFC 3161, the token's imprint is SHA-256 over
the stored seal bytes, verifiable with ``openssl ts -verify -data seal.xml``)::

    <Seal xmlns="urn:az:dsmf:message-log:seal:1">
      <Number>7</Number>                      1, 2, 3, ... without gaps
      <SealedAt>2026-12-06T05:43:28.123456+00:00</SealedAt>
      <EntryCount>120</EntryCount>            leaves in this seal's tree (0: a heartbeat seal)
      <FirstEntry>801</FirstEntry> <LastEntry>925</LastEntry>   (when not empty)
      <TreeHead>…hex…</TreeHead>              RFC 6962 tree head (gateway.evidence.merkle)
      <PreviousSeal>…hex…</PreviousSeal>      SHA-256 of seal 6's stored bytes (zeros for 1)
      <PreviousTimestamp>…hex…</PreviousTimestamp>  SHA-256 of seal 6's TSA token
      <Crl>…hex…</Crl>                        SHA-256 of each CRL configured (kept in the
                                              database, for exports: "the CRLs used")
      <ds:Signature>…</ds:Signature>
    </Seal>

Seals chain: changing, removing or reordering an entry changes a tree head; changing or
removing a seal breaks the next seal's ``PreviousSeal``; cutting seals off the end is caught
by the anchor file (the newest seal's number and digest, written outside the database after
every seal) and by the seals' age (a heartbeat seal is made even when nothing was logged).

The sealer takes a worker lease (``message-log-sealer``) so one sealer runs at a time across
processes and hosts; the TSA call happens outside any transaction, and the seal is stored only
if it still follows the newest seal. A TSA that does not answer delays sealing (entries wait,
readiness says "degraded"); it never touches requests, which only ever insert.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lxml import etree

from gateway.evidence.errors import EvidenceError
from gateway.evidence.merkle import leaf_data, leaf_hash, tree_head
from gateway.evidence.tsa import TimeStampClient
from persistence.message_log import Leaf, MessageLog, SealConflict, StoredEntry, StoredSeal
from signing.parser import serialize
from signing.signer import Signer
from signing.wsse import sign_document

log = logging.getLogger("gateway.evidence")

SEAL_NS = "urn:az:dsmf:message-log:seal:1"
ZERO_HASH = "00" * 32
_APPLICATION_ID = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?applicationId>\s*([^<\s]{1,64})\s*</")


def _q(name: str) -> str:
    return f"{{{SEAL_NS}}}{name}"


@dataclass(frozen=True)
class SealFields:
    """What a seal document says (read back by :func:`read_seal`)."""

    number: int
    sealed_at: datetime
    entry_count: int
    first_entry: int | None
    last_entry: int | None
    tree_head: str
    previous_seal: str
    previous_timestamp: str
    crls: tuple[str, ...] = ()


def seal_document(fields: SealFields) -> etree._Element:
    root = etree.Element(_q("Seal"), nsmap={None: SEAL_NS})  # type: ignore[dict-item]

    def add(name: str, value: object) -> None:
        etree.SubElement(root, _q(name)).text = str(value)

    add("Number", fields.number)
    add("SealedAt", fields.sealed_at.astimezone(UTC).isoformat(timespec="microseconds"))
    add("EntryCount", fields.entry_count)
    if fields.first_entry is not None:
        add("FirstEntry", fields.first_entry)
        add("LastEntry", fields.last_entry)
    add("TreeHead", fields.tree_head)
    add("PreviousSeal", fields.previous_seal)
    add("PreviousTimestamp", fields.previous_timestamp)
    for digest in fields.crls:
        add("Crl", digest)
    return root


def read_seal(root: etree._Element) -> SealFields:
    """The fields of a (parsed) seal document; ``EvidenceError`` when one is missing."""
    def text(name: str, required: bool = True) -> str | None:
        element = root.find(_q(name))
        if element is None or not element.text:
            if required:
                raise EvidenceError(f"the seal has no {name}")
            return None
        return element.text.strip()

    if root.tag != _q("Seal"):
        raise EvidenceError("not a message-log seal")
    try:
        first = text("FirstEntry", required=False)
        last = text("LastEntry", required=False)
        return SealFields(
            number=int(text("Number") or ""),
            sealed_at=datetime.fromisoformat(text("SealedAt") or ""),
            entry_count=int(text("EntryCount") or ""),
            first_entry=int(first) if first else None,
            last_entry=int(last) if last else None,
            tree_head=text("TreeHead") or "",
            previous_seal=text("PreviousSeal") or "",
            previous_timestamp=text("PreviousTimestamp") or "",
            crls=tuple((e.text or "").strip() for e in root.findall(_q("Crl"))),
        )
    except ValueError as error:
        raise EvidenceError(f"malformed seal: {error}") from error


def application_ids(payload: bytes) -> set[str]:
    """The application ids a message mentions (``applicationId`` elements), for the export by
    application. A byte scan, not a parse: the payload was verified when it was received."""
    return {m.group(1).decode("ascii", "replace") for m in _APPLICATION_ID.finditer(payload)}


def write_anchor(path: Path, seal: StoredSeal) -> None:
    """The newest seal, outside the database (atomically replaced), so a database whose tail
    was cut off is caught by ``log verify --anchor``."""
    document = {"number": seal.number, "seal_sha256": seal.seal_sha256,
                "tsa_time": seal.tsa_time.isoformat()}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document) + "\n", encoding="utf-8")
    os.replace(temporary, path)


class Sealer:
    """Seals unsealed entries in batches (see the module docstring)."""

    def __init__(
        self,
        log: MessageLog,
        signer: Signer,
        tsa: TimeStampClient,
        *,
        batch_max: int = 2000,
        settle: timedelta = timedelta(seconds=300),
        heartbeat: timedelta = timedelta(hours=1),
        anchor_file: Path | None = None,
        crl_files: Sequence[Path] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.log = log
        self.crl_files = list(crl_files)
        self.signer = signer
        self.tsa = tsa
        self.batch_max = batch_max
        self.settle = settle
        self.heartbeat = heartbeat
        self.anchor_file = anchor_file
        self.clock = clock
        self.holder = uuid.uuid4().hex
        # A sealer waits for the TSA at most its timeout, so a lease of a few timeouts is
        # never taken from a live sealer, and a dead one is replaced within a minute or so.
        self.lease = timedelta(seconds=max(60.0, 4 * tsa.timeout))
        self.last_error: str | None = None
        self.last_attempt: datetime | None = None

    def seal_once(self, *, force: bool = False) -> StoredSeal | None:
        """Make one seal if there is anything to seal (or a heartbeat is due, or ``force``).
        None: nothing to do, or another sealer holds the lease. Raises ``EvidenceError``
        (TSA down, token invalid, another sealer won) and writes nothing then."""
        now = self.clock()
        self.last_attempt = now
        if not self.log.acquire_lease(self.holder, self.lease):
            return None
        try:
            pending = self.log.unsealed(now, self.settle, self.batch_max)
            head = self.log.last_seal()
            if not pending and not force and head is not None and (
                    now - head.sealed_at < self.heartbeat):
                self.last_error = None
                return None
            crls = self._crls()
            seal, leaves, subjects = self._make(pending, head, now, crls)
            self.log.store_seal(seal, leaves, subjects, crls)
        except EvidenceError as error:
            self.last_error = error.message
            raise
        finally:
            self.log.release_lease(self.holder)
        self.last_error = None
        if self.anchor_file is not None:
            write_anchor(self.anchor_file, seal)
        return seal

    def seal_all(self, *, force: bool = False) -> list[StoredSeal]:
        """Seal until nothing is left (the CLI command)."""
        made: list[StoredSeal] = []
        while True:
            seal = self.seal_once(force=force and not made)
            if seal is None:
                return made
            made.append(seal)
            if seal.entry_count < self.batch_max:
                return made

    def _crls(self) -> list[tuple[str, bytes]]:
        """The configured CRL files as they are now (the verifier reads the same files)."""
        crls = []
        for path in self.crl_files:
            try:
                data = Path(path).read_bytes()
            except OSError as error:
                raise EvidenceError(f"cannot read CRL {path}: {error}") from error
            crls.append((hashlib.sha256(data).hexdigest(), data))
        return crls

    def _make(
        self, pending: list[StoredEntry], head: StoredSeal | None, now: datetime,
        crls: Sequence[tuple[str, bytes]] = (),
    ) -> tuple[StoredSeal, list[Leaf], list[tuple[str, int]]]:
        number = (head.number if head else 0) + 1
        hashes = [leaf_hash(leaf_data(entry)) for entry in pending]
        fields = SealFields(
            number=number, sealed_at=now, entry_count=len(pending),
            first_entry=pending[0].id if pending else None,
            last_entry=pending[-1].id if pending else None,
            tree_head=tree_head(hashes),
            previous_seal=head.seal_sha256 if head else ZERO_HASH,
            previous_timestamp=hashlib.sha256(head.tsa_token).hexdigest() if head else ZERO_HASH,
            crls=tuple(digest for digest, _ in crls),
        )
        document = sign_document(seal_document(fields), self.signer)
        seal_xml = serialize(document)
        stamp = self.tsa.stamp(seal_xml)
        seal = StoredSeal(
            number=number, sealed_at=now, first_entry_id=fields.first_entry,
            last_entry_id=fields.last_entry, entry_count=len(pending),
            tree_head=fields.tree_head, seal_xml=seal_xml,
            seal_sha256=hashlib.sha256(seal_xml).hexdigest(), tsa_token=stamp.token,
            tsa_time=stamp.time,
        )
        leaves = [Leaf(entry.id, number, i, h) for i, (entry, h) in enumerate(zip(pending, hashes,
                                                                                  strict=True))]
        subjects = sorted({(app, entry.id) for entry in pending
                           for app in application_ids(entry.payload)})
        return seal, leaves, subjects


class SealWorker:
    """The sealer in the background of ``serve`` and of each gunicorn worker (the lease keeps
    them from sealing twice): one pass every ``interval`` seconds, until stopped."""

    def __init__(self, sealer: Sealer, interval: float) -> None:
        self.sealer = sealer
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="message-log-sealer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                while not self._stop.is_set():
                    seal = self.sealer.seal_once()
                    if seal is None or seal.entry_count < self.sealer.batch_max:
                        break
            except EvidenceError as error:
                log.warning("message log sealing delayed: %s", error.message)
            except SealConflict as conflict:  # another sealer took over a lapsed lease
                log.info("message log seal dropped: %s", conflict.message)
            except Exception:
                log.exception("message log sealing failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class SealHealth:
    """Readiness of sealing: raises (→ "degraded", never "down") when the last attempt failed
    or the oldest unsealed entry waits longer than ``max_delay``."""

    def __init__(self, sealer: Sealer, max_delay: timedelta) -> None:
        self.sealer = sealer
        self.max_delay = max_delay

    def __call__(self) -> None:
        if self.sealer.last_error:
            raise EvidenceError(f"sealing delayed: {self.sealer.last_error}")
        now = self.sealer.clock()
        backlog = self.sealer.log.backlog(now, self.sealer.settle)
        if backlog.oldest_unsealed_at is not None and (
                now - backlog.oldest_unsealed_at > self.max_delay):
            raise EvidenceError(f"{backlog.unsealed} log entries wait for a seal since "
                                f"{backlog.oldest_unsealed_at.isoformat()}")


class SealMetrics:
    """A Prometheus collector: the unsealed backlog and the newest seal's age, read from the
    database at scrape time (so every worker reports the same numbers)."""

    def __init__(self, log: MessageLog, settle: timedelta,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.log = log
        self.settle = settle
        self.clock = clock

    def collect(self) -> Iterator[object]:
        from prometheus_client.core import GaugeMetricFamily

        now = self.clock()
        try:
            backlog = self.log.backlog(now, self.settle)
        except Exception:
            log.warning("message log metrics unavailable", exc_info=True)
            return
        yield GaugeMetricFamily("dsmf_message_log_unsealed_entries",
                                "Message-log entries no seal covers yet",
                                value=backlog.unsealed)
        oldest = (now - backlog.oldest_unsealed_at).total_seconds() \
            if backlog.oldest_unsealed_at else 0.0
        yield GaugeMetricFamily("dsmf_message_log_oldest_unsealed_age_seconds",
                                "Age of the oldest unsealed message-log entry", value=oldest)
        if backlog.last_seal is not None:
            yield GaugeMetricFamily(
                "dsmf_message_log_last_seal_age_seconds",
                "Seconds since the newest message-log seal was made",
                value=(now - backlog.last_seal.sealed_at).total_seconds())
            yield GaugeMetricFamily("dsmf_message_log_last_seal_number",
                                    "Number of the newest message-log seal",
                                    value=backlog.last_seal.number)

    def describe(self) -> Iterable[object]:
        return []
