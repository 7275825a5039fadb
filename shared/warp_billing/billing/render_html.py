"""A printable HTML rendering of an invoice or credit note (beside its JSON).

The template (``templates/invoice.html``) reads the invoice's JSON record, so the page
shows exactly the figures of the document; dates are shown inclusive ("1 Nov 2026 to
30 Nov 2026") while the JSON keeps exclusive ends. Money is shown to the cent as the
document carries it, minutes (billed seconds / 60) to 2 decimals, half up.

The page is what a carrier sends: the seller's legal name, address, tax id and contact,
the bill-to block and account number from the plan's ``billing_profile``, the number,
dates, terms and service period, the account box (previous balance, payments, credits,
amount due) or a prepaid statement's balance box, the charges with one subtotal, the
fees, the usage summary by product and jurisdiction, voice by destination, and how to pay.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import jinja2

from .amounts import minutes_text, money_text
from .destinations import TOP_DESTINATIONS
from .invoice import CREDIT_NOTE, STATEMENT, USAGE, Invoice

TITLES = {CREDIT_NOTE: "Credit note", STATEMENT: "Statement"}
PRODUCTS = {"VOICE": "Voice", "SMS": "SMS", "MMS": "MMS", "API": "Data API"}


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
    environment.filters["quantity"] = _quantity
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


def _grouped(value: str | int) -> str:
    """A decimal string with thousands separators, digits unchanged ("12345.60" -> "12,345.60")."""
    text = str(value)
    sign = "-" if text.startswith("-") else ""
    whole, _, fraction = text.lstrip("-").partition(".")
    whole = f"{int(whole):,}" if whole.isdigit() else whole
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"


def _quantity(line: dict[str, Any]) -> str:
    """A line's quantity as printed: minutes to 2 decimals, counts as they are, grouped."""
    text = line["quantity"]
    if line.get("unit") == "minute":
        text = minutes_text(Decimal(text))
    return _grouped(text)


def _usage_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for line in record["lines"]:
        if line.get("category") != USAGE:
            continue
        product, _, sub = line["sku"].partition("-")
        rows.append({"product": PRODUCTS.get(product, product), "sub": sub.replace("-", " ").lower(),
                     "events": str(line.get("events", "")), "quantity": _quantity(line), "unit": line["unit"],
                     "amount": line["amount"]})
    return rows


def render_invoice_html(invoice: Invoice) -> str:
    """The invoice, statement or credit note as a self-contained printable HTML page."""
    record = invoice.to_record()
    title = TITLES.get(invoice.document_type, "Invoice")
    is_invoice = invoice.document_type not in TITLES
    account = record.get("account")
    if invoice.document_type == STATEMENT:
        terms_text = "Drawn from prepaid balance"
    elif invoice.document_type == CREDIT_NOTE:
        terms_text = "Credit"
    else:
        terms_text = f"Net {invoice.net_days} days" if invoice.net_days else "Due on receipt"
    total_label = {CREDIT_NOTE: "Total credit", STATEMENT: "Total drawn"}.get(invoice.document_type,
                                                                             "Total current charges")
    return _environment().get_template("invoice.html").render(
        doc=record, title=title, is_invoice=is_invoice, seller=record.get("seller"), bill_to=record.get("bill_to"),
        bill_to_name=(record.get("bill_to") or {}).get("name", invoice.customer_id), terms_text=terms_text,
        usage_rows=_usage_rows(record), fees_total=money_text(invoice.fees_total), total_label=total_label,
        amount_due=account["amount_due"] if account else record["total"], top_destinations=TOP_DESTINATIONS,
    )
