"""The outbox documents an issue implies (what a close records beside the documents it issues).

An issued invoice gives the invoice and its revenue-recognition journal; a correction (credit
note + rebill) gives the credit memo (prerequisite: the invoice it credits), the new invoice and
both journals. The customer record comes first (``customer_document``). Each document's id is its
NetSuite externalId; the invoice number is the invoice's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..billing.invoice import CREDIT_NOTE, Invoice
from ..billing.revenue_recognition import AccountMap, journal_record
from ..ports import OutboxDocument
from .records import CREDIT_MEMO, CUSTOMER, INVOICE, JOURNAL_ENTRY, customer_doc_id


def customer_document(customer_id: str, profile: Mapping, *, sequence: int, issued_at: str,
                      revision: int = 1) -> OutboxDocument:
    """The customer record from the billing profile (company_name, email, currency, net_days ...)."""
    return OutboxDocument(customer_doc_id(customer_id), revision, CUSTOMER, customer_id, sequence, issued_at,
                          {"customer_id": customer_id, **profile})


def issued_documents(documents: Iterable[Invoice], *, first_sequence: int, issued_at: str,
                     accounts: AccountMap | None = None, journals: bool = True) -> list[OutboxDocument]:
    """Outbox documents for issued invoices / credit notes, in the order given (credit note first)."""
    accounts = accounts or AccountMap()
    result: list[OutboxDocument] = []
    sequence = first_sequence
    for document in documents:
        if document.number is None:
            raise ValueError("only issued (numbered) documents go to the ERP")
        customer = customer_doc_id(document.customer_id)
        if document.document_type == CREDIT_NOTE:
            prerequisites: tuple[str, ...] = (customer, str(document.credits))
            doc_type = CREDIT_MEMO
        else:
            prerequisites = (customer,)
            doc_type = INVOICE
        result.append(OutboxDocument(document.number, 1, doc_type, document.customer_id, sequence, issued_at,
                                     document.to_record(), prerequisites))
        sequence += 1
        if journals:
            result.append(OutboxDocument(f"journal:{document.number}", 1, JOURNAL_ENTRY, document.customer_id,
                                         sequence, issued_at, journal_record(document, accounts)))
            sequence += 1
    return result
