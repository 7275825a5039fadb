"""Builders for the billing tests: plans from dicts, rated lines as `warp rate` writes them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from warp_billing.billing.cycles import plan_cycle
from warp_billing.billing.erp_outbox import DEFAULT_ACCOUNTS, customer_document
from warp_billing.billing.invoice import build_invoice
from warp_billing.billing.taxes import OfflineTaxEngine
from warp_billing.billing.usage_lines import UsageAggregator, UsageWindow
from warp_billing.plan import Plan, parse_plan

BASE_PLAN: dict[str, Any] = {"customer_id": "ACME", "timezone": "America/New_York", "voice": {"deck": "unused.csv"}}


def plan_from(**sections: Any) -> Plan:
    """A plan: the base (ACME, New York, a voice deck) with the given sections replaced or added."""
    raw = {**BASE_PLAN, **sections}
    return parse_plan(raw)


def rated(kind: str = "voice", *, units: int = 60, amount: str = "0.006000", start: str = "2026-11-03T12:00:00Z",
          customer: str = "ACME", status: str = "rated", event_id: str = "e", **fields: Any) -> dict:
    """A rated (or rejected) record with the fields `warp rate` writes."""
    record = {
        "event_id": event_id, "status": status, "kind": kind, "customer_id": customer,
        "jurisdiction": "interstate" if kind == "voice" else None, "matched_prefix": "1212", "rate": "0.006",
        "billed_units": units, "amount": amount, "vendor_cost": None, "margin_pct": None, "low_margin": False,
        "start_time": start, "direction": {"voice": "termination", "sms": "outbound", "mms": "outbound"}.get(kind),
        "query_type": "lrn" if kind == "api_query" else None, "duration_s": units if kind == "voice" else None,
        "destination": None, "vendor_id": None,
    }
    if status == "rejected":
        record.update({"billed_units": None, "amount": None, "reason": "NO_RATE", "detail": "no deck row"})
    record.update(fields)
    return record


def lines_of(*records: dict) -> list[bytes]:
    return [orjson.dumps(record) for record in records]


def write_rated(path, *records: dict) -> str:
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return str(path)


def close_november(register: Any, *records: dict, as_of: Any = None, rebill: bool = False) -> Any:
    """Close ACME's November 2026 (net 15) over ``records`` through a close register (file or
    Firestore): the ``IssueOutcome`` of ``issue_close`` with the customer document and default accounts."""
    watermark = datetime(2026, 12, 1, tzinfo=UTC)
    plan = plan_from(customer_id="ACME", terms={"net_days": 15})
    cycle = plan_cycle(plan, "2026-11")
    aggregator = UsageAggregator({"ACME": UsageWindow.for_cycle("ACME", cycle)})
    aggregator.consume(lines_of(*records))
    draft = build_invoice(plan, cycle, aggregator.result()["ACME"], OfflineTaxEngine())
    return register.issue_close(draft, watermark=watermark, customer=customer_document(plan, watermark.isoformat()),
                                accounts=DEFAULT_ACCOUNTS, as_of=as_of, rebill=rebill)
