"""A printable HTML rendering of an invoice or credit note (beside its JSON).

The template (``templates/invoice.html``) reads the invoice's JSON record, so the page
shows exactly the figures of the document; dates are shown inclusive ("1 Nov 2026 to
30 Nov 2026") while the JSON keeps exclusive ends.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import jinja2

from .invoice import CREDIT_NOTE, Invoice


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("warp_billing.billing", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["day"] = _day
    environment.filters["last_day"] = _last_day
    environment.filters["grouped"] = _grouped
    return environment


def _day(text: str | None) -> str:
    if not text:
        return ""
    value = date.fromisoformat(text)
    return f"{value.day} {value:%b %Y}"


def _last_day(text: str | None) -> str:
    """An exclusive end date shown as the last day included."""
    if not text:
        return ""
    return _day((date.fromisoformat(text) - timedelta(days=1)).isoformat())


def _grouped(text: str) -> str:
    """A decimal string with thousands separators, digits unchanged ("12345.60" -> "12,345.60")."""
    sign = "-" if text.startswith("-") else ""
    whole, _, fraction = text.lstrip("-").partition(".")
    whole = f"{int(whole):,}" if whole.isdigit() else whole
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"


def render_invoice_html(invoice: Invoice, *, seller: str = "WARP Billing") -> str:
    """The invoice as a self-contained printable HTML page."""
    record = invoice.to_record()
    title = "Credit note" if invoice.document_type == CREDIT_NOTE else "Invoice"
    return _environment().get_template("invoice.html").render(doc=record, title=title, seller=seller)
