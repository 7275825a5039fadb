"""Accepted customer disputes across a rebill: the customer is credited exactly once.

An accepted dispute leaves a partial credit note on the invoice (its lines carry the
``dispute_id``). When that invoice is later cancelled and rebilled (late or corrected usage):

* the cancelling credit note credits only what is still open on it: every line negated, less
  what dispute credits already took off that line's sku. The invoice ends credited exactly its
  total, never more (two credit memos of 100 % + the dispute would over-apply in the ERP);
* the dispute's credit then has to survive on the rebill, but only as far as the rebill still
  bills what the customer was conceded: per sku, with ``X`` the old line amount, ``D`` the
  disputed credits and ``X'`` the rebill's line amount, the credit carried is
  ``min(D, max(0, X' - (X - D)))``. A rebill that removed the disputed usage (``X' <= X - D``)
  carries nothing; one that bills the line unchanged carries all of ``D``.

Carried credits are partial credit notes on the rebill with the same ``dispute_id`` (and the
note they carry, ``carried_from``), so a further rebill applies the same rule to them.
Pure: both registers (files, Firestore) call it inside their issue lock / transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from .amounts import cents
from .errors import InvoiceRegisterError
from .invoice import CREDIT_NOTE, ISSUED, Invoice, InvoiceLine
from .receivables import cancels_in_full

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class DisputeCredit:
    """One partial credit of one sku line (amount positive: what the customer was credited)."""

    dispute_id: str
    sku: str
    amount: Decimal
    note_number: str


def dispute_credits(invoice: Invoice, credit_notes: Sequence[Invoice]) -> list[DisputeCredit]:
    """The dispute credits (partial credit notes) standing on ``invoice``, oldest note first."""
    found = []
    for note in sorted(credit_notes, key=lambda n: str(n.number)):
        if note.credits != invoice.number or cancels_in_full(note):
            continue
        for line in note.lines:
            dispute_id = dict(line.details).get("dispute_id")
            if dispute_id:
                found.append(DisputeCredit(str(dispute_id), line.sku, -line.amount, str(note.number)))
    return found


def cancelling_note(invoice: Invoice, credit_notes: Sequence[Invoice], number: str, on: date) -> Invoice:
    """The credit note cancelling what is left of ``invoice`` after its dispute credits."""
    note = invoice.credit_note(number, on)
    taken: dict[str, Decimal] = {}
    for credit in dispute_credits(invoice, credit_notes):
        taken[credit.sku] = taken.get(credit.sku, ZERO) + credit.amount
    lines = []
    for negated in note.lines:
        left = taken.get(negated.sku, ZERO)
        if left > 0 and negated.amount < 0:
            back = min(left, -negated.amount)  # never more than the line itself
            taken[negated.sku] = left - back
            negated = replace(negated, amount=cents(negated.amount + back),  # noqa: PLW2901
                              details=(*negated.details, ("dispute_credits", format(back, "f"))))
        lines.append(negated)
    return replace(note, lines=tuple(lines))


def carried_credits(invoice: Invoice, credit_notes: Sequence[Invoice], rebill: Invoice, on: date,
                    next_number: Callable[[], str]) -> list[Invoice]:
    """Partial credit notes on ``rebill`` for the dispute credits of ``invoice`` it still owes (module docstring)."""
    credits = dispute_credits(invoice, credit_notes)
    notes = []
    left_by_sku: dict[str, Decimal] = {}
    for sku in dict.fromkeys(credit.sku for credit in credits):
        old = _line_total(invoice, sku)
        new = _line_total(rebill, sku)
        disputed = sum((c.amount for c in credits if c.sku == sku), ZERO)
        left_by_sku[sku] = min(disputed, max(ZERO, new - (old - disputed)))
    for credit in credits:
        amount = min(credit.amount, left_by_sku[credit.sku])
        if amount <= 0:
            continue
        left_by_sku[credit.sku] -= amount
        notes.append(_partial_note(rebill, _first_line(rebill, credit.sku), cents(amount), credit.dispute_id, on,
                                   next_number(), ("carried_from", credit.note_number)))
    return notes


def line_credit(invoice_number: str, sku: str, amount: Decimal, on: date, dispute_id: str,
                invoices: Sequence[Invoice], credit_notes: Sequence[Invoice],
                next_number: Callable[[], str]) -> tuple[Invoice, bool]:
    """The partial credit note of an accepted customer dispute on one line, and whether it is new.

    A note already carrying ``dispute_id`` is returned as is (``False``): an accept is issued once
    per dispute. Both registers call this inside their lock / transaction, with what they hold of
    the customer; ``next_number`` is called only when a new note is made.
    """
    for note in credit_notes:
        if any(dict(line.details).get("dispute_id") == dispute_id for line in note.lines):
            return note, False
    invoice = next((i for i in invoices if i.number == invoice_number), None)
    if invoice is None:
        raise InvoiceRegisterError(f"no issued invoice {invoice_number}")
    if any(note.credits == invoice_number and cancels_in_full(note) for note in credit_notes):
        # its cancelling note already took back everything: crediting it again would credit the
        # customer twice; the dispute belongs on the rebill that replaced it
        rebill = next((str(i.number) for i in invoices if i.replaces == invoice_number), None)
        raise InvoiceRegisterError(
            f"{invoice_number} is cancelled by a credit note"
            + (f"; dispute the line on its rebill {rebill}" if rebill else ""))
    line = next((line for line in invoice.lines if line.sku == sku), None)
    if line is None:
        raise InvoiceRegisterError(f"{invoice_number} has no line {sku}")
    return _partial_note(invoice, line, amount, dispute_id, on, next_number()), True


def _partial_note(invoice: Invoice, line: InvoiceLine, amount: Decimal, dispute_id: str, on: date, number: str,
                  *details: tuple[str, str]) -> Invoice:
    """A credit note of ``amount`` on one ``line`` of ``invoice`` for a dispute (its lines carry the id)."""
    credited = replace(line, amount=-amount, details=(
        *line.details, ("dispute_id", dispute_id), ("credited_amount", format(amount, "f")), *details))
    return replace(invoice, issue_date=on, due_date=on, lines=(credited,), fees=(), document_type=CREDIT_NOTE,
                   number=number, status=ISSUED, replaces=None, credits=invoice.number, account=None,
                   statement=None, voice_destinations=())


def _line_total(invoice: Invoice, sku: str) -> Decimal:
    return sum((line.amount for line in invoice.lines if line.sku == sku), ZERO)


def _first_line(invoice: Invoice, sku: str) -> InvoiceLine:
    return next(line for line in invoice.lines if line.sku == sku)
