"""Postpaid charging: running totals per customer and billing cycle, with credit limits.

Policy, applied atomically per event by the balance store (``adapters/postpaid_charge.lua``,
a Redis hash ``warp:{CUSTOMER}:cycle:<cycle start>`` with the dedup mark beside it):

* the event's amount is added to the running total of the billing cycle its start time falls
  in (the customer's zone and ``terms.anchor_day``), once per event_id;
* soft limit (``postpaid.soft_limit_pct`` of ``postpaid.credit_limit``, default 80 %): when the
  total reaches it, CREDIT_SOFT_LIMIT is alerted once per cycle; the event is charged;
* hard limit (``postpaid.credit_limit``): an event that would take the total above it is
  refused with CREDIT_LIMIT (a reject, replayable once the limit is raised or the cycle
  closes), and CREDIT_LIMIT_REACHED is alerted once per cycle. The total never exceeds the limit.
* no credit limit: totals only.

The totals are a real-time view; invoices are computed from the rated usage in BigQuery.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

from ..money import EXACT, round_micro, to_micros
from ..plan import Plan
from .accounts import PostpaidTerms

HUNDRED = 100


def cycle_start(plan: Plan, instant: datetime) -> date:
    """First day of the monthly billing cycle containing ``instant`` in the customer's zone."""
    local = instant.astimezone(plan.zone).date()
    anchor = plan.terms.anchor_day
    if local.day >= anchor:
        return date(local.year, local.month, anchor)
    if local.month == 1:
        return date(local.year - 1, 12, anchor)
    return date(local.year, local.month - 1, anchor)


def postpaid_terms(plan: Plan, instant: datetime) -> PostpaidTerms:
    """The plan's credit terms for the cycle of an event that started at ``instant``."""
    limit = plan.postpaid.credit_limit
    cycle = cycle_start(plan, instant).isoformat()
    if limit is None:
        return PostpaidTerms(cycle)
    hard, soft = _limits_micros(limit, plan.postpaid.soft_limit_pct)
    return PostpaidTerms(cycle, hard, soft)


@lru_cache(maxsize=1024)
def _limits_micros(limit: Decimal, soft_limit_pct: Decimal) -> tuple[int, int]:
    """Hard and soft credit limits in micro-units (computed once per plan's values, not per event)."""
    soft = round_micro(EXACT.divide(EXACT.multiply(limit, soft_limit_pct), HUNDRED))
    return to_micros(round_micro(limit)), to_micros(soft)
