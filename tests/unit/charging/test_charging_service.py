"""ChargingService with fakes of every port: what is written, once, for each kind of delivery."""

from __future__ import annotations

import pytest
import yaml
from tests.charging_world import DECKS, PREPAID_PLAN, voice_event
from tests.fakes import StoreDown

from warp_billing.charging.errors import TransientCode, TransientError
from warp_billing.charging.service import Delivery
from warp_billing.rating.rejections import Reason, Rejection

DOLLAR = 1_000_000
CALL = 50_000  # one 60 s call to the UK at 0.05/min, in micro-units


def test_charges_a_prepaid_call_and_writes_its_row_and_ledger_entry(world):
    world.topup("ACME", 5 * DOLLAR)

    handled = world.handle(voice_event("e1"))

    assert (handled.status, str(handled.amount), handled.duplicate) == ("rated", "0.050000", False)
    assert world.usage.rated["e1"]["amount"] == "0.050000"
    debit = world.ledger.by_id[("ACME", "e1")]
    assert (debit.kind, debit.amount_micros, debit.balance_after_micros) == ("debit", -CALL, 5 * DOLLAR - CALL)
    assert world.balances.account("ACME").balance_micros == 5 * DOLLAR - CALL


def test_a_redelivered_event_is_charged_once_and_its_row_kept_once(world):
    world.topup("ACME", 5 * DOLLAR)
    event = voice_event("e1")

    first = world.handle(event)
    second = world.handle(event)

    assert (first.duplicate, second.duplicate) == (False, True)
    assert world.balances.account("ACME").balance_micros == 5 * DOLLAR - CALL
    assert list(world.usage.rated) == ["e1"]
    assert world.ledger.balance("ACME") == 5 * DOLLAR - CALL


def test_a_crash_between_debit_and_usage_write_neither_double_charges_nor_loses_the_row(world):
    world.topup("ACME", 5 * DOLLAR)
    world.usage.fail_next()

    with pytest.raises(TransientError) as failure:
        world.handle(voice_event("e1"))
    assert failure.value.code is TransientCode.USAGE_STORE_UNAVAILABLE
    assert world.usage.rated == {}

    redelivered = world.handle(voice_event("e1"))

    assert redelivered.duplicate
    assert list(world.usage.rated) == ["e1"]
    assert world.balances.account("ACME").balance_micros == 5 * DOLLAR - CALL
    assert world.ledger.balance("ACME") == 5 * DOLLAR - CALL


def test_a_ledger_store_failure_is_retried_and_the_entry_written_on_redelivery(world):
    world.topup("ACME", 5 * DOLLAR)
    world.ledger.fail_next()

    with pytest.raises(TransientError) as failure:
        world.handle(voice_event("e1"))

    assert failure.value.code is TransientCode.LEDGER_STORE_UNAVAILABLE
    world.handle(voice_event("e1"))
    assert world.ledger.balance("ACME") == world.balances.account("ACME").balance_micros


def test_an_unreachable_balance_store_raises_a_transient_error_and_writes_nothing(world):
    world.topup("ACME", 5 * DOLLAR)
    world.balances.fail_next(TransientError(TransientCode.BALANCES_UNAVAILABLE, "connection refused"))

    with pytest.raises(TransientError):
        world.handle(voice_event("e1"))

    assert world.usage.rated == {} and world.usage.rejects == {}


def test_a_prepaid_customer_without_an_account_is_retried_not_rejected(world):
    world.balances.accounts.clear()

    with pytest.raises(TransientError) as failure:
        world.handle(voice_event("e1"))

    assert failure.value.code is TransientCode.ACCOUNT_NOT_LOADED
    assert world.usage.rejects == {}


def test_an_event_older_than_the_maximum_age_is_rejected_event_too_old(world):
    world.topup("ACME", 5 * DOLLAR)

    handled = world.handle(voice_event("old", start="2026-10-01T00:00:00Z"))

    assert handled.reason == Reason.EVENT_TOO_OLD.value
    assert world.usage.rejects["old"]["reason"] == "EVENT_TOO_OLD"
    assert world.balances.account("ACME").balance_micros == 5 * DOLLAR


def test_a_late_redelivery_of_a_charged_event_completes_the_original_charge(world):
    world.topup("ACME", 5 * DOLLAR)
    world.usage.fail_next()
    with pytest.raises(TransientError):
        world.handle(voice_event("e1"))

    world.clock.advance(4 * 86_400)  # redelivered after the maximum age
    handled = world.handle(voice_event("e1"))

    assert (handled.status, handled.duplicate) == ("rated", True)
    assert list(world.usage.rated) == ["e1"] and world.usage.rejects == {}
    assert world.balances.account("ACME").balance_micros == 5 * DOLLAR - CALL


def test_a_replay_ignores_the_maximum_age(world):
    world.topup("ACME", 5 * DOLLAR)

    handled = world.handle(voice_event("old", start="2026-10-01T00:00:00Z"), replay=True)

    assert handled.status == "rated"


def test_an_unknown_customer_is_rejected(world):
    handled = world.handle(voice_event("e1", customer="NOBODY"))

    assert handled.reason == "UNKNOWN_CUSTOMER"
    assert world.usage.rejects["e1"]["customer_id"] == "NOBODY"


@pytest.mark.parametrize("change, reason", [
    ({"event_id": None}, "BAD_FIELD"),
    ({"kind": "fax"}, "UNKNOWN_KIND"),
    ({"customer_id": 7}, "BAD_FIELD"),
    ({"start_time": "yesterday"}, "BAD_FIELD"),
    ({"called_number": "442071234567"}, "INVALID_NUMBER"),
    ({"duration_s": -5}, "BAD_FIELD"),
    ({"vendor_id": 3}, "BAD_FIELD"),
])
def test_bad_events_become_rejects_with_their_raw_text(world, change, reason):
    event = {**voice_event("bad"), **change}

    handled = world.handle(event)

    assert handled.reason == reason
    (record,) = world.usage.rejects.values()
    assert record["reason"] == reason and record["raw"] and record["reject_id"]
    assert world.ledger.rows == []


def test_an_undecodable_delivery_is_rejected_under_its_message_id(world):
    delivery = Delivery(None, "msg-9", "{not json", Rejection(Reason.MALFORMED_JSON, "not valid JSON"))

    handled = world.service.handle(delivery)

    assert handled.reason == "MALFORMED_JSON"
    assert world.usage.rejects["message:msg-9"]["raw"] == "{not json"


def test_an_exhausted_balance_refuses_with_insufficient_balance_and_a_replay_after_topup_charges(world):
    world.topup("ACME", 60_000)
    assert world.handle(voice_event("e1")).status == "rated"          # 0.06 -> 0.01
    assert world.handle(voice_event("e2")).status == "rated"          # 0.01 -> -0.04: charged in full
    refused = world.handle(voice_event("e3"))

    assert refused.reason == "INSUFFICIENT_BALANCE"
    assert world.balances.account("ACME").balance_micros == 60_000 - 2 * CALL
    assert world.usage.rejects["e3"]["reason"] == "INSUFFICIENT_BALANCE"
    assert world.handle(voice_event("e3")).reason == "INSUFFICIENT_BALANCE"   # redelivery: same answer

    world.topup("ACME", 5 * DOLLAR, topup_id="t2")
    replayed = world.handle(voice_event("e3"), replay=True)

    assert replayed.status == "rated"
    assert world.ledger.balance("ACME") == 60_000 - 3 * CALL + 5 * DOLLAR


def test_exhaustion_alerts_suspend_pending_and_after_the_notice_traffic_is_suspended(world):
    world.topup("ACME", CALL)
    world.handle(voice_event("e1"))                      # balance 0: suspension notice starts
    (pending,) = world.alerts.of_type("suspend_pending")
    assert pending["suspend_at"] == "2026-11-05T00:00:00.000+00:00"

    world.clock.advance(24 * 3600)
    first = world.handle(voice_event("e2", seconds=0))   # even a zero-amount call is refused now
    second = world.handle(voice_event("e3"))

    assert (first.reason, second.reason) == ("SUSPENDED", "SUSPENDED")
    assert len(world.alerts.of_type("suspended")) == 1


def test_a_topup_ends_the_suspension_notice(world):
    world.topup("ACME", CALL)
    world.handle(voice_event("e1"))
    world.topup("ACME", DOLLAR * 2, topup_id="t2")
    world.clock.advance(25 * 3600)

    assert world.handle(voice_event("e2")).status == "rated"


def test_low_balance_is_alerted_once_per_crossing(world):
    world.topup("ACME", DOLLAR + CALL)                   # 1.05, threshold 1.00
    for number in range(1, 5):
        world.handle(voice_event(f"e{number}"))
    assert len(world.alerts.of_type("low_balance")) == 1

    world.topup("ACME", DOLLAR, topup_id="t2")           # back above the threshold
    for number in range(5, 30):
        world.handle(voice_event(f"e{number}"))
    assert len(world.alerts.of_type("low_balance")) == 2


def test_a_low_margin_call_publishes_a_low_margin_alert(world):
    world.topup("ACME", 5 * DOLLAR)

    world.handle(voice_event("e1", to="+13125551234", vendor_id="V1"))   # 0.0100 vs vendor 0.0099

    (alert,) = world.alerts.of_type("low_margin")
    assert alert["event_id"] == "e1" and alert["margin_pct"] == "1.00"


def test_postpaid_totals_alert_at_the_soft_limit_and_refuse_above_the_hard_limit(world):
    amounts = []
    for number in range(1, 23):                          # 0.05 each, limit 1.00, soft 0.80
        amounts.append(world.handle(voice_event(f"p{number}", customer="BETA")))

    rated = [h for h in amounts if h.status == "rated"]
    refused = [h for h in amounts if h.status == "rejected"]
    assert len(rated) == 20 and {h.reason for h in refused} == {"CREDIT_LIMIT"}
    assert len(world.alerts.of_type("credit_soft_limit")) == 1
    assert len(world.alerts.of_type("credit_limit_reached")) == 1
    assert world.ledger.rows == []                       # postpaid money is not a balance movement


def test_postpaid_running_totals_are_per_billing_cycle_in_the_customer_zone(world):
    world.handle(voice_event("p1", customer="BETA", start="2026-11-01T03:00:00Z"))   # Oct 31 in New York
    world.handle(voice_event("p2", customer="BETA", start="2026-11-01T05:00:00Z"))

    assert set(cycle for _, cycle in world.balances.cycles) == {"2026-10-01", "2026-11-01"}


def test_a_new_plan_version_is_used_after_the_refresh_interval_without_a_restart(world):
    world.topup("ACME", 5 * DOLLAR)
    world.handle(voice_event("e1"))
    cheaper = {**DECKS, "voice.csv": DECKS["voice.csv"].replace("0.050000", "0.020000")}
    world.plans.put_plan("ACME", yaml.safe_dump(PREPAID_PLAN), cheaper)

    assert str(world.handle(voice_event("e2")).amount) == "0.050000"   # still cached
    world.monotonic.advance(31)
    assert str(world.handle(voice_event("e3")).amount) == "0.020000"


def test_a_redelivery_after_a_plan_change_keeps_the_charged_amount(world):
    world.topup("ACME", 5 * DOLLAR)
    world.usage.fail_next()
    with pytest.raises(TransientError):
        world.handle(voice_event("e1"))
    cheaper = {**DECKS, "voice.csv": DECKS["voice.csv"].replace("0.050000", "0.020000")}
    world.plans.put_plan("ACME", yaml.safe_dump(PREPAID_PLAN), cheaper)
    world.monotonic.advance(31)

    world.handle(voice_event("e1"))

    assert world.usage.rated["e1"]["amount"] == "0.050000"
    assert world.usage.rated["e1"]["rate"] == "0.05"


def test_alerts_are_republished_on_redelivery_with_the_same_ids(world):
    world.topup("ACME", DOLLAR + CALL // 2)             # e1 crosses the 1.00 threshold
    world.handle(voice_event("e0"))                      # 1.025 -> 0.975: low balance
    world.alerts.fail_next()
    with pytest.raises(TransientError) as failure:
        world.handle(voice_event("e1", seconds=1170))   # 0.975 exactly: balance 0, suspension notice
    assert failure.value.code is TransientCode.ALERTS_UNAVAILABLE

    world.handle(voice_event("e1", seconds=1170))

    assert [a["alert_id"] for a in world.alerts.published].count("suspend_pending:ACME:e1") == 1
    assert "low_balance:ACME:e0" in world.alerts.by_id
    assert world.balances.account("ACME").balance_micros == 0


def test_auto_recharge_books_a_ledger_entry_and_alerts_payments(world):
    plan = {**PREPAID_PLAN, "prepaid": {"low_balance_threshold": "1.00", "auto_recharge_below": "2.00",
                                        "auto_recharge_amount": "10.00"}}
    world.load(plan)
    world.monotonic.advance(31)
    world.topup("ACME", 2 * DOLLAR)

    world.handle(voice_event("e1"))

    recharge = world.ledger.by_id[("ACME", "e1#recharge")]
    assert (recharge.kind, recharge.amount_micros) == ("auto_recharge", 10 * DOLLAR)
    assert world.balances.account("ACME").balance_micros == 12 * DOLLAR - CALL == world.ledger.balance("ACME")
    assert world.alerts.of_type("auto_recharge")[0]["amount"] == "10.000000"
    assert world.alerts.of_type("low_balance") == []


def test_batch_handling_writes_the_same_as_one_by_one(world):
    from tests.charging_world import make_world

    single = make_world()
    events = [voice_event(f"e{n}") for n in range(30)] + [voice_event("e3"), {"kind": "voice"},
                                                         voice_event("b1", customer="BETA")]
    for target in (world, single):
        target.topup("ACME", DOLLAR)
    outcomes = world.service.handle_batch([Delivery.of_event(event, f"m{n}") for n, event in enumerate(events)])
    singles = [single.service.handle(Delivery.of_event(event, f"m{n}")) for n, event in enumerate(events)]

    assert [(o.status, o.reason, o.duplicate) for o in outcomes] == [(o.status, o.reason, o.duplicate) for o in singles]
    assert world.usage.rated.keys() == single.usage.rated.keys()
    assert world.usage.rejects.keys() == single.usage.rejects.keys()
    assert world.ledger.balance("ACME") == single.ledger.balance("ACME")
    assert world.balances.charge_calls == single.balances.charge_calls


def test_a_batch_item_without_an_account_is_returned_for_retry_while_the_rest_is_done(world):
    world.topup("ACME", DOLLAR)
    gamma = {**PREPAID_PLAN, "customer_id": "GAMMA"}
    world.load(gamma)                                      # prepaid plan, account never opened

    outcomes = world.service.handle_batch([Delivery.of_event(voice_event("a1")),
                                           Delivery.of_event(voice_event("g1", customer="GAMMA"))])

    assert outcomes[0].status == "rated"
    assert isinstance(outcomes[1], TransientError) and outcomes[1].code is TransientCode.ACCOUNT_NOT_LOADED


def test_a_rejects_write_failure_is_transient(world):
    world.usage.fail_next(StoreDown("bigquery 503"))

    with pytest.raises(TransientError):
        world.handle({"kind": "voice"})
