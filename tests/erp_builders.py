"""Builders and fakes for the NetSuite sync tests: issued invoices, outbox documents, port fakes.

Invoices are real ``billing.invoice.Invoice`` values issued through the file ``InvoiceRegister``
(so the credit note + rebill path is the production one); the fakes keep what was written in
plain attributes and are idempotent by the same keys as the SQLite adapters.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import yaml

from warp_billing.billing.cycles import cycle_for
from warp_billing.billing.fees import Fee
from warp_billing.billing.invoice import USAGE, Invoice, InvoiceLine
from warp_billing.erp.errors import ErpTransient
from warp_billing.erp.mapping import parse_mapping
from warp_billing.ports import ErpRecordRef, OutboxDocument, SyncError

MAPPING = {
    "version": "test-1",
    "subsidiary": 1,
    "currencies": {"USD": 1},
    "terms": {15: 7, 30: 2},
    "items": {"VOICE-INTERSTATE": 1001, "VOICE-INTRASTATE": 1002, "SMS-*": 1101, "API-*": 1201,
              "API-*-DISCOUNT": 1202, "DID-*": 1301},
    "fees": {"USF": 2001, "E911": 2002},
    "accounts": {"1200": 120, "2200": 220, "2310": 231, "2320": 232, "2400": 240, "4000": 400, "4010": 401, "4020": 402,
                 "4100": 410, "4900": 490, "2300": 230},
    "payments": {"account": 130},
    "customers": {"fields": {"company_name": "companyName", "email": "email"}},
}


def mapping(**changes):
    return parse_mapping({**MAPPING, **changes}, "test-mapping.yaml")


def draft(customer_id: str = "ACME", period: str = "2026-11", lines=(("VOICE-INTERSTATE", "1000", "6.00"),),
          fees=(("E911", "0.25"),), net_days: int = 15) -> Invoice:
    """A draft invoice with the given (sku, quantity, amount) lines and (code, amount) fees."""
    cycle = cycle_for(period)
    invoice_lines = tuple(
        InvoiceLine(sku, f"{sku} usage", Fraction(Decimal(quantity)), "unit", Decimal(amount), USAGE,
                    cycle.start, cycle.end) for sku, quantity, amount in lines)
    invoice_fees = tuple(Fee(code, f"{code} fee", Decimal(1), Decimal(amount), Decimal(amount), base_is_money=False,
                             account_hint=code.lower()) for code, amount in fees)
    return Invoice(customer_id, cycle, cycle.issue_date, cycle.due_date(net_days), "USD", net_days,
                   invoice_lines, invoice_fees)


def customer_doc(customer_id: str = "ACME", sequence: int = 1, **profile) -> OutboxDocument:
    payload = {"customer_id": customer_id, "company_name": f"{customer_id} Telecom", "email": "ap@example.com",
               "currency": "USD", "net_days": 15, **profile}
    return OutboxDocument(f"customer:{customer_id}", 1, "customer", customer_id, sequence, "2026-12-01T00:00:00Z",
                          payload)


def payment_doc(invoice: Invoice, sequence: int, amount: str | None = None, txn: str = "T1") -> OutboxDocument:
    amount = amount or format(invoice.total, "f")
    payload = {"customer_id": invoice.customer_id, "amount": amount, "currency": "USD", "date": "2026-12-10",
               "applies_to": [{"invoice_number": invoice.number, "amount": amount}]}
    return OutboxDocument(f"payment:{txn}", 1, "customer_payment", invoice.customer_id, sequence,
                          "2026-12-10T00:00:00Z", payload, (f"customer:{invoice.customer_id}", str(invoice.number)))


def issued(invoice: Invoice, number: str) -> Invoice:
    return replace(invoice, number=number, status="issued")


# ------------------------------------------------------------------------------------------ fakes


class FakeOutbox:
    """``SyncOutbox`` in memory (latest revision per document, issue order)."""

    def __init__(self, documents=()):
        self.rows: dict[tuple[str, int], OutboxDocument] = {}
        self.marks: list[tuple[str, int, str]] = []
        for document in documents:
            self.add(document)

    def add(self, document: OutboxDocument) -> None:
        self.rows.setdefault((document.doc_id, document.revision), document)

    def _latest(self) -> list[OutboxDocument]:
        latest: dict[str, OutboxDocument] = {}
        for document in self.rows.values():
            if document.doc_id not in latest or document.revision > latest[document.doc_id].revision:
                latest[document.doc_id] = document
        return sorted(latest.values(), key=lambda d: (d.sequence, d.doc_id))

    def pending(self, limit: int = 100) -> list[OutboxDocument]:
        return [d for d in self._latest() if d.status != "synced"][:limit]

    def get(self, doc_id: str) -> OutboxDocument | None:
        return next((d for d in self._latest() if d.doc_id == doc_id), None)

    def mark(self, doc_id: str, revision: int, status: str, detail: str = "") -> None:
        key = (doc_id, revision)
        if key not in self.rows:
            raise KeyError(doc_id)
        self.rows[key] = replace(self.rows[key], status=status, detail=detail)
        self.marks.append((doc_id, revision, status))

    def documents(self, customer_id: str | None = None) -> list[OutboxDocument]:
        return [d for d in self._latest() if customer_id is None or d.customer_id == customer_id]


class FakeErrors:
    def __init__(self):
        self.rows: dict[tuple[str, int, int], SyncError] = {}

    def record(self, error: SyncError) -> None:
        self.rows.setdefault((error.doc_id, error.revision, error.attempt), error)

    def errors(self, doc_id: str | None = None, customer_id: str | None = None) -> list[SyncError]:
        return [e for e in self.rows.values() if (doc_id is None or e.doc_id == doc_id)
                and (customer_id is None or e.customer_id == customer_id)]


@dataclass
class FakeErp:
    """Records by (type, externalId); ``fail_with`` raises on the next upserts, one per entry."""

    records: dict[tuple[str, str], dict] = field(default_factory=dict)
    ids: dict[tuple[str, str], str] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail_with: list[Exception] = field(default_factory=list)

    def upsert(self, record_type, external_id, body):
        self.calls.append((record_type, external_id))
        if self.fail_with:
            raise self.fail_with.pop(0)
        key = (record_type, external_id)
        self.records[key] = dict(body)
        self.ids.setdefault(key, str(5000 + len(self.ids)))
        return ErpRecordRef(record_type, external_id, self.ids[key])

    def find(self, record_type, external_id):
        key = (record_type, external_id)
        return ErpRecordRef(record_type, external_id, self.ids[key]) if key in self.ids else None


class BusyErp(FakeErp):
    def upsert(self, record_type, external_id, body):
        raise ErpTransient("busy", retry_after_s=7, code="429")


@dataclass
class FakeQueue:
    tasks: dict[str, dict] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    def enqueue(self, name, body, *, delay_s=0):
        if name in self.tasks:
            return False
        self.tasks[name] = dict(body)
        self.created.append(name)
        return True


def write_mapping_file(path: Path, **changes) -> Path:
    path.write_text(yaml.safe_dump({**MAPPING, **changes}, sort_keys=False))
    return path


ISSUE_DATE = date(2026, 12, 1)
