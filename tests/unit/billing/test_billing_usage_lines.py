"""Usage aggregation: rated lines into exact sums per product, rounded once per invoice line."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import orjson
import pytest
from tests.unit.billing.billing_builders import lines_of, rated

from warp_billing.billing.cycles import cycle_for
from warp_billing.billing.errors import RatedFileError, RatedLineError
from warp_billing.billing.rated_file import scan_rated_file
from warp_billing.billing.usage_lines import UsageAggregator, UsageWindow, usage_line

NOVEMBER = cycle_for("2026-11", timezone="America/New_York")


def aggregate(*records, customers=("ACME",)):
    aggregator = UsageAggregator({c: UsageWindow.for_cycle(c, NOVEMBER) for c in customers})
    aggregator.consume(lines_of(*records))
    return aggregator.result(), aggregator.report


def test_amounts_are_summed_exactly_and_rounded_once_per_line():
    usage, _ = aggregate(rated(amount="0.002500"), rated(amount="0.002500"))
    totals = usage["ACME"].groups[("voice", "interstate")]
    assert totals.amount == Decimal("0.005000")
    # Rounded once: 0.005 -> 0.01 half up (rounding each event first would give 0.00).
    assert usage_line("voice", "interstate", totals).amount == Decimal("0.01")


def test_voice_quantity_is_billed_seconds_over_sixty_in_minutes():
    usage, _ = aggregate(rated(units=66, amount="0.006710"), rated(units=7, amount="0.000700"))
    line = usage_line("voice", "interstate", usage["ACME"].groups[("voice", "interstate")])
    assert (line.sku, line.unit, line.quantity, line.billed_seconds, line.events) == (
        "VOICE-INTERSTATE", "minute", Fraction(73, 60), 73, 2)


def test_groups_by_product_and_jurisdiction_with_the_contract_skus():
    usage, _ = aggregate(
        rated(jurisdiction="intrastate"), rated(jurisdiction="indeterminate"), rated(jurisdiction="international"),
        rated("sms", units=3, amount="0.012000"), rated("sms", units=1, amount="0.001000", direction="inbound"),
        rated("mms", units=1, amount="0.007000"), rated("mms", units=1, amount="0.001000", direction="inbound"),
        rated("api_query", units=25, amount="0.025000"), rated("api_query", units=1, amount="0.004000",
                                                               query_type="cnam"),
    )
    skus = {key: usage_line(*key, totals).sku for key, totals in usage["ACME"].groups.items()}
    assert sorted(skus.values()) == sorted([
        "VOICE-INTRASTATE", "VOICE-INDETERMINATE", "VOICE-INTERNATIONAL", "SMS-OUTBOUND", "SMS-INBOUND",
        "MMS-OUTBOUND", "MMS-INBOUND", "API-LRN", "API-CNAM"])
    sms = usage_line("sms", "outbound", usage["ACME"].groups[("sms", "outbound")])
    assert (sms.quantity, sms.unit, sms.amount) == (3, "message", Decimal("0.01"))
    lrn = usage_line("api_query", "lrn", usage["ACME"].groups[("api_query", "lrn")])
    assert (lrn.quantity, lrn.unit, lrn.amount) == (25, "query", Decimal("0.03"))


def test_rejected_lines_other_customers_and_other_periods_are_counted_not_billed():
    usage, report = aggregate(
        rated(amount="1.000000"),
        rated(status="rejected"),
        rated(status="rejected", customer=None),
        rated(amount="5.000000", customer="BETA"),
        rated(amount="7.000000", start="2026-11-01T03:59:59Z"),   # 31 Oct in New York
        rated(amount="9.000000", start="2026-12-01T05:00:00Z"),   # 1 Dec in New York
    )
    acme = usage["ACME"]
    assert acme.groups[("voice", "interstate")].amount == Decimal("1.000000")
    assert (acme.events, acme.rejected, acme.outside_period) == (1, 1, 2)
    assert report.to_dict() == {"lines": 6, "billed": 1, "rejected": 2, "other_customers": 1,
                                "outside_period": 2, "blank": 0, "undated": 0, "duplicates": 0, "replaced": 0,
                                "other_by_customer": {"BETA": 1}, "warnings": []}


def test_a_customer_without_usage_has_no_groups():
    usage, _ = aggregate(rated(customer="BETA"))
    assert usage["ACME"].groups == {} and usage["ACME"].events == 0


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (rated(amount=0.0061), "amount a decimal string"),                 # a JSON float is refused
        (rated(units="60"), "billed_units must be an integer"),
        (rated(amount="abc"), "is not a decimal number"),
        (rated(kind="fax"), "kind 'fax' is not billable"),
        (rated(jurisdiction=None), "jurisdiction None"),
        (rated("sms", direction="sideways"), "direction 'sideways'"),
        (rated(status="pending"), "status 'pending'"),
        ({"status": "rated", "customer_id": "ACME"}, "missing field 'kind'"),
        (rated("api_query", query_type=None), "api_query line without a query_type"),
        (rated(start="yesterday"), "start_time"),
    ],
)
def test_a_line_that_is_not_a_rated_record_is_an_error_naming_it(record, message):
    aggregator = UsageAggregator({"ACME": UsageWindow.for_cycle("ACME", NOVEMBER)})
    with pytest.raises(RatedLineError, match=message) as caught:
        aggregator.consume([orjson.dumps(rated()), orjson.dumps(record)])
    assert caught.value.line == 2


def test_blank_lines_are_skipped_and_broken_json_is_an_error():
    aggregator = UsageAggregator({"ACME": UsageWindow.for_cycle("ACME", NOVEMBER)})
    aggregator.consume([b"", orjson.dumps(rated())])
    assert aggregator.report.blank == 1
    with pytest.raises(RatedLineError, match="line 1: not valid JSON"):
        aggregator.consume([b'{"status": "rated"'])


def test_a_file_scanned_by_several_workers_gives_the_same_sums(rated_file):
    records = [rated(event_id=f"e{n}", units=6 * (n % 50), amount=f"0.{n % 1000:06d}",
                     jurisdiction=("interstate", "intrastate")[n % 2], customer=("ACME", "BETA", "GAMMA")[n % 3])
               for n in range(3000)]
    path = rated_file(*records)
    windows = {c: UsageWindow.for_cycle(c, NOVEMBER) for c in ("ACME", "BETA")}
    single = scan_rated_file(path, windows, jobs=1)
    split = scan_rated_file(path, windows, jobs=3)
    assert split.usage == single.usage
    assert split.report.to_dict() == single.report.to_dict()
    assert single.report.lines == 3000 and single.report.other_customers == 1000
    expected = sum(Decimal(r["amount"]) for r in records
                   if r["customer_id"] == "ACME" and r["jurisdiction"] == "interstate")
    assert single.usage["ACME"].groups[("voice", "interstate")].amount == expected


def test_a_bad_line_found_by_a_worker_is_named_by_its_line_number_in_the_file(rated_file):
    records = [rated(event_id=f"e{n}") for n in range(2000)]
    records[1733] = rated(amount=1.5)
    path = rated_file(*records)
    with pytest.raises(RatedFileError, match="line 1734: billed_units must be an integer and amount a decimal string"):
        scan_rated_file(path, {"ACME": UsageWindow.for_cycle("ACME", NOVEMBER)}, jobs=4)


def test_a_missing_rated_file_is_an_error(tmp_path):
    with pytest.raises(RatedFileError, match="cannot read rated file"):
        scan_rated_file(str(tmp_path / "absent.jsonl"), {}, jobs=1)


def test_lines_with_only_the_contract_fields_are_billed_in_the_period_being_closed():
    # contracts.md section 5 lists no start_time or direction: such lines count as the period's usage.
    bare = {"event_id": "x", "status": "rated", "kind": "sms", "customer_id": "ACME", "jurisdiction": None,
            "matched_prefix": "1", "rate": "0.004", "billed_units": 2, "amount": "0.008000", "vendor_cost": None,
            "margin_pct": None, "low_margin": False}
    usage, report = aggregate(bare, {**bare, "start_time": None})
    assert usage["ACME"].groups[("sms", "outbound")].amount == Decimal("0.016000")
    assert (usage["ACME"].undated, report.undated, report.billed) == (2, 2, 2)
    assert "billed without a start_time (taken as in the period) 2" in report.render()
