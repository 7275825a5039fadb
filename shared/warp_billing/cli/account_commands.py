"""Operator commands for suspension for non-payment (issue 12, dunning):

    warp account status CUSTOMER [--json]                 hold, suspension record, dunning steps, emails
    warp account suspend CUSTOMER [--invoice NUMBER]      charging refuses the customer (ACCOUNT_SUSPENDED)
    warp account reinstate CUSTOMER                       lift the hold (an operator's decision: stands
                                                          even with an overdue balance left)

They act on what the settings point at (the charging Redis for the hold, the dunning store for
the record), through ``bootstrap.container()``, like the other operator commands. Both changes
are idempotent: suspending a suspended customer or reinstating an active one changes nothing.
"""

from __future__ import annotations

import click
import orjson

from ..charging.clock import iso_from_ms
from ..charging.errors import TransientError
from ..dunning.holds import AccountHold
from .common import StrictGroup, command_container, fail


@click.group(cls=StrictGroup)
def account() -> None:
    """Suspension for non-payment: status, suspend, reinstate."""


@account.command("status")
@click.argument("customer_id", metavar="CUSTOMER")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(customer_id: str, as_json: bool) -> None:
    """Whether charging refuses CUSTOMER, why, and the dunning steps that ran."""
    container = command_container()
    try:
        hold = container.account_holds.hold(customer_id)
    except TransientError as exc:
        raise fail(str(exc)) from None
    store = container.dunning_store
    record = store.suspension(customer_id)
    steps = store.step_log(customer_id) if hasattr(store, "step_log") else sorted(store.steps(customer_id))
    state = {"customer_id": customer_id, "suspended": hold is not None,
             "since": iso_from_ms(hold.since_ms) if hold else None,
             "invoice_number": hold.invoice_number if hold else None,
             "actor": hold.actor if hold else None, "suspension_record": record,
             "steps": [{"invoice_number": item[0], "action": item[1], "at": item[2] if len(item) > 2 else None}
                       for item in steps]}
    if as_json:
        click.echo(orjson.dumps(state).decode())
        return
    if hold is None:
        click.echo(f"{customer_id}: active (charging accepts its events)")
    else:
        click.echo(f"{customer_id}: SUSPENDED since {state['since']} by {hold.actor}"
                   + (f" for {hold.invoice_number}" if hold.invoice_number else "")
                   + " (events rejected ACCOUNT_SUSPENDED)")
    if (record is None) != (hold is None):
        click.echo(f"  note: the dunning store says {'suspended for ' + record if record else 'not suspended'}; "
                   "the next dunning run brings the hold back to it")
    for item in state["steps"]:
        click.echo(f"  {item['at'] or '':<32} {item['invoice_number']:<24} {item['action']}")


@account.command("suspend")
@click.argument("customer_id", metavar="CUSTOMER")
@click.option("--invoice", "invoice_number", default="", metavar="NUMBER", help="The overdue invoice it is for.")
def suspend(customer_id: str, invoice_number: str) -> None:
    """Make charging refuse CUSTOMER's events (ACCOUNT_SUSPENDED) until reinstated."""
    container = command_container()
    now = container.clock.now_ms()
    try:
        new = container.account_holds.suspend(AccountHold(customer_id, now, invoice_number, "operator"))
    except TransientError as exc:
        raise fail(str(exc)) from None
    container.dunning_store.set_suspended(customer_id, invoice_number or "(operator)", iso_from_ms(now))
    click.echo(f"{customer_id}: {'suspended' if new else 'already suspended'}")


@account.command("reinstate")
@click.argument("customer_id", metavar="CUSTOMER")
def reinstate(customer_id: str) -> None:
    """Lift CUSTOMER's suspension: charging accepts its events again (replay the rejects)."""
    container = command_container()
    try:
        lifted = container.account_holds.reinstate(customer_id)
    except TransientError as exc:
        raise fail(str(exc)) from None
    recorded = container.dunning_store.clear_suspended(customer_id, iso_from_ms(container.clock.now_ms()))
    click.echo(f"{customer_id}: {'reinstated' if lifted or recorded else 'was not suspended'}")
