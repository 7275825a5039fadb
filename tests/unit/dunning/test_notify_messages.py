"""What `notify` does with the messages it got beyond the first collections work (issue 12): invoice
announcements -> one HubSpot company update per document, prepaid suspension alerts -> their email
kinds, receipts -> the paid invoices' PDFs attached. On the file register, SQLite stores, a folder of
documents and the queue double that keeps task names (the Cloud Tasks contract)."""

from __future__ import annotations

from datetime import date

import pytest
from tests.erp_builders import FakeQueue, draft

from warp_billing.adapters.document_files import DocumentFolder
from warp_billing.adapters.register_receivables import RegisterReceivables
from warp_billing.adapters.sqlite_dunning import SqliteDunningStore, SqliteEmailLog
from warp_billing.billing.close_service import announcement, document_stem
from warp_billing.billing.invoice_store import InvoiceRegister
from warp_billing.dunning.alerts import (
    ALREADY_DONE,
    CRM_INVOICE_STEP,
    ENQUEUED,
    NOT_IN_REGISTER,
    UNUSABLE,
    AlertHandler,
)
from warp_billing.dunning.attachments import invoice_pdf
from warp_billing.dunning.crm import CrmUpdates
from warp_billing.dunning.notifier import ALREADY, SENT, Notifier
from warp_billing.dunning.service import DunningService
from warp_billing.plan import parse_plan

PLAN = parse_plan({"customer_id": "ACME", "timezone": "UTC", "billing": "postpaid",
                   "billing_profile": {"name": "Acme", "address": ["1 Main"], "account_number": "A-1",
                                       "email": "ap@acme.example"}})
TODAY = date(2026, 12, 2)


class Mailer:
    def __init__(self):
        self.sent = []

    def send(self, mail):
        self.sent.append(mail)
        return f"m{len(self.sent)}"


class World:
    def __init__(self, tmp_path):
        self.register = InvoiceRegister(tmp_path / "register")
        self.documents = DocumentFolder(tmp_path / "documents")
        self.store = SqliteDunningStore(tmp_path / "dunning.sqlite")
        self.mailer = Mailer()
        self.queue = FakeQueue()
        notifier = Notifier(self.mailer, SqliteEmailLog(tmp_path / "dunning.sqlite"),
                            now=lambda: "2026-12-02T00:00:00Z", attachment=invoice_pdf(self.documents))
        crm = CrmUpdates(self.queue)
        service = DunningService(RegisterReceivables(self.register), self.store, None, notifier,  # type: ignore[arg-type]
                                 crm, now_ms=lambda: 1_795_000_000_000)
        self.handler = AlertHandler(notifier, service, {"ACME": PLAN}.get, crm)

    def issue(self, period: str, amount: str):
        outcome = self.register.issue(draft("ACME", period, lines=(("VOICE-INTERSTATE", "1", amount),)))
        return outcome.invoice, announcement(outcome)

    def companies(self) -> list[dict]:
        return [item["properties"] for task in self.queue.tasks.values() for item in task["inputs"]]


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def test_an_issued_invoice_updates_the_company_once_per_document(world):
    invoice, announced = world.issue("2026-11", "10.00")
    assert announced["issue_date"] == "2026-12-01" and announced["due_date"] == "2026-12-16"
    assert world.handler.handle(announced, TODAY)["outcome"] == ENQUEUED
    assert world.handler.handle(announced, TODAY)["outcome"] == ALREADY_DONE   # a redelivery
    [properties] = world.companies()
    assert properties == {"warp_customer_id": "ACME", "warp_balance_due": "10.25", "warp_last_invoice": invoice.number,
                          "warp_last_invoice_date": "2026-12-01", "warp_last_invoice_amount": "10.25",
                          "warp_last_invoice_period": "2026-11"}
    assert (invoice.number, CRM_INVOICE_STEP) in world.store.steps("ACME")


def test_an_older_invoice_announced_late_never_takes_the_last_invoice_back(world):
    _, late = world.issue("2026-10", "1.00")
    world.issue("2026-11", "2.00")
    assert world.handler.handle(late, TODAY)["outcome"] == ENQUEUED
    [properties] = world.companies()
    assert properties == {"warp_customer_id": "ACME", "warp_balance_due": "3.50"}   # both invoices, fees included


def test_an_announcement_that_cannot_be_used_is_a_named_outcome(world):
    assert world.handler.handle({"invoice_number": "", "customer_id": "ACME"}, TODAY)["outcome"] == UNUSABLE
    assert world.handler.handle({"invoice_number": "ACME-INV-000009", "customer_id": "ACME"},
                                TODAY)["outcome"] == NOT_IN_REGISTER
    assert world.queue.tasks == {}


@pytest.mark.parametrize("kind", ["suspend_pending", "suspended"])
def test_prepaid_suspension_alerts_are_their_own_email_once_per_alert_id(world, kind):
    alert = {"alert_id": f"{kind}:ACME:e1", "type": kind, "customer_id": "ACME", "balance": "-0.10",
             "currency": "USD", "at": "2026-12-02T01:00:00Z", "suspend_at": "2026-12-03T01:00:00Z", "noise": "x"}
    assert world.handler.handle(alert, TODAY)["outcome"] == SENT
    assert world.handler.handle(alert, TODAY)["outcome"] == ALREADY
    [mail] = world.mailer.sent
    assert (mail.kind, mail.email_id, mail.to) == (kind, f"{kind}:ACME:e1:{kind}", "ap@acme.example")
    assert mail.data["suspend_at"] == "2026-12-03T01:00:00Z" and "noise" not in mail.data


def test_a_receipt_carries_the_pdfs_of_the_invoices_it_paid(world):
    paid, _ = world.issue("2026-10", "1.00")
    other, _ = world.issue("2026-11", "2.00")
    for invoice in (paid, other):
        world.documents.put(document_stem("ACME", invoice.cycle.label, str(invoice.number)) + ".pdf",
                            f"%PDF {invoice.number}".encode(), "application/pdf")
    alert = {"alert_id": "payment_received:ACME:T1", "type": "payment_received", "customer_id": "ACME",
             "transaction_id": "T1", "amount": "1.25", "invoice_numbers": [paid.number]}
    assert world.handler.handle(alert, TODAY)["outcome"] == SENT
    [mail] = world.mailer.sent
    assert [(item.filename, item.content_type, item.data) for item in mail.attachments] == [
        (f"{paid.number}.pdf", "application/pdf", f"%PDF {paid.number}".encode())]
