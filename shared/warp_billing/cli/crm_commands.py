"""Operator command of the HubSpot sync (issue 12):

    warp crm push [--customer C ...] [--json]   every customer's company and deals (plan, commitment)

It enqueues batches of at most 100 upserts on the hubspot Cloud Tasks queue (the same path as the
``crm_push`` task of ``functions/rollup``, which Cloud Scheduler calls daily); ``crm_sync`` serves
the queue, which retries a throttled batch after HubSpot's Retry-After. Plans come from the plan
store the settings (``WARP_*``) point at, through ``bootstrap.container()``.
"""

from __future__ import annotations

import click
import orjson

from ..charging.errors import TransientError
from ..closing import TaskError, crm_push
from .common import StrictGroup, command_container, fail


@click.group(cls=StrictGroup)
def crm() -> None:
    """HubSpot: push companies and deals."""


@crm.command("push")
@click.option("--customer", "customers", multiple=True, metavar="C", help="only this customer (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def push(customers: tuple[str, ...], as_json: bool) -> None:
    """Upsert every customer's HubSpot company and deals, in batches of at most 100, through the queue."""
    try:
        summary = crm_push(command_container(), list(customers) or None)
    except (TaskError, TransientError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        click.echo(orjson.dumps(summary).decode())
        return
    click.echo(f"companies: {summary['companies']} in {summary['company_tasks']} batch(es); "
               f"deals: {summary['deals']} in {summary['deal_tasks']} batch(es) enqueued on the hubspot queue")
    for error in summary["errors"]:
        click.echo(f"  not pushed: {error['customer_id']}: {error['error']}", err=True)
