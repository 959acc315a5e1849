"""``dsmf-client register``: a spreadsheet of new employees, registered exactly once.

The order of a run:

1. read the file and check every row offline (:mod:`gateway.client.rows`); with bad rows and
   no ``--skip-invalid``, report them and send nothing;
2. record the good rows in the journal (:mod:`gateway.client.journal`) by FIN;
3. send again, byte for byte, every request a killed earlier run signed but never saw answered;
4. cut the pending rows into ``SubmitRegistrationBatch`` chunks (or one ``SubmitRegistration``
   per row), each signed and journaled before it leaves, at most ``in_flight`` at a time;
5. record each verified answer; look up the SSN of rows whose SSN already existed;
6. write the output file: the input's columns and each row's SSN, application id, status,
   fault code and Azerbaijani message.

Retries (tenacity, exponential backoff, bounded): the same bytes after a network failure or
while the gateway still processes the first copy (``Client.Signature.Replay``); the same
content under a new message id after a ``Server.*`` fault of the whole request (such a fault is
the stored answer of its id, and the rows it carried were not registered by it - or, if they
were, the gateway now says their SSN exists, and the registry shows the application as ours).
When a journaled request is too old to be accepted (``Client.Signature.Expired``), it is
signed again under the same message id: the gateway either does it (it never saw it) or
refuses it as a replay (it did it before), and then the registry says what became of each row.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Final

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from gateway.client.errors import ClientError, GatewayFault, TransportError
from gateway.client.journal import DONE, PENDING, Chunk, Journal, JournalRow, Outcome
from gateway.client.messages import fault_text, text
from gateway.client.service import Gateway

BATCH: Final = "SubmitRegistrationBatch"
SINGLE: Final = "SubmitRegistration"
SSN_EXISTS_CODE: Final = "Client.Conflict.SsnExists"
REPLAY: Final = "Client.Signature.Replay"
EXPIRED: Final = "Client.Signature.Expired"
TOO_LARGE: Final = "Client.Validation.BatchTooLarge"
FINAL_OUTCOMES: Final = ("REGISTERED", "SUBMITTED", "SSN_EXISTS", "FAILED")


@dataclass(frozen=True)
class RunOptions:
    chunk_size: int = 100
    in_flight: int = 2
    one_by_one: bool = False
    attempts: int = 6
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0


@dataclass
class RunStats:
    sent_rows: int = 0
    seconds: float = 0.0
    batch_limit: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.sent_rows / self.seconds if self.seconds > 0 else 0.0


class _ChunkTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


@dataclass
class _Delivery:
    chunk: Chunk


def _about_the_person(fault: GatewayFault) -> bool:
    """A fault of a one-person request that is about that person's data, not the request."""
    return fault.code.startswith(("Client.Conflict", "Client.Person", "Client.Validation",
                                  "Client.NotFound")) and fault.code != TOO_LARGE


class _ReSign(Exception):
    """The journaled signature is too old: sign the same content under the same id again."""


class Registrar:
    def __init__(self, gateway: Gateway, journal: Journal, options: RunOptions,
                 *, progress: Callable[[int], None] = lambda n: None) -> None:
        self.gateway = gateway
        self.journal = journal
        self.options = options
        self.progress = progress
        self.stats = RunStats()
        self._chunk_size = options.chunk_size if not options.one_by_one else 1
        self._size_lock = threading.Lock()

    # --- the run ----------------------------------------------------------------------------

    def run(self) -> RunStats:
        started = time.monotonic()
        try:
            # Rows can come back to PENDING (a request refused as a whole, a smaller batch
            # limit, a reconciliation); a few rounds settle them all.
            for round_number in range(self.options.attempts + 1):
                chunks = self.journal.open_chunks()
                pending = self.journal.rows(state=PENDING)
                if not chunks and not pending:
                    break
                if round_number:
                    # What is left came back from the gateway (a Server.* failure of an item,
                    # a smaller batch limit): give it a moment, longer each time.
                    time.sleep(min(self.options.max_backoff_seconds,
                                   self.options.backoff_seconds * 2 ** (round_number - 1)))
                self._round(chunks, pending)
        finally:
            self.stats.seconds = time.monotonic() - started
        return self.stats

    def _round(self, resend: list[Chunk], pending: list[JournalRow]) -> None:
        in_flight = max(1, self.options.in_flight)
        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="dsmf-send") as pool:
            running: set[Future[None]] = set()

            def submit(work: Callable[[], None]) -> None:
                while len(running) >= in_flight:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        running.discard(future)
                        future.result()  # a fatal error stops the run here
                running.add(pool.submit(work))

            try:
                for chunk in resend:
                    submit(lambda c=chunk: self._deliver(c))  # type: ignore[misc]
                queue = list(pending)
                while queue:
                    size = self._current_chunk_size()
                    rows, queue = queue[:size], queue[size:]
                    chunk = self._open_chunk(rows)
                    submit(lambda c=chunk: self._deliver(c))  # type: ignore[misc]
                for future in running:
                    future.result()
            except BaseException:
                for future in running:
                    future.cancel()
                raise

    def _current_chunk_size(self) -> int:
        with self._size_lock:
            return self._chunk_size

    # --- one chunk ---------------------------------------------------------------------------

    def _operation(self) -> str:
        return SINGLE if self.options.one_by_one else BATCH

    def _arguments(self, operation: str, rows: Sequence[JournalRow]) -> dict[str, Any]:
        if operation == SINGLE:
            item = dict(rows[0].item)
            item.pop("clientRef", None)
            return {"voen": self.gateway.voen, **item}
        return {"voen": self.gateway.voen, "item": [row.item for row in rows]}

    def _open_chunk(self, rows: Sequence[JournalRow]) -> Chunk:
        operation = self._operation()
        request = self.gateway.prepare(operation, str(uuid.uuid4()),
                                       **self._arguments(operation, rows))
        return self.journal.open_chunk(request, [row.fin for row in rows])

    def _deliver(self, chunk: Chunk) -> None:
        rows = self.journal.chunk_rows(chunk)
        if not rows:  # everything in it was settled before the kill
            self.journal.close_chunk(chunk, {})
            return
        delivery = _Delivery(chunk)
        try:
            try:
                answer = self._send_with_retries(delivery, rows, retry_replay=True)
            except _ReSign:
                delivery.chunk = self._re_sign(delivery.chunk, rows)
                answer = self._send_with_retries(delivery, rows, retry_replay=False)
        except _ChunkTooLarge as too_large:
            with self._size_lock:
                self._chunk_size = max(1, min(self._chunk_size, too_large.limit))
                self.stats.batch_limit = self._chunk_size
            self.journal.close_chunk(delivery.chunk, {}, back_to_pending=[r.fin for r in rows])
            return
        except GatewayFault as fault:
            if fault.code == REPLAY:
                # The gateway did this message id before, and its answer is not to be had any
                # more: the registry tells what became of each row.
                self._reconcile(delivery.chunk, rows)
                return
            if delivery.chunk.request.operation == SINGLE and _about_the_person(fault):
                # One person's refusal (not found, SSN exists, bad phone...): that row's outcome.
                self._record(delivery.chunk, rows, [self._single_fault(fault)])
                return
            # Refused as a whole: nothing was done; the rows wait for the next run.
            self.journal.close_chunk(delivery.chunk, {}, back_to_pending=[r.fin for r in rows])
            raise
        self._record(delivery.chunk, rows, self._results(delivery.chunk, rows, answer))

    def _send_with_retries(self, delivery: _Delivery, rows: Sequence[JournalRow], *,
                           retry_replay: bool) -> Any:
        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, TransportError):
                return True
            if not isinstance(exc, GatewayFault):
                return False
            # A replay of the very bytes the gateway has seen means it is still working on
            # the first copy; of re-signed bytes, that it finished it long ago.
            return exc.is_server_side or (retry_replay and exc.code == REPLAY)

        def before_retry(state: RetryCallState) -> None:
            outcome = state.outcome
            failure = outcome.exception() if outcome is not None else None
            if isinstance(failure, GatewayFault) and failure.is_server_side:
                # The fault is the stored answer of that message id: a new id, same content.
                operation = delivery.chunk.request.operation
                request = self.gateway.prepare(operation, str(uuid.uuid4()),
                                               **self._arguments(operation, rows))
                delivery.chunk = self.journal.move_chunk(delivery.chunk, request)

        retrying = Retrying(
            retry=retry_if_exception(retryable),
            stop=stop_after_attempt(self.options.attempts),
            wait=wait_exponential(multiplier=self.options.backoff_seconds,
                                  max=self.options.max_backoff_seconds),
            before_sleep=before_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self.gateway.send(delivery.chunk.request)
        except GatewayFault as fault:
            if fault.code == EXPIRED and retry_replay:
                raise _ReSign() from fault
            if fault.code == TOO_LARGE:
                raise _ChunkTooLarge(_limit_of(fault, len(rows))) from fault
            raise
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    def _re_sign(self, chunk: Chunk, rows: Sequence[JournalRow]) -> Chunk:
        request = self.gateway.prepare(chunk.request.operation, chunk.request.message_id,
                                       **self._arguments(chunk.request.operation, rows))
        return self.journal.replace_request(chunk, request)

    # --- answers ------------------------------------------------------------------------------

    def _results(self, chunk: Chunk, rows: Sequence[JournalRow], answer: Any) -> list[Outcome]:
        if chunk.request.operation == SINGLE:
            result = answer.result
            outcome = "REGISTERED" if result.status == "REGISTERED" else str(result.status)
            return [Outcome(outcome, result.ssn, result.applicationId, None,
                            text(f"status.{outcome}"))]
        by_ref: dict[str, Any] = {r.clientRef: r for r in (answer.result or ())}
        outcomes = []
        for row in rows:
            result = by_ref.get(row.client_ref)
            if result is None:
                outcomes.append(Outcome("FAILED", fault_code="Client.Batch.NoResult",
                                        message=text("fault.generic", code="-", message="")))
                continue
            if result.outcome == "FAILED":
                message = fault_text(result.faultCode or "Server", result.message or "")
            else:
                message = text(f"status.{result.outcome}")
            outcomes.append(Outcome(str(result.outcome), result.ssn, result.applicationId,
                                    result.faultCode, message))
        return outcomes

    def _single_fault(self, fault: GatewayFault) -> Outcome:
        if fault.code == SSN_EXISTS_CODE:
            return Outcome("SSN_EXISTS", fault_code=fault.code, message=text("status.SSN_EXISTS"))
        return Outcome("FAILED", fault_code=fault.code, message=fault.message)

    def _record(self, chunk: Chunk, rows: Sequence[JournalRow],
                outcomes: Sequence[Outcome]) -> None:
        settled = {row.fin: outcome for row, outcome in zip(rows, outcomes, strict=True)}
        # An item the gateway failed on its side (Server.*) is tried again in a later request,
        # a bounded number of times; then its FAILED outcome stands.
        again = [row.fin for row in rows
                 if settled[row.fin].outcome == "FAILED"
                 and (settled[row.fin].fault_code or "").startswith("Server.")
                 and row.attempts < self.options.attempts]
        for fin in again:
            del settled[fin]
        # SSN_EXISTS: the row carries the SSN too - and if the application is ours (a request
        # whose answer was lost did register it), it is a registration, not a conflict.
        for row in rows:
            if row.fin in settled and settled[row.fin].outcome == "SSN_EXISTS" \
                    and not settled[row.fin].ssn:
                settled[row.fin] = self._existing(row, settled[row.fin])
        self.journal.close_chunk(chunk, settled, back_to_pending=again)
        with self._size_lock:
            self.stats.sent_rows += len(settled)
        self.progress(len(settled))

    def _existing(self, row: JournalRow, outcome: Outcome) -> Outcome:
        try:
            ours = self._our_application(row)
            if ours is not None:
                return ours
            found = self.gateway.call("FindPerson", voen=self.gateway.voen,
                                      documentType=row.item["documentType"], fin=row.fin)
        except ClientError:
            return outcome  # the outcome stands; only the SSN is missing from the output
        existing = getattr(found, "existingInsured", None)
        if existing is not None and existing.ssn:
            return Outcome(outcome.outcome, existing.ssn, outcome.application_id,
                           outcome.fault_code, outcome.message)
        return outcome

    def _our_application(self, row: JournalRow) -> Outcome | None:
        page = self.gateway.call("SearchApplications", voen=self.gateway.voen, fin=row.fin,
                                 applicationType="INITIAL_REGISTRATION")
        for app in page.application or ():
            if app.status in ("REGISTERED", "SUBMITTED"):
                return Outcome(str(app.status), app.ssn, app.applicationId, None,
                               text(f"status.{app.status}"))
        return None

    def _reconcile(self, chunk: Chunk, rows: Sequence[JournalRow]) -> None:
        settled: dict[str, Outcome] = {}
        again: list[str] = []
        for row in rows:
            ours = self._our_application(row)
            if ours is not None:
                settled[row.fin] = ours
            else:
                again.append(row.fin)  # not registered by that request: send it again
        self.journal.close_chunk(chunk, settled, back_to_pending=again)
        with self._size_lock:
            self.stats.sent_rows += len(settled)
        self.progress(len(settled))


def _limit_of(fault: GatewayFault, current: int) -> int:
    # "a batch has at most N items, this one has M"
    words = fault.server_message.replace(",", " ").split()
    for before, word in itertools.pairwise(words):
        if before == "most" and word.isdigit():
            return max(1, int(word))
    return max(1, current // 2)


def pending_count(journal: Journal) -> int:
    counts = journal.counts()
    return counts.get(PENDING, 0) + counts.get("SENT", 0)


def settled(rows: Iterable[JournalRow]) -> int:
    return sum(1 for row in rows if row.state == DONE)
