"""Operator commands for the real-time system: plans, prepaid balances, reject replay.

    warp plans load PLAN.yaml                          plan + decks into the plan store (new version)
    warp balance show CUSTOMER                         balance, notices, recent ledger entries
    warp balance topup CUSTOMER AMOUNT --id TOPUP_ID   book a top-up (idempotent by TOPUP_ID)
    warp balance rebuild                               reconcile Redis with the ledger (safe under traffic)
    warp balance sweep                                 drain Redis outboxes into the ledger, heal stale customers
    warp rejects replay REJECTS.jsonl                  re-submit corrected rejects or dead-lettered messages

They run against whatever the settings (``WARP_*``) point at, through ``bootstrap.container()``:
the same stores as the functions, embedded files/SQLite by default.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import orjson

from .. import bootstrap
from ..charging.accounts import PrepaidTerms
from ..charging.clock import iso_from_ms
from ..charging.errors import BalanceOutOfRange, LedgerConflict, TransientError
from ..charging.postpaid import postpaid_terms
from ..charging.rebuild import rebuild_balances
from ..charging.service import Delivery, Handled
from ..charging.sweep import sweep as run_sweep
from ..charging.topups import PAYMENT_PREFIX, TOPUP_PREFIX, book_credit, publish_credit_alerts
from ..money import MoneyError, format_amount, from_micros, to_decimal, to_micros
from ..plan import Plan, PlanError, load_plan
from ..rating.deck import DeckError, load_deck
from ..rating.rater import deck_paths
from .common import StrictGroup, command_container, fail, first_line
from .output_files import check_outputs, write_atomic


def _prepaid_terms(customer_id: str) -> PrepaidTerms | None:
    """The customer's current prepaid terms (None: no plan, or a postpaid plan)."""
    compiled = command_container().plan_catalog.current(customer_id)
    return compiled.prepaid if compiled is not None else None


# -- warp plans ---------------------------------------------------------------------------------

@click.group(cls=StrictGroup)
def plans() -> None:
    """Customer plans in the plan store (what the rating functions use)."""


@plans.command("load")
@click.argument("plan_path", metavar="PLAN.yaml")
def load(plan_path: str) -> None:
    """Validate PLAN.yaml and its decks, store them as the customer's new plan version.

    A prepaid customer's account is opened in Redis at zero if it does not exist yet.
    """
    try:
        loaded = load_plan(plan_path)
    except PlanError as exc:
        raise fail(f"plan {first_line(exc)}") from None
    plan = loaded.plan
    if "{" in plan.customer_id or "}" in plan.customer_id:
        raise fail(f"{plan_path}: customer_id {plan.customer_id!r} may not contain braces")
    deck_ids = deck_paths(plan)
    decks: dict[str, str] = {}
    for deck_id in deck_ids:
        try:
            load_deck(loaded.resolve(deck_id))  # every problem named now, not on the first event
        except DeckError as exc:
            raise fail(f"deck {first_line(exc)}") from None
    if plan.voice is not None and plan.voice.npa_nxx:
        deck_ids = [*deck_ids, plan.voice.npa_nxx]
    for deck_id in deck_ids:
        try:
            decks[deck_id] = loaded.resolve(deck_id).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise fail(f"cannot read {loaded.resolve(deck_id)}: {exc.strerror}") from None
    for key in loaded.unknown_keys:
        click.echo(f"warp: warning: {plan_path}: unknown plan key {key!r} ignored", err=True)
    container = command_container()
    try:
        version = container.plan_store.put_plan(plan.customer_id, Path(plan_path).read_text(encoding="utf-8"), decks)
    except (ValueError, OSError) as exc:
        raise fail(f"plan store refused {plan_path}: {exc}") from None
    _reconcile_loaded(container, plan.customer_id, version)
    note = " (prepaid account open)" if plan.billing == "prepaid" else ""
    click.echo(f"{plan.customer_id}: plan version {version} stored with {len(decks)} deck(s){note}")


def _reconcile_loaded(container: bootstrap.Container, customer_id: str, version: str) -> None:
    """Open (or bring up to the ledger) the customer's Redis state: never from zero over a history."""
    try:
        verified = container.reconcile_customer(customer_id)
    except Exception as exc:
        verified, problem = False, str(exc)
    else:
        problem = "another reconcile holds the customer"
    if not verified:
        raise fail(f"{customer_id}: plan version {version} stored, but its Redis state could not be reconciled "
                   f"with the ledger ({problem}); run the command again") from None


# -- warp balance -------------------------------------------------------------------------------

@click.group(cls=StrictGroup)
def balance() -> None:
    """Prepaid balances in Redis and the persisted ledger."""


@balance.command("show")
@click.argument("customer_id", metavar="CUSTOMER")
@click.option("--entries", "entry_count", default=10, show_default=True, help="Recent ledger entries to list.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def show(customer_id: str, entry_count: int, as_json: bool) -> None:
    """Show CUSTOMER's prepaid balance, low-balance mark, suspension notice and recent entries."""
    balances = command_container().balances
    try:
        state = balances.account(customer_id)
        recent = balances.recent_ledger(customer_id, entry_count) if state is not None else []
    except (TransientError, ValueError) as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # redis errors: name them, no stack trace
        raise fail(f"cannot read balances: {exc}") from None
    if state is None:
        _show_postpaid(customer_id, as_json)
        return
    report = {
        "customer_id": customer_id,
        "balance": format_amount(from_micros(state.balance_micros)),
        "low_balance_alerted": state.low_balance_alerted,
        "suspend_at": iso_from_ms(state.suspend_at_ms) if state.suspend_at_ms is not None else None,
        "recent_entries": [
            {"entry_id": e.entry_id, "kind": e.kind, "amount": format_amount(from_micros(e.amount_micros)),
             "balance_after": format_amount(from_micros(e.balance_after_micros)), "at": e.at, "reference": e.reference}
            for e in recent
        ],
    }
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"{customer_id}: balance {report['balance']}")
    if state.low_balance_alerted:
        click.echo("  below the low-balance threshold (alerted)")
    if report["suspend_at"]:
        click.echo(f"  balance exhausted: traffic refused from {report['suspend_at']} unless topped up")
    for entry in report["recent_entries"]:
        click.echo(f"  {entry['at']}  {entry['kind']:<13} {entry['amount']:>16}  -> {entry['balance_after']:>16}  "
                   f"{entry['entry_id']}")


def _show_postpaid(customer_id: str, as_json: bool) -> None:
    """A postpaid customer's running total for the current billing cycle."""
    container = command_container()
    try:
        compiled = container.plan_catalog.current(customer_id)
    except TransientError as exc:
        raise fail(str(exc)) from None
    if compiled is None or compiled.prepaid is not None:
        raise fail(f"no prepaid account for {customer_id!r} in Redis (load a prepaid plan, top up, or rebuild)")
    now = datetime.fromisoformat(container.clock.now_iso())
    terms = postpaid_terms(compiled.plan, now)
    total, events = container.balances.cycle_total(customer_id, terms.cycle)
    limit = compiled.plan.postpaid.credit_limit
    report = {"customer_id": customer_id, "billing": "postpaid", "cycle": terms.cycle,
              "cycle_total": format_amount(from_micros(total)), "events": events,
              "credit_limit": format_amount(limit) if limit is not None else None}
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    limit_text = f" of credit limit {report['credit_limit']}" if limit is not None else ""
    click.echo(f"{customer_id}: postpaid, cycle {terms.cycle}: {report['cycle_total']}{limit_text} ({events} events)")


@balance.command("topup")
@click.argument("customer_id", metavar="CUSTOMER")
@click.argument("amount_text", metavar="AMOUNT")
@click.option("--id", "topup_id", required=True, help="Top-up id (payment id): the same id is never booked twice.")
@click.option("--reference", default="", help="Free text kept on the ledger entry (payment reference, note).")
def topup(customer_id: str, amount_text: str, topup_id: str, reference: str) -> None:
    """Book a top-up of AMOUNT (a decimal, e.g. 250.00) to CUSTOMER's prepaid balance."""
    try:
        amount = to_decimal(amount_text, field="AMOUNT")
        micros = to_micros(amount)
    except MoneyError as exc:
        raise fail(str(exc)) from None
    if micros <= 0:
        raise fail(f"AMOUNT must be positive, not {amount_text}")
    container = command_container()
    try:
        terms = _prepaid_terms(customer_id)
    except TransientError as exc:
        raise fail(str(exc)) from None
    if terms is None:
        raise fail(f"{customer_id!r} has no prepaid plan in the plan store; load one first (warp plans load)")
    if topup_id.startswith(PAYMENT_PREFIX):
        raise fail(f"--id {topup_id!r}: ids starting {PAYMENT_PREFIX!r} are gateway payments' (their own namespace)")
    entry_id = TOPUP_PREFIX + topup_id
    try:
        result = book_credit(container.balances, container.ledger_store, container.reconcile_customer,
                             customer_id=customer_id, entry_id=entry_id, amount_micros=micros, kind="topup",
                             reference=reference or topup_id, at_ms=container.clock.now_ms(), terms=terms)
    except (LedgerConflict, BalanceOutOfRange) as exc:
        raise fail(str(exc)) from None
    except Exception as exc:
        raise fail(f"top-up {topup_id} not confirmed ({exc}); run the same command again (it is idempotent)") from None
    compiled = container.plan_catalog.current(customer_id)
    # the plan was there a moment ago (its terms priced the top-up); if it vanished, alerts keep the default currency
    currency = compiled.currency if compiled is not None else Plan.model_fields["currency"].default
    # e.g. a top-up that still leaves the balance low or exhausted
    for code, error in publish_credit_alerts(result, container.alert_publisher, customer_id=customer_id,
                                             entry_id=entry_id, currency=currency, terms=terms):
        click.echo(f"warp: warning: alert {code} not published: {error}", err=True)
    state = "already booked" if result.duplicate else "booked"
    click.echo(f"{customer_id}: top-up {topup_id} of {format_amount(from_micros(micros))} {state}; "
               f"balance {format_amount(from_micros(result.balance_micros))}")


@balance.command("rebuild")
@click.option("--customer", "customers", multiple=True,
              help="Only this customer (repeatable); default: every customer the ledger or Redis knows.")
@click.option("--settle-seconds", default=0.0, show_default=True,
              help="Wait after fencing charging, before reading (postpaid rows still being written).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def rebuild(customers: tuple[str, ...], settle_seconds: float, as_json: bool) -> None:
    """Reconcile Redis with the ledger: fence, drain the outbox, compute from the raw rows, write, release.

    Safe under live traffic (charging for a customer answers transient for the moment it is
    fenced). Conflicts are read from the RAW ledger rows. Exit status 1 when a conflict was found
    or a customer could not be reconciled (busy / lease lost: run it again).
    """
    container = command_container()
    try:
        report = rebuild_balances(container.ledger_store, container.balances, customers=list(customers) or None,
                                  settle_s=settle_seconds, **container.rebuild_options())
    except Exception as exc:
        raise fail(f"rebuild failed ({exc}); it can be run again") from None
    summary: dict[str, Any] = {
        "customers": len(report.balances) + len(set(report.cycle_totals) - set(report.balances)),
        "entries": report.entries, "duplicate_rows": report.duplicate_rows, "conflicts": report.conflicts,
        "position_conflicts": report.position_conflicts, "dedup_marks": report.dedup_marks,
        "drained": report.drained, "busy": report.busy, "lost": report.lost,
        "balances": {customer: format_amount(from_micros(micros)) for customer, micros in report.balances.items()},
        "positions": report.positions,
        "cycle_totals": {customer: {cycle: format_amount(from_micros(total)) for cycle, total in cycles.items()}
                         for customer, cycles in report.cycle_totals.items()},
    }
    if as_json:
        click.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        for customer, amount in summary["balances"].items():
            click.echo(f"  {customer}: {amount} (position {report.positions.get(customer, 0)})")
        for customer, cycles in summary["cycle_totals"].items():
            for cycle, total in cycles.items():
                click.echo(f"  {customer}: postpaid cycle {cycle}: {total}")
        click.echo(f"rebuilt {len(report.balances)} balance(s) from {report.entries} ledger entries "
                   f"({report.duplicate_rows} duplicate rows ignored, {report.drained} outbox entries drained, "
                   f"{report.dedup_marks} dedup marks restored)")
    for conflict in report.conflicts:
        click.echo(f"warp: warning: ledger entry {conflict} appears with two different movements", err=True)
    for conflict in report.position_conflicts:
        click.echo(f"warp: warning: two ledger entries claim one position: {conflict}", err=True)
    for customer in report.busy + report.lost:
        click.echo(f"warp: warning: {customer} was not reconciled (another reconcile held it or the lease ran out); "
                   "run the command again", err=True)
    if report.conflicts or report.position_conflicts or report.busy or report.lost:
        sys.exit(1)


@balance.command("sweep")
@click.option("--no-heal", is_flag=True, help="Only drain the outboxes; do not reconcile stale customers.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def sweep(no_heal: bool, as_json: bool) -> None:
    """Drain every Redis outbox into the ledger and reconcile customers whose Redis state is stale.

    What the scheduler runs every minute (also the HTTP function `balance_sweep`). Idempotent.
    """
    container = command_container()
    try:
        report = run_sweep(container.ledger_store, container.balances, heal=not no_heal, **container.rebuild_options())
    except Exception as exc:
        raise fail(f"sweep failed ({exc}); it can be run again") from None
    conflicts = report.rebuild.conflicts if report.rebuild is not None else []
    summary = {"drained": report.drained, "reconciled": report.reconciled, "conflicts": conflicts}
    if as_json:
        click.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(f"swept: {report.drained} outbox entries drained into the ledger, "
                   f"{len(report.reconciled)} stale customer(s) reconciled")
    for conflict in conflicts:
        click.echo(f"warp: warning: ledger entry {conflict} appears with two different movements", err=True)


# -- warp rejects -------------------------------------------------------------------------------

@click.group(cls=StrictGroup)
def rejects() -> None:
    """Rejected usage events."""


@rejects.command("replay")
@click.argument("rejects_path", metavar="REJECTS.jsonl")
@click.option("--batch", "batch_size", default=500, show_default=True, help="Events per balance-store round trip.")
@click.option("--failed", "failed_path", metavar="FAILED.jsonl", help="Write the lines that must be retried here.")
def replay(rejects_path: str, batch_size: int, failed_path: str | None) -> None:
    """Re-submit corrected rejects through the charging service.

    Each line is a reject record whose ``raw`` text was corrected, a record with an ``event``
    object, a dead-lettered message as tools/pubsub_relay.py (and a dead-letter subscription)
    writes it (``data`` in base64, ``messageId``, ``attributes``), or a plain usage event. The
    maximum age does not apply to a replay, and earlier refusals (INSUFFICIENT_BALANCE,
    SUSPENDED, CREDIT_LIMIT) are decided again; an event that was charged meanwhile (found in
    Redis or in the durable usage store) is not charged twice, and a dead-lettered event whose
    debit was made gets its ledger entries and usage row completed.
    """
    check_outputs({"--failed": failed_path}, {"REJECTS.jsonl": rejects_path})
    try:
        source = open(rejects_path, "rb")
    except OSError as exc:
        raise fail(f"cannot read {rejects_path}: {exc.strerror}") from None
    service = command_container().charging
    counts: Counter[str] = Counter()
    failed: list[bytes] = []
    unreadable: list[int] = []
    batch: list[tuple[bytes, Delivery]] = []

    def flush() -> None:
        try:
            outcomes = service.handle_batch([delivery for _, delivery in batch], replay=True)
        except TransientError as exc:
            click.echo(f"warp: warning: a batch of {len(batch)} must be retried: {exc}", err=True)
            outcomes = [exc] * len(batch)
        for (line, _), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Handled):
                counts["rated" if outcome.status == "rated" else f"rejected {outcome.reason}"] += 1
            else:
                counts["to retry"] += 1
                failed.append(line)
        batch.clear()

    with source:
        for number, line in enumerate(source, start=1):
            text = line.strip()
            if not text:
                continue
            delivery = _replay_delivery(text)
            if delivery is None:
                unreadable.append(number)
                continue
            batch.append((text, delivery))
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    if failed_path and failed:
        write_atomic(Path(failed_path), b"\n".join(failed) + b"\n")
    for outcome, count in sorted(counts.items()):
        click.echo(f"  {outcome}: {count}")
    if unreadable:
        shown = ", ".join(str(n) for n in unreadable[:20])
        click.echo(f"warp: warning: {len(unreadable)} unreadable line(s) skipped: {shown}", err=True)
    click.echo(f"replayed {sum(counts.values())} event(s) from {rejects_path}")
    if counts["to retry"]:
        sys.exit(1)


def _replay_delivery(text: bytes) -> Delivery | None:
    """The event a rejects line stands for: corrected ``raw``, an ``event`` object, or the line itself."""
    try:
        record = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    message_id = record.get("message_id") if isinstance(record.get("message_id"), str) else None
    if isinstance(record.get("data"), str) and ("messageId" in record or "attributes" in record):
        return _dead_letter_delivery(record)
    if isinstance(record.get("event"), dict):
        event = record["event"]
    elif isinstance(record.get("raw"), str):
        try:
            event = orjson.loads(record["raw"])
        except orjson.JSONDecodeError:
            return None
    elif record.get("status") is None:
        event = record
    else:
        return None
    if not isinstance(event, dict):
        return None
    return Delivery(event, message_id, orjson.dumps(event).decode())


def _dead_letter_delivery(record: dict) -> Delivery | None:
    """A dead-lettered Pub/Sub message (``data`` base64, ``messageId``, ``attributes``) as a delivery."""
    import base64
    import binascii

    message_id = record.get("messageId") if isinstance(record.get("messageId"), str) else None
    try:
        body = base64.b64decode(record["data"], validate=True)
        event = orjson.loads(body)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(event, dict):
        return None
    given = record.get("attributes")
    attributes = {str(key): str(value) for key, value in given.items()} if isinstance(given, dict) else {}
    return Delivery(event, message_id, body.decode("utf-8", "replace"), None, attributes)
