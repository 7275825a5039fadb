"""What a cycle close records for the ERP: the outbox documents of an issue (values only).

Every issue records, in the register's transaction (``ports.SyncOutbox``):

* ``customer:<C>`` (doc_type customer) before the customer's first invoice;
* the invoice ``<C>-INV-n`` (prerequisite: the customer);
* a credit note ``<C>-CN-n`` (prerequisites: the customer and the invoice it credits);
* ``journal:<number>`` (journal_entry) of each, after its document.

A prepaid customer's statement ``<C>-ST-n`` (and a credit note of one) is NOT an AR document:
nothing is receivable, it was paid from the prepaid balance. It is therefore not put in the
outbox as an invoice or credit memo (the NetSuite sync would create an open receivable, or
refuse an unknown type); only its journal goes (customer deposits against revenue and taxes),
with the customer as its prerequisite. The statement itself lives in the register and the
document store.

Sequences are left 0 here: the register assigns them in issue order when it stores them.
Adding an existing (doc_id, revision) changes nothing, so a register records the documents of
the live invoice on every call, which repairs an outbox a crash left behind.
"""

from __future__ import annotations

from typing import Any

from ..plan import Plan
from ..ports import OutboxDocument
from .invoice import CREDIT_NOTE, Invoice
from .revenue_recognition import AccountMap, journal_record

CUSTOMER_PREFIX = "customer:"
JOURNAL_PREFIX = "journal:"


def customer_doc_id(customer_id: str) -> str:
    return CUSTOMER_PREFIX + customer_id


def customer_record(plan: Plan) -> dict[str, Any]:
    """The customer as the ERP needs it before its first invoice."""
    record = {
        "customer_id": plan.customer_id,
        "billing": plan.billing,
        "currency": plan.currency,
        "timezone": plan.timezone,
        "terms": {"net_days": plan.terms.net_days, "anchor_day": plan.terms.anchor_day},
    }
    profile = getattr(plan, "billing_profile", None)  # issue 9 adds it; sent when present
    if profile is not None:
        record["billing_profile"] = profile.model_dump(mode="json") if hasattr(profile, "model_dump") else profile
    return record


def customer_document(plan: Plan, issued_at: str) -> OutboxDocument:
    return OutboxDocument(customer_doc_id(plan.customer_id), 1, "customer", plan.customer_id, 0, issued_at,
                          customer_record(plan))


DEFAULT_ACCOUNTS = AccountMap()


def issue_documents(documents: list[Invoice], issued_at: str,
                    accounts: AccountMap = DEFAULT_ACCOUNTS) -> list[OutboxDocument]:
    """The outbox entries of issued invoices / credit notes, each followed by its journal.

    A prepaid document (statement, or a credit note of one) gives its journal only (module docstring).
    """
    entries = []
    for document in documents:
        if document.number is None:
            raise ValueError("only numbered (issued) documents go to the ERP")
        customer = customer_doc_id(document.customer_id)
        if document.billing == "prepaid":
            entries.append(OutboxDocument(JOURNAL_PREFIX + document.number, 1, "journal_entry", document.customer_id,
                                          0, issued_at, journal_record(document, accounts), (customer,)))
            continue
        prerequisites: tuple[str, ...]
        if document.document_type == CREDIT_NOTE:
            doc_type, prerequisites = "credit_memo", (customer, str(document.credits))
        else:
            doc_type, prerequisites = "invoice", (customer,)
        entries.append(OutboxDocument(document.number, 1, doc_type, document.customer_id, 0, issued_at,
                                      document.to_record(), prerequisites))
        entries.append(OutboxDocument(JOURNAL_PREFIX + document.number, 1, "journal_entry", document.customer_id, 0,
                                      issued_at, journal_record(document, accounts), (document.number,)))
    return entries
