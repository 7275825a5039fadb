"""Operator commands of the NetSuite sync:

    warp netsuite status [--customer C] [--json]   pending, failed and synced documents (with their errors)
    warp netsuite retry DOC                        re-enqueue a failed document after a mapping/data fix
    warp netsuite sweep [--customer C]             enqueue every pending outbox document now

They use whatever the settings (``WARP_*``) point at, through ``bootstrap.container()``: the
outbox and sync_errors stores and the netsuite Cloud Tasks queue.
"""

from __future__ import annotations

from collections import Counter

import click
import orjson

from ..erp.enqueue import STALE_AFTER_S, enqueue_pending, retry_document
from .common import command_container, fail


@click.group()
def netsuite() -> None:
    """The NetSuite sync: outbox status, retries, sweeps."""


@netsuite.command()
@click.option("--customer", help="only this customer's documents")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per document instead of a table")
def status(customer: str | None, as_json: bool) -> None:
    """Documents by status (pending, enqueued, failed, synced); failed ones with their NetSuite error."""
    parts = command_container()
    documents = parts.sync_outbox.documents(customer)
    errors: dict[tuple[str, int], object] = {}
    for error in parts.sync_errors.errors(customer_id=customer):
        errors[(error.doc_id, error.revision)] = error  # the latest attempt's error wins
    counts = Counter(doc.status for doc in documents)
    if as_json:
        for doc in documents:
            error = errors.get((doc.doc_id, doc.revision)) if doc.status == "failed" else None
            record = {"doc_id": doc.doc_id, "revision": doc.revision, "doc_type": doc.doc_type,
                      "customer_id": doc.customer_id, "status": doc.status, "detail": doc.detail}
            if error is not None:
                record["error"] = {"code": error.code, "detail": error.detail, "path": error.path,  # type: ignore[attr-defined]
                                   "attempt": error.attempt}  # type: ignore[attr-defined]
            click.echo(orjson.dumps(record).decode())
        return
    click.echo("  ".join(f"{name}: {counts.get(name, 0)}" for name in ("pending", "enqueued", "failed", "synced")))
    for doc in documents:
        line = f"{doc.status:<9} {doc.doc_type:<17} {doc.doc_id} r{doc.revision}"
        error = errors.get((doc.doc_id, doc.revision)) if doc.status == "failed" else None
        if error is not None:
            line += f"  {error.code}: {error.detail}"  # type: ignore[attr-defined]
            if error.path:  # type: ignore[attr-defined]
                line += f" (at {error.path})"  # type: ignore[attr-defined]
        elif doc.detail:
            line += f"  {doc.detail}"
        click.echo(line)


@netsuite.command()
@click.argument("doc_id")
def retry(doc_id: str) -> None:
    """Re-enqueue DOC (after fixing the mapping or the data) under its next attempt number."""
    parts = command_container()
    try:
        name = retry_document(parts.sync_outbox, parts.netsuite_queue, parts.sync_errors, doc_id)
    except KeyError as exc:
        raise fail(str(exc.args[0])) from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    click.echo(f"{doc_id}: enqueued as task {name}")


@netsuite.command()
@click.option("--customer", help="only this customer's documents")
@click.option("--stale-after", type=click.IntRange(min=0), default=STALE_AFTER_S, show_default=True,
              help="seconds after which an enqueued document whose task never synced it is enqueued again")
def sweep(customer: str | None, stale_after: int) -> None:
    """Enqueue every pending outbox document (what the scheduled sweep does)."""
    parts = command_container()
    report = enqueue_pending(parts.sync_outbox, parts.netsuite_queue, customer_id=customer,
                             stale_after_s=stale_after)
    record = report.to_record()
    click.echo(f"enqueued {record['enqueued']}, already queued {record['already_queued']}, "
               f"failed (waiting for `warp netsuite retry`) {record['failed_waiting_for_retry']}")
