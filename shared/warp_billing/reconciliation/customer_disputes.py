"""A customer's dispute of an invoice line: open -> under_review -> accepted | rejected.

An accepted dispute ends in a credit note for the disputed amount (issued through the invoice
register, which the NetSuite sync sends as a credit memo); a rejected one keeps its reason.
Every change is appended to the dispute's history with its instant; nothing is ever removed.
The age of a dispute is the whole days from opening to its close (or to now while it is open).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

OPEN = "open"
UNDER_REVIEW = "under_review"
ACCEPTED = "accepted"
REJECTED = "rejected"
STATES = (OPEN, UNDER_REVIEW, ACCEPTED, REJECTED)
NEXT = {OPEN: (UNDER_REVIEW,), UNDER_REVIEW: (ACCEPTED, REJECTED), ACCEPTED: (), REJECTED: ()}


class DisputeError(ValueError):
    """A dispute that cannot be opened or moved (unknown line, wrong state, bad amount)."""


@dataclass(frozen=True)
class CustomerDispute:
    """One disputed invoice line.

    Attributes:
        dispute_id: ``<customer>-DSP-000001``, numbered per customer.
        amount: what the customer disputes (at most the line's amount; default all of it).
        history: (instant ISO 8601, state, note) for every change, oldest first.
        credit_note: the number of the credit note an accepted dispute issued.
    """

    dispute_id: str
    customer_id: str
    invoice_number: str
    sku: str
    amount: Decimal
    line_amount: Decimal
    reason: str
    status: str
    opened_at: str
    history: tuple[tuple[str, str, str], ...]
    closed_at: str | None = None
    credit_note: str | None = None
    rejection_reason: str | None = None

    def age_days(self, now: datetime) -> int:
        end = datetime.fromisoformat(self.closed_at) if self.closed_at else now
        return max(0, (end - datetime.fromisoformat(self.opened_at)).days)

    def move(self, status: str, at: datetime, note: str = "", *, credit_note: str | None = None) -> CustomerDispute:
        if status not in NEXT[self.status]:
            allowed = ", ".join(NEXT[self.status]) or "none (closed)"
            raise DisputeError(f"{self.dispute_id} is {self.status}; it can move to {allowed}, not {status}")
        if status == REJECTED and not note.strip():
            raise DisputeError(f"{self.dispute_id}: a rejection needs its reason")
        closed = at.isoformat() if status in (ACCEPTED, REJECTED) else None
        return replace(
            self,
            status=status,
            history=(*self.history, (at.isoformat(), status, note)),
            closed_at=closed,
            credit_note=credit_note or self.credit_note,
            rejection_reason=note if status == REJECTED else self.rejection_reason,
        )

    def to_record(self) -> dict:
        return {
            "dispute_id": self.dispute_id,
            "customer_id": self.customer_id,
            "invoice_number": self.invoice_number,
            "sku": self.sku,
            "amount": format(self.amount, "f"),
            "line_amount": format(self.line_amount, "f"),
            "reason": self.reason,
            "status": self.status,
            "opened_at": self.opened_at,
            "history": [list(entry) for entry in self.history],
            "closed_at": self.closed_at,
            "credit_note": self.credit_note,
            "rejection_reason": self.rejection_reason,
        }

    @classmethod
    def from_record(cls, record: dict) -> CustomerDispute:
        return cls(
            record["dispute_id"],
            record["customer_id"],
            record["invoice_number"],
            record["sku"],
            Decimal(record["amount"]),
            Decimal(record["line_amount"]),
            record["reason"],
            record["status"],
            record["opened_at"],
            tuple(tuple(entry) for entry in record["history"]),
            record.get("closed_at"),
            record.get("credit_note"),
            record.get("rejection_reason"),
        )


def open_dispute(
    dispute_id: str,
    customer_id: str,
    invoice_number: str,
    sku: str,
    line_amount: Decimal,
    amount: Decimal | None,
    reason: str,
    at: datetime,
) -> CustomerDispute:
    """A new dispute of ``sku`` on ``invoice_number`` (checked against the line's amount)."""
    if not reason.strip():
        raise DisputeError("a dispute needs its reason (--reason)")
    disputed = line_amount if amount is None else amount
    if disputed <= 0:
        raise DisputeError(f"the disputed amount must be positive, got {disputed}")
    if disputed > line_amount:
        raise DisputeError(f"{invoice_number} {sku}: disputed {disputed} is more than the line's {line_amount}")
    if disputed.as_tuple().exponent < -2:  # type: ignore[operator]
        raise DisputeError(f"the disputed amount {disputed} has more than 2 decimals (a credit note is in cents)")
    return CustomerDispute(
        dispute_id,
        customer_id,
        invoice_number,
        sku,
        disputed,
        line_amount,
        reason,
        OPEN,
        at.isoformat(),
        ((at.isoformat(), OPEN, reason),),
    )
