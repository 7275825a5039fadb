"""A small world for payment tests: real SQLite payment store and file register, fake balances/ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import orjson
from tests.erp_builders import FakeOutbox, draft
from tests.fakes import FakeAlertPublisher, FakeBalances, FakeClock, FakeLedgerStore

from warp_billing.adapters.sqlite_payments import SqlitePaymentStore
from warp_billing.billing.invoice_store import InvoiceRegister
from warp_billing.charging.accounts import PrepaidTerms
from warp_billing.payments.gateway import TransactionDetails
from warp_billing.payments.service import CustomerAccount, PaymentService, PrepaidBook


@dataclass
class FakeGateway:
    details: dict[str, TransactionDetails] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def transaction_details(self, transaction_id: str) -> TransactionDetails:
        """What a test registered, else what the gateway says of a plain capture (nothing beyond the payload)."""
        self.calls.append(transaction_id)
        return self.details.get(transaction_id) or TransactionDetails(
            transaction_id, "capturedPendingSettlement", None, None, None, None, 1)

    def charge_profile(self, charge):  # pragma: no cover - not used by these tests
        raise NotImplementedError


class World:
    def __init__(self, tmp_path):
        self.register = InvoiceRegister(tmp_path / "register")
        self.store = SqlitePaymentStore(tmp_path / "register" / "payments.sqlite")  # where the register reads it
        self.balances, self.ledger = FakeBalances(), FakeLedgerStore()
        self.alerts, self.outbox, self.clock = FakeAlertPublisher(), FakeOutbox(), FakeClock()
        self.gateway = FakeGateway()
        self.accounts = {"PRE": CustomerAccount("prepaid", "USD", PrepaidTerms()),
                         "POST": CustomerAccount("postpaid", "USD")}
        self.service = PaymentService(self.store, self.register.documents, self.accounts.get,
                                      PrepaidBook(self.balances, self.ledger, lambda customer: True),
                                      self.outbox, self.alerts, self.clock, gateway=self.gateway)

    def invoice(self, period: str, amount: str, customer: str = "POST") -> str:
        issued = self.register.issue(draft(customer, period, lines=(("VOICE-INTERSTATE", "1", amount),), fees=()))
        return str(issued.invoice.number)

    def paid(self, customer: str = "POST") -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for _txn, number, amount, _day in self.store.applications(customer):
            totals[number] = totals.get(number, Decimal(0)) + amount
        return totals

    def prepaid_balance(self, customer: str = "PRE") -> int:
        return self.balances.accounts[customer].balance if customer in self.balances.accounts else 0


def notification(event_type: str, transaction_id: str, amount: str | None = "10.00", notification_id: str | None = None,
                 **payload) -> bytes:
    fields = {"id": transaction_id, "entityName": "transaction", "responseCode": 1, **payload}
    if amount is not None:
        fields["authAmount"] = amount
    return orjson.dumps({"notificationId": notification_id or f"n-{event_type}-{transaction_id}",
                         "eventType": f"net.authorize.payment.{event_type}", "eventDate": "2026-12-05T10:00:00Z",
                         "webhookId": "w1", "payload": fields})
