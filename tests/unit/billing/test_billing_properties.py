"""Properties of the cycle close that must hold for any input."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.billing.billing_builders import lines_of, plan_from, rated

from warp_billing.billing import rated_file
from warp_billing.billing.cycles import cycle_for, plan_cycle
from warp_billing.billing.invoice import build_invoice
from warp_billing.billing.recurring import recurring_lines
from warp_billing.billing.revenue_recognition import journal_entries, ratable_slices
from warp_billing.billing.taxes import OfflineTaxEngine
from warp_billing.billing.tiers import graduated_price, retrospective_price
from warp_billing.billing.usage_lines import UsageAggregator, UsageWindow
from warp_billing.plan import Tiers

rates = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1"), places=4)
minutes = st.fractions(min_value=0, max_value=10_000_000, max_denominator=60)


@st.composite
def falling_bands(draw):
    count = draw(st.integers(1, 5))
    limits = sorted(draw(st.sets(st.integers(1, 5_000_000), min_size=count - 1, max_size=count - 1)))
    prices = sorted(draw(st.lists(rates, min_size=count, max_size=count)), reverse=True)
    # one price more than limits: the last one is the open band, appended below
    bands = [{"up_to": limit, "rate": str(price)} for limit, price in zip(limits, prices, strict=False)]
    bands.append({"rate": str(prices[-1])})
    return Tiers.model_validate({"mode": "graduated", "bands": bands}).bands


@given(falling_bands(), minutes)
def test_retrospective_never_exceeds_graduated_when_band_prices_fall(bands, total):
    assert retrospective_price(bands, total) <= graduated_price(bands, total)


@given(falling_bands(), minutes, minutes)
def test_graduated_price_grows_with_minutes(bands, first, second):
    low, high = sorted((first, second))
    assert graduated_price(bands, low) <= graduated_price(bands, high)


amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("50"), places=6).map(lambda d: format(d, "f"))
events = st.lists(
    st.one_of(
        st.builds(lambda u, a, j: rated(units=u, amount=a, jurisdiction=j), st.integers(0, 7200), amounts,
                  st.sampled_from(["interstate", "intrastate", "indeterminate", "international"])),
        st.builds(lambda k, u, a, d: rated(k, units=u, amount=a, direction=d), st.sampled_from(["sms", "mms"]),
                  st.integers(1, 5), amounts, st.sampled_from(["outbound", "inbound"])),
        st.builds(lambda u, a, q: rated("api_query", units=u, amount=a, query_type=q), st.integers(1, 500), amounts,
                  st.sampled_from(["lrn", "cnam"])),
    ),
    max_size=40,
)


@st.composite
def plans(draw):
    sections = {"fees": {"e911_per_did": str(draw(rates)), "usf": {"applies": draw(st.booleans())}}}
    voice = {"deck": "x.csv"}
    if draw(st.booleans()):
        voice["tiers"] = {"mode": draw(st.sampled_from(["graduated", "retrospective"])),
                          "bands": [{"up_to": 10, "rate": str(draw(rates))}, {"rate": str(draw(rates))}]}
    if draw(st.booleans()):
        voice["commitment"] = {"minutes": draw(st.integers(0, 300)), "shortfall_rate": str(draw(rates)),
                               "rebate_above_pct": str(draw(st.integers(0, 30))),
                               "start": (date(2026, 4, 1) + timedelta(days=draw(st.integers(0, 120)))).isoformat()}
    sections["voice"] = voice
    sections["api_queries"] = {"prices": {"lrn": "0.001"},
                               "bulk_discount": {"threshold": draw(st.integers(1, 600)),
                                                 "percent": str(draw(st.integers(1, 50)))}}
    start = date(2026, 4, 1) + timedelta(days=draw(st.integers(0, 120)))
    charge = {"sku": "DID", "quantity": draw(st.integers(0, 500)), "unit_price": str(draw(rates)),
              "start": start.isoformat(), "timing": draw(st.sampled_from(["advance", "arrears"]))}
    if draw(st.booleans()):
        charge["end"] = (start + timedelta(days=draw(st.integers(1, 90)))).isoformat()
    sections["recurring"] = [charge]
    sections["terms"] = {"anchor_day": draw(st.sampled_from([1, 15, 28])), "net_days": 30}
    return plan_from(**sections)


def close(plan, records):
    cycle = plan_cycle(plan, "2026-05")
    aggregator = UsageAggregator({"ACME": UsageWindow.for_cycle("ACME", cycle)})
    aggregator.consume(lines_of(*records))
    return build_invoice(plan, cycle, aggregator.result()["ACME"], OfflineTaxEngine())


def in_may(records):
    return [{**record, "start_time": "2026-05-20T12:00:00Z"} for record in records]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(plans(), events)
def test_the_lines_add_up_to_the_subtotal_and_the_fees_to_the_total(plan, records):
    invoice = close(plan, in_may(records))
    record = invoice.to_record()
    lines_total = sum(Decimal(line["amount"]) for line in record["lines"])
    fees_total = sum(Decimal(fee["amount"]) for fee in record["fees"])
    assert Decimal(record["subtotal"]) == lines_total
    assert Decimal(record["total"]) == lines_total + fees_total
    assert all(Decimal(line["amount"]).as_tuple().exponent == -2 for line in record["lines"])


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(plans(), events)
def test_every_journal_entry_balances_for_invoices_and_credit_notes(plan, records):
    invoice = close(plan, in_may(records))
    for document in (invoice, invoice.credit_note("ACME-CN-000001", date(2026, 7, 1))):
        entries = journal_entries(document)
        assert all(entry.debits == entry.credits for entry in entries)
        receivable = entries[0].lines[0] if entries[0].lines else None
        if document.total:
            assert receivable.account == "1200" and receivable.debit - receivable.credit == document.total


@given(st.decimals(min_value=Decimal("-10000"), max_value=Decimal("10000"), places=2),
       st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 1)), st.integers(1, 120))
def test_ratable_slices_sum_to_the_amount(amount, start, days):
    slices = ratable_slices(amount, start, start + timedelta(days=days))
    assert sum(part for _, part in slices) == amount


@given(st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31)), st.integers(1, 400),
       st.booleans(), st.sampled_from([1, 10, 28]))
def test_every_active_day_of_a_charge_is_billed_exactly_once(start, days, advance, anchor):
    plan = plan_from(recurring=[{"sku": "DID", "quantity": 1, "unit_price": "1.00", "start": start.isoformat(),
                                 "end": (start + timedelta(days=days)).isoformat(),
                                 "timing": "advance" if advance else "arrears"}])
    billed = []
    for index in range(-1, 16):
        month = start.month - 1 + index
        period = f"{start.year + month // 12}-{month % 12 + 1:02d}"
        cycle = cycle_for(period, anchor_day=anchor)
        for line in recurring_lines(plan.recurring, cycle):
            billed.extend(range(line.service_start.toordinal(), line.service_end.toordinal()))
    assert sorted(billed) == list(range(start.toordinal(), start.toordinal() + days))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(padding=st.lists(st.integers(0, 40), min_size=1, max_size=60), parts=st.integers(1, 7), block=st.integers(8, 64))
def test_byte_ranges_read_every_line_exactly_once(tmp_path_factory, padding, parts, block):
    path = tmp_path_factory.mktemp("ranges") / "rated.jsonl"
    records = [rated(event_id=f"e{n}" + "x" * pad, amount=f"{n}.000000") for n, pad in enumerate(padding)]
    path.write_bytes(b"\n".join(orjson.dumps(record) for record in records) + b"\n")
    size = path.stat().st_size
    window = {"ACME": UsageWindow.for_cycle("ACME", cycle_for("2026-11", timezone="America/New_York"))}
    original = rated_file.BLOCK_BYTES
    rated_file.BLOCK_BYTES = block
    try:
        results = [rated_file._scan_range(str(path), size * p // parts, size * (p + 1) // parts, window)
                   for p in range(parts)]
    finally:
        rated_file.BLOCK_BYTES = original
    assert sum(outcome[1].lines for outcome in results) == len(records)
    total = sum(outcome[0]["ACME"].groups[("voice", "interstate")].amount
                for outcome in results if outcome[0]["ACME"].groups)
    assert total == sum(Decimal(n) for n in range(len(records)))


@given(st.lists(st.integers(0, 3600), max_size=30))
def test_voice_minutes_are_exactly_billed_seconds_over_sixty(seconds):
    aggregator = UsageAggregator({"ACME": UsageWindow.for_cycle("ACME", cycle_for("2026-11"))})
    aggregator.consume(lines_of(*[rated(units=s) for s in seconds]))
    assert aggregator.result()["ACME"].voice_minutes == Fraction(sum(seconds), 60)
