"""Issue 8 rules that need no server: admission checks, port verdicts, raw-row conflicts, the sweep."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from tests.charging_world import make_world, voice_event
from tests.fakes import FakeLedgerStore

from warp_billing.adapters.bigquery_usage import BigQueryRowsRefused, classify_insert_failure
from warp_billing.adapters.sqlite_stores import SqliteLedgerStore
from warp_billing.charging.admission import (
    RAW_LIMIT_CHARS,
    beyond_dedup_horizon,
    future_problem,
    reserved_id_problem,
    truncated_raw,
)
from warp_billing.charging.errors import TransientError
from warp_billing.charging.rebuild import group_raw_rows
from warp_billing.charging.service import Delivery
from warp_billing.charging.sweep import sweep
from warp_billing.ports import LedgerEntry, PermanentStoreError

AT = "2026-11-03T23:00:00.000+00:00"


# -- ids ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("event_id", ["topup:PAY1", "adjustment:A1", "e1#recharge"])
def test_ids_shaped_like_another_movements_ledger_key_are_reserved(event_id):
    assert reserved_id_problem(event_id) is not None
    assert reserved_id_problem("PAY1") is None and reserved_id_problem("top-up:1") is None


@pytest.mark.parametrize("event_id", ["topup:PAY1", "e1#recharge", "x" * 10_000, "e 1", "e\n1", ""])
def test_the_charging_path_refuses_them_before_any_key_is_built(event_id):
    world = make_world()
    handled = world.handle(voice_event(event_id))
    assert (handled.status, handled.reason) == ("rejected", "BAD_FIELD")
    assert world.balances.charge_calls == 0
    assert all(len(key) <= 128 for key in world.usage.rejects)          # a usable reject key, whatever the id


# -- time -----------------------------------------------------------------------------------------

@given(st.integers(-10**7, 10**7), st.integers(0, 3600))
@example(300_000, 300)
@example(300_001, 300)
def test_the_future_bound_is_exactly_the_skew(ahead_ms, skew_s):
    assert (future_problem(10**12 + ahead_ms, 10**12, skew_s, "t") is not None) == (ahead_ms > skew_s * 1000)


def test_a_future_dated_event_is_event_in_future_and_charges_nothing():
    world = make_world()
    world.topup("ACME", 1_000_000)
    handled = world.handle(voice_event("f1", start="2099-01-01T00:00:00Z"))
    assert (handled.status, handled.reason) == ("rejected", "EVENT_IN_FUTURE")
    assert world.balances.account("ACME").balance_micros == 1_000_000


@given(st.integers(0, 10**9), st.integers(60, 10**6), st.integers(0, 3600))
def test_the_dedup_horizon_never_trusts_a_mark_that_may_have_expired(age_ms, ttl_s, skew_s):
    # The mark was written at the earliest skew before the start and lives ttl: alive iff age <= ttl - skew.
    may_be_gone = age_ms > (ttl_s - skew_s) * 1000
    assert beyond_dedup_horizon(0, age_ms, ttl_s, skew_s) == may_be_gone


def test_an_event_beyond_the_horizon_already_in_the_usage_store_is_not_charged_again():
    world = make_world()
    world.topup("ACME", 1_000_000)
    world.handle(voice_event("old1"))
    world.balances.results.clear()                          # the Redis mark expired
    world.clock.advance(3 * 86_400 - 12 * 3600 - 100)       # 100 s before the maximum age: beyond the horizon

    again = world.handle(voice_event("old1"))

    assert again.duplicate and world.balances.account("ACME").balance_micros == 1_000_000 - 50_000


def test_a_durable_lookup_that_fails_is_transient_never_a_guess():
    world = make_world()
    world.topup("ACME", 1_000_000)
    world.usage.fail_next()
    with pytest.raises(TransientError):
        world.service.handle(Delivery.of_event(voice_event("r1")), replay=True)
    assert world.balances.account("ACME").balance_micros == 1_000_000


# -- permanent or transient, decided at the port ---------------------------------------------------

def test_a_reject_the_store_refuses_for_its_content_is_kept_without_payload_and_acknowledged():
    world = make_world()
    world.usage.fail_next(PermanentStoreError("row too large"))
    handled = world.handle({"event_id": "big", "kind": "fax", "customer_id": "ACME", "blob": "x" * 100})
    assert handled.status == "rejected"                      # acknowledged: no TransientError
    stored = world.usage.rejects["big"]
    assert stored["raw"].startswith("[not stored:") and "sha256" in stored["raw"]


def test_a_rated_row_the_store_refuses_becomes_a_store_refused_reject_and_the_debit_stands():
    world = make_world()
    world.topup("ACME", 1_000_000)
    world.usage.fail_next(PermanentStoreError("invalid row"))
    handled = world.handle(voice_event("s1"))
    assert handled.status == "rated"
    assert world.usage.rejects["s1"]["reason"] == "STORE_REFUSED"
    assert world.ledger.balance("ACME") == world.balances.account("ACME").balance_micros == 950_000


def test_an_unclassified_store_failure_is_retried():
    world = make_world()
    world.usage.fail_next(ConnectionResetError("reset"))
    with pytest.raises(TransientError):
        world.handle(voice_event("u1"))


def test_large_raw_payloads_are_truncated_with_their_sha256_and_length():
    raw = "é" * (RAW_LIMIT_CHARS + 5)
    kept = truncated_raw(raw)
    data = raw.encode()
    assert kept.startswith("é" * RAW_LIMIT_CHARS)
    assert f"{len(data)} bytes" in kept and hashlib.sha256(data).hexdigest() in kept
    assert truncated_raw("short") == "short" and truncated_raw(None) is None


def test_bigquery_http_failures_are_classified_at_the_port():
    from google.api_core import exceptions

    assert isinstance(classify_insert_failure("rated_usage", exceptions.BadRequest("too large")), BigQueryRowsRefused)
    for transient in (exceptions.ServiceUnavailable("down"), exceptions.TooManyRequests("slow"),
                      ConnectionError("reset")):
        assert isinstance(classify_insert_failure("rated_usage", transient), TransientError)


# -- raw rows: conflicts are visible -------------------------------------------------------------------

def test_the_sqlite_ledger_keeps_a_conflicting_movement_where_the_raw_read_sees_it(tmp_path):
    ledger = SqliteLedgerStore(tmp_path / "ledger.sqlite")
    first = LedgerEntry("e1", "ACME", "debit", -5, 95, AT, "voice", 2)
    ledger.append([first])
    ledger.append([first])                                                   # a redelivery: nothing new
    ledger.append([LedgerEntry("e1", "ACME", "debit", -7, 93, AT, "voice", 2)])   # a different movement
    ledger.append([LedgerEntry("e1", "ACME", "debit", -7, 93, AT, "voice", 2)])

    assert list(ledger.entries("ACME")) == [first]
    grouped = group_raw_rows(ledger.raw_entries("ACME"))
    assert grouped["ACME"].conflicts == ["ACME/e1"] and grouped["ACME"].duplicates == 0


def test_the_sqlite_ledger_of_an_older_file_gains_the_sequence_column(tmp_path):
    import sqlite3

    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE ledger (entry_id TEXT NOT NULL, customer_id TEXT NOT NULL, kind TEXT NOT NULL, "
                    "amount_micros INTEGER NOT NULL, balance_after_micros INTEGER NOT NULL, at TEXT NOT NULL, "
                    "reference TEXT NOT NULL DEFAULT '', PRIMARY KEY (customer_id, entry_id))")
        old.execute("INSERT INTO ledger VALUES ('t1', 'ACME', 'topup', 5, 5, ?, '')", (AT,))
    ledger = SqliteLedgerStore(path)
    ledger.append([LedgerEntry("e1", "ACME", "debit", -1, 4, AT, "", 2)])
    assert [entry.sequence for entry in ledger.entries("ACME")] == [None, 2]


# -- the sweep ----------------------------------------------------------------------------------------

class SweepableFake:
    """The fake balance store plus what the sweep asks of Redis."""

    def __init__(self, balances):
        self.balances = balances

    def unverified_customers(self):
        return []

    def __getattr__(self, name):
        return getattr(self.balances, name)


def test_the_sweep_drains_what_a_failed_ledger_write_left_in_the_outbox():
    world = make_world()
    world.topup("ACME", 1_000_000)
    world.ledger.fail_next(times=1)
    with pytest.raises(TransientError):
        world.handle(voice_event("d1"))                     # debited in Redis, not in the ledger
    assert ("ACME", "d1") not in world.ledger.by_id

    report = sweep(world.ledger, SweepableFake(world.balances))
    again = sweep(world.ledger, SweepableFake(world.balances))

    assert report.drained >= 1 and again.drained == 0
    assert world.ledger.balance("ACME") == world.balances.account("ACME").balance_micros == 950_000


def test_a_fake_ledger_raw_read_includes_duplicates():
    ledger = FakeLedgerStore()
    entry = LedgerEntry("e1", "ACME", "debit", -1, -1, AT)
    ledger.append([entry, entry])
    assert len(list(ledger.raw_entries("ACME"))) == 2 and group_raw_rows(ledger.raw_entries())["ACME"].duplicates == 1


def test_the_balance_sweep_function_entry_point_drains_through_bootstrap(monkeypatch):
    from warp_billing import bootstrap
    from warp_billing.settings import Settings

    world = make_world()
    world.topup("ACME", 1_000_000)
    graph = bootstrap.Container(Settings(_env_file=None), balances=SweepableFake(world.balances),
                                ledger_store=world.ledger, usage_store=world.usage, plan_catalog=world.catalog,
                                clock=world.clock)
    monkeypatch.setattr(bootstrap, "_container", graph)

    report = bootstrap.balance_sweep()

    assert report == {"drained": 1, "reconciled": [], "conflicts": []}
    assert world.balances.outbox == {}
