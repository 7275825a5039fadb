"""The rated-usage record (contracts.md section 5): one per input event, rated or rejected."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..money import format_amount, format_rate

RATED = "rated"
REJECTED = "rejected"


@dataclass(slots=True)
class RatedEvent:
    """A priced event.

    Attributes:
        billed_units: voice billed seconds; messaging messages x segments; API queries.
        rate: the per-minute or per-message price applied, after multipliers.
        amount, vendor_cost: rounded once to 6 decimals.
        margin_pct: percent of the amount left after vendor cost and overhead.
    """

    event_id: str
    kind: str
    customer_id: str
    start_time: str
    jurisdiction: str | None
    matched_prefix: str | None
    destination: str | None
    rate: Decimal
    billed_units: int
    amount: Decimal
    vendor_id: str | None
    vendor_cost: Decimal | None
    margin_pct: Decimal | None
    low_margin: bool
    direction: str | None = None
    query_type: str | None = None
    duration_s: int | None = None
    # contracts.md section 5: voice (calling, called, lrn, call_id, trunk_id); messaging (from, to)
    identity: tuple[str | None, ...] | None = None

    status = RATED

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "event_id": self.event_id,
            "status": RATED,
            "kind": self.kind,
            "customer_id": self.customer_id,
            "jurisdiction": self.jurisdiction,
            "matched_prefix": self.matched_prefix,
            "rate": format_rate(self.rate),
            "billed_units": self.billed_units,
            "amount": format_amount(self.amount),
            "vendor_cost": format_amount(self.vendor_cost),
            "margin_pct": format_amount(self.margin_pct),
            "low_margin": self.low_margin,
            "start_time": self.start_time,
            "direction": self.direction,
            "query_type": self.query_type,
            "duration_s": self.duration_s,
            "destination": self.destination,
            "vendor_id": self.vendor_id,
        }
        identity = self.identity
        if identity is not None:  # contracts.md section 5: the call's or message's identity
            if len(identity) == 5:
                record["calling_number"], record["called_number"], record["lrn"], record["call_id"], \
                    record["trunk_id"] = identity
            else:
                record["from_number"], record["to_number"] = identity
        return record


@dataclass(slots=True)
class RejectedEvent:
    """An event that was not rated, with a stable reason code and a human detail."""

    event_id: str | None
    kind: str | None
    customer_id: str | None
    reason: str
    detail: str
    start_time: str | None = None

    status = REJECTED

    def to_record(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "status": REJECTED,
            "kind": self.kind,
            "customer_id": self.customer_id,
            "jurisdiction": None,
            "matched_prefix": None,
            "rate": None,
            "billed_units": None,
            "amount": None,
            "vendor_cost": None,
            "margin_pct": None,
            "low_margin": False,
            "start_time": self.start_time,
            "reason": self.reason,
            "detail": self.detail,
        }
