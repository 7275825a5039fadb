"""Recurring charges prorated by day (arrears and advance), E911 per active number, USF by quarter."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from tests.unit.billing.billing_builders import plan_from

from warp_billing.billing.cycles import cycle_for, plan_cycle
from warp_billing.billing.errors import ContributionFactorMissing, TaxError
from warp_billing.billing.fees import e911_fee
from warp_billing.billing.recurring import ADVANCE, CURRENT, recurring_lines
from warp_billing.billing.taxes import OfflineTaxEngine, TaxableLine, TaxRequest
from warp_billing.billing.usf import ContributionFactorTable, usf_fee


def charges(*items):
    return plan_from(recurring=list(items)).recurring


def summary(lines):
    return [(line.category, line.service_start, line.service_end, line.active_days, line.period_days, line.amount)
            for line in lines]


DID = {"sku": "DID-LOCAL", "description": "Local DID", "quantity": 250, "unit_price": "1.00"}


def test_a_did_starting_mid_month_is_prorated_by_active_days_in_arrears():
    lines = recurring_lines(charges({**DID, "start": "2026-11-10"}), cycle_for("2026-11"))
    assert summary(lines) == [(CURRENT, date(2026, 11, 10), date(2026, 12, 1), 21, 30, Decimal("175.00"))]
    assert lines[0].description == "Local DID, 2026-11-10 to 2026-11-30 (21/30 days)"
    assert summary(recurring_lines(charges({**DID, "start": "2026-11-10"}),
                                   cycle_for("2026-12")))[0][-1] == Decimal("250.00")
    assert recurring_lines(charges({**DID, "start": "2026-11-10"}), cycle_for("2026-10")) == []


def test_a_did_added_and_removed_in_the_same_month_bills_its_days_only():
    lines = recurring_lines(charges({**DID, "start": "2026-11-10", "end": "2026-11-20"}), cycle_for("2026-11"))
    # 10 days (10th to 19th; the end date is the first day no longer billed): 250 x 10/30 = 83.333... -> 83.33
    assert summary(lines) == [(CURRENT, date(2026, 11, 10), date(2026, 11, 20), 10, 30, Decimal("83.33"))]


def test_february_proration_uses_the_days_of_february():
    item = {"sku": "TF", "quantity": 1, "unit_price": "10.00", "start": "2026-02-15"}
    assert summary(recurring_lines(charges(item), cycle_for("2026-02")))[0][3:] == (14, 28, Decimal("5.00"))
    leap = {**item, "start": "2028-02-15"}
    # 5.1724... rounded once
    assert summary(recurring_lines(charges(leap), cycle_for("2028-02")))[0][3:] == (15, 29, Decimal("5.17"))


def test_in_advance_bills_the_next_cycle_and_the_first_invoice_also_bills_its_own_cycle():
    toll_free = {"sku": "TF-NUMBER", "quantity": 40, "unit_price": "2.50", "start": "2026-10-01", "timing": "advance"}
    october = recurring_lines(charges(toll_free), cycle_for("2026-10"))
    assert summary(october) == [
        (CURRENT, date(2026, 10, 1), date(2026, 11, 1), 31, 31, Decimal("100.00")),
        (ADVANCE, date(2026, 11, 1), date(2026, 12, 1), 30, 30, Decimal("100.00")),
    ]
    november = recurring_lines(charges(toll_free), cycle_for("2026-11"))
    assert summary(november) == [(ADVANCE, date(2026, 12, 1), date(2027, 1, 1), 31, 31, Decimal("100.00"))]
    assert november[0].description.endswith(", in advance")


def test_in_advance_starting_mid_month_bills_the_partial_month_then_the_next_one():
    item = {**DID, "start": "2026-11-10", "timing": "advance"}
    assert recurring_lines(charges(item), cycle_for("2026-10")) == []
    assert summary(recurring_lines(charges(item), cycle_for("2026-11"))) == [
        (CURRENT, date(2026, 11, 10), date(2026, 12, 1), 21, 30, Decimal("175.00")),
        (ADVANCE, date(2026, 12, 1), date(2027, 1, 1), 31, 31, Decimal("250.00")),
    ]


def test_in_advance_with_a_known_end_bills_the_next_cycle_up_to_the_end():
    item = {"sku": "TF", "quantity": 40, "unit_price": "2.50", "start": "2026-10-01", "end": "2026-12-16",
            "timing": "advance"}
    assert summary(recurring_lines(charges(item), cycle_for("2026-11"))) == [
        (ADVANCE, date(2026, 12, 1), date(2026, 12, 16), 15, 31, Decimal("48.39"))]   # 100 x 15/31
    assert recurring_lines(charges(item), cycle_for("2026-12")) == []


def test_every_active_day_is_billed_exactly_once_across_consecutive_invoices():
    item = {**DID, "quantity": 1, "start": "2026-10-17", "end": "2027-02-03", "timing": "advance"}
    billed = []
    for period in ("2026-09", "2026-10", "2026-11", "2026-12", "2027-01", "2027-02", "2027-03"):
        for line in recurring_lines(charges(item), cycle_for(period)):
            billed.extend(date.fromordinal(day) for day in range(line.service_start.toordinal(),
                                                                 line.service_end.toordinal()))
    assert sorted(billed) == [date.fromordinal(day) for day in range(date(2026, 10, 17).toordinal(), date(2027, 2,
                                                                                                          3).toordinal())]


def test_an_anchored_cycle_prorates_over_its_own_days():
    item = {**DID, "start": "2026-11-01"}
    anchored = plan_cycle(plan_from(terms={"anchor_day": 15}), "2026-10")      # 15 Oct to 14 Nov: 31 days
    assert summary(recurring_lines(charges(item), anchored)) == [
        (CURRENT, date(2026, 11, 1), date(2026, 11, 15), 14, 31, Decimal("112.90"))]   # 250 x 14/31 = 112.903...


def test_e911_counts_each_number_active_during_the_cycle_once():
    plan = plan_from(
        recurring=[{**DID, "start": "2026-11-10", "end": "2026-11-20"},                       # in and out: counts
                   {**DID, "quantity": 10, "start": "2026-06-01", "timing": "advance"},
                   {**DID, "quantity": 99, "start": "2026-12-01"},                               # not yet active
                   {"sku": "PORT", "quantity": 5, "unit_price": "3.00", "start": "2026-01-01", "e911": False}],
        fees={"e911_per_did": "0.25"},
    )
    fee = e911_fee(plan, cycle_for("2026-11"))
    assert (fee.code, fee.base, fee.rate, fee.amount) == ("E911", Decimal(260), Decimal("0.25"), Decimal("65.00"))
    assert fee.to_record()["base"] == "260"


def test_no_e911_fee_without_a_rate_or_without_numbers():
    assert e911_fee(plan_from(recurring=[{**DID, "start": "2026-11-10"}]), cycle_for("2026-11")) is None
    assert e911_fee(plan_from(fees={"e911_per_did": "0.25"}), cycle_for("2026-11")) is None


@pytest.mark.parametrize(
    ("year", "quarter", "percent"),
    [(2024, 1, "34.6"), (2024, 4, "35.8"), (2025, 3, "36.0"), (2025, 4, "38.1"), (2026, 1, "37.6"), (2026, 2, "37.0")],
)
def test_the_embedded_table_holds_the_published_factors(year, quarter, percent):
    assert ContributionFactorTable.embedded().factor_pct(year, quarter) == Decimal(percent)


@pytest.mark.parametrize(("year", "quarter"), [(2026, 3), (2026, 4), (2023, 4), (2027, 1)])
def test_a_quarter_without_a_published_factor_is_an_error_naming_it(year, quarter):
    with pytest.raises(ContributionFactorMissing, match=f"{year} Q{quarter}"):
        ContributionFactorTable.embedded().factor_pct(year, quarter)


def request(period, amounts, *, applies=True, anchor_day=1):
    cycle = cycle_for(period, anchor_day=anchor_day)
    lines = tuple(TaxableLine(sku, Decimal(amount), 0, "minute") for sku, amount in amounts.items())
    return TaxRequest("ACME", f"ACME-{period}", cycle, cycle.issue_date, lines, applies)


USAGE = {"VOICE-INTERSTATE": "1000.00", "VOICE-INTERNATIONAL": "500.00", "VOICE-INTRASTATE": "700.00",
         "VOICE-INDETERMINATE": "300.00", "VOICE-TIER-ADJ": "-200.00", "SMS-OUTBOUND": "50.00"}


def test_usf_applies_the_factor_of_the_quarter_to_interstate_and_international_lines():
    march, = OfflineTaxEngine().taxes(request("2026-03", USAGE))
    april, = OfflineTaxEngine().taxes(request("2026-04", USAGE))
    assert (march.code, march.base, march.rate, march.amount) == ("USF", Decimal("1500.00"), Decimal("0.376"),
                                                                  Decimal("564.00"))
    assert (april.base, april.rate, april.amount) == (Decimal("1500.00"), Decimal("0.370"), Decimal("555.00"))
    assert april.to_record()["rate"] == "0.37" and april.to_record()["rate_percent"] == "37.0"


def test_an_anchored_cycle_uses_the_quarter_it_starts_in():
    fee, = OfflineTaxEngine().taxes(request("2026-03", USAGE, anchor_day=15))    # 15 Mar to 14 Apr
    assert fee.rate == Decimal("0.376")


def test_usf_rounds_once_on_the_fee():
    fee, = OfflineTaxEngine().taxes(request("2024-12", {"VOICE-INTERSTATE": "10.01"}))
    assert fee.amount == Decimal("3.58")       # 10.01 x 0.358 = 3.58358


def test_carriers_carrier_customers_pay_no_usf():
    assert OfflineTaxEngine().taxes(request("2026-11", USAGE, applies=False)) == []


def test_usf_in_a_quarter_without_a_factor_is_an_error_not_a_guess():
    with pytest.raises(ContributionFactorMissing, match="2026 Q4"):
        OfflineTaxEngine().taxes(request("2026-11", USAGE))


def test_a_table_file_can_add_a_newly_published_quarter(tmp_path):
    path = tmp_path / "factors.csv"
    path.write_text("year,quarter,factor_pct\n2026,3,36.9\n2026,4,n/a\n", encoding="utf-8")
    table = ContributionFactorTable.from_csv(path)
    assert usf_fee(table, (2026, 3), {"VOICE-INTERSTATE": Decimal("100.00")}).amount == Decimal("36.90")
    with pytest.raises(ContributionFactorMissing, match="2026 Q4"):
        table.factor_pct(2026, 4)


@pytest.mark.parametrize(
    ("rows", "message"),
    [("2026,5,30.0", "quarter 5"), ("2026,1,0.376.1", "not a decimal"), ("2026,1,37.6\n2026,1,37.6", "appears twice"),
     ("2026,1,137", "percentage below 100"), ("x,1,37.6", "whole numbers")],
)
def test_a_malformed_table_is_refused_with_the_row(tmp_path, rows, message):
    path = tmp_path / "factors.csv"
    path.write_text("year,quarter,factor_pct\n" + rows + "\n", encoding="utf-8")
    with pytest.raises(TaxError, match=message):
        ContributionFactorTable.from_csv(path)
