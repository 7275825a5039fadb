"""The pure reconciliation core: variance arithmetic by hand, the dispute rule, hints, the mapping."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from warp_billing.reconciliation.analysis import analyse, parse_invoice_summary
from warp_billing.reconciliation.hints import find_hints, their_billed
from warp_billing.reconciliation.mapping import MappingError, load_mapping, offset_minutes
from warp_billing.reconciliation.outcome import LoadReport, MatchOutcome
from warp_billing.reconciliation.variance import Figures, InvoiceFigures, decide, variance, variance_pct

MAPPING = """vendor_id: V1
columns: {start_time: S, calling: A, called: B, duration: D, cost: C, rate: R}
"""


def test_variance_of_a_small_case_worked_by_hand():
    # ours: 3 calls, 60 + 90 + 30 s = 3 minutes, cost 0.010 + 0.015 + 0.005 = 0.030
    # theirs: the same 3 calls plus one billed twice (30 s, 0.005) and the 90 s call as 93 s at 0.0155
    # minutes theirs = (60 + 93 + 30 + 30) / 60 = 3.55 -> +18.33 %; cost theirs 0.0355 -> +18.33 %
    figures = Figures()
    figures.add("exact", 2, 90_000, 90_000, Decimal("0.015"), Decimal("0.015"))
    figures.add("mismatch", 1, 90_000, 93_000, Decimal("0.015"), Decimal("0.0155"))
    figures.add("vendor_duplicate", 1, 0, 30_000, Decimal(0), Decimal("0.005"))
    result = variance("interstate", figures, InvoiceFigures(Decimal("3.1"), Decimal("0.031")))
    assert figures.our_minutes == Decimal(3) and figures.their_minutes == Decimal("3.55")
    assert result.minutes_pct == Decimal("18.33") and result.cost_pct == Decimal("18.33")
    assert result.invoice_minutes_pct == Decimal("3.33") and result.invoice_cost_pct == Decimal("3.33")
    record = result.to_record()
    assert record["minutes_ours"] == "3.0000" and record["minutes_theirs"] == "3.5500"
    assert record["counts"] == {"exact": 2, "mismatch": 1, "vendor_duplicate": 1}
    decision = decide(result, Decimal("5"))
    assert decision.dispute and len(decision.reasons) == 2
    assert "minutes (their CDRs) variance 18.33% exceeds 5%" in decision.reason
    assert not decide(result, Decimal("20")).dispute


def test_exactly_at_the_threshold_is_not_a_dispute_and_nothing_on_our_side_is_unbounded():
    at = Figures(our_ms=6_000_000, their_ms=6_300_000, our_cost=Decimal("1.00"), their_cost=Decimal("1.05"))
    assert not decide(variance("x", at), Decimal("5")).dispute
    above = Figures(our_ms=6_000_000, their_ms=6_300_001, our_cost=Decimal("1.00"), their_cost=Decimal("1.05"))
    assert decide(variance("x", above), Decimal("5")).dispute
    nothing = variance("x", Figures(their_ms=60_000, their_cost=Decimal("0.01")))
    assert nothing.minutes_pct is None and decide(nothing, Decimal("5")).dispute
    assert variance_pct(Decimal(0), Decimal(0)) == Decimal("0.00")


@given(st.integers(1, 10**12), st.integers(0, 10**12))
@example(200, 201)  # 0.5 % exactly: rounds half up
@example(8, 9)  # 12.5 %
@example(3, 2)  # -33.333.. %
def test_variance_pct_matches_an_independent_fraction(ours, theirs):
    from fractions import Fraction

    exact = Fraction(theirs - ours, ours) * 100
    scaled = exact * 100
    whole, rest = divmod(abs(scaled.numerator), scaled.denominator)
    if 2 * rest >= scaled.denominator:
        whole += 1
    expected = Decimal(whole if scaled >= 0 else -whole) / 100
    assert variance_pct(Decimal(ours), Decimal(theirs)) == expected.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def item(
    klass="mismatch",
    event="E1",
    vendor="f:2",
    dest="interstate",
    ours_ms=61_000,
    theirs_ms=61_000,
    ours_billed=66,
    rate="0.006",
    their_rate=None,
    their_cost=None,
    start=1_780_300_000_000,
    **extra,
):
    our_cost = (Decimal(rate) * ours_billed / 60).quantize(Decimal("0.000001"))
    return {
        "class": klass,
        "event_id": event,
        "vendor_record": vendor,
        "dest": dest,
        "our_duration_ms": ours_ms,
        "their_duration_ms": theirs_ms,
        "our_billed_s": ours_billed,
        "their_billed_s": None,
        "our_rate": rate,
        "their_rate": their_rate or rate,
        "our_cost": our_cost,
        "their_cost": their_cost,
        "our_start_ms": start,
        "called": "12125550000",
        "our_jurisdiction": dest,
        **extra,
    }


def test_their_billed_seconds_come_from_cost_and_rate_less_the_connect_fee():
    row = item(their_cost=Decimal("0.022"), ours_billed=66, rate="0.006")  # 0.0066 + fee 0.010
    row["our_cost"] = Decimal("0.0166")
    assert their_billed(row) == 120


def test_a_60_60_vendor_is_named_against_the_decks_6_6():
    items = [
        item(
            event=f"E{n}",
            vendor=f"f:{n}",
            ours_ms=d * 1000,
            theirs_ms=d * 1000,
            ours_billed=b,
            their_cost=(Decimal("0.006") * t / 60).quantize(Decimal("0.000001")),
        )
        for n, (d, b, t) in enumerate([(61, 66, 120), (125, 126, 180), (7, 12, 60)])
    ]
    result = find_hints(items)
    assert [h.code for h in result.hints] == ["increment:60/60"]
    assert "6/6" in result.hints[0].text
    assert set(result.by_item.values()) == {"increment:60/60"}


def test_a_rate_change_needs_a_first_day_after_the_start_and_most_calls_after_it():
    day = 86_400_000
    before = [item(event=f"B{n}", vendor=f"b:{n}", start=1_780_272_000_000 + n * day) for n in range(3)]
    after = [
        item(
            event=f"A{n}",
            vendor=f"a:{n}",
            start=1_780_272_000_000 + (14 + n) * day,
            their_rate="0.0075",
            their_cost=Decimal("0.00825"),
        )
        for n in range(4)
    ]
    per_day = {("interstate", f"2026-06-{d:02d}"): 1 for d in (1, 2, 3, 15, 16, 17, 18)}
    result = find_hints(after, paired_per_day=per_day)
    assert [h.code for h in result.hints] == ["rate_change:2026-06-15"]
    assert len(result.by_item) == 4 and not any(k[0].startswith("B") for k in result.by_item)
    # differing from the first day on is a different rate, not a change
    assert (
        find_hints(after, paired_per_day={("interstate", f"2026-06-{d:02d}"): 1 for d in (15, 16, 17, 18)}).hints == []
    )
    assert before  # exact calls never reach the hints


def test_their_rate_equal_to_our_other_jurisdictions_rate_is_a_jurisdiction_disagreement():
    rows = [item(event=f"E{n}", vendor=f"f:{n}", their_rate="0.009", their_cost=Decimal("0.0099")) for n in range(2)]
    result = find_hints(
        rows, rates_for=lambda called, ms: {"interstate": Decimal("0.006"), "intrastate": Decimal("0.009")}
    )
    assert [h.code for h in result.hints] == ["jurisdiction_rate:intrastate"]


def test_a_constant_offset_labels_both_unpaired_sides_once_each():
    pairs = [
        {"vendor_record": f"f:{n}", "event_id": f"E{n}", "dest": "interstate", "offset_ms": 3_600_000 + n, "paired": 0}
        for n in range(3)
    ]
    pairs.append({"vendor_record": "f:0", "event_id": "E9", "dest": "interstate", "offset_ms": 3_600_000, "paired": 0})
    result = find_hints([], offset_pairs=pairs)
    assert [h.code for h in result.hints] == ["time_offset:+3600s"]
    assert (None, "f:0") in result.by_item and ("E9", None) not in result.by_item
    assert find_hints([], offset_pairs=pairs[:2]).hints == []  # two pairs are not a pattern


def test_analyse_puts_disputed_records_with_their_hints_in_the_package():
    outcome = MatchOutcome(
        aggregates=[
            ("interstate", "exact", 10, 600_000, 600_000, Decimal("0.06"), Decimal("0.06")),
            ("interstate", "vendor_only", 1, 0, 60_000, Decimal(0), Decimal("0.006")),
        ],
        exceptions=[item(klass="vendor_only", event=None, their_cost=Decimal("0.006"))],
        offset_pairs=[],
        paired_per_day={},
    )
    recon = analyse(load_mapping(MAPPING), "2026-06", LoadReport(11, {"BAD_COST": 1}), 10, outcome)
    summary = recon.summary()
    assert summary["dispute"] is True and summary["counts"]["vendor_only"] == 1
    assert summary["vendor_rows"] == {"read": 12, "loaded": 11, "rejected": {"BAD_COST": 1}}
    assert [d["class"] for d in recon.disputed] == ["vendor_only"]


def test_mapping_errors_name_the_key():
    with pytest.raises(MappingError, match="tolerance: unknown key"):
        load_mapping(MAPPING + "tolerance: {start_s: 5}\n", "V1.yaml")
    with pytest.raises(MappingError, match="columns.called: Field required"):
        load_mapping("vendor_id: V1\ncolumns: {start_time: S, calling: A, duration: D, cost: C}\n")
    with pytest.raises(MappingError, match="unknown time zone"):
        load_mapping(MAPPING + "start_time: {timezone: Mars/Olympus}\n")
    with pytest.raises(MappingError, match="float"):
        load_mapping(MAPPING + "tolerances: {cost: 0.0001}\n")
    mapping = load_mapping(MAPPING + "start_time: {timezone: '-05:30'}\ntolerances: {cost: '0.001'}\n")
    assert mapping.match_tolerances.cost == Decimal("0.001")
    assert offset_minutes("-05:30") == -330 and offset_minutes("UTC") == 0 and offset_minutes("Europe/Paris") is None
    assert mapping.delimiter_for("a.TSV.gz") == "\t" and mapping.delimiter_for("a.csv") == ","


def test_invoice_summary_maps_their_names_and_refuses_bad_amounts():
    mapping = load_mapping(MAPPING + "invoice: {destinations: {'USA INTER': interstate}}\n")
    parsed = parse_invoice_summary(
        "destination,minutes,amount\nUSA INTER,10,0.06\nUSA INTER,5,0.03\nGB,1,0.1\n", mapping.invoice
    )
    assert parsed["interstate"] == InvoiceFigures(Decimal(15), Decimal("0.09")) and "GB" in parsed
    with pytest.raises(ValueError, match="row 2"):
        parse_invoice_summary("destination,minutes,amount\nX,ten,1\n", mapping.invoice)
