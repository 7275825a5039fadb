"""``Receivables`` on the invoice register: the register's documents and the payments applied.

The register (file or Firestore: ``CloseRegister.documents``) gives the issued invoices and
credit notes; the payments come from ``payments.applications(customer)`` when a payment store is
wired (rows of transaction id, invoice number, net amount, received on), else from the
register's own ``payments(customer)`` when it has one. ``billing.receivables.standings`` works
out each invoice's balance due and days overdue: the aging `warp invoices list` prints.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from ..billing.receivables import InvoiceStanding, PaymentApplication, standings


class RegisterReceivables:
    def __init__(self, register: Any, payments: Any = None):
        self.register = register
        self.payments = payments

    def standings(self, customer_id: str, as_of: date) -> list[InvoiceStanding]:
        return standings(self.register.documents(customer_id), as_of, self._payments(customer_id))

    def _payments(self, customer_id: str) -> list[PaymentApplication]:
        if self.payments is not None:
            return [PaymentApplication(str(transaction), str(invoice), Decimal(amount), received)
                    for transaction, invoice, amount, received in self.payments.applications(customer_id)]
        own = getattr(self.register, "payments", None)
        return list(own(customer_id)) if callable(own) else []
