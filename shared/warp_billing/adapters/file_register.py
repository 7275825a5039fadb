"""The file register for the cycle close (``CloseRegister``; ``.outbox`` is the ``SyncOutbox``).

It is `warp invoice`'s register (``billing.invoice_store.InvoiceRegister``: a folder per
customer, gapless numbers, read-only files) plus what a scheduled close needs:

* ``REGISTER/<customer>/cycles/<period>.json``: the watermark the cycle is closed with, written
  (create-only) before the invoice is issued, so a retry computes exactly the same draft;
* ``REGISTER/outbox.sqlite``: the ERP outbox (``ports.SyncOutbox``), sequence = SQLite rowid
  order, ``(doc_id, revision)`` unique so a second add changes nothing.

A per-customer lock file (``.close.lock``, distinct from the register's own ``.lock``)
serialises closes of one customer across processes. Files and SQLite cannot share one
transaction: the outbox documents of the live invoice are (re)added on every call, after the
issue, so a crash between the two is repaired by the next close of the cycle.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import orjson

from ..billing.close_service import ALREADY_ISSUED
from ..billing.erp_outbox import DEFAULT_ACCOUNTS, customer_doc_id, issue_documents
from ..billing.errors import InvoiceRegisterError
from ..billing.invoice import INVOICE, STATEMENT, Invoice
from ..billing.invoice_store import InvoiceRegister, IssueOutcome, invoice_customer
from ..billing.receivables import cancels_in_full
from ..billing.revenue_recognition import AccountMap
from ..ports import OutboxDocument

_OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, revision INTEGER NOT NULL,
    doc_type TEXT NOT NULL, customer_id TEXT NOT NULL, issued_at TEXT NOT NULL, payload TEXT NOT NULL,
    prerequisites TEXT NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',
    UNIQUE (doc_id, revision));
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status, sequence);
CREATE INDEX IF NOT EXISTS outbox_customer ON outbox (customer_id, sequence);
"""
OUTBOX_STATUSES = ("pending", "enqueued", "synced", "failed")
BILLED = (INVOICE, STATEMENT)  # what a close issues: a postpaid invoice or a prepaid statement


class SqliteOutbox:
    """``ports.SyncOutbox`` in one SQLite file (one connection per thread, WAL)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._local = threading.local()
        self._ready = False
        self._opening = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            # Switching a new file to WAL and creating the schema take locks that SQLite's busy
            # timeout does not cover: two threads opening at once got "database is locked" in a
            # concurrent close, so the threads of one outbox open it one at a time.
            with self._opening:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(_OUTBOX_SCHEMA)
            self._local.connection = connection
        return connection

    def add(self, document: OutboxDocument) -> None:
        self.add_all([document])

    def add_all(self, documents: list[OutboxDocument]) -> None:
        """Add several documents in one SQLite transaction, in order (existing ones unchanged)."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(
                "INSERT OR IGNORE INTO outbox (doc_id, revision, doc_type, customer_id, issued_at, payload, "
                "prerequisites, status, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(d.doc_id, d.revision, d.doc_type, d.customer_id, d.issued_at, orjson.dumps(d.payload).decode(),
                  orjson.dumps(list(d.prerequisites)).decode(), d.status, d.detail) for d in documents])
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def pending(self, limit: int = 100) -> list[OutboxDocument]:
        return self._select("status != 'synced' ORDER BY sequence LIMIT ?", (limit,))

    def get(self, doc_id: str) -> OutboxDocument | None:
        found = self._select("doc_id = ? ORDER BY revision DESC LIMIT 1", (doc_id,))
        return found[0] if found else None

    def mark(self, doc_id: str, revision: int, status: str, detail: str = "") -> None:
        if status not in OUTBOX_STATUSES:
            raise ValueError(f"outbox status {status!r} is not one of {', '.join(OUTBOX_STATUSES)}")
        changed = self._connection().execute(
            "UPDATE outbox SET status = ?, detail = ? WHERE doc_id = ? AND revision = ?",
            (status, detail, doc_id, revision)).rowcount
        if changed == 0:
            raise KeyError(f"outbox has no document {doc_id!r} revision {revision}")

    def documents(self, customer_id: str | None = None) -> list[OutboxDocument]:
        if customer_id is None:
            return self._select("1 = 1 ORDER BY sequence", ())
        return self._select("customer_id = ? ORDER BY sequence", (customer_id,))

    def has(self, doc_id: str) -> bool:
        found = self._connection().execute("SELECT 1 FROM outbox WHERE doc_id = ? LIMIT 1", (doc_id,)).fetchone()
        return found is not None

    def _select(self, where: str, parameters: tuple) -> list[OutboxDocument]:
        rows = self._connection().execute(
            "SELECT doc_id, revision, doc_type, customer_id, sequence, issued_at, payload, prerequisites, status, "
            f"detail FROM outbox WHERE {where}", parameters).fetchall()
        return [OutboxDocument(row[0], row[1], row[2], row[3], row[4], row[5], orjson.loads(row[6]),
                               tuple(orjson.loads(row[7])), row[8], row[9]) for row in rows]


class FileCloseRegister:
    """``CloseRegister`` on a register folder, with its ``SyncOutbox`` as ``.outbox`` (module docstring)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.register = InvoiceRegister(self.root)
        self.outbox = SqliteOutbox(self.root / "outbox.sqlite")

    # -- CloseRegister ------------------------------------------------------------------------

    def cycle_watermark(self, customer_id: str, period: str) -> datetime | None:
        path = self._cycle_path(customer_id, period)
        try:
            return datetime.fromisoformat(orjson.loads(path.read_bytes())["watermark"])
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError, KeyError, ValueError) as exc:
            raise InvoiceRegisterError(f"{path}: not a readable cycle record: {exc}") from None

    def issued_number(self, customer_id: str, period: str) -> str | None:
        documents = self.register.documents(customer_id)
        credited = {d.credits for d in documents if d.document_type not in BILLED and cancels_in_full(d)}
        for document in reversed(documents):
            if (document.document_type in BILLED and document.cycle.label == period
                    and document.number not in credited):
                return document.number
        return None

    def issue_close(self, draft: Invoice, *, watermark: datetime, customer: OutboxDocument, accounts: AccountMap,
                    as_of: date | None = None, rebill: bool = False) -> IssueOutcome:
        with self._customer_lock(draft.customer_id):
            self._claim(draft, watermark)
            live = self._live(draft)
            if live is not None and (not rebill or live.content_hash == draft.content_hash):
                outcome = IssueOutcome(ALREADY_ISSUED if live.content_hash != draft.content_hash else "unchanged", live)
            else:
                outcome = self.register.issue(draft, as_of=as_of)
            documents = [document for document in (outcome.credit_note, outcome.invoice, *outcome.carried)
                         if document is not None]
            entries = issue_documents(documents, customer.issued_at, accounts)
            if not self.outbox.has(customer_doc_id(draft.customer_id)):
                entries.insert(0, customer)
            self.outbox.add_all(entries)
            return outcome

    def documents(self, customer_id: str) -> list[Invoice]:
        return self.register.documents(customer_id)

    def credit_line(self, invoice_number: str, sku: str, amount: Decimal, on: date, dispute_id: str,
                    accounts: AccountMap = DEFAULT_ACCOUNTS) -> Invoice:
        """A credit note of ``amount`` on the ``sku`` line of an issued invoice, for an accepted customer
        dispute, with its outbox entries (credit memo and journal; a prepaid statement's note: its journal).

        Under the customer's close lock, so it never interleaves with a close of the same customer. The
        note is issued once per ``dispute_id`` (``InvoiceRegister.credit_line`` returns the existing one);
        its entries are added on every call and the outbox keeps the first of each (doc_id, revision), so
        a repeat adds nothing and a crash between the note and its entries is repaired by the next call.
        """
        customer_id = invoice_customer(invoice_number)
        if not customer_id:
            raise InvoiceRegisterError(f"{invoice_number} is not an invoice number")
        with self._customer_lock(customer_id):
            note = self.register.credit_line(invoice_number, sku, amount, on, dispute_id)
            # the entries of an existing note keep the instant they were first added with (INSERT OR IGNORE)
            self.outbox.add_all(issue_documents([note], datetime.now(UTC).isoformat(), accounts))
            return note

    # -- the ERP outbox (``self.outbox`` is the ``SyncOutbox``; these delegate for convenience) ----

    def pending(self, limit: int = 100) -> list[OutboxDocument]:
        return self.outbox.pending(limit)

    def outbox_documents(self, customer_id: str | None = None) -> list[OutboxDocument]:
        return self.outbox.documents(customer_id)

    # -- internals ----------------------------------------------------------------------------

    def _live(self, draft: Invoice) -> Invoice | None:
        documents = self.register.documents(draft.customer_id)
        # a dispute's partial credit note leaves the invoice live (only a cancelling note ends it)
        credited = {document.credits for document in documents
                    if document.document_type not in BILLED and cancels_in_full(document)}
        live = [document for document in documents if document.document_type in BILLED
                and document.number not in credited and document.cycle.start == draft.cycle.start]
        return live[-1] if live else None

    def _claim(self, draft: Invoice, watermark: datetime) -> None:
        """Record the cycle's watermark before anything is issued (never replaced)."""
        path = self._cycle_path(draft.customer_id, draft.cycle.label)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(orjson.dumps({"customer_id": draft.customer_id, "period": draft.cycle.label,
                                            "watermark": watermark.isoformat()}))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()

    def _cycle_path(self, customer_id: str, period: str) -> Path:
        return self.register._customer_folder(customer_id) / "cycles" / f"{period}.json"

    @contextmanager
    def _customer_lock(self, customer_id: str) -> Iterator[None]:
        folder = self.register._customer_folder(customer_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle = open(folder / ".close.lock", "a+b")  # noqa: SIM115 - held for the lock's whole scope below
        except OSError as exc:
            raise InvoiceRegisterError(f"cannot use invoice register {folder}: {exc.strerror}") from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
