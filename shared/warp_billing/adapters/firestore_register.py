"""The invoice register and ERP outbox on Firestore (``CloseRegister``; ``.outbox`` is the ``SyncOutbox``).

Layout (``collection_prefix`` in front of each top-level name)::

    invoice_registers/{customer}                       counts {invoice: n, statement: s, credit_note: m}
    invoice_registers/{customer}/cycles/{period}       watermark, live_number, issued_at
    invoice_registers/{customer}/documents/{number}    the issued document (record: its JSON text)
    erp_outbox/{doc_id}#{revision}                     an ``OutboxDocument``

One transaction reads the customer's counter, the cycle and the outbox documents it will add,
then writes the new documents, the counter, the cycle and the outbox entries together, so an
issued document and its outbox entries exist together or not at all.

Uniqueness does not rest on transaction contention alone (the local emulator loses concurrent
updates): the cycle document and each numbered document are written with ``create`` (fails if
the document exists). Two closes of the same cycle therefore cannot both commit, and two issues
that read the same counter cannot both take a number: the loser's commit fails, is retried
from fresh reads, and finds the winner's document. Numbers stay gapless because a number is
taken only in the commit that creates its document.

An accepted customer dispute's partial credit note (``credit_line``) is issued the same way: one
transaction reads the counter and the customer's documents, finds a note already carrying the
dispute id (then returns it: idempotent) or creates the next ``CN`` number with its outbox entries
(credit memo and journal), under the same ``create`` guard.

Outbox sequences are the issue instant in milliseconds times 1000 plus the position in the
issue (monotonic per outbox, without a single counter document every close would contend on);
prerequisites order what must be ordered (customer, invoice, its journal and credit notes).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import unquote

import orjson
from google.api_core.exceptions import AlreadyExists, Conflict, FailedPrecondition, NotFound
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from ..billing.close_service import ALREADY_ISSUED
from ..billing.dispute_credits import cancelling_note, carried_credits, line_credit
from ..billing.erp_outbox import DEFAULT_ACCOUNTS, customer_doc_id, issue_documents
from ..billing.errors import InvoiceRegisterError
from ..billing.invoice import CREDIT_NOTE, INVOICE, ISSUED, STATEMENT, Invoice
from ..billing.invoice_store import (
    ISSUED_NEW,
    NUMBER_PATTERN,
    PREFIXES,
    REISSUED,
    UNCHANGED,
    IssueOutcome,
    invoice_customer,
)
from ..billing.receivables import InvoiceStanding, PaymentApplication, account_summary, standings
from ..billing.revenue_recognition import AccountMap
from ..ports import OutboxDocument
from ..safe_names import safe_name
from .firestore_payments import FirestorePaymentStore
from .lazy_client import LazyClient

T = TypeVar("T")
OUTBOX_STATUSES = ("pending", "enqueued", "synced", "failed")
ISSUE_ATTEMPTS = 8


class IssueConflict(RuntimeError):
    """Another close created the same cycle or number first (the issue is retried)."""



class FirestoreRegister:
    """``CloseRegister`` on Firestore, with its ``SyncOutbox`` as ``.outbox`` (module docstring)."""

    def __init__(self, client: Any, settings: Any = None, *, collection_prefix: str = "", timeout_s: float = 60.0):
        self._client = LazyClient(client)
        self.registers = f"{collection_prefix}invoice_registers"
        self.outbox_collection = f"{collection_prefix}erp_outbox"
        self.timeout_s = timeout_s
        self.outbox = FirestoreOutbox(self)
        self._payment_store = FirestorePaymentStore(lambda: self.client, collection_prefix=collection_prefix,
                                                    timeout_s=timeout_s)

    @property
    def client(self):
        return self._client.get()

    # -- CloseRegister ------------------------------------------------------------------------

    def cycle_watermark(self, customer_id: str, period: str) -> datetime | None:
        snapshot = self._cycle_ref(customer_id, period).get(timeout=self.timeout_s)
        if not snapshot.exists:
            return None
        return datetime.fromisoformat(snapshot.get("watermark"))

    def issued_number(self, customer_id: str, period: str) -> str | None:
        snapshot = self._cycle_ref(customer_id, period).get(timeout=self.timeout_s)
        return snapshot.get("live_number") if snapshot.exists else None

    def issue_close(self, draft: Invoice, *, watermark: datetime, customer: OutboxDocument, accounts: AccountMap,
                    as_of: date | None = None, rebill: bool = False) -> IssueOutcome:
        if draft.document_type not in (INVOICE, STATEMENT):
            raise InvoiceRegisterError("only invoices and statements are issued from drafts")
        # payments are read before the transaction: the account box shows what was paid, as the file
        # register's does (the payment store serialises its own decisions)
        paid = self.payments(draft.customer_id) if draft.document_type == INVOICE else []

        def body(transaction) -> IssueOutcome:
            return self._issue(transaction, draft, watermark, customer, accounts, as_of, rebill, paid)

        return self._numbering(body, f"{draft.customer_id} {draft.cycle.label}: could not issue")

    def credit_line(self, invoice_number: str, sku: str, amount: Decimal, on: date, dispute_id: str,
                    accounts: AccountMap = DEFAULT_ACCOUNTS) -> Invoice:
        """A credit note of ``amount`` on the ``sku`` line of an issued invoice, for an accepted
        customer dispute; issued once per ``dispute_id`` (a repeat returns the same note), numbered
        in the customer's gapless ``CN`` sequence, with its ERP outbox entries in the same commit."""
        customer_id = invoice_customer(invoice_number)
        if not customer_id:
            raise InvoiceRegisterError(f"{invoice_number} is not an invoice number")

        def body(transaction) -> Invoice:
            return self._credit_line(transaction, customer_id, invoice_number, sku, amount, on, dispute_id, accounts)

        return self._numbering(body, f"{invoice_number}: could not credit {dispute_id}")

    def _numbering(self, body: Callable[[Any], T], failure: str) -> T:
        """Run ``body`` in a transaction that takes a number; another commit that took it first makes
        this one read again, up to ``ISSUE_ATTEMPTS`` times."""
        for attempt in range(ISSUE_ATTEMPTS):
            try:
                return firestore.transactional(body)(self.client.transaction())
            except (AlreadyExists, Conflict, FailedPrecondition, IssueConflict):
                time.sleep(0.05 * (attempt + 1))  # someone else issued first: read again
        raise InvoiceRegisterError(f"{failure} after {ISSUE_ATTEMPTS} attempts (contention)")

    def documents(self, customer_id: str) -> list[Invoice]:
        found = [Invoice.from_record(orjson.loads(snapshot.get("record")))
                 for snapshot in self._register_ref(customer_id).collection("documents").stream(timeout=self.timeout_s)]
        return sorted(found, key=lambda d: (d.document_type == CREDIT_NOTE, str(d.number)))

    # -- receivables: what `warp invoices list` shows of the file register, from the cloud's payments ----

    def payments(self, customer_id: str) -> list[PaymentApplication]:
        """Payments applied to the customer's invoices, net of refunds and voids: the payment store on
        the same Firestore database and collection prefix (``adapters.firestore_payments``, the cloud's
        ``WARP_PAYMENT_STORE``), read with the store's own query, as the file register reads the
        SQLite payment store beside it."""
        return [PaymentApplication(txn, number, amount, received_on)
                for txn, number, amount, received_on in self._payment_store.applications(customer_id)]

    def find(self, number: str) -> Invoice | None:
        """The issued document numbered ``number`` (any customer: ``<customer>-INV|CN|ST-<n>``), or None."""
        match = NUMBER_PATTERN.fullmatch(number + ".json")
        if match is None:
            return None
        snapshot = self._document_ref(number[:match.start(1) - 1], number).get(timeout=self.timeout_s)
        return Invoice.from_record(orjson.loads(snapshot.get("record"))) if snapshot.exists else None

    def customers(self) -> list[str]:
        """Customers with a register document (every issue writes its customer's counter), by name."""
        snapshots = self.client.collection(self.registers).select(["customer_id"]).stream(timeout=self.timeout_s)
        return sorted(unquote(snapshot.id) for snapshot in snapshots)

    def standings(self, as_of: date, customer_id: str | None = None) -> list[InvoiceStanding]:
        """Each issued invoice with what was credited, paid and is left, and its aging on ``as_of``
        (``InvoiceRegister.standings`` of the file register, on Firestore)."""
        result: list[InvoiceStanding] = []
        for customer in ([customer_id] if customer_id is not None else self.customers()):
            result.extend(standings(self.documents(customer), as_of, self.payments(customer)))
        return result

    # -- the ERP outbox (``self.outbox`` is the ``SyncOutbox``; these delegate for convenience) ----

    def pending(self, limit: int = 100) -> list[OutboxDocument]:
        return self.outbox.pending(limit)

    def outbox_documents(self, customer_id: str | None = None) -> list[OutboxDocument]:
        return self.outbox.documents(customer_id)

    # -- the issue transaction ------------------------------------------------------------------

    def _issue(self, transaction, draft: Invoice, watermark: datetime, customer: OutboxDocument,
               accounts: AccountMap, as_of: date | None, rebill: bool,
               paid: list[PaymentApplication] | None = None) -> IssueOutcome:
        paid = paid or []
        customer_id, label = draft.customer_id, draft.cycle.label
        register_ref, cycle_ref = self._register_ref(customer_id), self._cycle_ref(customer_id, label)
        # Reads first, then every write (Firestore transactions require that order).
        register = register_ref.get(transaction=transaction)
        cycle = cycle_ref.get(transaction=transaction)
        counts = dict(register.get("counts") or {}) if register.exists else {}
        live = None
        if cycle.exists:
            snapshot = self._document_ref(customer_id, cycle.get("live_number")).get(transaction=transaction)
            if not snapshot.exists:
                raise InvoiceRegisterError(f"{customer_id} {label}: cycle names {cycle.get('live_number')}, "
                                           "which is not in the register")
            live = Invoice.from_record(orjson.loads(snapshot.get("record")))
        issued_before = self._issued_documents(transaction, customer_id) if draft.document_type == INVOICE else []
        writes: list[tuple[str, Any, dict]] = []
        if live is not None and (not rebill or live.content_hash == draft.content_hash):
            outcome = IssueOutcome(UNCHANGED if live.content_hash == draft.content_hash else ALREADY_ISSUED, live)
        elif live is None:
            issued = _numbered(draft, draft.document_type, counts)  # INV or ST: each its own counter
            issued = _with_account(issued, issued_before, paid)
            writes.append(("create", self._document_ref(customer_id, str(issued.number)), _document_fields(issued)))
            writes.append(("create", cycle_ref, {"period": label, "watermark": watermark.isoformat(),
                                                 "live_number": issued.number, "issued_at": customer.issued_at}))
            outcome = IssueOutcome(ISSUED_NEW, issued)
        else:
            outcome, more = self._credit_and_rebill(draft, live, counts, as_of, issued_before, paid)
            writes.extend(more)
            writes.append(("update", cycle_ref, {"live_number": outcome.invoice.number}))
        if writes:
            writes.append(("set", register_ref, {"customer_id": customer_id, "counts": counts}))
        documents = [d for d in (outcome.credit_note, outcome.invoice, *outcome.carried) if d is not None]
        entries = [customer, *issue_documents(documents, customer.issued_at, accounts)]
        base = _sequence_base()
        for position, entry in enumerate(entries):
            ref = self._outbox_ref(entry.doc_id, entry.revision)
            if not ref.get(transaction=transaction).exists:
                fields = _outbox_fields(entry)
                fields["sequence"] = base + position
                writes.append(("create", ref, fields))
        for kind, ref, fields in writes:
            getattr(transaction, kind)(ref, fields)
        return outcome

    def _credit_line(self, transaction, customer_id: str, invoice_number: str, sku: str, amount: Decimal,
                     on: date, dispute_id: str, accounts: AccountMap) -> Invoice:
        register_ref = self._register_ref(customer_id)
        # Reads first, then every write (Firestore transactions require that order).
        register = register_ref.get(transaction=transaction)
        counts = dict(register.get("counts") or {}) if register.exists else {}
        issued = self._issued_documents(transaction, customer_id)
        # numbers are gapless, so the notes on file are the highest number (a counter the emulator
        # lost an update of cannot make this commit retry the same number forever)
        notes_on_file = sum(1 for d in issued if d.document_type == CREDIT_NOTE)
        counts[CREDIT_NOTE] = max(int(counts.get(CREDIT_NOTE, 0)), notes_on_file)
        note, new = line_credit(invoice_number, sku, amount, on, dispute_id,
                                [d for d in issued if d.document_type == INVOICE],
                                [d for d in issued if d.document_type == CREDIT_NOTE],
                                lambda: _next_number(customer_id, CREDIT_NOTE, counts))
        if not new:
            return note
        issued_at = datetime.now(UTC).isoformat()
        entries = issue_documents([note], issued_at, accounts)
        refs = [self._outbox_ref(entry.doc_id, entry.revision) for entry in entries]
        missing = [not ref.get(transaction=transaction).exists for ref in refs]
        # ``create``: a number another commit took in the meantime fails here and is read again
        transaction.create(self._document_ref(customer_id, str(note.number)), _document_fields(note))
        transaction.set(register_ref, {"customer_id": customer_id, "counts": counts})
        base = _sequence_base()
        for position, (entry, ref, absent) in enumerate(zip(entries, refs, missing, strict=True)):
            if absent:
                fields = _outbox_fields(entry)
                fields["sequence"] = base + position
                transaction.create(ref, fields)
        return note

    def _credit_and_rebill(self, draft: Invoice, live: Invoice, counts: dict, as_of: date | None,
                           issued_before: list[Invoice], paid: list[PaymentApplication]):
        today = datetime.now(draft.cycle.zone).date()
        on = max(as_of or today, draft.cycle.issue_date)
        # the same rule as the file register: dispute credits are neither cancelled twice nor lost
        credit_notes = [other for other in issued_before if other.document_type == CREDIT_NOTE]
        note = cancelling_note(live, credit_notes, _next_number(draft.customer_id, CREDIT_NOTE, counts), on)
        rebill = replace(draft, number=_next_number(draft.customer_id, draft.document_type, counts), status=ISSUED,
                         issue_date=on, due_date=draft.cycle.due_date(draft.net_days, on), replaces=live.number)
        rebill = _with_account(rebill, [*issued_before, note], paid)
        carried = tuple(carried_credits(live, credit_notes, rebill, on,
                                        lambda: _next_number(draft.customer_id, CREDIT_NOTE, counts)))
        writes = [("create", self._document_ref(draft.customer_id, str(doc.number)), _document_fields(doc))
                  for doc in (note, rebill, *carried)]
        return IssueOutcome(REISSUED, rebill, note, carried), writes

    def _issued_documents(self, transaction, customer_id: str) -> list[Invoice]:
        """The customer's issued documents, read in the issue transaction (for the account box)."""
        documents = self._register_ref(customer_id).collection("documents")
        return [Invoice.from_record(orjson.loads(snapshot.get("record")))
                for snapshot in documents.stream(transaction=transaction)]

    # -- references -----------------------------------------------------------------------------

    def _register_ref(self, customer_id: str):
        return self.client.collection(self.registers).document(safe_name(customer_id))

    def _cycle_ref(self, customer_id: str, period: str):
        return self._register_ref(customer_id).collection("cycles").document(safe_name(period))

    def _document_ref(self, customer_id: str, number: str):
        return self._register_ref(customer_id).collection("documents").document(safe_name(number))

    def _outbox_ref(self, doc_id: str, revision: int):
        return self.outbox.ref(doc_id, revision)


class FirestoreOutbox:
    """``ports.SyncOutbox`` on the register's ``erp_outbox`` collection (what the NetSuite sync drains).

    ``pending`` needs the composite index (status, sequence) in real Firestore.
    """

    def __init__(self, register: FirestoreRegister):
        self._register = register
        self.collection = register.outbox_collection
        self.timeout_s = register.timeout_s

    @property
    def client(self):
        return self._register.client

    def ref(self, doc_id: str, revision: int):
        """The document of ``(doc_id, revision)`` (ids escaped: any business key is safe)."""
        return self.client.collection(self.collection).document(f"{safe_name(doc_id)}#{revision}")

    def add(self, document: OutboxDocument) -> None:
        with contextlib.suppress(AlreadyExists, Conflict):  # the first add stands
            self.ref(document.doc_id, document.revision).create(_outbox_fields(document), timeout=self.timeout_s)

    def pending(self, limit: int = 100) -> list[OutboxDocument]:
        query = (self.client.collection(self.collection)
                 .where(filter=_field_filter("status", "in", ["pending", "enqueued", "failed"]))
                 .order_by("sequence").limit(limit))
        return [_outbox_document(s.to_dict()) for s in query.stream(timeout=self.timeout_s)]

    def get(self, doc_id: str) -> OutboxDocument | None:
        query = self.client.collection(self.collection).where(filter=_field_filter("doc_id", "==", doc_id))
        found = [_outbox_document(s.to_dict()) for s in query.stream(timeout=self.timeout_s)]
        return max(found, key=lambda d: d.revision) if found else None

    def mark(self, doc_id: str, revision: int, status: str, detail: str = "") -> None:
        if status not in OUTBOX_STATUSES:
            raise ValueError(f"outbox status {status!r} is not one of {', '.join(OUTBOX_STATUSES)}")
        try:
            self.ref(doc_id, revision).update({"status": status, "detail": detail}, timeout=self.timeout_s)
        except NotFound:
            raise KeyError(f"outbox has no document {doc_id!r} revision {revision}") from None

    def documents(self, customer_id: str | None = None) -> list[OutboxDocument]:
        query = self.client.collection(self.collection)
        if customer_id is not None:
            query = query.where(filter=_field_filter("customer_id", "==", customer_id))
        found = [_outbox_document(s.to_dict()) for s in query.stream(timeout=self.timeout_s)]
        return sorted(found, key=lambda d: (d.sequence, d.doc_id))


def _next_number(customer_id: str, document_type: str, counts: dict) -> str:
    counts[document_type] = int(counts.get(document_type, 0)) + 1
    return f"{customer_id}-{PREFIXES[document_type]}-{counts[document_type]:06d}"


def _numbered(draft: Invoice, document_type: str, counts: dict) -> Invoice:
    return replace(draft, number=_next_number(draft.customer_id, document_type, counts), status=ISSUED)


def _with_account(document: Invoice, issued_before: list[Invoice],
                  paid: list[PaymentApplication] | None = None) -> Invoice:
    """An invoice's account box, worked out as the file register does (``receivables.account_summary``),
    with the payments applied so far (``FirestoreRegister.payments``)."""
    if document.document_type != INVOICE:
        return document
    invoices = [other for other in issued_before if other.document_type == INVOICE]
    credit_notes = [other for other in issued_before if other.document_type == CREDIT_NOTE]
    return replace(document, account=account_summary(document, invoices, credit_notes, paid or ()).to_record())


def _document_fields(document: Invoice) -> dict:
    return {"number": document.number, "document_type": document.document_type, "customer_id": document.customer_id,
            "period": document.cycle.label, "record": orjson.dumps(document.to_record()).decode()}


SEQUENCE_EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z


def _sequence_base() -> int:
    """Milliseconds since 2020 times 1000: room for 1000 entries per issue, and below 2**53 (the
    local emulator stores integers as JavaScript numbers) until the year 2300."""
    return (time.time_ns() // 1_000_000 - SEQUENCE_EPOCH_MS) * 1000


def _outbox_fields(document: OutboxDocument) -> dict:
    return {"doc_id": document.doc_id, "revision": document.revision, "doc_type": document.doc_type,
            "customer_id": document.customer_id, "sequence": document.sequence or _sequence_base(),
            "issued_at": document.issued_at, "payload": orjson.dumps(document.payload).decode(),
            "prerequisites": list(document.prerequisites), "status": document.status, "detail": document.detail}


def _outbox_document(fields: dict) -> OutboxDocument:
    return OutboxDocument(fields["doc_id"], fields["revision"], fields["doc_type"], fields["customer_id"],
                          fields["sequence"], fields["issued_at"], orjson.loads(fields["payload"]),
                          tuple(fields.get("prerequisites") or ()), fields["status"], fields.get("detail") or "")


def _field_filter(field: str, op: str, value: object):
    return FieldFilter(field, op, value)


__all__ = ["FirestoreOutbox", "FirestoreRegister", "customer_doc_id"]
