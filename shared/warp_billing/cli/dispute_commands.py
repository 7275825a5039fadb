"""`warp dispute`: a customer's dispute of an invoice line, from opening to a credit note.

    warp dispute open --register DIR --invoice ACME-INV-000001 --sku VOICE-INTERSTATE [--amount 12.50] --reason TEXT
    warp dispute review  --register DIR DISPUTE_ID
    warp dispute accept  --register DIR DISPUTE_ID [--note TEXT] [--as-of YYYY-MM-DD]   (issues the credit note)
    warp dispute reject  --register DIR DISPUTE_ID --reason TEXT
    warp dispute list    --register DIR [--customer C] [--status S] [--json]           (with each dispute's age)
    warp dispute export  --register DIR DISPUTE_ID --rated RATED.jsonl --out RECORDS.jsonl

Disputes are kept beside the register (``DIR/../disputes`` unless ``--disputes`` says otherwise).
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click
import orjson

from ..adapters.dispute_files import DisputeFiles
from ..billing.errors import InvoiceRegisterError
from ..billing.invoice_store import InvoiceRegister
from ..billing.usage_lines import usage_sku
from ..reconciliation.customer_disputes import ACCEPTED, REJECTED, UNDER_REVIEW, DisputeError, open_dispute
from .common import fail

REGISTER = click.option("--register", "register_dir", required=True, metavar="DIR", help="The invoice register.")
DISPUTES = click.option(
    "--disputes",
    "disputes_dir",
    metavar="DIR",
    help="Where disputes are kept (default: a 'disputes' folder beside the register).",
)


def _stores(register_dir: str, disputes_dir: str | None) -> tuple[InvoiceRegister, DisputeFiles]:
    folder = disputes_dir or os.path.join(os.path.dirname(os.path.abspath(register_dir)), "disputes")
    return InvoiceRegister(register_dir), DisputeFiles(folder)


def _now() -> datetime:
    return datetime.now(UTC)


@click.group()
def dispute() -> None:
    """Customer disputes of invoice lines: open, review, accept (credit note) or reject, list, export."""


@dispute.command("open")
@REGISTER
@DISPUTES
@click.option("--invoice", "invoice_number", required=True, metavar="NUMBER", help="The issued invoice number.")
@click.option("--sku", required=True, help="The disputed line's sku (VOICE-INTERSTATE, DID-LOCAL, ...).")
@click.option("--amount", "amount_text", metavar="X", help="The disputed amount (default: the whole line).")
@click.option("--reason", required=True, help="Why the customer disputes the line.")
def open_command(register_dir, disputes_dir, invoice_number, sku, amount_text, reason) -> None:
    """Open a dispute of one invoice line."""
    register, disputes = _stores(register_dir, disputes_dir)
    customer_id, _, _ = invoice_number.rpartition("-INV-")
    invoice = (
        next((doc for doc in register.documents(customer_id) if doc.number == invoice_number), None)
        if customer_id
        else None
    )
    if invoice is None:
        raise fail(f"no issued invoice {invoice_number} in {register_dir}")
    line = next((line for line in invoice.lines if line.sku == sku), None)
    if line is None:
        raise fail(f"{invoice_number} has no line {sku} (lines: {', '.join(entry.sku for entry in invoice.lines)})")
    amount = None
    if amount_text is not None:
        try:
            amount = Decimal(amount_text)
        except InvalidOperation:
            raise fail(f"--amount {amount_text!r} is not a decimal number") from None
    with disputes.locked(customer_id):
        live = [
            d
            for d in disputes.of_customer(customer_id)
            if d.invoice_number == invoice_number and d.sku == sku and d.status not in (ACCEPTED, REJECTED)
        ]
        if live:
            raise fail(f"{invoice_number} {sku} is already disputed: {live[0].dispute_id} ({live[0].status})")
        try:
            opened = open_dispute(
                disputes.next_id(customer_id), customer_id, invoice_number, sku, line.amount, amount, reason, _now()
            )
        except DisputeError as exc:
            raise fail(str(exc)) from None
        disputes.save(opened)
    click.echo(f"{opened.dispute_id} open: {invoice_number} {sku} {opened.amount}")


def _move(register_dir, disputes_dir, dispute_id, status, note, **extra):
    _, disputes = _stores(register_dir, disputes_dir)
    try:
        current = disputes.get(dispute_id)
        with disputes.locked(current.customer_id):
            moved = disputes.get(dispute_id).move(status, _now(), note, **extra)
            disputes.save(moved)
    except DisputeError as exc:
        raise fail(str(exc)) from None
    return moved


@dispute.command("review")
@REGISTER
@DISPUTES
@click.argument("dispute_id")
@click.option("--note", default="", help="A note kept in the history.")
def review(register_dir, disputes_dir, dispute_id, note) -> None:
    """Move an open dispute to under_review."""
    moved = _move(register_dir, disputes_dir, dispute_id, UNDER_REVIEW, note)
    click.echo(f"{moved.dispute_id} {moved.status}")


@dispute.command("accept")
@REGISTER
@DISPUTES
@click.argument("dispute_id")
@click.option("--note", default="", help="A note kept in the history.")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Date of the credit note (default today).")
def accept(register_dir, disputes_dir, dispute_id, note, as_of) -> None:
    """Accept a dispute under review: a credit note for the disputed amount goes into the register."""
    register, disputes = _stores(register_dir, disputes_dir)
    try:
        current = disputes.get(dispute_id)
    except DisputeError as exc:
        raise fail(str(exc)) from None
    if current.status != UNDER_REVIEW:
        raise fail(f"{dispute_id} is {current.status}; only a dispute under review can be accepted")
    try:
        on = date.fromisoformat(as_of) if as_of else _now().date()
    except ValueError:
        raise fail(f"--as-of {as_of!r} is not YYYY-MM-DD") from None
    try:
        # the credit note first, keyed by the dispute: a crash before the dispute is saved
        # leaves a note that the next accept finds again instead of issuing a second one
        note_doc = register.credit_line(current.invoice_number, current.sku, current.amount, on, dispute_id)
    except InvoiceRegisterError as exc:
        raise fail(str(exc)) from None
    moved = _move(
        register_dir,
        disputes_dir,
        dispute_id,
        ACCEPTED,
        note or f"credited by {note_doc.number}",
        credit_note=note_doc.number,
    )
    click.echo(f"{moved.dispute_id} accepted: credit note {note_doc.number} for {current.amount}")


@dispute.command("reject")
@REGISTER
@DISPUTES
@click.argument("dispute_id")
@click.option("--reason", required=True, help="Why the dispute is rejected (kept with it).")
def reject(register_dir, disputes_dir, dispute_id, reason) -> None:
    """Reject a dispute under review, with the reason."""
    moved = _move(register_dir, disputes_dir, dispute_id, REJECTED, reason)
    click.echo(f"{moved.dispute_id} rejected: {reason}")


@dispute.command("list")
@REGISTER
@DISPUTES
@click.option("--customer", "customer_id", help="Only this customer's disputes.")
@click.option("--status", type=click.Choice(["open", "under_review", "accepted", "rejected"]), help="Only this state.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON lines.")
def list_command(register_dir, disputes_dir, customer_id, status, as_json) -> None:
    """Every dispute with its state and age in days."""
    _, disputes = _stores(register_dir, disputes_dir)
    found = disputes.of_customer(customer_id) if customer_id else disputes.all()
    now = _now()
    for item in found:
        if status and item.status != status:
            continue
        if as_json:
            click.echo(orjson.dumps({**item.to_record(), "age_days": item.age_days(now)}).decode())
        else:
            click.echo(
                f"{item.dispute_id}  {item.status:<12} {item.age_days(now):>4} d  {item.invoice_number}  "
                f"{item.sku}  {item.amount}  {item.credit_note or item.rejection_reason or ''}"
            )


@dispute.command("export")
@REGISTER
@DISPUTES
@click.argument("dispute_id")
@click.option("--rated", "rated_paths", multiple=True, required=True, metavar="RATED.jsonl", help="Rated usage.")
@click.option("--out", "out_path", required=True, metavar="RECORDS.jsonl", help="Where the records go.")
def export(register_dir, disputes_dir, dispute_id, rated_paths, out_path) -> None:
    """The customer's rated records behind the disputed line (its sku, within the invoice's period)."""
    register, disputes = _stores(register_dir, disputes_dir)
    try:
        item = disputes.get(dispute_id)
    except DisputeError as exc:
        raise fail(str(exc)) from None
    invoice = next((d for d in register.documents(item.customer_id) if d.number == item.invoice_number), None)
    if invoice is None:
        raise fail(f"no issued invoice {item.invoice_number}")
    if any(os.path.abspath(out_path) == os.path.abspath(p) for p in rated_paths):
        raise fail("--out is one of the --rated files")
    start, end = invoice.cycle.start, invoice.cycle.end
    zone = invoice.cycle.zone
    count = 0
    temporary = Path(out_path).with_name(f".{Path(out_path).name}.partial")
    with open(temporary, "wb") as out:
        for path in rated_paths:
            with open(path, "rb") as handle:
                for line in handle:
                    record = _record(line)
                    if record is None or record.get("customer_id") != item.customer_id:
                        continue
                    if _sku(record) != item.sku:
                        continue
                    try:
                        day = (
                            datetime.fromisoformat(str(record["start_time"]).replace("Z", "+00:00"))
                            .astimezone(zone)
                            .date()
                        )
                    except (KeyError, ValueError):
                        continue
                    if start <= day < end:
                        out.write(line.rstrip(b"\n") + b"\n")
                        count += 1
    os.replace(temporary, out_path)
    click.echo(f"{count} rated records of {item.customer_id} behind {item.invoice_number} {item.sku} -> {out_path}")


def _record(line: bytes) -> dict | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and record.get("status") == "rated" else None


def _sku(record: dict) -> str | None:
    kind = record.get("kind")
    if kind == "voice":
        sub = record.get("jurisdiction")
    elif kind == "api_query":
        sub = record.get("query_type")
    else:
        sub = record.get("direction") or "outbound"
    return usage_sku(kind, sub) if kind and sub else None
