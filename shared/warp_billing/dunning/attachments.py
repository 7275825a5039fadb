"""The invoice PDF to attach to a dunning email, where the document store has one.

Documents live under ``<customer>/<period>/<number>`` (``billing.close_service.document_stem``);
the PDF is ``<stem>.pdf``. A document store without it (the cloud close stores JSON, HTML and
the journal) gives no attachment: the email goes without one, never fails for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..billing.close_service import document_stem
from ..billing.invoice import Invoice
from ..ports import DocumentStore
from .notices import Attachment

log = logging.getLogger(__name__)


def invoice_pdf(documents: DocumentStore) -> Callable[[Invoice], Attachment | None]:
    """A loader of an invoice's PDF from the document store (its ``exists`` and ``get``: a folder, or
    the documents bucket through ``GcsDocumentStore``, where ``notify`` and ``rollup`` may read)."""
    def load(invoice: Invoice) -> Attachment | None:
        name = document_stem(invoice.customer_id, invoice.cycle.label, str(invoice.number)) + ".pdf"
        try:
            if not documents.exists(name):
                return None
            return Attachment(f"{invoice.number}.pdf", "application/pdf", documents.get(name))
        except Exception as exc:  # an unreadable PDF never stops the email
            log.warning("invoice PDF not readable; email sent without it", extra={"document": name,
                                                                                  "detail": str(exc)})
            return None

    return load
