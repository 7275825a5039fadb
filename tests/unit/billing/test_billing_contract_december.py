"""contracts.md December 2026 (sections 3 and 6): tiers.applies_to, commitment start/end, a tier
adjustment that makes the printed lines add up, and a rebate on the voice after that adjustment.

Each of the first tests pins a defect of the code this started from (named in its docstring);
the boundaries are explicit examples: a tier threshold hit exactly, a fractional-minute tier,
an exact half cent at every rounding point, a commitment starting mid-month.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from tests.unit.billing.billing_builders import lines_of, plan_from, rated

from warp_billing.billing.cycles import plan_cycle
from warp_billing.billing.invoice import build_invoice
from warp_billing.billing.taxes import OfflineTaxEngine
from warp_billing.billing.usage_lines import UsageAggregator, UsageWindow
from warp_billing.plan import PlanError

JURISDICTIONS = ("interstate", "intrastate", "indeterminate")


def close(plan, records, period="2026-06"):
    cycle = plan_cycle(plan, period)
    aggregator = UsageAggregator({plan.customer_id: UsageWindow.for_cycle(plan.customer_id, cycle)})
    aggregator.consume(lines_of(*records))
    return build_invoice(plan, cycle, aggregator.result()[plan.customer_id], OfflineTaxEngine())


def june(kind="voice", **fields):
    return rated(kind, **{"start": "2026-06-15T12:00:00Z", **fields})


def lines(invoice) -> dict[str, Decimal]:
    return {line.sku: line.amount for line in invoice.lines}


def retrospective(rate="0.10", **extra):
    return {"mode": "retrospective", "bands": [{"up_to": 1000, "rate": rate}, {"rate": "0.05"}], **extra}


def cents(value: Fraction) -> Decimal:
    """Independent rounding: a Fraction to cents, half up, through exact integer arithmetic."""
    scaled = value * 100
    whole, rest = divmod(abs(scaled.numerator), scaled.denominator)
    if 2 * rest >= scaled.denominator:
        whole += 1
    return Decimal(whole if scaled >= 0 else -whole) / 100


# -- tiers: what they apply to, and the adjustment that makes the page add up -----------------------


def test_tiers_do_not_reprice_international_minutes_by_default():
    """Defect: tiers repriced the international line (and counted its minutes toward the bands)."""
    plan = plan_from(voice={"deck": "x.csv", "tiers": retrospective()})
    invoice = close(
        plan,
        [
            june(units=60_000, amount="5.000000"),  # 1,000 domestic minutes
            june(units=60_000, amount="300.000000", jurisdiction="international"),
        ],
    )
    adjustment = next(line for line in invoice.lines if line.sku == "VOICE-TIER-ADJ")
    assert adjustment.quantity == 1000  # the international minutes are not in the bands
    assert lines(invoice)["VOICE-TIER-ADJ"] == Decimal("95.00")  # 1,000 x 0.10 - 5.00
    assert lines(invoice)["VOICE-INTERNATIONAL"] == Decimal("300.00")


def test_the_tier_adjustment_nets_against_the_lines_as_printed():
    """Defect: the adjustment was tiered price minus the EXACT per-event total, rounded once, so the
    printed lines (each rounded up from a half cent) added up to 0.02 more than the tiered price."""
    plan = plan_from(voice={"deck": "x.csv", "tiers": retrospective()})
    records = [june(units=60, amount="0.005000", jurisdiction=j, event_id=j) for j in JURISDICTIONS]
    invoice = close(plan, records)
    printed = lines(invoice)
    assert [printed[f"VOICE-{j.upper()}"] for j in JURISDICTIONS] == [Decimal("0.01")] * 3  # 0.005 -> 0.01 each
    # 3 minutes x 0.10 = 0.30: the adjustment is 0.30 - 0.03 = 0.27 (the old one: 0.30 - 0.015 = 0.285 -> 0.29)
    assert printed["VOICE-TIER-ADJ"] == Decimal("0.27")
    assert sum(printed.values()) == Decimal("0.30") == invoice.subtotal
    record = invoice.to_record()
    adjustment = record["lines"][3]
    assert (adjustment["tiered_price"], adjustment["lines_as_printed"]) == ("0.30", "0.03")


def test_applies_to_can_name_the_international_line():
    plan = plan_from(voice={"deck": "x.csv", "tiers": retrospective(applies_to=["VOICE-INTERNATIONAL"])})
    invoice = close(
        plan,
        [june(units=60_000, amount="5.000000"), june(units=60_000, amount="300.000000", jurisdiction="international")],
    )
    assert lines(invoice)["VOICE-TIER-ADJ"] == Decimal("-200.00")  # 1,000 x 0.10 - 300.00


def test_a_tier_threshold_hit_exactly_stays_in_the_lower_band():
    plan = plan_from(voice={"deck": "x.csv", "tiers": retrospective()})
    at = close(plan, [june(units=60_000, amount="0.000000")])  # exactly 1,000 minutes
    over = close(plan, [june(units=60_006, amount="0.000000")])  # 1,000.1 minutes
    assert lines(at)["VOICE-TIER-ADJ"] == Decimal("100.00")  # 1,000 x 0.10
    assert lines(over)["VOICE-TIER-ADJ"] == Decimal("50.01")  # 1,000.1 x 0.05 = 50.005 -> 50.01 (half up)


def test_a_fractional_minute_is_priced_exactly_then_rounded_once():
    plan = plan_from(voice={"deck": "x.csv", "tiers": retrospective(rate="0.03")})
    invoice = close(plan, [june(units=7, amount="0.000000")])  # 7 s = 0.11666... minutes
    assert lines(invoice)["VOICE-TIER-ADJ"] == Decimal("0.00")  # 0.0035 -> 0.00 (not a half cent)
    invoice = close(
        plan_from(voice={"deck": "x.csv", "tiers": retrospective(rate="0.09")}), [june(units=20, amount="0")]
    )
    assert lines(invoice)["VOICE-TIER-ADJ"] == Decimal("0.03")  # 1/3 minute x 0.09 = 0.03 exactly


@pytest.mark.parametrize("bad", [["VOICE-FOO"], ["SMS-OUTBOUND"], ["VOICE-INTERSTATE", "VOICE-INTERSTATE"], []])
def test_applies_to_names_voice_lines_only(bad):
    with pytest.raises(PlanError, match="applies_to"):
        plan_from(voice={"deck": "x.csv", "tiers": retrospective(applies_to=bad)})


amounts = st.integers(0, 2_000_000).map(lambda micros: f"{Decimal(micros) / 1_000_000:.6f}")


@given(
    st.lists(
        st.tuples(st.sampled_from(JURISDICTIONS + ("international",)), st.integers(0, 200_000), amounts),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from(["graduated", "retrospective"]),
)
@example([("interstate", 60, "0.005000"), ("intrastate", 60, "0.005000")], "retrospective")  # half cents on lines
@example([("interstate", 60_000, "0.000000")], "retrospective")  # threshold exactly
@example([("interstate", 7, "0.000001")], "graduated")  # fractional minute
@example([("interstate", 3, "0.000000")], "retrospective")  # 0.05 min x 0.10 = 0.005: the adjustment's half cent
def test_the_printed_voice_lines_always_add_up_to_the_tiered_price(records, mode):
    tiers = {
        "mode": mode,
        "bands": [{"up_to": 1000, "rate": "0.10"}, {"up_to": 5000, "rate": "0.04"}, {"rate": "0.01"}],
    }
    plan = plan_from(voice={"deck": "x.csv", "tiers": tiers})
    invoice = close(
        plan, [june(units=u, amount=a, jurisdiction=j, event_id=f"e{i}") for i, (j, u, a) in enumerate(records)]
    )
    printed = lines(invoice)
    domestic_seconds = sum(u for j, u, _ in records if j != "international")
    if not domestic_seconds and all(j == "international" for j, _, _ in records):
        assert "VOICE-TIER-ADJ" not in printed
        return
    # independent: the tiered price of the domestic minutes, from the bands by hand
    minutes = Fraction(domestic_seconds, 60)
    if mode == "graduated":
        price = (
            min(minutes, 1000) * Fraction("0.10")
            + max(min(minutes, 5000) - 1000, 0) * Fraction("0.04")
            + max(minutes - 5000, 0) * Fraction("0.01")
        )
    else:
        price = minutes * (
            Fraction("0.10") if minutes <= 1000 else Fraction("0.04") if minutes <= 5000 else Fraction("0.01")
        )
    domestic_printed = sum(
        (
            amount
            for sku, amount in printed.items()
            if sku in ("VOICE-INTERSTATE", "VOICE-INTRASTATE", "VOICE-INDETERMINATE")
        ),
        Decimal(0),
    )
    assert domestic_printed + printed["VOICE-TIER-ADJ"] == cents(price)
    assert invoice.subtotal == sum(printed.values())


def test_independent_rounding_helper_rounds_half_up():
    assert cents(Fraction(5, 1000)) == Decimal("0.01") and cents(Fraction(-5, 1000)) == Decimal("-0.01")
    assert cents(Fraction(4999, 1_000_000)) == Decimal("0.00")
    assert Decimal("0.005").quantize(Decimal("0.01"), ROUND_HALF_UP) == cents(Fraction(1, 200))


# -- commitments: start and end, prorated by day -----------------------------------------------------


def commitment(**fields):
    return {"minutes": 1_000_000, "shortfall_rate": "0.004", "rebate_above_pct": "10", "start": "2026-06-01", **fields}


def test_no_shortfall_before_the_commitment_starts():
    """Defect: a commitment billed its full $4,000 shortfall for 2001-01, 25 years before the contract."""
    plan = plan_from(voice={"deck": "x.csv", "commitment": commitment()})
    assert "VOICE-COMMIT-SHORTFALL" not in lines(close(plan, [], "2001-01"))
    assert "VOICE-COMMIT-SHORTFALL" not in lines(close(plan, [], "2026-05"))
    assert lines(close(plan, [], "2026-06"))["VOICE-COMMIT-SHORTFALL"] == Decimal("4000.00")


def test_a_commitment_starting_mid_month_is_prorated_by_day():
    plan = plan_from(voice={"deck": "x.csv", "commitment": commitment(start="2026-06-16")})  # 15 of June's 30 days
    invoice = close(plan, [june(units=6_000_000, amount="0")])  # 100,000 minutes
    line = next(item for item in invoice.lines if item.sku == "VOICE-COMMIT-SHORTFALL")
    assert line.quantity == 400_000  # 500,000 committed - 100,000 used
    assert line.amount == Decimal("1600.00")
    assert "15/30 days = 500000.00 minutes" in line.description


def test_a_commitment_ending_mid_month_is_prorated_and_stops_after_its_end():
    plan = plan_from(voice={"deck": "x.csv", "commitment": commitment(end="2026-06-11")})  # 10 of 30 days
    # 333,333.33... minutes x 0.004 = 1,333.3333... -> 1,333.33
    assert lines(close(plan, []))["VOICE-COMMIT-SHORTFALL"] == Decimal("1333.33")
    assert "VOICE-COMMIT-SHORTFALL" not in lines(close(plan, [], "2026-07"))


def test_a_half_cent_shortfall_rounds_up_once():
    plan = plan_from(voice={"deck": "x.csv", "commitment": commitment(minutes=1000, shortfall_rate="0.00001")})
    # 500 unmet minutes x 0.00001 = 0.005 -> 0.01
    assert lines(close(plan, [june(units=30_000, amount="0")]))["VOICE-COMMIT-SHORTFALL"] == Decimal("0.01")


def test_the_rebate_is_a_percentage_of_voice_after_the_tier_adjustment_as_printed():
    plan = plan_from(
        voice={"deck": "x.csv", "tiers": retrospective(), "commitment": commitment(minutes=1000, rebate_above_pct="10")}
    )
    invoice = close(
        plan,
        [
            june(units=120_000, amount="8.000000"),  # 2,000 minutes
            june(units=60, amount="1.050000", jurisdiction="international"),
        ],
    )
    printed = lines(invoice)
    # domestic 2,000 minutes reach band 2: 2,000 x 0.05 = 100.00 (8.00 printed + 92.00); plus international 1.05
    assert printed["VOICE-TIER-ADJ"] == Decimal("92.00")
    assert printed["VOICE-COMMIT-REBATE"] == Decimal("-10.11")  # 10% of 101.05 = 10.105 -> 10.11 (half up)


def test_a_commitment_needs_its_start_date():
    with pytest.raises(PlanError, match="commitment.start is required"):
        plan_from(voice={"deck": "x.csv", "commitment": {"minutes": 10, "shortfall_rate": "0.004"}})
    with pytest.raises(PlanError, match="must be after its start"):
        plan_from(voice={"deck": "x.csv", "commitment": commitment(end="2026-06-01")})
