"""Customer plans: validation with named fields, floats refused, unknown keys reported."""

from decimal import Decimal

import pytest
import yaml

from warp_billing.plan import PlanError, load_plan, parse_plan


def parse(text: str):
    return parse_plan(yaml.safe_load(text))


def test_the_contract_example_plan_loads(tmp_path):
    text = """
customer_id: ACME
billing: postpaid
currency: USD
timezone: America/New_York
voice:
  deck: acme-voice.csv
  vendor_decks: {V1: vendor1-voice.csv}
  increments: "6/6"
  indeterminate: {policy: piu, piu: 60}
  time_of_day:
    - {days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:00", multiplier: "1.10"}
  tiers:
    mode: retrospective
    unit: minute
    bands: [{up_to: 500000, rate: "0.006"}, {up_to: 5000000, rate: "0.004"}, {rate: "0.0025"}]
  commitment: {minutes: 1000000, shortfall_rate: "0.004", rebate_above_pct: "10", start: 2026-06-01}
messaging:
  deck: acme-messaging.csv
  mms_surcharge: "0.003"
  carrier_surcharges: {T-MOBILE: "0.0025"}
  campaign_overrides: {CAMP123: "0.0020"}
  inbound_rate: "0.0010"
api_queries:
  prices: {lrn: "0.001", cnam: "0.004"}
  bulk_discount: {threshold: 10000, percent: "20"}
margin:
  overhead_per_minute: "0.0001"
  alert_below_pct: "15"
recurring:
  - {sku: DID-LOCAL, description: "Local DID", quantity: 250, unit_price: "1.00", start: 2026-11-10}
fees:
  e911_per_did: "0.25"
  usf: {applies: false}
terms: {cycle: monthly, net_days: 15}
"""
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = load_plan(path)
    plan = loaded.plan
    assert loaded.unknown_keys == ()
    assert (plan.voice.increments.first, plan.voice.increments.next) == (6, 6)
    assert plan.voice.tiers.bands[1].rate == Decimal("0.004")
    assert plan.messaging.carrier_surcharges == {"T-MOBILE": Decimal("0.0025")}
    assert plan.terms.net_days == 15 and plan.recurring[0].quantity == 250
    assert loaded.resolve("acme-voice.csv") == tmp_path / "acme-voice.csv"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("customer_id: A\ntimezone: UTC\n"
         "voice: {deck: d.csv, tiers: {mode: graduated, bands: [{up_to: 10, rate: 0.1}]}}",
         "float 0.1 refused"),
        ("customer_id: A\ntimezone: UTC\napi_queries: {prices: {lrn: 0.001}}", "api_queries.prices.lrn"),
        ("customer_id: A\ntimezone: UTC\nvoice: {deck: d.csv, indeterminate: {policy: guess}}",
         "voice.indeterminate.policy"),
        ("customer_id: A\ntimezone: UTC\nvoice: {deck: d.csv, indeterminate: {policy: piu, piu: 140}}",
         "piu is a percentage"),
        ("customer_id: A\ntimezone: UTC\nvoice: {deck: d.csv, increments: '6-6'}", "increments"),
        ("customer_id: A\ntimezone: UTC\nvoice: {deck: d.csv, tiers: {mode: graduated, "
         "bands: [{rate: '0.1'}, {up_to: 5, rate: '0.2'}]}}", "only the last band"),
        ("customer_id: A\ntimezone: UTC\nmessaging: {inbound_rate: '-0.001'}", "negative"),
        ("billing: postpaid", "customer_id"),
        ("- just\n- a list", "a YAML mapping"),
    ],
)
def test_bad_plans_name_the_field(text, fragment):
    with pytest.raises(PlanError) as error:
        parse(text)
    assert fragment in str(error.value)


def test_unknown_keys_are_errors_naming_their_path(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("customer_id: A\ntimezone: UTC\nvoice: {deck: d.csv, incremnts: '6/6'}\nsurprise: 1\n",
                    encoding="utf-8")
    with pytest.raises(PlanError) as error:
        load_plan(path)
    assert "voice.incremnts: unknown key; did you mean 'increments'?" in str(error.value)
    assert "surprise: unknown key" in str(error.value)


def test_recurring_timing_accepts_advance_and_arrears_spellings():
    plan = parse("customer_id: A\ntimezone: UTC\nrecurring:\n"
                 "  - {sku: TF, unit_price: '2.50', start: 2026-10-01, billing: in_advance}\n"
                 "  - {sku: DID, unit_price: '1', start: 2026-10-01}\n")
    assert [charge.timing for charge in plan.recurring] == ["advance", "arrears"]
