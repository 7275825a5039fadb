"""Syncing one outbox document into the ERP: the service behind one Cloud Tasks task.

Per task (``doc_id``, ``revision``, ``attempt``):

1. The outbox decides what is current: an unknown document or revision is a permanent error; a
   document already synced, or superseded by a newer revision, is done (2xx, nothing written).
2. Every prerequisite (the customer before its invoices, an invoice before its payments and
   credit memos) must be in the ERP: its internal id comes from the outbox (synced) or, for a
   document the outbox does not hold, from a lookup by externalId. Missing -> retry later (503):
   the task stays in the queue, nothing fails.
3. The mapping turns the document into record bodies; an unmapped SKU/fee/account is permanent.
4. Each record is upserted by externalId (the adapter looks a record up after a timeout before
   writing it again). Throttling, 5xx and timeouts -> retry later (429/503 with Retry-After);
   a validation error -> permanent.

A permanent error becomes one ``sync_errors`` row (keyed by doc, revision and attempt, so a
redelivery adds none), the document is marked failed, and the answer is 2xx so the queue stops.
``warp netsuite retry DOC`` re-enqueues it with the next attempt number after the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..ports import Erp, OutboxDocument, SyncError, SyncErrorLog, SyncOutbox
from .errors import ErpRejected, ErpTransient, MappingError, MappingFileError
from .mapping import ErpMapping
from .records import CUSTOMER, RECORD_TYPES, erp_writes, required_refs

log = logging.getLogger(__name__)

SYNCED = "synced"
FAILED = "failed"
PENDING = "pending"
ENQUEUED = "enqueued"

PREREQUISITE_RETRY_S = 10
DEFAULT_RETRY_S = 5


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What one task did, and how to answer Cloud Tasks.

    Attributes:
        result: synced | already_synced | superseded | retry_later | failed.
        http_status: 200 (done, the queue stops), 429 (throttled) or 503 (retry later).
        retry_after_s: the Retry-After to answer with, for 429/503.
        detail: the internal id(s) written, or the reason.
    """

    result: str
    http_status: int
    detail: str = ""
    retry_after_s: int | None = None


def synced_internal_id(doc: OutboxDocument) -> str | None:
    """The internal id a synced outbox document recorded (detail ``"<recordType>/<id> ..."``)."""
    if doc.status != SYNCED or not doc.detail:
        return None
    first = doc.detail.split()[0]
    return first.rsplit("/", 1)[-1] if "/" in first else None


class DocumentSync:
    """Syncs outbox documents into the ERP through the ports (see the module docstring)."""

    def __init__(self, outbox: SyncOutbox, erp: Erp, errors: SyncErrorLog, mapping: Callable[[], ErpMapping],
                 *, now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.outbox = outbox
        self.erp = erp
        self.errors = errors
        self._mapping = mapping
        self._now = now

    def sync(self, doc_id: str, revision: int, attempt: int = 0) -> SyncOutcome:
        doc = self.outbox.get(doc_id)
        if doc is None or doc.revision < revision:
            return self._failed(doc, doc_id, revision, attempt, MappingError(
                "UNKNOWN_DOCUMENT", f"{doc_id} revision {revision} is not in the outbox", "doc_id"))
        if doc.revision > revision:
            return SyncOutcome("superseded", 200, f"revision {doc.revision} replaces {revision}")
        if doc.status == SYNCED:
            return SyncOutcome("already_synced", 200, doc.detail)
        if doc.revision > 1 and doc.doc_type != CUSTOMER:
            immutable = self._synced_transaction(doc)
            if immutable is not None:
                return self._failed(doc, doc_id, revision, attempt, immutable)
        refs, waiting = self._resolve(doc)
        if waiting:
            log.info("prerequisite not in NetSuite yet", extra={"doc_id": doc_id, "waiting_for": waiting})
            return SyncOutcome("retry_later", 503, f"waiting for {', '.join(waiting)}", PREREQUISITE_RETRY_S)
        return self._write(doc, refs, attempt)

    def _write(self, doc: OutboxDocument, refs: dict[str, str], attempt: int) -> SyncOutcome:
        try:
            mapping = self._mapping()
            writes = erp_writes(doc, mapping, refs)
            written = [self.erp.upsert(write.record_type, write.external_id, write.body) for write in writes]
        except (MappingError, ErpRejected) as error:
            return self._failed(doc, doc.doc_id, doc.revision, attempt, error)
        except MappingFileError as error:
            # The file itself is broken: every document would fail alike, so none is marked
            # failed; the queue retries until the file is fixed.
            log.error("NetSuite mapping unusable; Cloud Tasks retries",
                      extra={"doc_id": doc.doc_id, "reason": str(error)})
            return SyncOutcome("retry_later", 503, str(error), 60)
        except ErpTransient as error:
            status = 429 if error.code in ("429", "SSS_REQUEST_LIMIT_EXCEEDED", "CONCURRENCY_LIMIT_EXCEEDED") else 503
            log.warning("NetSuite busy or unreachable; Cloud Tasks retries",
                        extra={"doc_id": doc.doc_id, "code": error.code, "reason": str(error)})
            return SyncOutcome("retry_later", status, str(error), error.retry_after_s or DEFAULT_RETRY_S)
        # the document's own record first: ``synced_internal_id`` reads it (a refund also updates its payment)
        written.sort(key=lambda ref: ref.external_id != doc.doc_id)
        detail = " ".join(f"{ref.record_type}/{ref.internal_id}" for ref in written)
        detail += f" mapping={mapping.version}"
        self.outbox.mark(doc.doc_id, doc.revision, SYNCED, detail)
        log.info("document synced", extra={"doc_id": doc.doc_id, "revision": doc.revision, "erp": detail})
        return SyncOutcome(SYNCED, 200, detail)

    def _synced_transaction(self, doc: OutboxDocument) -> MappingError | None:
        """A new revision of a transaction NetSuite already holds: refused, never written over."""
        try:
            found = self.erp.find(RECORD_TYPES[doc.doc_type], doc.doc_id) if doc.doc_type in RECORD_TYPES else None
        except ErpTransient:
            return None  # the write path will meet the same trouble and answer retry-later
        if found is None:
            return None
        return MappingError("IMMUTABLE_DOCUMENT", f"{doc.doc_id} is in NetSuite ({found.record_type}/"
                            f"{found.internal_id}); revision {doc.revision} would change it in place: issue a credit "
                            "note and a rebill instead", "revision")

    def _resolve(self, doc: OutboxDocument) -> tuple[dict[str, str], list[str]]:
        """Internal ids of every prerequisite, and the ones not in the ERP yet."""
        refs: dict[str, str] = {}
        waiting: list[str] = []
        for needed in dict.fromkeys((*doc.prerequisites, *required_refs(doc))):
            known = self.outbox.get(needed)
            internal_id = synced_internal_id(known) if known is not None else self._look_up(needed)
            if internal_id is None:
                waiting.append(needed)
            else:
                refs[needed] = internal_id
        return refs, waiting

    def _look_up(self, doc_id: str) -> str | None:
        """A record the outbox does not hold (made in NetSuite, or before the outbox existed)."""
        record_type = RECORD_TYPES["customer"] if doc_id.startswith("customer:") else RECORD_TYPES["invoice"]
        try:
            found = self.erp.find(record_type, doc_id)
        except ErpTransient:
            return None
        return found.internal_id if found is not None else None

    def _failed(self, doc: OutboxDocument | None, doc_id: str, revision: int, attempt: int,
                error: MappingError | ErpRejected) -> SyncOutcome:
        current = self.outbox.get(doc_id) if doc is not None else None
        if current is not None and current.revision == revision and current.status == SYNCED:
            # A duplicate delivery of the same document won the race and synced it (NetSuite may
            # refuse the loser's write): the document is in NetSuite, nothing has failed.
            return SyncOutcome("already_synced", 200, current.detail)
        record = SyncError(
            doc_id=doc_id, revision=revision, attempt=attempt, doc_type=doc.doc_type if doc else "",
            customer_id=doc.customer_id if doc else "", code=error.code, detail=error.detail, path=error.path,
            at=self._now().isoformat(timespec="seconds"))
        self.errors.record(record)
        if doc is not None and doc.revision == revision:
            self.outbox.mark(doc_id, revision, FAILED, f"{error.code}: {error.detail}")
        log.error("document refused; recorded in sync_errors, not retried",
                  extra={"doc_id": doc_id, "revision": revision, "code": error.code, "detail": error.detail,
                         "path": error.path})
        return SyncOutcome(FAILED, 200, f"{error.code}: {error.detail}")
