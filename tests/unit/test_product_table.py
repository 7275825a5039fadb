"""The product table is the one place a kind is described: a toy kind registered here (and nowhere
else) is rated, charged, invoiced and booked to its revenue account. That is the proof of the seam."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from tests.builders import rater
from tests.charging_world import make_world

from warp_billing import products
from warp_billing.billing.cycle_close import close_cycles
from warp_billing.billing.revenue_recognition import AccountMap, journal_entries
from warp_billing.billing.taxes import OfflineTaxEngine
from warp_billing.money import round_micro
from warp_billing.plan import Plan
from warp_billing.products import EventField, Product, registered
from warp_billing.rating import events
from warp_billing.rating.rated_event import RatedEvent, RejectedEvent

PRICE_PER_PAGE = Decimal("0.25")


class TelexRater:
    """A toy kind: a flat price per page, whatever the plan says."""

    def __init__(self, plan: Plan):
        self._customer_id = plan.customer_id

    def rate(self, event: dict, event_id: str, vendor_id: str | None) -> RatedEvent:
        events.start_time(event)
        pages = events.whole_number(event, "pages", 1, 100)
        amount = round_micro(PRICE_PER_PAGE * pages)
        return RatedEvent(event_id, "telex", self._customer_id, event["start_time"], None, None, None,
                          PRICE_PER_PAGE, pages, amount, vendor_id, None, None, False, direction="outbound")


TELEX = Product(
    kind="telex", plan_section="telex", fields=(EventField("pages", True, "whole number 1-100"),),
    rater=lambda plan, decks, numbering: TelexRater(plan), decks=lambda plan: [],
    sku_prefix="TELEX", group_field="direction", group_values=("outbound",), group_default="outbound",
    unit="page", units_per_quantity=1, unit_detail=None, description="Telex pages, {group}",
    revenue_account="messaging_revenue", topic="usage-telex", function="rate_telex",
)
PLAN = """
customer_id: ACME
timezone: UTC
api_queries: {prices: {lrn: "0.001"}}
"""


def telex(event_id: str = "t1", customer: str = "ACME", pages: object = 3) -> dict:
    return {"event_id": event_id, "kind": "telex", "customer_id": customer, "start_time": "2026-11-03T12:00:00Z",
            "pages": pages}


def test_a_toy_kind_is_rated_charged_invoiced_and_booked_from_its_table_entry_alone(tmp_path: Path):
    with registered(TELEX):
        # rating (`warp rate`'s core)
        rated = rater(PLAN, {}).rate(telex())
        assert isinstance(rated, RatedEvent)
        assert (rated.kind, rated.billed_units, rated.amount) == ("telex", 3, Decimal("0.750000"))
        bad = rater(PLAN, {}).rate(telex(pages=0))
        assert isinstance(bad, RejectedEvent) and bad.reason == "BAD_FIELD" and bad.detail.startswith("pages:")

        # real-time charging: the prepaid customer of the charging world pays for it
        world = make_world()
        world.topup("ACME", 10_000_000)
        handled = world.handle(telex("t2"))
        assert (handled.status, handled.amount) == ("rated", Decimal("0.75"))
        assert world.usage.rated["t2"]["kind"] == "telex"
        assert world.balances.account("ACME").balance_micros == 10_000_000 - 750_000

        # billing: the rated line becomes an invoice line of the table's SKU family and unit
        rated_file = tmp_path / "rated.jsonl"
        rated_file.write_text(json.dumps({"status": "rated", **rated.to_record()}) + "\n", encoding="utf-8")
        closed, report = close_cycles([Plan(customer_id="ACME", timezone="UTC")], str(rated_file), "2026-11",
                                      taxes=OfflineTaxEngine(), jobs=1)
        invoice = closed[0].draft
        assert report.billed == 1
        [line] = [line for line in invoice.lines if line.sku.startswith("TELEX")]
        assert (line.sku, line.unit, line.quantity, line.amount) == ("TELEX-OUTBOUND", "page", 3, Decimal("0.75"))
        assert line.description == "Telex pages, outbound"

        # revenue recognition: credited to the account the table names
        [entry] = journal_entries(invoice)
        credits = {journal.account: journal.credit for journal in entry.lines if journal.credit}
        assert credits == {AccountMap().messaging_revenue: Decimal("0.75")}

    # without the entry the kind is unknown again, on both paths
    rejected = rater(PLAN, {}).rate(telex())
    assert isinstance(rejected, RejectedEvent) and rejected.reason == "UNKNOWN_KIND"
    assert "voice, sms, mms or api_query" in rejected.detail
    assert make_world().handle(telex("t3")).reason == "UNKNOWN_KIND"


def test_the_table_lists_each_kind_once_with_its_function_and_topic():
    kinds = [item.kind for item in products.products()]
    assert kinds == ["voice", "sms", "mms", "api_query"]
    assert products.functions() == {"rate_voice": ("usage-voice",), "rate_sms": ("usage-messaging",),
                                    "rate_api": ("usage-api",)}
    for item in products.products():
        assert hasattr(AccountMap(), item.revenue_account), item.kind
        assert (Path(__file__).resolve().parents[2] / "functions" / item.function / "main.py").is_file()


def test_a_kind_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="already in the product table"), registered(products.VOICE):
        pass
