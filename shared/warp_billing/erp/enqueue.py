"""From the outbox to the task queue: one task per document revision, named deterministically.

``enqueue_pending`` is what the rollup calls after every close and what the scheduled sweep
runs (``warp netsuite sweep``, or a ``{"task": "sweep"}`` call of the function). It walks the
outbox in issue order and enqueues every ``pending`` document (customers come before their
invoices in that order; the sync still waits for prerequisites, so order is a help, not a
requirement). A document already ``enqueued`` is enqueued again, under the same name, only
once its enqueue is older than ``stale_after_s`` (a task Cloud Tasks gave up on, a queue that
was purged): the real API refuses the duplicate name, and where a duplicate does run (the
emulator accepts it) the sync finds the document synced, or upserts the same record again.
``failed`` documents wait for ``retry`` (after the mapping or data is fixed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..ports import OutboxDocument, SyncErrorLog, SyncOutbox, TaskQueue
from .sync import ENQUEUED, FAILED, PENDING, SYNCED
from .task_names import task_name

log = logging.getLogger(__name__)

OUTBOX_SCAN_LIMIT = 100_000
STALE_AFTER_S = 26 * 3600  # longer than the queue's max_retry_duration (24 h)


@dataclass
class EnqueueReport:
    """What an enqueue pass did (task names created, and the documents left alone and why)."""

    enqueued: list[str] = field(default_factory=list)
    already_queued: list[str] = field(default_factory=list)
    skipped_failed: list[str] = field(default_factory=list)

    def to_record(self) -> dict:
        return {"enqueued": len(self.enqueued), "already_queued": len(self.already_queued),
                "failed_waiting_for_retry": len(self.skipped_failed)}


def task_body(doc: OutboxDocument, attempt: int) -> dict:
    return {"doc_id": doc.doc_id, "revision": doc.revision, "attempt": attempt, "doc_type": doc.doc_type}


def _enqueued_detail(name: str, at: datetime) -> str:
    return f"task {name} at {at.isoformat(timespec='seconds')}"


def _enqueued_at(detail: str) -> datetime | None:
    parts = detail.split()
    if len(parts) >= 4 and parts[0] == "task" and parts[2] == "at":
        try:
            return datetime.fromisoformat(parts[3])
        except ValueError:
            return None
    return None


def _attempt(doc: OutboxDocument) -> int:
    """The generation named in the document's enqueue detail (``...-a<N>``), 0 when none."""
    parts = doc.detail.split()
    if len(parts) >= 2 and parts[0] == "task" and "-a" in parts[1]:
        tail = parts[1].rsplit("-a", 1)[1]
        if tail.isdigit():
            return int(tail)
    return 0


def enqueue_pending(outbox: SyncOutbox, queue: TaskQueue, *, stale_after_s: int = STALE_AFTER_S,
                    now: Callable[[], datetime] = lambda: datetime.now(UTC),
                    customer_id: str | None = None) -> EnqueueReport:
    """Enqueue every pending (and stale enqueued) document, oldest first; see the module docstring."""
    report = EnqueueReport()
    at = now()
    for doc in outbox.pending(limit=OUTBOX_SCAN_LIMIT):
        if customer_id is not None and doc.customer_id != customer_id:
            continue
        if doc.status == FAILED:
            report.skipped_failed.append(doc.doc_id)
            continue
        if doc.status == ENQUEUED:
            since = _enqueued_at(doc.detail)
            if since is not None and at - since < timedelta(seconds=stale_after_s):
                report.already_queued.append(doc.doc_id)
                continue
        attempt = _attempt(doc) if doc.status == ENQUEUED else 0
        _enqueue(outbox, queue, doc, attempt, at, report)
    log.info("outbox drained into the netsuite queue", extra=report.to_record())
    return report


def retry_document(outbox: SyncOutbox, queue: TaskQueue, errors: SyncErrorLog, doc_id: str, *,
                   now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> str:
    """Re-enqueue a document (after a mapping or data fix) under the next attempt number; the task name."""
    doc = outbox.get(doc_id)
    if doc is None:
        raise KeyError(f"{doc_id} is not in the outbox")
    if doc.status == SYNCED:
        raise ValueError(f"{doc_id} revision {doc.revision} is already synced ({doc.detail}); "
                         "nothing in NetSuite is changed in place: issue a credit note and rebill")
    recorded = [error.attempt for error in errors.errors(doc_id=doc_id) if error.revision == doc.revision]
    attempt = max(recorded, default=-1) + 1
    outbox.mark(doc.doc_id, doc.revision, PENDING, "retry requested")
    report = EnqueueReport()
    return _enqueue(outbox, queue, doc, attempt, now(), report)


def _enqueue(outbox: SyncOutbox, queue: TaskQueue, doc: OutboxDocument, attempt: int, at: datetime,
             report: EnqueueReport) -> str:
    name = task_name(doc.doc_id, doc.revision, attempt)
    current = outbox.get(doc.doc_id)
    if current is None or current.revision != doc.revision or current.status == SYNCED:
        report.already_queued.append(doc.doc_id)  # another pass got there first
        return name
    # Marked before the task exists: once it exists the function may sync and mark the document
    # synced at any moment, which a later "enqueued" must not overwrite. A crash in between leaves
    # an enqueued document without a task, which the sweep re-enqueues once it is stale.
    outbox.mark(doc.doc_id, doc.revision, ENQUEUED, _enqueued_detail(name, at))
    try:
        created = queue.enqueue(name, task_body(doc, attempt))
    except Exception:
        outbox.mark(doc.doc_id, doc.revision, PENDING, f"enqueue of task {name} failed")
        raise
    (report.enqueued if created else report.already_queued).append(doc.doc_id)
    return name
