"""`warp dispute`: a customer's dispute of an invoice line, from opening to a credit note.

    warp dispute open --invoice ACME-INV-000001 --sku VOICE-INTERSTATE [--amount 12.50] --reason TEXT
    warp dispute review  DISPUTE_ID [--note TEXT]
    warp dispute accept  DISPUTE_ID [--note TEXT] [--as-of YYYY-MM-DD]   (issues the credit note)
    warp dispute reject  DISPUTE_ID --reason TEXT
    warp dispute list    [--customer C] [--status S] [--json]           (with each dispute's age)
    warp dispute export  DISPUTE_ID --rated RATED.jsonl --out RECORDS.jsonl

The register and the dispute store are the ones the settings configure (``bootstrap``:
``WARP_REGISTER_STORE`` files or firestore, ``WARP_DISPUTE_STORE``), so an accepted dispute's
credit note lands in that register's ERP outbox and the NetSuite sync sends it as a credit memo.
Every subcommand takes ``--register DIR`` to use the file register at DIR instead (its outbox is
``DIR/outbox.sqlite``; its disputes are kept beside it, ``DIR/../disputes``), and ``--disputes DIR``
to keep disputes in that folder. The rules are in ``reconciliation.dispute_resolution``.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click
import orjson

from ..adapters.dispute_files import DisputeFiles, disputes_beside
from ..adapters.file_register import FileCloseRegister
from ..billing.errors import InvoiceRegisterError
from ..billing.usage_lines import usage_sku
from ..ports import CloseRegister, DisputeStore
from ..reconciliation.customer_disputes import REJECTED, UNDER_REVIEW, DisputeError
from ..reconciliation.dispute_resolution import accept_dispute, move_dispute, open_line_dispute
from .common import command_container, fail

REGISTER = click.option(
    "--register",
    "register_dir",
    metavar="DIR",
    help="Use the file register at DIR (default: the register the settings configure).",
)
DISPUTES = click.option(
    "--disputes",
    "disputes_dir",
    metavar="DIR",
    help="Keep disputes in this folder (default: the settings' store; with --register, 'disputes' beside it).",
)


def _stores(register_dir: str | None, disputes_dir: str | None) -> tuple[CloseRegister, DisputeStore]:
    """The close register and the dispute store: the options' folders, else what the settings configure."""
    if register_dir is not None:
        return FileCloseRegister(register_dir), DisputeFiles(disputes_dir or disputes_beside(register_dir))
    container = command_container()
    disputes = DisputeFiles(disputes_dir) if disputes_dir is not None else container.dispute_store
    return container.close_register, disputes


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
    amount = None
    if amount_text is not None:
        try:
            amount = Decimal(amount_text)
        except InvalidOperation:
            raise fail(f"--amount {amount_text!r} is not a decimal number") from None
        if not amount.is_finite():
            raise fail(f"--amount {amount_text!r} is not a decimal number")
    register, disputes = _stores(register_dir, disputes_dir)
    try:
        opened = open_line_dispute(register, disputes, invoice_number, sku, amount, reason, _now())
    except (DisputeError, InvoiceRegisterError) as exc:
        raise fail(str(exc)) from None
    click.echo(f"{opened.dispute_id} open: {invoice_number} {sku} {opened.amount}")


def _move(register_dir, disputes_dir, dispute_id, status, note):
    _, disputes = _stores(register_dir, disputes_dir)
    try:
        return move_dispute(disputes, dispute_id, status, note, _now())
    except DisputeError as exc:
        raise fail(str(exc)) from None


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
    """Accept a dispute under review: a credit note for the disputed amount goes into the register
    (and its credit memo into the register's ERP outbox)."""
    try:
        on = date.fromisoformat(as_of) if as_of else _now().date()
    except ValueError:
        raise fail(f"--as-of {as_of!r} is not YYYY-MM-DD") from None
    register, disputes = _stores(register_dir, disputes_dir)
    try:
        moved = accept_dispute(register, disputes, dispute_id, on, note, _now())
    except (DisputeError, InvoiceRegisterError) as exc:
        raise fail(str(exc)) from None
    click.echo(f"{moved.dispute_id} accepted: credit note {moved.credit_note} for {moved.amount}")


@dispute.command("reject")
@REGISTER
@DISPUTES
@click.argument("dispute_id")
@click.option("--reason", required=True, help="Why the dispute is rejected (kept with it).")
def reject(register_dir, disputes_dir, dispute_id, reason) -> None:
    """Reject a dispute under review, with the reason."""
    _move(register_dir, disputes_dir, dispute_id, REJECTED, reason)
    click.echo(f"{dispute_id} rejected: {reason}")


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
