"""The invoice register: issued documents, numbered without gaps per customer, never changed.

A folder per customer holds one JSON file per issued document::

    REGISTER/<customer>/invoices/<customer>-INV-000001.json
    REGISTER/<customer>/credit-notes/<customer>-CN-000001.json
    REGISTER/<customer>/statements/<customer>-ST-000001.json      (prepaid customers)

Invoices and credit notes are each numbered 1, 2, 3 ... per customer. A number exists only
once its document file exists (the next number is the highest on file + 1, taken under an
exclusive lock), so a crash can leave no gap; files are created with ``O_EXCL`` semantics
(written aside, then hard-linked into place, which fails rather than overwrite) and made
read-only.

Issuing a draft for a cycle:

* no live invoice for the cycle: the draft is numbered and issued;
* a live invoice bills the same content (same ``content_hash``): nothing is issued, the
  existing invoice is returned (re-running a close is idempotent);
* a live invoice bills different content (late or corrected usage, a changed plan): a
  credit note cancels it in full and a new invoice ("rebill", ``replaces`` the old
  number) is issued. Both are dated the correction date (``as_of``, not before the
  cycle's regular issue date), and the rebill is due ``net_days`` after it.

An invoice is live when no credit note credits it in full. A customer dispute accepted on
one line issues a partial credit note (``credit_line``): it credits that invoice (its lines carry
the ``dispute_id``) but leaves it live, so a later close of the cycle is still idempotent.

An issued invoice carries its account box (previous balance, payments received, credits,
amount due: ``receivables.account_summary``) worked out from the register under the same
lock; it is not part of the billed content, so it never triggers a rebill. Prepaid
statements are issued the same way in their own sequence (``ST``); their box is the
prepaid balance, worked out by the close. ``payments`` reads the payment store beside the
register (``payments.sqlite``, net of refunds and voids); every view takes them.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, unquote

import orjson

from ..safe_names import safe_name
from .dispute_credits import cancelling_note, carried_credits, line_credit
from .errors import InvoiceRegisterError
from .invoice import CREDIT_NOTE, INVOICE, ISSUED, STATEMENT, Invoice
from .receivables import InvoiceStanding, PaymentApplication, account_summary, cancels_in_full, standings

FOLDERS = {INVOICE: "invoices", CREDIT_NOTE: "credit-notes", STATEMENT: "statements"}
PREFIXES = {INVOICE: "INV", CREDIT_NOTE: "CN", STATEMENT: "ST"}
INVOICE_SEPARATOR = f"-{PREFIXES[INVOICE]}-"
NUMBER_PATTERN = re.compile(r".*-(INV|CN|ST)-(\d{6,})\.json")


def invoice_customer(invoice_number: str) -> str:
    """The customer part of an invoice number (``<customer>-INV-<n>``); '' when it has none."""
    customer_id, _, _ = invoice_number.rpartition(INVOICE_SEPARATOR)
    return customer_id

ISSUED_NEW = "issued"
UNCHANGED = "unchanged"
REISSUED = "reissued"


@dataclass(frozen=True)
class IssueOutcome:
    """What issuing a draft did.

    Attributes:
        outcome: "issued" (new number), "unchanged" (same content already issued) or
            "reissued" (credit note + rebill).
        invoice: the live invoice for the cycle after the call.
        credit_note: the credit note issued by this call, if any.
        carried: on a rebill, the accepted dispute credits of the old invoice carried onto the
            rebill (partial credit notes; ``billing.dispute_credits``).
    """

    outcome: str
    invoice: Invoice
    credit_note: Invoice | None = None
    carried: tuple[Invoice, ...] = ()


PAYMENTS_FILE = "payments.sqlite"
# (transaction id, invoice number, amount, received on) of every movement of a customer's payments on
# invoices (applications, and reversals as negative amounts), in the order they were made
APPLICATIONS_SQL = (
    "SELECT l.transaction_id, l.target, l.amount, p.received_on FROM payment_lines l "
    "JOIN payments p USING (transaction_id) WHERE p.customer_id = ? AND l.target NOT LIKE '@%' "
    "ORDER BY p.rowid, l.rowid")


def net_applications(rows: Iterable[tuple[str, str, str | Decimal, str | date]],
                     ) -> list[tuple[str, str, Decimal, date]]:
    """Payment movements on invoices (rows of ``APPLICATIONS_SQL``, or a payment store's own) netted
    per (payment, invoice); what nets to zero is left out."""
    totals: dict[tuple[str, str], Decimal] = {}
    days: dict[str, date] = {}
    for transaction_id, target, amount, received_on in rows:
        totals[(transaction_id, target)] = totals.get((transaction_id, target), Decimal(0)) + Decimal(amount)
        days[transaction_id] = received_on if isinstance(received_on, date) else date.fromisoformat(received_on)
    return [(txn, target, amount, days[txn]) for (txn, target), amount in totals.items() if amount != 0]


class InvoiceRegister:
    """Issued invoices and credit notes on disk (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def issue(self, draft: Invoice, *, as_of: date | None = None) -> IssueOutcome:
        """Issue ``draft`` (or find it already issued, or credit-and-rebill a different one)."""
        if draft.document_type not in (INVOICE, STATEMENT):
            raise InvoiceRegisterError(
                "only invoices and statements are issued from drafts; credit notes come from corrections")
        kind = draft.document_type
        folder = self._customer_folder(draft.customer_id)
        with self._locked(folder):
            invoices = self._read_all(folder, kind)
            credit_notes = self._read_all(folder, CREDIT_NOTE)
            credited = {note.credits for note in credit_notes if cancels_in_full(note)}
            live = [invoice for invoice in invoices
                    if invoice.number not in credited and invoice.cycle.start == draft.cycle.start]
            if len(live) > 1:
                raise InvoiceRegisterError(
                    f"{draft.customer_id} {draft.cycle.label}: several live invoices "
                    f"({', '.join(str(invoice.number) for invoice in live)}); credit all but one first")
            if not live:
                issued = replace(draft, number=self._next_number(folder, kind, draft.customer_id), status=ISSUED)
                issued = self._with_account(issued, invoices, credit_notes)
                self._write(folder, issued)
                return IssueOutcome(ISSUED_NEW, issued)
            current = live[0]
            if current.content_hash == draft.content_hash:
                return IssueOutcome(UNCHANGED, current)
            today = datetime.now(draft.cycle.zone).date()
            on = max(as_of or today, draft.cycle.issue_date)
            # the cancelling note credits what dispute credits left open; what the rebill still
            # bills of a conceded line is credited again on the rebill (once: dispute_credits)
            note = cancelling_note(current, credit_notes,
                                   self._next_number(folder, CREDIT_NOTE, draft.customer_id), on)
            self._write(folder, note)
            rebill = replace(
                draft, number=self._next_number(folder, kind, draft.customer_id), status=ISSUED,
                issue_date=on, due_date=draft.cycle.due_date(draft.net_days, on), replaces=current.number,
            )
            rebill = self._with_account(rebill, invoices, [*credit_notes, note])
            self._write(folder, rebill)
            numbers = self._free_numbers(folder, CREDIT_NOTE, draft.customer_id)   # all taken before any is written
            carried = tuple(carried_credits(current, credit_notes, rebill, on, lambda: next(numbers)))
            for carry in carried:
                self._write(folder, carry)
            return IssueOutcome(REISSUED, rebill, note, carried)

    def _with_account(self, document: Invoice, earlier: list[Invoice], credit_notes: list[Invoice]) -> Invoice:
        if document.document_type != INVOICE:
            return document
        payments = self.payments(document.customer_id)
        return replace(document, account=account_summary(document, earlier, credit_notes, payments).to_record())

    def documents(self, customer_id: str) -> list[Invoice]:
        """Every issued document of a customer: invoices, statements, then credit notes, by number."""
        folder = self._customer_folder(customer_id)
        return (self._read_all(folder, INVOICE) + self._read_all(folder, STATEMENT)
                + self._read_all(folder, CREDIT_NOTE))

    def customers(self) -> list[str]:
        """Customers with a folder in the register, by name."""
        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.iterdir()):
            if path.is_dir() and any((path / sub).is_dir() for sub in FOLDERS.values()):
                name = unquote(path.name)
                found.append(name)
        return found

    def payments(self, customer_id: str) -> list[PaymentApplication]:
        """Payments applied to the customer's invoices, net of refunds and voids (issue 12).

        The payment store of the files setup is the SQLite file ``payments.sqlite`` in the register
        folder (``adapters.sqlite_payments``); it is read here, read-only, with the store's own query.
        """
        path = self.root / PAYMENTS_FILE
        if not path.is_file():
            return []
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as conn:
                rows = conn.execute(APPLICATIONS_SQL, (customer_id,)).fetchall()
        except sqlite3.Error as exc:
            raise InvoiceRegisterError(f"cannot read the payments of {customer_id} in {path}: {exc}") from None
        return [PaymentApplication(txn, number, amount, received_on)
                for txn, number, amount, received_on in net_applications(rows)]

    def standings(self, as_of: date, customer_id: str | None = None) -> list[InvoiceStanding]:
        """Each issued invoice with what was credited, paid and is left, and its aging on ``as_of``."""
        result: list[InvoiceStanding] = []
        for customer in ([customer_id] if customer_id is not None else self.customers()):
            result.extend(standings(self.documents(customer), as_of, self.payments(customer)))
        return result

    def find(self, number: str) -> Invoice | None:
        """The issued document numbered ``number`` (any customer), or None."""
        match = NUMBER_PATTERN.fullmatch(number + ".json")
        if match is None:
            return None
        kind = {prefix: document_type for document_type, prefix in PREFIXES.items()}[match.group(1)]
        customer = number[:match.start(1) - 1]
        path = self._customer_folder(customer) / FOLDERS[kind] / f"{quote(number, safe='')}.json"
        if not path.is_file():
            return None
        try:
            return Invoice.from_record(orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError, KeyError, ValueError) as exc:
            raise InvoiceRegisterError(f"{path}: not a readable issued document: {exc}") from None

    def _customer_folder(self, customer_id: str) -> Path:
        return self.root / safe_name(customer_id)

    @contextmanager
    def _locked(self, folder: Path) -> Iterator[None]:
        try:
            for sub in FOLDERS.values():
                if not (folder / sub).is_dir():   # a stat per folder on every issue, a mkdir only the first time
                    (folder / sub).mkdir(parents=True, exist_ok=True)
            handle = open(folder / ".lock", "a+b")
        except OSError as exc:
            raise InvoiceRegisterError(f"cannot use invoice register {folder}: {exc.strerror}") from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _numbers(self, folder: Path, document_type: str) -> list[tuple[int, Path]]:
        found: list[tuple[int, Path]] = []
        directory = folder / FOLDERS[document_type]
        if not directory.is_dir():
            return found
        for path in directory.iterdir():
            match = NUMBER_PATTERN.fullmatch(path.name)
            if match and match.group(1) == PREFIXES[document_type]:
                found.append((int(match.group(2)), path))
        found.sort()
        sequence = [number for number, _ in found]
        if sequence != list(range(1, len(sequence) + 1)):
            raise InvoiceRegisterError(
                f"{directory}: document numbers {sequence} are not 1..{len(sequence)} without gaps")
        return found

    def _next_number(self, folder: Path, document_type: str, customer_id: str) -> str:
        return next(self._free_numbers(folder, document_type, customer_id))

    def _free_numbers(self, folder: Path, document_type: str, customer_id: str) -> Iterator[str]:
        """The numbers after the last one issued, in order (gapless: the count of those on disk)."""
        taken = len(self._numbers(folder, document_type))
        return (f"{customer_id}-{PREFIXES[document_type]}-{number:06d}" for number in itertools.count(taken + 1))

    def _read_all(self, folder: Path, document_type: str) -> list[Invoice]:
        documents = []
        for _, path in self._numbers(folder, document_type):
            try:
                documents.append(Invoice.from_record(orjson.loads(path.read_bytes())))
            except (OSError, orjson.JSONDecodeError, KeyError, ValueError) as exc:
                raise InvoiceRegisterError(f"{path}: not a readable issued document: {exc}") from None
        return documents

    def _write(self, folder: Path, document: Invoice) -> Path:
        directory = folder / FOLDERS[document.document_type]
        target = directory / f"{quote(str(document.number), safe='')}.json"
        data = orjson.dumps(document.to_record(), option=orjson.OPT_INDENT_2) + b"\n"
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".issuing-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o444)
            os.link(temporary, target)  # fails if the number exists: an issued document is never replaced
        except FileExistsError:
            raise InvoiceRegisterError(f"{target} already exists; issued documents are never overwritten") from None
        finally:
            os.unlink(temporary)
        return target

    def credit_line(self, invoice_number: str, sku: str, amount: Decimal, on: date, dispute_id: str) -> Invoice:
        """A credit note of ``amount`` on the ``sku`` line of an issued invoice, for an accepted
        customer dispute; issued once per ``dispute_id`` (a repeat returns the same note)."""
        customer_id = invoice_customer(invoice_number)
        if not customer_id:
            raise InvoiceRegisterError(f"{invoice_number} is not an invoice number")
        folder = self._customer_folder(customer_id)
        with self._locked(folder):
            note, new = line_credit(invoice_number, sku, amount, on, dispute_id, self._read_all(folder, INVOICE),
                                    self._read_all(folder, CREDIT_NOTE),
                                    lambda: self._next_number(folder, CREDIT_NOTE, customer_id))
            if new:
                self._write(folder, note)
            return note
