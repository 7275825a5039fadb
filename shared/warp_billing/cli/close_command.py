"""`warp close --period P [--customer C]`: the scheduled cycle close, run by hand.

Runs the same service as the ``rollup`` function's ``cycle_close`` task against whatever the
settings point at: by default the embedded adapters (plans in ``WARP_PLANS_DIR``, rated usage
in ``WARP_RATED_FILE``, register in ``WARP_REGISTER_DIR``, documents in ``WARP_DOCUMENTS_DIR``);
with the local stack's settings, BigQuery, Firestore and the Cloud Storage stand-in. Without
``--customer`` every customer whose PERIOD is not issued yet is closed; with it, that customer
is re-run (its recorded watermark reused; a changed plan is credited and rebilled).

Prints one line per customer and the run summary; exits 1 when any customer failed.
"""

from __future__ import annotations

import logging
import sys

import click
import orjson

from .. import bootstrap, logs
from ..closing import TaskError, cycle_close
from .common import fail


@click.command("close")
@click.option("--period", required=True, metavar="YYYY-MM",
              help="The cycle starting in this month, in each customer's zone.")
@click.option("--customer", metavar="CUSTOMER", help="Only this customer (an operator re-run).")
@click.option("--json", "as_json", is_flag=True, help="Print the run summaries as JSON.")
def close(period: str, customer: str | None, as_json: bool) -> None:
    """Close PERIOD through the configured register, usage source and document store."""
    logs.configure("WARNING", stream=sys.stderr)  # stdout carries the command's own output
    container = bootstrap.container()
    logging.getLogger().setLevel(logging.WARNING)
    try:
        runs = cycle_close(container, period=period, customer=customer)
    except TaskError as error:
        raise fail(str(error)) from None
    failures = 0
    for run in runs:
        for row in run.rows:
            failures += row["status"] == "failed"
            if not as_json:
                click.echo(_line(row), err=row["status"] == "failed")
    if as_json:
        click.echo(orjson.dumps([run.summary() for run in runs], option=orjson.OPT_INDENT_2).decode())
    elif not runs:
        click.echo(f"nothing to close for {period}: every customer is issued")
    if failures:
        raise click.exceptions.Exit(1)


def _line(row: dict) -> str:
    if row["status"] == "failed":
        return f"warp: error: {row['customer_id']} {row['period']}: {row['error']}"
    check = {True: "conserved", False: "CONSERVATION FAILED", None: "not checked"}[row["conservation_ok"]]
    return (f"{row['customer_id']} {row['period']} {row['document_number']} ({row['status']}): total {row['total']} "
            f"{row['currency']} [{row['events']:,} events, {row['late_events']:,} late; {check}]")
