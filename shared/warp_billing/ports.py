"""Ports: what the service layer needs from the outside world, as small Protocols.

Adapters (``warp_billing.adapters``) implement these against BigQuery, Firestore, Redis,
Pub/Sub and the embedded defaults; unit tests use hand-written fakes. Every write here is
idempotent by a business key (event_id, entry_id, version), because every delivery may repeat.

Every port is declared here. The value types two of them exchange stay with their domain:
``BalanceStore`` takes ``charging.accounts`` requests and results, ``TaxEngine`` takes a
``billing.taxes.TaxRequest`` and returns ``billing.fees.Fee`` lines (imported for type checking only,
so this module imports nothing at run time and every layer may import it).

The ports: UsageStore, LedgerStore, PlanStore, AlertPublisher, Clock, BalanceStore, TaxEngine, SyncOutbox;
for the cycle close: RatedUsageSource, CloseRegister, DocumentStore, InvoicePublisher, CloseRunLog,
PrepaidStatements; for customer disputes: DisputeStore.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from datetime import date
    from decimal import Decimal

    from .billing.fees import Fee
    from .billing.taxes import TaxRequest
    from .charging.accounts import AccountState, ChargeRequest, ChargeResult, PrepaidTerms
    from .charging.errors import TransientError
    from .payments.allocation import Application
    from .payments.gateway import ChargeOutcome, ProfileCharge, TransactionDetails
    from .payments.records import PaymentHeader, PaymentRecord, ReversalRecord


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One movement of a customer's balance, in integer micro-units.

    Attributes:
        entry_id: the idempotency key (the usage event_id for a debit; a top-up id otherwise).
        customer_id: whose balance moved.
        kind: "debit" (usage), "topup", "auto_recharge", "adjustment".
        amount_micros: signed change (debits negative).
        balance_after_micros: the balance right after this entry.
        at: ISO 8601 instant the entry was made.
        reference: free text (event kind, payment id, operator note).
        sequence: the customer's position after this entry (1, 2, 3... per customer, counted by
            the balance store); None on entries written before positions existed.
    """

    entry_id: str
    customer_id: str
    kind: str
    amount_micros: int
    balance_after_micros: int
    at: str
    reference: str = ""
    sequence: int | None = None


class PermanentStoreError(ValueError):
    """A store refused a record for its CONTENT (too large, malformed): retrying can never help.

    Adapters raise this or a ``TransientError`` (never anything else for a failed write), so
    the charging service decides at the port: a permanent refusal becomes an acknowledged
    reject, a transient one a redelivery.
    """


class UsageStore(Protocol):
    """Rated usage and rejects (BigQuery in production; insertId = event_id)."""

    def insert_rated(self, records: Sequence[Mapping]) -> None: ...

    def insert_rejects(self, records: Sequence[Mapping]) -> None: ...

    def rated_event_ids(self, keys: Sequence[tuple[str, str]]) -> set[str]:
        """Which of these (event_id, UTC start day YYYY-MM-DD) have a rated row (raw rows, any copy):
        the durable dedup for events older than the Redis dedup window and for replays."""
        ...

    def rated_amounts(self, customer_id: str, first_day: str, last_day: str) -> Iterator[tuple[str, str, str]]:
        """(event_id, start_time, amount) of the customer's rated rows on UTC start days
        first_day..last_day, one per event_id: postpaid running totals are rebuilt from them."""
        ...


class LedgerStore(Protocol):
    """The persisted ledger of balance movements: the source of truth to rebuild Redis from."""

    def append(self, entries: Sequence[LedgerEntry]) -> None: ...

    def entries(self, customer_id: str | None = None) -> Iterator[LedgerEntry]: ...

    def raw_entries(self, customer_id: str | None = None) -> Iterator[LedgerEntry]:
        """Every stored row, duplicates and conflicting rows included (never a deduplicated view):
        what a reconcile reads to find two different movements under one entry id."""
        ...


class PlanStore(Protocol):
    """Customer plans and decks by version, with a pointer to the current version."""

    def current_version(self, customer_id: str) -> str | None: ...

    def plan_document(self, customer_id: str, version: str) -> Mapping: ...

    def deck_text(self, deck_id: str) -> str: ...

    def put_plan(self, customer_id: str, plan_yaml: str, decks: Mapping[str, str]) -> str: ...


class AlertPublisher(Protocol):
    """Billing alerts (low balance, low margin, suspension) to the billing-alerts topic."""

    def publish(self, alert: Mapping) -> None: ...


# ---------------------------------------------------------------- time (real-time charging)


class Clock(Protocol):
    """Wall-clock time for charging decisions (``charging.clock.SystemClock``; a settable clock in tests)."""

    def now_ms(self) -> int: ...


# ---------------------------------------------------------------- balances (real-time charging)


class BalanceStore(Protocol):
    """Hot balances and running totals with per-event dedup (Memorystore in production)."""

    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Debit (prepaid) or add to the cycle total (postpaid), once per entry_id.

        Raises ``AccountNotLoaded`` for a prepaid account that does not exist (a TransientError).
        """

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult | TransientError]:
        """``charge`` for many requests in one round trip, in order; an item that must be
        retried (account not loaded) comes back as its error, the others are done."""

    def prior_result(self, customer_id: str, entry_id: str, reference: str) -> ChargeResult | None:
        """The stored result of an earlier charge of this entry, if still kept."""

    def credit(
        self, customer_id: str, entry_id: str, amount_micros: int, kind: str, reference: str, at_ms: int,
        terms: PrepaidTerms,
    ) -> ChargeResult:
        """Top-up / adjustment, idempotent by entry_id forever; opens the account if needed."""

    def open_account(self, customer_id: str, at_ms: int) -> None:
        """Create a prepaid account at zero balance if it does not exist."""

    def account(self, customer_id: str) -> AccountState | None: ...

    def is_verified(self, customer_id: str) -> bool:
        """Whether the customer's Redis account is known to match the ledger (else reconcile first)."""

    def persisted(self, entries: Sequence[LedgerEntry], rated: Sequence[tuple[str, str]] = (), *,
                  deferred: bool = False) -> None:
        """The ledger store holds these entries and the usage store these (customer, event_id) rated
        rows: drop them from the Redis outbox (idempotent; the sweep drains what is left).
        ``deferred``: with the next charge's round trip rather than one of its own."""


# ---------------------------------------------------------------- taxes (invoices)


class TaxEngine(Protocol):
    """Computes taxes and regulatory fees for an invoice; raises TaxError, never guesses."""

    def taxes(self, request: TaxRequest) -> list[Fee]: ...


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """Split an iterable into lists of at most ``size`` (for batched writes)."""
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# ---------------------------------------------------------------- ERP outbox (cycle close -> NetSuite)


@dataclass(frozen=True, slots=True)
class OutboxDocument:
    """One issued document waiting to be synced to the ERP (NetSuite).

    The cycle close records it in the same transaction that issues the document; the NetSuite
    sync drains it. A document never changes once issued: a correction is a new document (a
    credit note, a rebill) with its own id, so ``(doc_id, revision)`` names one payload forever.

    Attributes:
        doc_id: the business id, also the ERP externalId ("ACME-INV-000001", "ACME-CN-000001",
            "customer:ACME", "payment:<transaction id>", "journal:ACME-INV-000001").
        revision: 1 for a first issue; a re-sent document (e.g. a customer record whose
            billing profile changed) gets the next revision.
        doc_type: "customer" | "invoice" | "credit_memo" | "customer_payment" | "customer_deposit" |
            "customer_refund" | "journal_entry".
        customer_id: whose document it is.
        sequence: the issue order within the outbox (monotonic per outbox; drains go in this order).
        issued_at: ISO 8601 instant of issue.
        payload: the document itself as JSON-ready data (money as decimal strings), e.g. the
            issued invoice JSON of `warp invoice` with its ``invoice_number``.
        prerequisites: doc_ids that must be in the ERP first (the customer before its
            invoices; an invoice before its payments and credit memos).
        status: "pending" | "enqueued" | "synced" | "failed".
        detail: the last error or the ERP's internal id / location once synced.
    """

    doc_id: str
    revision: int
    doc_type: str
    customer_id: str
    sequence: int
    issued_at: str
    payload: Mapping
    prerequisites: tuple[str, ...] = ()
    status: str = "pending"
    detail: str = ""


class SyncOutbox(Protocol):
    """Issued documents to be sent to the ERP, in issue order (register adapters implement it)."""

    def add(self, document: OutboxDocument) -> None:
        """Record a document as pending; a second add of the same (doc_id, revision) changes nothing."""
        ...

    def pending(self, limit: int = 100) -> list[OutboxDocument]:
        """Documents not yet synced (pending, enqueued or failed), oldest sequence first."""
        ...

    def get(self, doc_id: str) -> OutboxDocument | None:
        """The latest revision of a document, or None."""
        ...

    def mark(self, doc_id: str, revision: int, status: str, detail: str = "") -> None:
        """Move a document to ``status`` (enqueued, synced, failed, pending again for a retry)."""
        ...

    def documents(self, customer_id: str | None = None) -> list[OutboxDocument]:
        """Every document (all statuses), for status views, oldest sequence first."""
        ...


# ---------------------------------------------------------------- NetSuite sync (issue 11)


@dataclass(frozen=True, slots=True)
class ErpRecordRef:
    """A record in the ERP: its type, our externalId and the ERP's internal id."""

    record_type: str
    external_id: str
    internal_id: str


class Erp(Protocol):
    """The ERP's record API (NetSuite SuiteTalk REST in production; a stand-in locally).

    Writes are upserts by externalId, so a repeated call never creates a second record.
    Adapters raise ``warp_billing.erp.errors.ErpTransient`` (retry later) or ``ErpRejected``
    (the ERP refused the record: permanent until the data or mapping changes).
    """

    def upsert(self, record_type: str, external_id: str, body: Mapping) -> ErpRecordRef: ...

    def find(self, record_type: str, external_id: str) -> ErpRecordRef | None: ...


class TaskQueue(Protocol):
    """A push queue of HTTP tasks (Cloud Tasks); a task name is used at most once per queue."""

    def enqueue(self, name: str, body: Mapping, *, delay_s: int = 0) -> bool:
        """Create the task; False when a task of that name already exists (nothing created)."""
        ...


@dataclass(frozen=True, slots=True)
class SyncError:
    """A document the ERP (or our mapping) refused: permanent until someone fixes the cause.

    Attributes:
        doc_id, revision: the outbox document.
        attempt: the retry generation of the task that failed (0 first, +1 per `warp netsuite retry`);
            (doc_id, revision, attempt) is the key, so a redelivered task records one row.
        code: the NetSuite ``o:errorCode`` or our own (UNMAPPED_SKU, UNMAPPED_ACCOUNT, ...).
        detail: the human-readable reason (names the SKU, the mapping file and version, ...).
        path: the NetSuite ``o:errorPath`` (or the payload path) when known.
    """

    doc_id: str
    revision: int
    attempt: int
    doc_type: str
    customer_id: str
    code: str
    detail: str
    path: str
    at: str


class SyncErrorLog(Protocol):
    """The ``sync_errors`` records of the NetSuite sync."""

    def record(self, error: SyncError) -> None:
        """Keep ``error``; a second record of the same (doc_id, revision, attempt) changes nothing."""
        ...

    def errors(self, doc_id: str | None = None, customer_id: str | None = None) -> list[SyncError]:
        """Recorded errors, oldest first."""
        ...


class SecretSource(Protocol):
    """Named secrets (Secret Manager in the cloud; settings or files in the embedded default)."""

    def secret(self, name: str) -> str:
        """The secret's value; raises KeyError naming the secret when it is not configured."""
        ...


class WebhookReceipts(Protocol):
    """Durable record of accepted webhook notifications, create-only (replay protection)."""

    def record_once(self, source: str, event_id: str, received_at: str, body: bytes) -> bool:
        """Keep the notification; True when it is new, False when (source, event_id) was already kept.

        Create-only: a second call with the same key changes nothing, whatever its body.
        """
        ...


# ---------------------------------------------------------------- payments (issue 12)


class PaymentStore(Protocol):
    """Received payments, each kept once by its gateway transaction id, with what it paid.

    ``apply`` and ``reverse`` decide under the store's serialization per customer (a SQLite
    write transaction, a Firestore transaction on the customer's document), so concurrent
    payments of one customer never apply the same open amount twice.
    """

    def apply(self, header: PaymentHeader,
              decide: Callable[[Mapping[str, Decimal]], tuple[Application, ...]]) -> PaymentRecord:
        """Apply a payment once: ``decide(paid_by_invoice)`` (what the customer's applied payments cover,
        net of reversals) says where it goes. A payment already applied (or declined) is returned as
        kept (``created=False``); a pending one is applied now."""
        ...

    def hold(self, header: PaymentHeader) -> PaymentRecord:
        """Keep a payment as pending (held for fraud review); an existing one is returned as kept."""
        ...

    def decline(self, transaction_id: str) -> PaymentRecord | None:
        """A pending payment becomes declined (nothing applied); None when it was never kept."""
        ...

    def reverse(self, reversal_id: str, transaction_id: str, at: str,
                decide: Callable[[tuple[Application, ...]], tuple[Application, ...]]) -> ReversalRecord:
        """Reverse (part of) an applied payment once per ``reversal_id``: ``decide(left)`` gets what is
        left of it and returns what to take back. KeyError when the payment is not applied."""
        ...

    def get(self, transaction_id: str) -> PaymentRecord | None: ...

    def applications(self, customer_id: str) -> list[tuple[str, str, Decimal, date]]:
        """(transaction id, invoice number, net amount, received on) of every applied payment on invoices."""
        ...

    def reject(self, reject_id: str, reason: str, detail: str, body: bytes, at: str) -> bool:
        """Keep a notification that could not be applied (create-only); True when new."""
        ...

    def flag(self, flag_id: str, kind: str, customer_id: str, detail: Mapping, at: str) -> bool:
        """Keep a change an operator must look at (e.g. an invoice voided in NetSuite), create-only."""
        ...


class PaymentGateway(Protocol):
    """The card gateway's API (Authorize.Net ``request.api``)."""

    def transaction_details(self, transaction_id: str) -> TransactionDetails:
        """``getTransactionDetailsRequest``; KeyError when the gateway does not know the transaction."""
        ...

    def charge_profile(self, charge: ProfileCharge) -> ChargeOutcome:
        """``createTransactionRequest`` (authCaptureTransaction on a stored customer payment profile)."""
        ...


class RechargeLocks(Protocol):
    """Per-customer auto-recharge state (Redis, its own key namespace): the one recharge in flight and
    the day's attempt count."""

    def acquire(self, customer_id: str, recharge_id: str, ttl_s: int) -> bool:
        """Mark ``recharge_id`` in flight for the customer unless one is; True when this call did."""
        ...

    def holder(self, customer_id: str) -> str | None:
        """The recharge in flight, or None."""
        ...

    def extend(self, customer_id: str, recharge_id: str, ttl_s: int) -> bool:
        """Keep ``recharge_id`` in flight ``ttl_s`` longer (False when it is not the holder)."""
        ...

    def release(self, customer_id: str, recharge_id: str) -> None:
        """End ``recharge_id`` (only when it is the holder)."""
        ...

    def count_attempt(self, customer_id: str, day: str, attempt_key: str) -> tuple[int, bool]:
        """Count one charge attempt on ``day`` (once per ``attempt_key``): the day's count after it, and
        whether this call counted it (False: the attempt was already made, by an earlier delivery)."""
        ...


# ---------------------------------------------------------------- vendor reconciliation (issue 13)


class VendorFileSource(Protocol):
    """Where vendor CDR files, mappings and invoice summaries arrive (a bucket, or a folder).

    Names are object names relative to the bucket (``vendor-cdrs/<vendor>/<period>/...``).
    """

    def names(self, prefix: str) -> list[str]:
        """Every object name under ``prefix``, sorted."""
        ...

    def read(self, name: str) -> bytes:
        """An object's bytes; ``FileNotFoundError`` when absent."""
        ...

    def location(self, name: str) -> str:
        """How people and tables refer to the object (``gs://bucket/name`` or a path)."""
        ...


class ReportSink(Protocol):
    """Where a reconciliation's outputs go; a re-run of the same run replaces its own files."""

    def put(self, name: str, data: bytes, content_type: str) -> str:
        """Store ``data`` under ``name`` (relative); return its reference (path or gs:// URI)."""
        ...


class ReportReader(Protocol):
    """Reconciliation outputs read back by the reference a ``ReportSink`` returned (the dispute package
    that ``notify`` attaches)."""

    def read(self, location: str) -> bytes:
        """The bytes at ``location`` (a path or ``gs://bucket/name``): ``PermanentStoreError`` for a
        location this reader may never read; any other exception (absent, unreachable) may pass on retry."""
        ...


# ---------------------------------------------------------------- cycle close (issue 10)
# Value types live in billing (close_usage, invoice, invoice_store, erp_outbox); the ports only
# name them, so this module stays free of the billing package at import.

if TYPE_CHECKING:
    from datetime import datetime

    from .billing.close_usage import CloseWindow, UsageBatch
    from .billing.invoice import Invoice
    from .billing.invoice_store import IssueOutcome
    from .billing.revenue_recognition import AccountMap
    from .charging.statement_debits import PostedDebits
    from .plan import Plan


class RatedUsageSource(Protocol):
    """Rated usage summed per customer, cycle and product line (a rated JSONL file, or BigQuery)."""

    def close_usage(self, windows: Sequence[CloseWindow]) -> UsageBatch:
        """Usage of each window's customer (its cycle's, and late usage of earlier cycles)."""
        ...


class CloseRegister(Protocol):
    """The invoice register as the cycle close uses it: gapless numbers, immutable documents,
    one live invoice per customer and cycle, and the ERP outbox written with each issue."""

    def cycle_watermark(self, customer_id: str, period: str) -> datetime | None:
        """The watermark the cycle was (or is being) closed with, or None if never."""
        ...

    def issued_number(self, customer_id: str, period: str) -> str | None:
        """The live invoice number of the cycle, or None when nothing is issued for it."""
        ...

    def issue_close(self, draft: Invoice, *, watermark: datetime, customer: OutboxDocument,
                    accounts: AccountMap, as_of: date | None = None, rebill: bool = False) -> IssueOutcome:
        """Issue ``draft`` for its cycle, once. A live invoice for the cycle is returned as
        "already_issued" (``rebill=False``) or, when its content differs, credited and rebilled
        (``rebill=True``). Records the outbox documents of the live documents in the same step."""
        ...

    def documents(self, customer_id: str) -> list[Invoice]:
        """Every issued document of a customer."""
        ...

    def credit_line(self, invoice_number: str, sku: str, amount: Decimal, on: date, dispute_id: str,
                    accounts: AccountMap = ...) -> Invoice:
        """The partial credit note of an accepted customer dispute on one invoice line, numbered in the
        customer's gapless CN sequence, with its outbox entries (credit memo, journal) recorded in the
        same step; issued once per ``dispute_id`` (a repeat returns the same note and adds nothing)."""
        ...


# ---------------------------------------------------------------- customer disputes (issue 13)
# The value type is ``reconciliation.customer_disputes.CustomerDispute``.

if TYPE_CHECKING:
    from .reconciliation.customer_disputes import CustomerDispute


class DisputeStore(Protocol):
    """Customer disputes of invoice lines, one record per dispute id ``<customer>-DSP-<n>``.

    Numbers are gapless per customer. ``open`` and ``change`` decide under the store's serialisation
    of the customer (a file lock; a Firestore transaction whose commit fails when another one took
    the number or changed the dispute first, and is then run again from fresh reads): their
    callbacks may therefore run more than once and must only compute (or be idempotent).
    """

    def open(self, customer_id: str,
             make: Callable[[str, Sequence[CustomerDispute]], CustomerDispute]) -> CustomerDispute:
        """Keep a new dispute: ``make(next_id, the customer's disputes)`` builds it (or raises
        ``DisputeError``, e.g. when the line is already disputed); returns what was kept."""
        ...

    def change(self, dispute_id: str, move: Callable[[CustomerDispute], CustomerDispute]) -> CustomerDispute:
        """Replace a dispute by ``move(current)``; ``DisputeError`` when there is no such dispute."""
        ...

    def get(self, dispute_id: str) -> CustomerDispute:
        """The dispute; ``DisputeError`` when there is none (or its record is another customer's)."""
        ...

    def of_customer(self, customer_id: str) -> list[CustomerDispute]:
        """The customer's disputes, by id."""
        ...

    def all(self) -> list[CustomerDispute]:
        """Every dispute, by customer then id."""
        ...


class PrepaidStatements(Protocol):
    """A prepaid customer's side of its monthly statement (``billing.prepaid_statement``): the
    persisted ledger its balance box is worked out from, and the posting of its recurring charges
    and fees to the balance (idempotent by statement line: posting twice moves nothing twice)."""

    def ledger_entries(self, customer_id: str) -> list[LedgerEntry]:
        """Every persisted ledger entry of the customer."""
        ...

    def post(self, statement: Invoice, plan: Plan) -> PostedDebits:
        """Debit the issued statement's non-usage lines and fees (a credit note's give them back)."""
        ...


class DocumentStore(Protocol):
    """Rendered documents (JSON, HTML, PDF, journals), written once and never changed."""

    def put(self, name: str, data: bytes, content_type: str) -> str:
        """Store ``data`` under ``name`` (a relative path); return its reference (path or gs:// URI).
        The same bytes again is a no-op; different bytes under an existing name raise."""
        ...

    def exists(self, name: str) -> bool:
        """Whether a document is stored under ``name``."""
        ...

    def get(self, name: str) -> bytes:
        """The bytes stored under ``name`` (an invoice PDF attached to an email); raises when absent."""
        ...


class InvoicePublisher(Protocol):
    """Each issued document announced on the ``invoices`` topic (subscribers dedup by number)."""

    def publish(self, document: Mapping) -> None: ...


class CloseRunLog(Protocol):
    """One ``cycle_runs`` row per customer and close run."""

    def record(self, rows: Sequence[Mapping]) -> None: ...


# ---------------------------------------------------------------- collections (issue 12: dunning, email, HubSpot)
# Values are in ``warp_billing.dunning`` (``AccountHold``, ``Mail``, ``StepRecord``).

if TYPE_CHECKING:
    from .billing.receivables import InvoiceStanding
    from .dunning.holds import AccountHold
    from .dunning.notices import Mail


class Receivables(Protocol):
    """Each issued invoice of a customer with what is left to pay on a day (the register's aging)."""

    def standings(self, customer_id: str, as_of: date) -> list[InvoiceStanding]: ...


class DunningStore(Protocol):
    """Which dunning steps ran (create-only by (invoice, action)) and who is suspended."""

    def record_step(self, customer_id: str, invoice_number: str, action: str, at: str) -> bool:
        """Keep that ``action`` ran for the invoice; True when new (False: it had run already)."""
        ...

    def steps(self, customer_id: str) -> set[tuple[str, str]]:
        """(invoice number, action) of every step that ran for the customer."""
        ...

    def suspension(self, customer_id: str) -> str | None:
        """The invoice the customer is suspended for, or None."""
        ...

    def set_suspended(self, customer_id: str, invoice_number: str, at: str) -> None: ...

    def clear_suspended(self, customer_id: str, at: str) -> bool:
        """Lift the record; True when the customer was suspended."""
        ...

    def suspended_customers(self) -> list[str]: ...


class AccountHolds(Protocol):
    """What charging checks: a suspended customer's events are refused ACCOUNT_SUSPENDED."""

    def suspend(self, hold: AccountHold) -> bool: ...

    def reinstate(self, customer_id: str) -> bool: ...

    def hold(self, customer_id: str) -> AccountHold | None: ...


class EmailLog(Protocol):
    """Emails by their id ``<document>:<step>``: each sent once."""

    def claim(self, email_id: str, customer_id: str, at: str) -> bool:
        """Take the right to send; False when it was sent, or is being sent (a fresh claim)."""
        ...

    def sent(self, email_id: str, message_id: str, at: str) -> None: ...

    def release(self, email_id: str) -> None:
        """The send failed: the email may be claimed again."""
        ...

    def refused(self, email_id: str, detail: str, at: str) -> None:
        """The provider refused the email for good: recorded, never claimed again."""
        ...

    def status(self, email_id: str) -> str | None: ...


class Mailer(Protocol):
    """Transactional email (SendGrid v3 mail/send with dynamic templates)."""

    def send(self, mail: Mail) -> str:
        """Send; the provider's message id (or ''). ``TransientError`` to retry, ``PermanentStoreError`` never."""
        ...


class Crm(Protocol):
    """HubSpot CRM v3: batch upsert of companies / deals by a unique property (at most 100 inputs)."""

    def batch_upsert(self, object_type: str, id_property: str, inputs: Sequence[Mapping]) -> None:
        """Raise ``CrmThrottled`` (retry after its seconds) on 429, ``TransientError`` on 5xx."""
        ...
