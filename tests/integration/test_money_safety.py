"""Issue 8 fault tests: money survives Redis restores, live rebuilds, late redeliveries and dead letters.

Real components only: redis-server processes of the tests' own (killed with SIGKILL, restarted
from their dump file), the local stack's BigQuery emulator as the durable ledger and usage store
(a dataset per test), the charging service exactly as the functions call it, and the `warp` CLI
for the dead-letter replay. Each test states the money invariant it checks: 0 lost debits,
0 double charges, Redis = ledger to the micro-unit.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from datetime import date

import pytest
import redis
from click.testing import CliRunner
from tests.charging_world import POSTPAID_PLAN, World, make_world, voice_event
from tests.integration.conftest import PROJECT, RUN_ID
from tests.integration.test_redis_charging import RedisProcess, verified

from warp_billing import bootstrap
from warp_billing.adapters.bigquery_usage import BigQueryLedgerStore, BigQueryUsageStore, bigquery_client
from warp_billing.adapters.redis_balances import RedisBalances, event_key
from warp_billing.charging.accounts import MAX_MICROS, ChargeRequest, PrepaidTerms
from warp_billing.charging.errors import BalanceOutOfRange, TransientCode, TransientError
from warp_billing.charging.rebuild import PostpaidWindow, customer_reconciler, customer_terms, rebuild_balances
from warp_billing.charging.service import ChargingService, Delivery
from warp_billing.money import to_decimal, to_micros

pytestmark = pytest.mark.integration
DOLLAR = 1_000_000
CALL = 50_000                   # a 60 s call to the UK
WINDOW = PostpaidWindow(3 * 86_400, 300)


# -- fixtures: a dataset per test on the emulator, a redis-server with a dump file ------------------

@pytest.fixture
def durable(bigquery_stack):
    """(usage store, ledger store) in a BigQuery dataset of this test's own."""
    name = f"money_{RUN_ID}_{uuid.uuid4().hex[:6]}"

    def client():
        return bigquery_client(PROJECT, bigquery_stack)

    usage = BigQueryUsageStore(client, project=PROJECT, dataset=name, deadline_s=30)
    usage.ensure_schema()
    ledger = BigQueryLedgerStore(client, project=PROJECT, dataset=name, deadline_s=30)
    yield usage, ledger
    client().delete_dataset(f"{PROJECT}.{name}", delete_contents=True, not_found_ok=True)


@pytest.fixture
def node():
    process = RedisProcess().start()
    yield process
    process.stop()


def connect(node: RedisProcess) -> redis.Redis:
    return redis.Redis(port=node.port, decode_responses=True, socket_timeout=2, socket_connect_timeout=1)


def world_on(node: RedisProcess, durable, *, heal: bool, dedup_ttl_s: int = 3 * 86_400,
             max_future_skew_s: int = 300) -> World:
    """The charging service on this Redis and the BigQuery stores (heal: reconcile stale customers on demand)."""
    usage, ledger = durable
    world = make_world()
    store = RedisBalances(connect(node), dedup_ttl_s=dedup_ttl_s)
    world.balances, world.usage, world.ledger = store, usage, ledger
    reconcile = customer_reconciler(ledger, store, usage, world.catalog, dedup_ttl_s=dedup_ttl_s, window=WINDOW,
                                    clock=world.clock) if heal else None
    world.service = ChargingService(world.catalog, store, usage, ledger, world.alerts, max_event_age_s=3 * 86_400,
                                    clock=world.clock, dedup_ttl_s=dedup_ttl_s, max_future_skew_s=max_future_skew_s,
                                    reconcile=reconcile)
    store.open_account("ACME", world.clock.now_ms())
    verified(store, "BETA")
    return world


def rebuild(world: World, **options):
    terms_for, postpaid_plan_for = customer_terms(world.catalog)
    return rebuild_balances(world.ledger, world.balances, dedup_ttl_s=3 * 86_400, terms_for=terms_for,
                            postpaid_plan_for=postpaid_plan_for, usage=world.usage, window=WINDOW, clock=world.clock,
                            **options)


def raw_debits(world: World, customer: str = "ACME") -> Counter:
    """Debit movements per entry id, counted on the RAW ledger rows (distinct movements only)."""
    movements = {(e.entry_id, e.amount_micros, e.balance_after_micros) for e in world.ledger.raw_entries(customer)
                 if e.kind == "debit"}
    return Counter(entry_id for entry_id, _, _ in movements)


def ledger_sum(world: World, customer: str = "ACME") -> int:
    return sum(entry.amount_micros for entry in world.ledger.entries(customer))


def rated_rows(world: World) -> dict[str, dict]:
    return {row["event_id"]: row for row in world.usage.rated_records(date(2026, 10, 1), date(2026, 12, 31))}


def handle_until_done(world: World, event: dict, attempts: int = 5):
    """Deliver like Pub/Sub: a transient error is redelivered."""
    for _ in range(attempts):
        try:
            return world.handle(event)
        except TransientError:
            time.sleep(0.05)
    return world.handle(event)


# -- 1. a Redis restored from a snapshot ------------------------------------------------------------

def test_a_redis_restored_from_an_older_snapshot_charges_nothing_until_reconciled_then_loses_and_doubles_nothing(
        node, durable):
    world = world_on(node, durable, heal=False)
    world.topup("ACME", 10 * DOLLAR)
    events = [voice_event(f"s{n}", seconds=6 * (1 + n % 20)) for n in range(60)]
    for event in events[:20]:
        world.handle(event)
    connect(node).save()                                   # the snapshot a failover / restore goes back to
    for event in events[20:40]:                            # acknowledged after the snapshot
        world.handle(event)
    node.kill()                                            # kill -9
    node.start()                                           # restarted from the dump: 20 debits behind the ledger
    assert world.balances.account("ACME") is not None      # the stale copy is there...

    with pytest.raises(TransientError) as refused:         # ...and nothing is charged on it
        world.handle(events[40])
    assert refused.value.code is TransientCode.BALANCES_STALE

    report = rebuild(world)                                # the sweep / operator brings it up to the ledger
    for event in events[40:] + events[20:40] + events[:5]:  # keep sending; redeliver acknowledged events
        world.handle(event)

    debits = raw_debits(world)
    assert report.conflicts == [] and report.position_conflicts == []
    assert len(debits) == 60 and max(debits.values()) == 1                  # 0 lost, 0 double (raw rows)
    expected = 10 * DOLLAR - sum(to_micros(to_decimal(row["amount"])) for row in rated_rows(world).values())
    assert world.balances.account("ACME").balance_micros == ledger_sum(world) == expected
    assert world.balances.position("ACME") == report.positions["ACME"] + 20   # 1 top-up + 60 debits


def test_a_snapshot_restore_is_healed_by_the_charging_path_itself(node, durable):
    world = world_on(node, durable, heal=True)
    world.topup("ACME", DOLLAR)
    for n in range(5):
        world.handle(voice_event(f"h{n}"))
    connect(node).save()
    for n in range(5, 10):
        world.handle(voice_event(f"h{n}"))
    node.kill()
    node.start()

    handled = [world.handle(voice_event(f"h{n}")) for n in range(12)]   # 10 redeliveries, 2 new

    assert [h.duplicate for h in handled] == [True] * 10 + [False] * 2
    assert world.balances.account("ACME").balance_micros == ledger_sum(world) == DOLLAR - 12 * CALL
    assert max(raw_debits(world).values()) == 1


# -- 2. a rebuild in the middle of a stream -----------------------------------------------------------

def test_a_rebuild_in_the_middle_of_a_stream_of_10000_events_leaves_redis_equal_to_the_ledger(node, durable):
    world = world_on(node, durable, heal=False)
    world.load({**POSTPAID_PLAN, "postpaid": {"credit_limit": "100000.00", "soft_limit_pct": "80"}})
    world.topup("ACME", 10_000 * DOLLAR)
    events = [voice_event(f"m{n}", customer=("ACME", "BETA")[n % 3 == 0], seconds=1 + n % 300) for n in range(10_000)]
    batches = [events[i:i + 250] for i in range(0, len(events), 250)]
    halfway = threading.Event()
    failures: list[BaseException] = []
    retried = Counter()
    done = Counter()

    def stream():
        try:
            for number, batch in enumerate(batches):
                pending = [Delivery.of_event(event) for event in batch]
                while pending:
                    outcomes = world.service.handle_batch(pending)
                    retry = [d for d, o in zip(pending, outcomes, strict=True) if isinstance(o, TransientError)]
                    retried["items"] += len(retry)
                    pending = retry
                    if retry:
                        time.sleep(0.02)
                done["batches"] += 1
                if number == len(batches) // 2:
                    halfway.set()
        except BaseException as exc:  # reported below
            failures.append(exc)
            halfway.set()

    streamer = threading.Thread(target=stream)
    streamer.start()
    halfway.wait(600)
    at_start = done["batches"]
    report = rebuild(world)                                # while events keep flowing
    streamer.join(900)

    assert at_start < len(batches)                         # the rebuild really ran mid-stream
    assert failures == [] and not streamer.is_alive()
    assert report.conflicts == [] and report.busy == [] and report.lost == []
    rows = rated_rows(world)
    assert len(rows) == 10_000
    acme_rated = sum(to_micros(to_decimal(r["amount"])) for r in rows.values() if r["customer_id"] == "ACME")
    assert world.balances.account("ACME").balance_micros == ledger_sum(world) == 10_000 * DOLLAR - acme_rated
    assert max(raw_debits(world).values()) == 1
    beta_rated = sum(to_micros(to_decimal(r["amount"])) for r in rows.values() if r["customer_id"] == "BETA")
    assert world.balances.cycle_total("BETA", "2026-11-01")[0] == beta_rated


# -- 3. ids that look like another namespace's key ------------------------------------------------------

@pytest.mark.parametrize("event_id, why", [
    ("topup:PAY1", "reserved for topup"), ("e1#recharge", "reserved for auto-recharge"),
    ("x" * 10_000, "10000 characters"), ("e 1", "whitespace ' '"), ("e\t1", "whitespace '\\t'"),
], ids=["topup-prefix", "recharge-suffix", "10k-characters", "space", "tab"])
def test_an_event_id_shaped_like_another_key_is_refused_and_the_topup_is_booked_once(node, durable, event_id, why):
    world = world_on(node, durable, heal=False)
    sent_before = world.handle(voice_event(event_id))      # sent BEFORE the top-up it imitates
    world.topup("ACME", DOLLAR, topup_id="PAY1")
    sent_after = world.handle(voice_event(event_id))

    assert (sent_before.status, sent_before.reason) == ("rejected", "BAD_FIELD")
    assert sent_after.status == "rejected"
    details = [r["detail"] for r in world.usage.reject_records(date(2026, 11, 1), date(2026, 11, 30))]
    assert details and all(why in detail for detail in details)
    entries = list(world.ledger.raw_entries("ACME"))
    assert [(e.entry_id, e.kind, e.amount_micros) for e in entries] == [("topup:PAY1", "topup", DOLLAR)]
    assert world.balances.account("ACME").balance_micros == DOLLAR


def test_an_event_and_a_topup_with_the_same_text_id_are_each_booked_exactly_once(node, durable):
    world = world_on(node, durable, heal=False)
    first = world.handle(voice_event("PAY1"))              # an event whose id is the top-up's id text
    world.topup("ACME", DOLLAR, topup_id="PAY1")
    world.topup("ACME", DOLLAR, topup_id="PAY1")           # the operator runs it twice
    world.handle(voice_event("PAY1"))                      # the event is redelivered
    charged = world.handle(voice_event("PAY2"))

    kinds = Counter((e.entry_id, e.kind) for e in world.ledger.entries("ACME"))
    assert first.status == "rejected" and first.reason == "INSUFFICIENT_BALANCE"   # decided, no money yet
    assert kinds == {("topup:PAY1", "topup"): 1, ("PAY2", "debit"): 1}
    assert charged.status == "rated"
    assert world.balances.account("ACME").balance_micros == DOLLAR - CALL == ledger_sum(world)


def test_an_event_id_with_a_closing_brace_stays_in_its_customers_slot_and_namespace(node, durable):
    world = world_on(node, durable, heal=False)
    world.topup("ACME", DOLLAR)
    assert world.handle(voice_event("a}b{c")).status == "rated"
    assert world.handle(voice_event("a}b{c")).duplicate
    keys = connect(node).keys("warp:*")
    assert event_key("ACME", "a}b{c") in keys
    assert all(key.startswith("warp:{ACME}:") or key.startswith("warp:{BETA}:") for key in keys)
    assert world.balances.account("ACME").balance_micros == DOLLAR - CALL == ledger_sum(world)


# -- 4. dedup beyond the Redis window -----------------------------------------------------------------

def test_redelivery_after_the_dedup_window_a_future_dated_event_and_a_replay_charge_nothing_twice(node, durable):
    world = world_on(node, durable, heal=False, dedup_ttl_s=2, max_future_skew_s=1)
    world.topup("ACME", DOLLAR)
    assert world.handle(voice_event("w1")).status == "rated"
    future = world.handle(voice_event("w2", start="2099-01-01T00:00:00Z"))
    time.sleep(2.5)                                        # every dedup mark has expired
    assert connect(node).exists(event_key("ACME", "w1")) == 0

    redelivered = world.handle(voice_event("w1"))
    replayed = world.service.handle(Delivery.of_event(voice_event("w1")), replay=True)
    batch = world.service.handle_batch([Delivery.of_event(voice_event("w1"))], replay=True)
    future_again = world.handle(voice_event("w2", start="2099-01-01T00:00:00Z"))

    assert (redelivered.duplicate, replayed.duplicate, batch[0].duplicate) == (True, True, True)
    assert (future.reason, future_again.reason) == ("EVENT_IN_FUTURE", "EVENT_IN_FUTURE")
    assert raw_debits(world) == {"w1": 1}
    assert world.balances.account("ACME").balance_micros == DOLLAR - CALL == ledger_sum(world)


# -- 5. a dead letter after the debit, then the replay of the dead-letter file ---------------------------

class LedgerDown:
    """The durable ledger refusing appends (a BigQuery outage) while ``down``; reads pass through."""

    def __init__(self, ledger):
        self.ledger, self.down = ledger, True

    def append(self, entries):
        if self.down:
            raise TransientError(TransientCode.LEDGER_STORE_UNAVAILABLE, "the ledger store is down")
        return self.ledger.append(entries)

    def __getattr__(self, name):
        return getattr(self.ledger, name)


def test_a_message_dead_lettered_after_its_debit_is_completed_by_the_replay_and_never_refunded(
        node, durable, tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    import pubsub_relay

    world = world_on(node, durable, heal=False)
    world.topup("ACME", DOLLAR)
    ledger = world.ledger
    world.service.ledger = LedgerDown(ledger)
    event = voice_event("d1")
    request = pubsub_relay.push_request("usage-voice", json.dumps(event).encode(), project=PROJECT)
    for _ in range(5):                                     # every delivery fails after the Redis debit
        with pytest.raises(TransientError):
            world.handle(event)
    dead = tmp_path / "usage-voice.dead-letter.jsonl"
    pubsub_relay.DeadLetterFile(dead, PROJECT, "usage-voice").write(request, 5, "500")
    world.service.ledger = ledger

    report = rebuild(world)                                # before the replay: the outbox makes it whole
    assert report.balances["ACME"] == DOLLAR - CALL and raw_debits(world) == {"d1": 1}

    from warp_billing.settings import Settings

    graph = bootstrap.Container(Settings(), balances=world.balances, ledger_store=ledger, usage_store=world.usage,
                                plan_catalog=world.catalog, alert_publisher=world.alerts, clock=world.clock,
                                charging=world.service)
    monkeypatch.setattr(bootstrap, "container", lambda: graph)
    from warp_billing.cli import main as warp

    result = CliRunner().invoke(warp, ["rejects", "replay", str(dead)], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert "rated: 1" in result.output
    assert "d1" in rated_rows(world)
    assert raw_debits(world) == {"d1": 1}
    assert rebuild(world).balances["ACME"] == DOLLAR - CALL == world.balances.account("ACME").balance_micros


# -- 6. postpaid: Redis killed at 4.00 of a 5.00 limit ------------------------------------------------------

def test_the_postpaid_credit_limit_still_holds_after_redis_loses_the_running_total(node, durable):
    world = world_on(node, durable, heal=True)
    world.load({**POSTPAID_PLAN, "postpaid": {"credit_limit": "5.00", "soft_limit_pct": "80"}})
    dollar_calls = [voice_event(f"p{n}", customer="BETA", seconds=1200) for n in range(7)]   # 1.00 each
    for event in dollar_calls[:4]:
        assert world.handle(event).status == "rated"
    assert world.balances.cycle_total("BETA", "2026-11-01")[0] == 4 * DOLLAR
    node.kill()
    node.start()                                           # no persistence: the total is gone

    outcomes = [handle_until_done(world, event) for event in dollar_calls[4:]]

    redelivered = [world.handle(event) for event in dollar_calls[:4]]   # acknowledged before the loss

    assert [o.status for o in outcomes] == ["rated", "rejected", "rejected"]
    assert {o.reason for o in outcomes[1:]} == {"CREDIT_LIMIT"}
    assert all(o.duplicate for o in redelivered)
    rows = rated_rows(world)
    assert sum(to_micros(to_decimal(r["amount"])) for r in rows.values()) == 5 * DOLLAR
    assert world.balances.cycle_total("BETA", "2026-11-01")[0] == 5 * DOLLAR


def test_an_unknown_postpaid_total_is_refused_not_started_from_zero(node, durable):
    world = world_on(node, durable, heal=False)
    world.handle(voice_event("q1", customer="BETA"))
    connect(node).flushall()

    with pytest.raises(TransientError) as refused:
        world.handle(voice_event("q2", customer="BETA"))

    assert refused.value.code is TransientCode.BALANCES_STALE
    rebuild(world, customers=["BETA"])
    assert world.handle(voice_event("q2", customer="BETA")).status == "rated"
    assert world.balances.cycle_total("BETA", "2026-11-01")[0] == 2 * CALL


# -- 7. the exact-integer bound ------------------------------------------------------------------------------

def test_balances_and_amounts_stay_exact_and_are_refused_past_the_bound(node):
    store = RedisBalances(connect(node), dedup_ttl_s=3600)
    terms = PrepaidTerms()
    store.open_account("BIG", 0)
    with pytest.raises(BalanceOutOfRange, match="2\\*\\*50"):
        store.credit("BIG", "topup:2p53", 2**53, "topup", "", 0, terms)
    store.credit("BIG", "topup:max", MAX_MICROS - 1, "topup", "", 0, terms)
    with pytest.raises(BalanceOutOfRange, match="past"):
        store.credit("BIG", "topup:over", 2, "topup", "", 0, terms)
    store.credit("BIG", "topup:micro", 1, "topup", "", 0, terms)             # exactly at the bound: kept to the unit
    assert store.account("BIG").balance_micros == MAX_MICROS
    for n in range(8):                                                        # 2^53 in total would be inexact: refused
        with pytest.raises(BalanceOutOfRange):
            store.credit("BIG", f"topup:more{n}", MAX_MICROS, "topup", "", 0, terms)
    charged = store.charge(ChargeRequest("BIG", "e1", 1, 0, "voice", "v1", terms))
    assert charged.balance_micros == MAX_MICROS - 1 == store.account("BIG").balance_micros
    with pytest.raises(BalanceOutOfRange):
        store.charge(ChargeRequest("BIG", "e2", 2**53 + 1, 0, "voice", "v1", terms))
