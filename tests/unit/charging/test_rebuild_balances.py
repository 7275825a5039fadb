"""rebuild_balances: balances and dedup marks from the persisted ledger, exactly."""

from __future__ import annotations

from tests.charging_world import make_world, voice_event
from tests.fakes import CREDIT_NAMESPACE, FakeBalances, FakeClock, FakeLedgerStore

from warp_billing.charging.accounts import PrepaidTerms
from warp_billing.charging.rebuild import rebuild_balances
from warp_billing.ports import LedgerEntry

AT = "2026-11-03T23:00:00.000+00:00"


def test_balances_are_the_sum_of_the_entries_and_duplicate_rows_are_ignored():
    ledger = FakeLedgerStore()
    rows = [LedgerEntry("topup:1", "ACME", "topup", 5_000_000, 5_000_000, AT),
            LedgerEntry("e1", "ACME", "debit", -50_000, 4_950_000, AT),
            LedgerEntry("e1#recharge", "ACME", "auto_recharge", 1_000_000, 5_950_000, AT),
            LedgerEntry("topup:9", "BETA", "topup", 7, 7, AT)]
    ledger.append(rows)
    ledger.by_id[("ACME", "e1-copy")] = rows[1]          # a second row of the same movement (best-effort insertId)
    balances = FakeBalances()

    report = rebuild_balances(ledger, balances, dedup_ttl_s=3 * 86_400, clock=FakeClock())

    assert report.balances == {"ACME": 5_950_000, "BETA": 7}
    assert (report.duplicate_rows, report.conflicts) == (1, [])
    assert balances.account("ACME").balance_micros == 5_950_000
    restored = balances.results[("ACME", "e1")]
    assert [e.entry_id for e in restored.entries] == ["e1", "e1#recharge"] and restored.amount_micros == 50_000


def test_two_movements_under_one_entry_id_are_reported():
    ledger = FakeLedgerStore()
    ledger.append([LedgerEntry("e1", "ACME", "debit", -5, -5, AT)])
    ledger.by_id[("ACME", "x")] = LedgerEntry("e1", "ACME", "debit", -6, -6, AT)

    report = rebuild_balances(ledger, FakeBalances(), dedup_ttl_s=3600, clock=FakeClock())

    assert report.conflicts == ["ACME/e1"] and report.balances == {"ACME": -5}


def test_an_exhausted_balance_gets_its_notice_and_low_mark_back():
    ledger = FakeLedgerStore()
    ledger.append([LedgerEntry("topup:1", "ACME", "topup", 10, 10, AT), LedgerEntry("e1", "ACME", "debit", -10, 0, AT)])
    balances = FakeBalances()

    rebuild_balances(ledger, balances, dedup_ttl_s=3600, clock=FakeClock(),
                     terms_for=lambda c: PrepaidTerms(low_balance_threshold_micros=100, suspend_after_s=3600))

    state = balances.account("ACME")
    assert state.low_balance_alerted and state.suspend_at_ms == 1_793_746_800_000 + 3_600_000


def test_debits_older_than_the_dedup_window_get_no_mark():
    ledger = FakeLedgerStore()
    ledger.append([LedgerEntry("old", "ACME", "debit", -1, -1, "2026-10-01T00:00:00.000+00:00"),
                   LedgerEntry("topup:1", "ACME", "topup", 2, 1, "2026-10-01T00:00:00.000+00:00")])
    balances = FakeBalances()

    report = rebuild_balances(ledger, balances, dedup_ttl_s=3 * 86_400, clock=FakeClock())

    assert ("ACME", "old") not in balances.results and ("ACME", CREDIT_NAMESPACE + "topup:1") in balances.results
    assert report.dedup_marks == 1


def test_with_a_settle_time_the_ledger_is_read_again_after_charging_is_paused():
    world = make_world()
    world.topup("ACME", 1_000_000)
    world.handle(voice_event("e1"))
    late = LedgerEntry("e2", "ACME", "debit", -50_000, 900_000, AT)   # an in-flight handler's write

    report = rebuild_balances(world.ledger, world.balances, dedup_ttl_s=3 * 86_400, clock=world.clock, settle_s=30,
                              sleep=lambda seconds: world.ledger.append([late]))

    assert report.balances == {"ACME": 900_000}
