"""`notify` on the local stack beyond billing alerts (issue 12): issued invoices reach HubSpot, the
prepaid suspension alerts are emailed, and invoice PDFs from the documents bucket are attached.

* an invoice announcement (what the cycle close publishes on the `invoices` topic) pushed to
  `notify` under functions-framework -> the hubspot queue -> `crm_sync` -> the HubSpot stand-in:
  the company's last invoice and balance due, updated once however often the push is redelivered;
* `suspend_pending` and `suspended` alerts -> their SendGrid dynamic templates, once per alert id;
* a payment receipt (`notify`) and a reminder (the dunning task's code, the same container) for an
  invoice whose PDF is in the Storage stand-in's documents bucket -> the PDF attached (base64,
  application/pdf, `<number>.pdf`), read through ``GcsDocumentStore``.

Run by `make test` (which starts the stack); by hand: `make stack-up` first.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, date, datetime

import pytest
import requests
from tests.e2e.test_collections_stack import HUBSPOT, NOTIFY_URL, collections_env, mails_for, push, warp
from tests.erp_builders import draft
from tests.integration.conftest import settings_from_env

import pubsub_relay
from warp_billing.billing.close_service import announcement as announced
from warp_billing.billing.close_service import document_stem
from warp_billing.billing.erp_outbox import DEFAULT_ACCOUNTS, customer_document
from warp_billing.bootstrap import Container

pytestmark = pytest.mark.e2e
PDF = b"%PDF-1.4\n% a test invoice\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(scope="module")
def env():
    return collections_env()


@pytest.fixture(scope="module")
def container(env):
    """The stack's object graph in this process (the settings every function of the stack gets)."""
    return Container(settings_from_env(env))


def load_customer(env, tmp_path_factory, billing: str) -> str:
    customer_id = f"E2EN{uuid.uuid4().hex[:8].upper()}"
    folder = tmp_path_factory.mktemp("plan")
    (folder / "deck.csv").write_text("prefix,destination,rate,effective_date\n1,US,0.0100,2026-01-01\n")
    prepaid = "prepaid: {low_balance_threshold: '1.00'}\n" if billing == "prepaid" else ""
    (folder / "plan.yaml").write_text(
        f"customer_id: {customer_id}\nbilling: {billing}\ntimezone: UTC\nvoice: {{deck: deck.csv}}\n{prepaid}"
        "terms: {net_days: 15}\n"
        "collections: {ladder: [{after_days: 1, action: remind}]}\n"
        f"billing_profile: {{name: {customer_id} Telecom, address: [1 Main St], account_number: A-1, "
        f"email: ap@{customer_id.lower()}.example}}\n")
    warp(env, "plans", "load", str(folder / "plan.yaml"))
    return customer_id


def issue(container, customer_id: str, period: str, amount: str):
    """Issue an invoice into the stack's Firestore register as the cycle close does; its announcement."""
    compiled = container.plan_catalog.current(customer_id)
    outcome = container.close_register.issue_close(
        draft(customer_id, period, lines=(("VOICE-INTERSTATE", "1000", amount),)),
        watermark=datetime(2026, 12, 1, tzinfo=UTC), customer=customer_document(compiled.plan, "2026-12-01T00:00:00Z"),
        accounts=DEFAULT_ACCOUNTS)
    return outcome.invoice, announced(outcome)


def company(customer_id: str, timeout_s: float = 60.0) -> dict | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = requests.get(HUBSPOT + "/_objects/companies", timeout=10).json().get(f"warp_customer_id={customer_id}")
        if found is not None:
            return found
        time.sleep(0.3)
    return None


def announce(announcement: dict, message_id: str) -> requests.Response:
    attributes = {key: str(announcement[key]) for key in ("invoice_number", "customer_id", "billing_period")}
    return pubsub_relay.deliver(NOTIFY_URL, "invoices", json.dumps(announcement).encode(), attributes=attributes,
                                message_id=message_id)


def test_an_issued_invoice_updates_the_hubspot_company_once_even_when_redelivered(env, container, tmp_path_factory):
    customer = load_customer(env, tmp_path_factory, "postpaid")
    invoice, announcement = issue(container, customer, "2026-11", "12.34")
    assert announce(announcement, "m-1").status_code == 200
    found = company(customer)
    assert found is not None, "the HubSpot company was not updated through the hubspot queue"
    properties = found["properties"]
    assert properties["warp_last_invoice"] == invoice.number
    assert properties["warp_last_invoice_date"] == invoice.issue_date.isoformat() == "2026-12-01"
    assert properties["warp_last_invoice_amount"] == str(invoice.total) == "12.59"   # 12.34 + the E911 fee
    assert properties["warp_last_invoice_period"] == "2026-11"
    assert properties["warp_balance_due"] == "12.59"

    assert [announce(announcement, "m-1").status_code for _ in range(2)] == [200, 200]   # redelivered
    assert announce(announcement, "m-2").status_code == 200     # republished by a retried close
    time.sleep(3)     # the queue dispatches within ~0.1 s: a second task would have landed by now
    assert company(customer)["updates"] == 1

    # the next cycle's invoice: last invoice moves on, the balance due adds up; an old redelivery changes nothing
    second, later = issue(container, customer, "2026-12", "1.00")
    assert announce(later, "m-3").status_code == 200
    deadline = time.monotonic() + 60
    while company(customer)["updates"] < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
    properties = company(customer)["properties"]
    assert properties["warp_last_invoice"] == second.number and properties["warp_balance_due"] == "13.84"
    assert announce(announcement, "m-4").status_code == 200
    time.sleep(3)
    assert company(customer)["updates"] == 2


def test_prepaid_suspension_alerts_are_emailed_through_their_templates_once_each(env, tmp_path_factory):
    customer = load_customer(env, tmp_path_factory, "prepaid")
    pending = {"alert_id": f"suspend_pending:{customer}:e7", "type": "suspend_pending", "customer_id": customer,
               "event_id": "e7", "balance": "-0.02", "currency": "USD", "at": "2026-12-02T01:00:00Z",
               "suspend_at": "2026-12-03T01:00:00Z"}
    suspended = {**pending, "alert_id": f"suspended:{customer}:sweep-1", "type": "suspended", "event_id": "sweep-1",
                 "at": "2026-12-03T01:00:05Z"}
    assert [push(pending).status_code for _ in range(3)] == [200, 200, 200]
    assert [push(suspended).status_code for _ in range(2)] == [200, 200]

    mails = {mail["body"]["template_id"]: mail for mail in mails_for(customer)}
    assert len(mails_for(customer)) == 2 and set(mails) == {"d-local-suspend_pending", "d-local-suspended"}
    first = mails["d-local-suspend_pending"]["body"]["personalizations"][0]
    assert first["custom_args"]["warp_email_id"] == f"suspend_pending:{customer}:e7:suspend_pending"
    assert first["to"][0]["email"] == f"ap@{customer.lower()}.example"
    assert first["dynamic_template_data"]["suspend_at"] == "2026-12-03T01:00:00Z"
    assert first["dynamic_template_data"]["balance"] == "-0.02"
    assert mails["d-local-suspended"]["body"]["personalizations"][0]["custom_args"]["warp_email_id"] == \
        f"suspended:{customer}:sweep-1:suspended"


def _pdf_attachment(mail: dict, number: str) -> None:
    [attachment] = mail["body"]["attachments"]
    assert attachment["filename"] == f"{number}.pdf"
    assert attachment["type"] == "application/pdf" and attachment["disposition"] == "attachment"
    assert base64.b64decode(attachment["content"]) == PDF


def test_receipts_from_notify_and_reminders_carry_the_invoice_pdf_from_the_documents_bucket(
        env, container, tmp_path_factory):
    customer = load_customer(env, tmp_path_factory, "postpaid")
    paid, _ = issue(container, customer, "2026-10", "20.00")
    overdue, _ = issue(container, customer, "2026-09", "5.00")
    for invoice in (paid, overdue):
        name = document_stem(customer, invoice.cycle.label, str(invoice.number)) + ".pdf"
        assert container.document_store.put(name, PDF, "application/pdf").startswith("gs://")

    payment = {"alert_id": f"payment_received:{customer}:T-{customer}", "type": "payment_received",
               "customer_id": customer, "transaction_id": f"T-{customer}", "amount": "20.25", "currency": "USD",
               "invoice_numbers": [paid.number], "received_on": "2026-12-02"}
    assert push(payment).status_code == 200
    [receipt] = [mail for mail in mails_for(customer)
                 if mail["body"]["personalizations"][0]["custom_args"]["warp_email_id"] == f"T-{customer}:receipt"]
    _pdf_attachment(receipt, paid.number)

    plan = container.plan_catalog.current(customer).plan
    run = container.dunning.run({customer: plan}, date(2026, 12, 2))
    assert run.errors == []
    reminders = [mail for mail in mails_for(customer)
                 if mail["body"]["personalizations"][0]["custom_args"]["warp_email_id"] == f"{overdue.number}:remind"]
    assert len(reminders) == 1
    _pdf_attachment(reminders[0], overdue.number)


def test_warp_crm_push_upserts_the_customers_company_and_deals_through_the_hubspot_queue(env, tmp_path_factory):
    customer = load_customer(env, tmp_path_factory, "postpaid")
    summary = json.loads(warp(env, "crm", "push", "--customer", customer, "--json"))
    assert summary == {"task": "crm_push", "companies": 1, "company_tasks": 1, "deals": 1, "deal_tasks": 1,
                       "errors": []}
    found = company(customer)
    assert found is not None and found["properties"]["name"] == f"{customer} Telecom"
    assert found["properties"]["warp_billing"] == "postpaid"
    deadline = time.monotonic() + 60
    deal = None
    while deal is None and time.monotonic() < deadline:
        deal = requests.get(HUBSPOT + "/_objects/deals", timeout=10).json().get(f"warp_deal_id={customer}:plan")
        time.sleep(0.3)
    assert deal is not None and deal["properties"]["warp_customer_id"] == customer
