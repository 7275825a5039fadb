"""The BigQuery close's result rows folded into usage (no emulator: the rows as the query returns them)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from warp_billing.adapters.bigquery_close import _usage_from_lines
from warp_billing.billing.close_usage import CloseWindow
from warp_billing.billing.cycles import cycle_for
from warp_billing.billing.destinations import destination_table
from warp_billing.billing.usage_lines import UsageTotals


def row(kind: str, sub: str, destination: str | None, events: int, units: int, amount: str,
        period: str = "2026-10", customer: str = "ACME") -> dict:
    return {"customer_id": customer, "service_period": period, "kind": kind, "sub_kind": sub,
            "destination": destination, "events": events, "billed_units": units, "amount": Decimal(amount)}


@pytest.fixture
def window() -> CloseWindow:
    return CloseWindow("ACME", cycle_for("2026-10", timezone="UTC", anchor_day=1), datetime(2026, 11, 2, tzinfo=UTC))


def test_voice_rows_by_destination_fold_into_one_line_and_the_destination_table(window):
    usage, failures = _usage_from_lines([window], [
        row("voice", "international", "MEXICO", 3, 180, "0.300000"),
        row("voice", "international", "UNITED KINGDOM", 2, 120, "0.100000"),
        row("voice", "interstate", "US", 5, 300, "0.050000"),
        row("voice", "intrastate", "US", 1, 60, "0.010000"),
        row("voice", "interstate", "", 1, 6, "0.000100"),          # a line the deck named no destination for
        row("sms", "outbound", None, 7, 7, "0.070000"),
        row("voice", "interstate", "US", 4, 240, "0.040000", period="2026-09"),   # late usage of September
    ])
    assert failures == {}
    current = usage["ACME"].current
    assert current.groups == {
        ("voice", "international"): UsageTotals(5, 300, Decimal("0.400000")),
        ("voice", "interstate"): UsageTotals(6, 306, Decimal("0.050100")),
        ("voice", "intrastate"): UsageTotals(1, 60, Decimal("0.010000")),
        ("sms", "outbound"): UsageTotals(7, 7, Decimal("0.070000"))}
    assert current.destinations == {
        "MEXICO": UsageTotals(3, 180, Decimal("0.300000")), "UNITED KINGDOM": UsageTotals(2, 120, Decimal("0.100000")),
        "US": UsageTotals(6, 360, Decimal("0.060000")), "": UsageTotals(1, 6, Decimal("0.000100"))}
    # Late usage stays on its own period, out of this cycle's table.
    assert usage["ACME"].prior["2026-09"].groups == {("voice", "interstate"): UsageTotals(4, 240, Decimal("0.040000"))}
    table = destination_table(current.destinations)
    assert [(r["destination"], r["calls"]) for r in table] == [
        ("MEXICO", 3), ("UNITED KINGDOM", 2), ("US", 6), ("(destination not named in the deck)", 1)]


def test_more_than_twenty_destinations_end_in_one_all_other_row(window):
    rows = [row("voice", "international", f"DEST{index:02d}", 1, 60, f"0.{index + 10:02d}0000") for index in range(25)]
    usage, _ = _usage_from_lines([window], rows)
    table = destination_table(usage["ACME"].current.destinations)
    assert len(table) == 21 and table[0]["destination"] == "DEST24"
    assert table[-1]["destination"] == "All other destinations (5)" and table[-1]["calls"] == 5
