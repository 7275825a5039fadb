"""Operator views of the invoice register: what was issued, credited, paid and is left, and its aging.

    warp invoices list [--register DIR] [--customer C] [--status open|paid|overdue|credited] [--as-of DATE] [--json]
    warp invoice show NUMBER [--register DIR] [--as-of DATE] [--json]

Without ``--register`` they read the register the settings configure (``WARP_REGISTER_STORE``:
the files under ``WARP_REGISTER_DIR``, or the Firestore register with the cloud's payments).

Read-only: they read the register's documents through ``InvoiceRegister`` (never its files
directly), and ``billing.receivables`` works out each invoice's standing, with the payments of
the payment store beside the register (``payments.sqlite``); days overdue count from
the due date to ``--as-of`` (default: today, UTC) while a balance is left.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import click
import orjson

from ..billing.errors import InvoiceRegisterError
from ..billing.invoice_store import InvoiceRegister
from ..billing.receivables import STATUSES, standings
from ..charging.errors import TransientError
from .common import command_container, fail


def _as_of(text: str | None) -> date:
    if text is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"--as-of {text!r} is not a date (YYYY-MM-DD)") from None


def _register(path: str | None) -> Any:
    """The file register at ``path``, or (no path) the configured one: anything with ``standings``,
    ``find``, ``documents`` and ``payments`` (``InvoiceRegister``, ``FirestoreRegister``)."""
    if path is None:
        configured = command_container().close_register
        return getattr(configured, "register", configured)   # the file close register wraps an InvoiceRegister
    register = InvoiceRegister(path)
    if not register.root.is_dir():
        raise fail(f"no invoice register at {path} (the folder `warp invoice --register` writes)")
    return register


@click.group()
def invoices() -> None:
    """Issued invoices in the register (see also `warp invoice show NUMBER`)."""


@invoices.command("list")
@click.option("--register", "register_dir", metavar="DIR",
              help="The invoice register folder (default: the register the settings configure).")
@click.option("--customer", "customer_id", metavar="C", help="Only this customer's invoices.")
@click.option("--status", type=click.Choice(STATUSES), help="Only invoices in this status on --as-of.")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Aging worked out for this day (default today, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines, one invoice a line.")
def list_invoices(register_dir: str | None, customer_id: str | None, status: str | None, as_of: str | None,
                  as_json: bool) -> None:
    """List issued invoices: issued, credited, paid, balance due, status and days overdue."""
    register = _register(register_dir)
    day = _as_of(as_of)
    try:
        rows = register.standings(day, customer_id)
    except (InvoiceRegisterError, TransientError) as exc:
        raise fail(str(exc)) from None
    if status is not None:
        rows = [row for row in rows if row.status == status]
    if as_json:
        for row in rows:
            click.echo(orjson.dumps(row.to_record()).decode())
        return
    header = (f"{'invoice':<22} {'customer':<10} {'period':<7} {'issued on':<10} {'due':<10} {'issued':>12} "
              f"{'credited':>12} {'paid':>12} {'balance due':>12} {'status':<8} {'overdue':>7}")
    click.echo(header)
    for row in rows:
        item = row.to_record()
        click.echo(f"{item['invoice_number']:<22} {item['customer_id']:<10} {item['billing_period']:<7} "
                   f"{item['issue_date']:<10} {item['due_date']:<10} {item['issued']:>12} {item['credited']:>12} "
                   f"{item['paid']:>12} {item['balance_due']:>12} {item['status']:<8} {item['days_overdue']:>7}")
    due = sum((row.balance_due for row in rows), Decimal("0.00"))
    click.echo(f"{len(rows)} invoice(s) as of {day.isoformat()}; balance due {due:.2f}")


@click.command("show")
@click.argument("number", metavar="NUMBER")
@click.option("--register", "register_dir", metavar="DIR",
              help="The invoice register folder (default: the register the settings configure).")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Aging worked out for this day (default today, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print the document and its standing as JSON.")
def show(number: str, register_dir: str | None, as_of: str | None, as_json: bool) -> None:
    """Show issued document NUMBER (invoice, statement or credit note) and what is left to pay."""
    register = _register(register_dir)
    day = _as_of(as_of)
    try:
        document = register.find(number)
        if document is None:
            raise fail(f"no issued document {number!r} in {register_dir or 'the configured register'}")
        standing = next((row for row in standings(register.documents(document.customer_id), day,
                                                    register.payments(document.customer_id))
                         if row.invoice.number == document.number), None)
    except (InvoiceRegisterError, TransientError) as exc:
        raise fail(str(exc)) from None
    record = document.to_record()
    if as_json:
        click.echo(orjson.dumps({"document": record, "standing": standing.to_record() if standing else None},
                                option=orjson.OPT_INDENT_2).decode())
        return
    period = record["period"]
    click.echo(f"{record['document_type']} {record['invoice_number']}  customer {record['customer_id']}  "
               f"period {record['billing_period']} ({period['start']} to {period['end']}, end exclusive)")
    click.echo(f"  issued {record['issue_date']}  due {record['due_date']}  currency {record['currency']}"
               + (f"  replaces {record['replaces']}" if record["replaces"] else "")
               + (f"  credits {record['credits']}" if record["credits"] else ""))
    for line in record["lines"]:
        click.echo(f"  {line['sku']:<24} {line['quantity']:>16} {line['unit']:<8} {line['amount']:>12}  "
                   f"{line['description']}")
    click.echo(f"  {'subtotal':<24} {'':>16} {'':<8} {record['subtotal']:>12}")
    for fee in record["fees"]:
        click.echo(f"  {fee['code']:<24} {'':>16} {'':<8} {fee['amount']:>12}  {fee['description']}")
    click.echo(f"  {'total':<24} {'':>16} {'':<8} {record['total']:>12}")
    if record.get("account"):
        account = record["account"]
        click.echo(f"  account: previous balance {account['previous_balance']}, payments {account['payments']}, "
                   f"credits {account['credits']}, current charges {account['current_charges']}, "
                   f"amount due {account['amount_due']}")
    if standing is not None:
        item = standing.to_record()
        notes = f" (credit notes {', '.join(item['credit_notes'])})" if item["credit_notes"] else ""
        click.echo(f"  as of {item['as_of']}: issued {item['issued']}, credited {item['credited']}{notes}, "
                   f"paid {item['paid']}, balance due {item['balance_due']}, {item['status']}, "
                   f"{item['days_overdue']} day(s) overdue")
