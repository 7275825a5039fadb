"""A customer's suspension for non-payment, as charging sees it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AccountHold:
    """Attributes:
        customer_id: the suspended customer.
        since_ms: when the suspension started (epoch ms).
        invoice_number: the overdue invoice it is for ('' when an operator suspended by hand).
        actor: ``dunning`` or ``operator``.
    """

    customer_id: str
    since_ms: int
    invoice_number: str
    actor: str = "dunning"
