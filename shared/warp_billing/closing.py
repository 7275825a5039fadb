"""The close tasks behind `warp close` and the ``rollup`` function, on the configured adapters.

* ``cycle_close(container)``: every customer of the plan store whose latest cycle has ended
  (in its own zone, anchor day and the watermark lag) and has no issued invoice (or one whose
  documents were not stored: that close is finished, without a new number); with
  ``period``: that cycle for every customer not issued yet; with ``customer`` and ``period``:
  one customer, an operator re-run (the recorded watermark is reused; a changed plan is
  credited and rebilled).
* ``hourly_rollup(container)``: MERGE ``usage_hourly`` (BigQuery source only).
* ``dunning(container)``: the daily dunning of overdue invoices (``dunning.service``, issue 12).
* ``crm_push(container)``: every customer's HubSpot company and deals (plan, commitment) upserted
  through the hubspot queue in batches of at most 100 (``dunning.crm.push_plans``; `warp crm push`).
* ``netsuite_sweep(container)``: enqueue the ERP outbox's pending documents on the netsuite
  queue (``erp.enqueue.enqueue_pending``). The rollup runs it after every ``cycle_close`` (so an
  issued invoice is on its way to NetSuite without waiting for the sweep) and on its own as the
  scheduled ``netsuite_sweep`` task, which picks up whatever an earlier enqueue missed.
* ``handle_request(body, container)``: the JSON task of a Cloud Scheduler call.

A plan that cannot be read fails that customer's close (named in the run), not the run. An
enqueue that fails after a close does not fail the close (the documents are issued and in the
outbox): the summary says so under ``netsuite`` and the next sweep enqueues them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from .billing.close_service import CloseRun, CloseTarget, document_stem, due_periods
from .billing.cycles import parse_period
from .billing.errors import BillingError, PeriodError
from .plan import Plan, PlanError, parse_plan
from .timeutil import UTC

log = logging.getLogger(__name__)


class TaskError(ValueError):
    """A task request that cannot be run as given (HTTP 400)."""


def load_plans(plan_store: Any, customers: list[str] | None = None) -> tuple[dict[str, Plan], dict[str, str]]:
    """Current plans of ``customers`` (default: every customer of the store) and the unreadable ones."""
    if customers is None:
        lister = getattr(plan_store, "customers", None)
        if lister is None:
            raise TaskError("the plan store cannot list its customers; name one with `customer`")
        customers = list(lister())
    plans, failed = {}, {}
    for customer in customers:
        try:
            version = plan_store.current_version(customer)
            if version is None:
                failed[customer] = f"PlanNotFound: no plan for customer {customer!r}"
                continue
            document = dict(plan_store.plan_document(customer, version))
            plans[customer] = parse_plan(document, f"plan {customer}@{version}")
        except (PlanError, LookupError, ValueError, OSError) as error:
            failed[customer] = f"{type(error).__name__}: {error}"
    return plans, failed


def cycle_close(container: Any, *, period: str | None = None, customer: str | None = None,
                now: datetime | None = None,
                clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> list[CloseRun]:
    """Run the close (see the module docstring); one run per period, oldest first."""
    if customer is not None and period is None:
        raise TaskError("a re-run of one customer names its period too")
    if period is not None:
        try:
            parse_period(period)
        except PeriodError as error:
            raise TaskError(str(error)) from None
    now = now or clock()
    settings = container.settings
    lag = timedelta(seconds=settings.close_watermark_lag_s)
    plans, failed = load_plans(container.plan_store, [customer] if customer else None)
    register = container.close_register
    candidates = [CloseTarget(plan, label) for plan in plans.values()
                  for label in ([period] if period is not None else due_periods(plan, now, lag, back=1))]
    if customer is None:
        # The scheduled close leaves a cycle alone once its invoice is issued AND stored: a close that
        # issued but failed to store or announce is finished by the next run. Lookups run in parallel.
        documents = container.document_store

        def finished(target: CloseTarget) -> bool:
            number = register.issued_number(target.plan.customer_id, target.period)
            return number is not None and documents.exists(
                document_stem(target.plan.customer_id, target.period, number) + ".json")

        with ThreadPoolExecutor(max_workers=8) as pool:
            done = list(pool.map(finished, candidates))
        candidates = [target for target, finished_already in zip(candidates, done, strict=True) if not finished_already]
    by_period: dict[str, list[CloseTarget]] = defaultdict(list)
    for target in candidates:
        by_period[target.period].append(target)
    closer = container.cycle_closer
    runs = []
    if failed and not by_period:
        runs.append(closer.close([], failed_plans=failed))
    for index, label in enumerate(sorted(by_period)):
        runs.append(closer.close(by_period[label], rebill=customer is not None,
                                 failed_plans=failed if index == 0 else None))
    return runs


def hourly_rollup(container: Any, now: datetime | None = None) -> dict:
    source = container.rated_source
    if not hasattr(source, "hourly_rollup"):
        raise TaskError("hourly_rollup needs WARP_RATED_SOURCE=bigquery (usage_hourly is a BigQuery table)")
    done = source.hourly_rollup(now or datetime.now(UTC),
                                lag=timedelta(seconds=container.settings.close_watermark_lag_s))
    return {"task": "hourly_rollup", "since": done.since.isoformat(), "until": done.until.isoformat(),
            "rows_merged": done.rows_merged}


def dunning(container: Any) -> dict:
    """The daily dunning task (issue 12): every customer with a collections ladder, on today's aging
    (UTC, by the container's clock)."""
    plans, failed = load_plans(container.plan_store)
    today = datetime.fromtimestamp(container.clock.now_ms() / 1000, UTC).date()
    run = container.dunning.run(plans, today)
    summary = run.summary()
    summary["errors"] += [{"customer_id": customer, "error": error} for customer, error in sorted(failed.items())]
    return summary


def crm_push(container: Any, customers: list[str] | None = None) -> dict:
    """Enqueue every customer's (or ``customers``') HubSpot company and deals on the hubspot queue."""
    from .dunning.crm import push_plans

    updates = container.crm_updates
    if updates is None:
        raise TaskError("crm_push needs the HubSpot sync (WARP_HUBSPOT_SYNC=true)")
    plans, failed = load_plans(container.plan_store, customers)
    counts = push_plans(plans.values(), updates)
    return {"task": "crm_push", **counts,
            "errors": [{"customer_id": customer, "error": error} for customer, error in sorted(failed.items())]}


def _crm_push_request(body: Mapping, container: Any) -> dict:
    if body.get("period"):
        raise TaskError("crm_push takes no period")
    customer = body.get("customer")
    if customer is not None and (not isinstance(customer, str) or not customer):
        raise TaskError("customer: a customer id")
    return crm_push(container, [customer] if customer else None)


def netsuite_sweep(container: Any) -> dict:
    """Enqueue every pending outbox document (and stale enqueued ones) on the netsuite queue."""
    from .erp.enqueue import enqueue_pending

    return enqueue_pending(container.sync_outbox, container.netsuite_queue).to_record()


def _enqueue_after_close(container: Any) -> dict:
    try:
        return netsuite_sweep(container)
    except Exception as error:  # noqa: BLE001 - the close is done; the scheduled sweep retries the enqueue
        log.error("outbox not enqueued after the close; the netsuite sweep will", exc_info=True,
                  extra={"error": f"{type(error).__name__}: {error}"})
        return {"error": f"{type(error).__name__}: {error}"}


TASKS = ("hourly_rollup", "cycle_close", "netsuite_sweep", "dunning", "crm_push")


def handle_request(body: Mapping | None, container: Any) -> tuple[dict, int]:
    """A Scheduler / operator request: (JSON summary, HTTP status)."""
    if not isinstance(body, Mapping):
        return {"error": "the body must be a JSON object with a `task`"}, 400
    unknown = sorted(set(body) - {"task", "customer", "period"})
    task = body.get("task")
    try:
        if unknown:
            raise TaskError(f"unknown key(s) {', '.join(unknown)}; a task takes task, customer, period")
        if task == "hourly_rollup":
            if body.get("customer") or body.get("period"):
                raise TaskError("hourly_rollup takes no customer or period")
            return hourly_rollup(container), 200
        if task == "cycle_close":
            runs = cycle_close(container, period=body.get("period"), customer=body.get("customer"))
            return {"task": "cycle_close", "runs": [run.summary() for run in runs],
                    "netsuite": _enqueue_after_close(container)}, 200
        if task == "netsuite_sweep":
            if body.get("customer") or body.get("period"):
                raise TaskError("netsuite_sweep takes no customer or period")
            return {"task": "netsuite_sweep", "netsuite": netsuite_sweep(container)}, 200
        if task == "dunning":
            if body.get("customer") or body.get("period"):
                raise TaskError("dunning takes no customer or period")
            return dunning(container), 200
        if task == "crm_push":
            return _crm_push_request(body, container), 200
        raise TaskError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    except TaskError as error:
        return {"error": str(error)}, 400
    except BillingError as error:
        return {"error": f"{type(error).__name__}: {error}"}, 500
