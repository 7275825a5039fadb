"""A whole invoice computed by hand from contracts.md, and the document's shape."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tests.unit.billing.billing_builders import lines_of, plan_from, rated

from warp_billing.billing.cycles import plan_cycle
from warp_billing.billing.invoice import Invoice, build_invoice
from warp_billing.billing.taxes import OfflineTaxEngine
from warp_billing.billing.usage_lines import UsageAggregator, UsageWindow

GRADUATED = {"mode": "graduated", "unit": "minute",
             "bands": [{"up_to": 1000, "rate": "0.10"}, {"up_to": 10000, "rate": "0.05"}, {"rate": "0.01"}]}


def june_plan(**changes):
    sections = {
        "voice": {"deck": "unused.csv", "tiers": GRADUATED,
                  "commitment": {"minutes": 20000, "shortfall_rate": "0.004", "rebate_above_pct": "10",
                             "start": "2026-01-01"}},
        "api_queries": {"prices": {"lrn": "0.001"}, "bulk_discount": {"threshold": 10000, "percent": "20"}},
        "recurring": [{"sku": "DID-LOCAL", "description": "Local DID", "quantity": 250, "unit_price": "1.00",
                       "start": "2026-06-10"}],
        "fees": {"e911_per_did": "0.25", "usf": {"applies": True}},
        "terms": {"cycle": "monthly", "net_days": 15},
    }
    sections.update(changes)
    return plan_from(**sections)


def june(*args, **fields):
    """A rated line in mid-June unless told otherwise."""
    return rated(*args, **{"start": "2026-06-15T12:00:00Z", **fields})


JUNE_USAGE = [
    # 10,000 interstate minutes: 60.000005 -> 60.00
    june(units=599_940, amount="59.994005", start="2026-06-01T04:00:00Z"),     # 1 Jun 00:00 in New York
    june(units=60, amount="0.006000", start="2026-07-01T03:59:59Z"),           # 30 Jun 23:59:59 in New York
    # 5,000 international minutes: 1500.005000 -> 1500.01 (each event rounded first would give 1500.00)
    june(units=299_940, amount="1500.004999", jurisdiction="international"),
    june(units=60, amount="0.000001", jurisdiction="international"),
    # 10,000 LRN queries, the bulk threshold reached exactly: 10.00, discount -2.00
    june("api_query", units=9_999, amount="9.999000"),
    june("api_query", units=1, amount="0.001000"),
    # 3 SMS: 0.012 -> 0.01
    *[june("sms", units=1, amount="0.004000") for _ in range(3)],
    # not billed: rejected, another customer, outside June in New York
    june(status="rejected"),
    june(amount="99.000000", customer="BETA"),
    june(amount="99.000000", start="2026-06-01T03:59:59Z"),
]


def close(plan, records, period="2026-06"):
    cycle = plan_cycle(plan, period)
    aggregator = UsageAggregator({plan.customer_id: UsageWindow.for_cycle(plan.customer_id, cycle)})
    aggregator.consume(lines_of(*records))
    return build_invoice(plan, cycle, aggregator.result()[plan.customer_id], OfflineTaxEngine())


def amounts(invoice: Invoice) -> list[tuple[str, str]]:
    return [(line["sku"], line["amount"]) for line in invoice.to_record()["lines"]]


def test_a_june_invoice_computed_by_hand():
    invoice = close(june_plan(), JUNE_USAGE)
    assert amounts(invoice) == [
        ("VOICE-INTERSTATE", "60.00"),
        ("VOICE-INTERNATIONAL", "1500.01"),
        # tiers apply to the domestic lines only (international is priced by its deck): graduated
        # price of the 10,000 interstate minutes = 1000 x 0.10 + 9000 x 0.05 = 550.00, minus 60.00 as printed
        ("VOICE-TIER-ADJ", "490.00"),
        # 15,000 of 20,000 minutes: 5,000 x 0.004
        ("VOICE-COMMIT-SHORTFALL", "20.00"),
        ("SMS-OUTBOUND", "0.01"),
        ("API-LRN", "10.00"),
        ("API-LRN-DISCOUNT", "-2.00"),
        # 250 x 1.00 x 21/30
        ("DID-LOCAL", "175.00"),
    ]
    record = invoice.to_record()
    assert record["subtotal"] == "2253.02"
    assert record["fees"][0] == {"code": "E911", "description": "E911 fee, 250 active numbers at 0.25 each",
                                 "base": "250", "rate": "0.25", "amount": "62.50", "base_kind": "count",
                                 "account_hint": "e911"}
    usf = record["fees"][1]
    # USF Q2 2026 37.0% of interstate + international lines (60.00 + 1500.01): 577.2037 -> 577.20
    assert (usf["code"], usf["base"], usf["rate"], usf["amount"]) == ("USF", "1560.01", "0.37", "577.20")
    assert record["total"] == "2892.72"
    assert (record["customer_id"], record["period"], record["issue_date"], record["due_date"], record["currency"]) == (
        "ACME", {"start": "2026-06-01", "end": "2026-07-01"}, "2026-07-01", "2026-07-16", "USD")


def test_the_invoice_carries_the_contract_keys_with_money_as_decimal_strings():
    record = close(june_plan(), JUNE_USAGE).to_record()
    assert {"customer_id", "period", "issue_date", "due_date", "currency", "lines", "subtotal", "fees",
            "total"} <= set(record)
    for line in record["lines"]:
        assert {"sku", "description", "quantity", "unit", "amount", "service_start", "service_end"} <= set(line)
        assert isinstance(line["amount"], str) and isinstance(line["quantity"], str)
    for fee in record["fees"]:
        assert {"code", "description", "base", "rate", "amount"} <= set(fee)
    voice = record["lines"][0]
    assert (voice["quantity"], voice["unit"], voice["billed_seconds"], voice["events"]) == (
        "10000", "minute", 600_000, 2)


def test_retrospective_tiers_and_a_rebate_above_the_commitment():
    plan = june_plan(voice={"deck": "unused.csv", "tiers": {**GRADUATED, "mode": "retrospective"},
                            "commitment": {"minutes": 10000, "shortfall_rate": "0.004", "rebate_above_pct": "10",
                             "start": "2026-01-01"}})
    lines = dict(amounts(close(plan, JUNE_USAGE)))
    assert lines["VOICE-TIER-ADJ"] == "440.00"              # 10,000 interstate minutes x 0.05 = 500.00; - 60.00 printed
    # 10% of the voice after tiers (60.00 + 1500.01 + 440.00 = 2000.01): 200.001 -> 200.00
    assert lines["VOICE-COMMIT-REBATE"] == "-200.00"
    assert "VOICE-COMMIT-SHORTFALL" not in lines


def test_tiers_reprice_international_only_when_applies_to_names_it():
    tiers = {**GRADUATED, "applies_to": ["VOICE-INTERSTATE", "VOICE-INTERNATIONAL"]}
    plan = june_plan(voice={"deck": "unused.csv", "tiers": tiers})
    lines = dict(amounts(close(plan, JUNE_USAGE)))
    # 15,000 minutes graduated = 600.00, minus the two lines as printed (60.00 + 1500.01)
    assert lines["VOICE-TIER-ADJ"] == "-960.01"


def test_zero_usage_bills_only_the_commitment_and_recurring_charges():
    invoice = close(june_plan(), [])
    assert amounts(invoice) == [("VOICE-COMMIT-SHORTFALL", "80.00"), ("DID-LOCAL", "175.00")]
    record = invoice.to_record()
    assert [(fee["code"], fee["base"], fee["amount"]) for fee in record["fees"]] == [
        ("E911", "250", "62.50"), ("USF", "0.00", "0.00")]
    assert (record["subtotal"], record["total"]) == ("255.00", "317.50")


def test_an_empty_plan_with_no_usage_is_a_zero_invoice():
    record = close(plan_from(), [], period="2026-11").to_record()
    assert (record["lines"], record["subtotal"], record["fees"], record["total"]) == ([], "0.00", [], "0.00")


def test_a_mid_month_anchor_closes_on_the_anchor_day():
    plan = june_plan(terms={"anchor_day": 15, "net_days": 30}, fees={"usf": {"applies": False}},
                     recurring=[], voice={"deck": "unused.csv"}, api_queries={"prices": {}})
    records = [rated(amount="1.000000", start="2026-06-15T04:00:00Z"),    # 15 Jun 00:00 New York: in
               rated(amount="2.000000", start="2026-07-15T03:59:59Z"),    # 14 Jul 23:59:59: in
               rated(amount="4.000000", start="2026-07-15T04:00:00Z"),    # 15 Jul: next cycle
               rated(amount="8.000000", start="2026-06-14T12:00:00Z")]    # previous cycle
    record = close(plan, records).to_record()
    assert record["period"] == {"start": "2026-06-15", "end": "2026-07-15"}
    assert (record["issue_date"], record["due_date"]) == ("2026-07-15", "2026-08-14")
    assert amounts(close(plan, records)) == [("VOICE-INTERSTATE", "3.00")]


def test_a_february_cycle_prorates_over_28_days():
    plan = plan_from(recurring=[{"sku": "DID", "quantity": 28, "unit_price": "1.00", "start": "2026-02-08"}])
    invoice = close(plan, [], period="2026-02")
    line = invoice.to_record()["lines"][0]
    assert (line["amount"], line["active_days"], line["period_days"], line["service_start"], line["service_end"]) == (
        "21.00", 21, 28, "2026-02-08", "2026-03-01")
    assert invoice.to_record()["issue_date"] == "2026-03-01"


def test_a_record_read_back_is_the_same_invoice():
    invoice = close(june_plan(), JUNE_USAGE)
    again = Invoice.from_record(invoice.to_record())
    assert again.to_record() == invoice.to_record()
    assert again.total == invoice.total == Decimal("2892.72")


def test_a_credit_note_negates_every_line_and_fee():
    invoice = close(june_plan(), JUNE_USAGE)
    note = invoice.credit_note("ACME-CN-000001", date(2026, 7, 20))
    assert note.total == -invoice.total
    assert [line.amount for line in note.lines] == [-line.amount for line in invoice.lines]
    record = note.to_record()
    assert (record["document_type"], record["issue_date"], record["total"]) == ("credit_note", "2026-07-20", "-2892.72")


def test_the_content_hash_ignores_numbers_and_dates_but_not_amounts():
    invoice = close(june_plan(), JUNE_USAGE)
    renumbered = Invoice.from_record({**invoice.to_record(), "invoice_number": "X-1", "issue_date": "2026-08-01"})
    assert renumbered.content_hash == invoice.content_hash
    changed = close(june_plan(), [*JUNE_USAGE, june(amount="0.010000")])
    assert changed.content_hash != invoice.content_hash
