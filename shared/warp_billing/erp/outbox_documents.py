"""The outbox documents an issue implies (what a close records beside the documents it issues).

An issued invoice gives the invoice and its revenue-recognition journal; a correction (credit
note + rebill) gives the credit memo (prerequisite: the invoice it credits), the new invoice and
both journals; a prepaid statement gives its journal only (``billing.erp_outbox``). The customer
record comes first (``customer_document``). Each document's id is its NetSuite externalId; the
invoice number is the invoice's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from ..billing.erp_outbox import DEFAULT_ACCOUNTS, issue_documents
from ..billing.invoice import Invoice
from ..billing.revenue_recognition import AccountMap
from ..ports import OutboxDocument
from .records import CUSTOMER, JOURNAL_ENTRY, customer_doc_id


def customer_document(customer_id: str, profile: Mapping, *, sequence: int, issued_at: str,
                      revision: int = 1) -> OutboxDocument:
    """The customer record from the billing profile (company_name, email, currency, net_days ...)."""
    return OutboxDocument(customer_doc_id(customer_id), revision, CUSTOMER, customer_id, sequence, issued_at,
                          {"customer_id": customer_id, **profile})


def issued_documents(documents: Iterable[Invoice], *, first_sequence: int, issued_at: str,
                     accounts: AccountMap | None = None, journals: bool = True) -> list[OutboxDocument]:
    """The outbox documents a register records for these issued documents (``billing.erp_outbox``,
    the one definition: a prepaid statement gives its journal only, never an AR invoice), numbered
    in order from ``first_sequence``; ``journals=False`` leaves the journal entries out."""
    entries = issue_documents(list(documents), issued_at, accounts or DEFAULT_ACCOUNTS)
    if not journals:
        entries = [entry for entry in entries if entry.doc_type != JOURNAL_ENTRY]
    return [replace(entry, sequence=first_sequence + index) for index, entry in enumerate(entries)]
