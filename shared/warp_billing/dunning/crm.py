"""HubSpot sync: companies (customers) and deals (plans, commitments), upserted in batches.

Every change is a company or deal ``input`` (``{"id", "idProperty", "properties"}``, CRM v3
batch upsert by a unique property: ``warp_customer_id`` for companies, ``warp_deal_id`` for
deals). ``CrmUpdates`` groups them in batches of at most 100 and enqueues one Cloud Task per
batch on the rate-limited ``hubspot`` queue (task name = a digest of the batch, so an enqueue
repeated by a retry is one task). ``run_crm_task`` is the task handler: it upserts the batch and
answers 429 with HubSpot's Retry-After when HubSpot throttles (503 when it fails), so the queue
retries the same batch; an upsert is idempotent, so a retried batch changes nothing twice.

``push_plans`` is the bulk push (`warp crm push`, the ``crm_push`` task of ``functions/rollup``):
every customer's company and its deals (the plan, the voice commitment) through the same queue.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson

from ..billing.amounts import money_text
from ..charging.errors import TransientError
from ..plan import Plan
from ..ports import Crm, TaskQueue

log = logging.getLogger(__name__)
MAX_BATCH = 100
COMPANIES, DEALS = "companies", "deals"
ID_PROPERTY = {COMPANIES: "warp_customer_id", DEALS: "warp_deal_id"}


class CrmThrottled(Exception):
    """HubSpot answered 429: retry after ``retry_after_s`` seconds."""

    def __init__(self, retry_after_s: int, detail: str = ""):
        super().__init__(f"HubSpot throttled: retry after {retry_after_s} s {detail}".strip())
        self.retry_after_s = retry_after_s


class CrmRefused(ValueError):
    """HubSpot refused the batch for its content (4xx other than 429): not retried, logged."""


def company_input(customer_id: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": customer_id, "idProperty": ID_PROPERTY[COMPANIES],
            "properties": {ID_PROPERTY[COMPANIES]: customer_id, **{k: _text(v) for k, v in properties.items()}}}


def company_from_plan(plan: Plan) -> dict[str, Any]:
    profile = plan.billing_profile
    properties: dict[str, Any] = {"name": profile.name if profile else plan.customer_id,
                                  "warp_billing": plan.billing, "warp_currency": plan.currency}
    if profile is not None:
        properties["warp_account_number"] = profile.account_number
    return company_input(plan.customer_id, properties)


def deals_from_plan(plan: Plan) -> list[dict[str, Any]]:
    """The plan as a deal, and its voice commitment (if any) as another."""
    deals = [{"id": f"{plan.customer_id}:plan", "idProperty": ID_PROPERTY[DEALS],
              "properties": {ID_PROPERTY[DEALS]: f"{plan.customer_id}:plan", "dealname": f"{plan.customer_id} plan",
                             "warp_customer_id": plan.customer_id, "warp_billing": plan.billing,
                             "warp_net_days": str(plan.terms.net_days)}}]
    commitment = plan.voice.commitment if plan.voice is not None else None
    if commitment is not None:
        deal_id = f"{plan.customer_id}:commitment:{commitment.start.isoformat()}"
        value = money_text(Decimal(commitment.minutes) * commitment.shortfall_rate)
        deals.append({"id": deal_id, "idProperty": ID_PROPERTY[DEALS],
                      "properties": {ID_PROPERTY[DEALS]: deal_id, "dealname": f"{plan.customer_id} voice commitment",
                                     "warp_customer_id": plan.customer_id, "amount": value,
                                     "warp_commitment_minutes": str(commitment.minutes),
                                     "warp_commitment_start": commitment.start.isoformat(),
                                     "warp_commitment_end": commitment.end.isoformat() if commitment.end else ""}})
    return deals


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return money_text(value)
    return "" if value is None else str(value)


class CrmUpdates:
    """Enqueues CRM upserts in batches of at most ``batch_size`` (the ``hubspot`` queue)."""

    def __init__(self, queue: TaskQueue, batch_size: int = MAX_BATCH):
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"a HubSpot batch holds 1..{MAX_BATCH} inputs, not {batch_size}")
        self.queue = queue
        self.batch_size = batch_size

    def upsert(self, object_type: str, inputs: Sequence[Mapping[str, Any]]) -> int:
        """Enqueue ``inputs`` (the last one per id wins within a call); the number of tasks enqueued."""
        if object_type not in ID_PROPERTY:
            raise ValueError(f"unknown HubSpot object type {object_type!r}")
        by_id = {str(item["id"]): dict(item) for item in inputs}
        items = list(by_id.values())
        tasks = 0
        for start in range(0, len(items), self.batch_size):
            batch = items[start:start + self.batch_size]
            body = {"object_type": object_type, "inputs": batch}
            digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
            self.queue.enqueue(f"hubspot-{object_type}-{digest}", body)
            tasks += 1
        return tasks

    def company(self, customer_id: str, properties: Mapping[str, Any]) -> int:
        return self.upsert(COMPANIES, [company_input(customer_id, properties)])


def push_plans(plans: Iterable[Plan], updates: CrmUpdates) -> dict[str, int]:
    """Enqueue every plan's company and deals (batches of at most ``updates.batch_size``); the counts."""
    ordered = sorted(plans, key=lambda plan: plan.customer_id)
    companies = [company_from_plan(plan) for plan in ordered]
    deals = [deal for plan in ordered for deal in deals_from_plan(plan)]
    return {"companies": len(companies), "company_tasks": updates.upsert(COMPANIES, companies),
            "deals": len(deals), "deal_tasks": updates.upsert(DEALS, deals)}


def run_crm_task(body: Mapping[str, Any] | None, crm: Crm) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Serve one ``hubspot`` queue task: (response body, HTTP status, headers).

    200 done (or refused for its content: logged, not retried); 400 a body that is not a batch;
    429 + Retry-After when HubSpot throttles; 503 when HubSpot or the network failed.
    """
    if not isinstance(body, Mapping) or body.get("object_type") not in ID_PROPERTY \
            or not isinstance(body.get("inputs"), list) or not 1 <= len(body["inputs"]) <= MAX_BATCH:
        return {"error": f"a task is {{object_type: companies|deals, inputs: [1..{MAX_BATCH}]}}"}, 400, {}
    object_type = str(body["object_type"])
    inputs = body["inputs"]
    try:
        crm.batch_upsert(object_type, ID_PROPERTY[object_type], inputs)
    except CrmThrottled as exc:
        log.info("HubSpot throttled; the queue retries", extra={"retry_after_s": exc.retry_after_s,
                                                                "inputs": len(inputs)})
        return {"status": "throttled", "retry_after_s": exc.retry_after_s}, 429, {"Retry-After": str(exc.retry_after_s)}
    except CrmRefused as exc:
        log.error("HubSpot refused the batch; not retried", extra={"object_type": object_type, "detail": str(exc)})
        return {"status": "refused", "detail": str(exc)}, 200, {}
    except TransientError as exc:
        return {"status": "retry", "detail": str(exc)}, 503, {}
    return {"status": "upserted", "object_type": object_type, "inputs": len(inputs)}, 200, {}
