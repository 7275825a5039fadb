"""Prepaid and postpaid charging against a real redis-server started for these tests.

Covers the Lua scripts' semantics (dedup returns the original result, one charge under
concurrent duplicate deliveries, balance floor, alerts once per crossing, suspension after
the notice, idempotent top-ups, auto-recharge, credit limits), the cluster-safe key layout
(CRC16 slots computed here, and a real single-node Redis Cluster), a Redis restart in the
middle of a stream followed by a rebuild from the ledger, and a crash between the debit and
the usage write followed by the redelivery.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import replace

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.charging_world import World, make_world, voice_event
from tests.fakes import FakeBalances

from warp_billing.adapters.redis_balances import (
    AccountNotLoaded,
    BalancesUnavailable,
    RedisBalances,
    account_key,
    credit_key,
    cycle_key,
    decode_result,
    encode_result,
    event_key,
    ledger_key,
)
from warp_billing.adapters.redis_holds import RedisAccountHolds
from warp_billing.charging.accounts import AccountImage, AlertCode, ChargeRequest, PostpaidTerms, PrepaidTerms
from warp_billing.charging.errors import LedgerConflict, TransientCode, TransientError
from warp_billing.charging.rebuild import PostpaidWindow, customer_reconciler, rebuild_balances
from warp_billing.charging.service import ChargingService, Delivery
from warp_billing.dunning.holds import AccountHold

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="needs the redis-server binary")]
DOLLAR = 1_000_000
CALL = 50_000
NOW = 1_793_750_400_000


# -- a redis-server of our own ----------------------------------------------------------------

def free_port(cluster_bus: bool = False) -> int:
    """A free local port; for a cluster node also its bus port (port + 10000, so below 55536)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if not cluster_bus:
            return port
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket() as bus:
                bus.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue


class RedisProcess:
    """A throw-away redis-server (no persistence) that a test can kill and start again."""

    def __init__(self, *extra: str):
        self.port = free_port(cluster_bus="--cluster-enabled" in extra)
        self.extra = extra
        self.folder = tempfile.mkdtemp(prefix="warp-redis-")
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisProcess:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.folder, *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port).ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server():
    process = RedisProcess().start()
    yield process
    process.stop()


@pytest.fixture
def client(server):
    connection = redis.Redis(port=server.port, decode_responses=True, socket_timeout=2)
    connection.flushall()
    yield connection
    connection.close()


@pytest.fixture
def store(client) -> RedisBalances:
    return RedisBalances(client, dedup_ttl_s=3 * 86_400, ledger_stream_maxlen=1000)


@pytest.fixture
def world(store) -> World:
    """The charging service on real Redis, with fake usage/ledger/alert stores."""
    return on_redis(make_world(), store)


def on_redis(world: World, store: RedisBalances, *, heal: bool = True) -> World:
    """The world's service on Redis; ``heal``: a stale / missing customer is reconciled from the ledger on demand."""
    world.balances = store
    reconcile = customer_reconciler(world.ledger, store, world.usage, world.catalog, dedup_ttl_s=3 * 86_400,
                                    window=PostpaidWindow(3 * 86_400, 300), clock=world.clock) if heal else None
    world.service = ChargingService(world.catalog, store, world.usage, world.ledger, world.alerts,
                                    max_event_age_s=3 * 86_400, clock=world.clock, reconcile=reconcile)
    store.open_account("ACME", world.clock.now_ms())
    return world


def verified(store: RedisBalances, *customers: str) -> RedisBalances:
    """Mark customers with no history as reconciled on this server (what a reconcile of nothing does)."""
    token, busy = store.fence(customers, 60)
    assert not busy and all(store.release(AccountImage(customer), token) for customer in customers)
    return store


def debit(customer="ACME", entry="e1", amount=CALL, at=NOW, terms=PrepaidTerms(), replay=False) -> ChargeRequest:
    return ChargeRequest(customer, entry, amount, at, "voice", "v1", terms, replay)


# -- the key layout -----------------------------------------------------------------------------

def crc16_xmodem(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), the checksum Redis Cluster uses for key slots."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key: str) -> int:
    """HASH_SLOT as the Redis Cluster specification defines it (hash tags included)."""
    raw = key.encode()
    start = raw.find(b"{")
    if start >= 0:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1:end]
    return crc16_xmodem(raw) % 16384


def test_the_slot_function_matches_the_redis_cluster_specification():
    assert crc16_xmodem(b"123456789") == 0x31C3
    assert key_slot("foo") == 12182 and key_slot("{user1000}.following") == key_slot("{user1000}.followers")


def test_every_key_a_customer_uses_is_in_one_cluster_slot(world, client):
    world.topup("ACME", DOLLAR)
    world.handle(voice_event("e1"))
    world.handle(voice_event("p1", customer="BETA"))
    world.balances.credit("ACME", "topup:x", 5, "topup", "", NOW, PrepaidTerms())

    keys = client.keys("warp:*")
    by_customer: dict[str, set[int]] = {}
    for key in keys:
        by_customer.setdefault(key.split("}")[0][6:], set()).add(key_slot(key))
    assert set(by_customer) == {"ACME", "BETA"}
    assert all(len(slots) == 1 for slots in by_customer.values())
    assert {key_slot(k("ACME")) for k in (account_key, ledger_key, lambda c: event_key(c, "any:id#x"),
                                          lambda c: cycle_key(c, "2026-11-01"))} == by_customer["ACME"]


def test_the_scripts_and_the_pipelined_batch_run_on_a_real_redis_cluster():
    node = RedisProcess("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf").start()
    try:
        admin = redis.Redis(port=node.port, decode_responses=True)
        admin.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        deadline = time.monotonic() + 15
        while admin.cluster("info")["cluster_state"] != "ok":
            assert time.monotonic() < deadline, "the one-node cluster did not come up"
            time.sleep(0.1)
        assert admin.execute_command("CLUSTER", "KEYSLOT", account_key("ACME")) == key_slot(account_key("ACME"))
        cluster = redis.RedisCluster(host="127.0.0.1", port=node.port, decode_responses=True)
        world = on_redis(make_world(), RedisBalances(cluster, dedup_ttl_s=3600))
        world.topup("ACME", DOLLAR)

        assert world.handle(voice_event("e1")).status == "rated"
        assert world.handle(voice_event("e1")).duplicate
        assert world.handle(voice_event("p1", customer="BETA")).status == "rated"
        batch = [Delivery.of_event(voice_event(f"b{n}", customer=("ACME", "BETA")[n % 2])) for n in range(20)]
        outcomes = world.service.handle_batch(batch + batch[:5])      # pipelined per node, with repeats
        assert [o.status for o in outcomes] == ["rated"] * 25 and [o.duplicate for o in outcomes[20:]] == [True] * 5
        assert world.balances.account("ACME").balance_micros == DOLLAR - 11 * CALL == world.ledger.balance("ACME")
        cluster.close()
    finally:
        node.stop()


# -- Lua semantics ------------------------------------------------------------------------------

def test_a_redelivered_event_gets_the_original_stored_result(store):
    store.credit("ACME", "topup:t1", DOLLAR, "topup", "", NOW, PrepaidTerms())
    first = store.charge(debit())
    second = store.charge(debit(at=NOW + 5000, amount=999))       # a different answer would be a bug

    assert (first.duplicate, second.duplicate) == (False, True)
    assert replace(second, duplicate=False) == first
    assert store.account("ACME").balance_micros == DOLLAR - CALL


def test_concurrent_duplicate_deliveries_from_threads_charge_once(world):
    world.topup("ACME", 100 * DOLLAR)
    events = [voice_event(f"e{n}") for n in range(40)]
    errors = []

    def deliver_all():
        try:
            for event in events:
                world.service.handle(Delivery.of_event(event))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver_all) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert world.balances.account("ACME").balance_micros == 100 * DOLLAR - 40 * CALL == world.ledger.balance("ACME")
    assert len(world.usage.rated) == 40
    assert sum(1 for entry in world.ledger.rows if entry.kind == "debit") >= 40   # appended again, kept once


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 3 * DOLLAR), min_size=1, max_size=40), st.integers(0, 5 * DOLLAR))
def test_the_balance_never_goes_below_zero_by_more_than_one_charge(client, amounts, funds):
    client.flushall()
    store = RedisBalances(client, dedup_ttl_s=3600)
    if funds:
        store.credit("ACME", "topup:t", funds, "topup", "", NOW, PrepaidTerms())
    else:
        store.open_account("ACME", NOW)
    lowest = funds
    for number, amount in enumerate(amounts):
        result = store.charge(debit(entry=f"e{number}", amount=amount))
        before = result.balance_micros + (amount if result.charged else 0)
        assert result.charged == (amount == 0 or before > 0)
        lowest = min(lowest, result.balance_micros)
    assert lowest >= -max(amounts)


def test_low_balance_is_alerted_once_per_crossing(store):
    terms = PrepaidTerms(low_balance_threshold_micros=DOLLAR)
    store.credit("ACME", "topup:t1", 2 * DOLLAR, "topup", "", NOW, terms)
    alerts = []
    for number in range(30):
        alerts += store.charge(debit(entry=f"a{number}", terms=terms)).alerts
    store.credit("ACME", "topup:t2", 2 * DOLLAR, "topup", "", NOW, terms)
    for number in range(40):
        alerts += store.charge(debit(entry=f"b{number}", terms=terms)).alerts

    assert [alert.code for alert in alerts] == [AlertCode.LOW_BALANCE, AlertCode.LOW_BALANCE]


def test_exhaustion_starts_the_notice_and_after_it_traffic_is_refused_suspended(store):
    terms = PrepaidTerms(suspend_after_s=24 * 3600)
    store.credit("ACME", "topup:t1", CALL, "topup", "", NOW, terms)

    exhausted = store.charge(debit(entry="e1", terms=terms))
    during = store.charge(debit(entry="e2", terms=terms, at=NOW + 3600_000))
    unanswered = store.charge(debit(entry="e3", amount=0, terms=terms, at=NOW + 3600_000))
    after = store.charge(debit(entry="e4", amount=0, terms=terms, at=NOW + 24 * 3600_000))
    later = store.charge(debit(entry="e5", terms=terms, at=NOW + 25 * 3600_000))

    assert [a.code for a in exhausted.alerts] == [AlertCode.SUSPEND_PENDING]
    assert exhausted.deadline_ms == NOW + 24 * 3600_000
    assert (during.reason.value, unanswered.charged) == ("INSUFFICIENT_BALANCE", True)
    assert (after.reason.value, later.reason.value) == ("SUSPENDED", "SUSPENDED")
    assert [a.code for a in after.alerts] == [AlertCode.SUSPENDED] and later.alerts == ()
    topped = store.credit("ACME", "topup:t2", DOLLAR, "topup", "", NOW + 26 * 3600_000, terms)
    assert topped.deadline_ms is None and store.account("ACME").suspend_at_ms is None
    assert store.charge(debit(entry="e6", terms=terms, at=NOW + 26 * 3600_000)).charged


def test_a_topup_is_idempotent_by_its_id_and_a_reused_id_with_another_amount_is_refused(store, client):
    first = store.credit("ACME", "topup:pay-1", 7 * DOLLAR, "topup", "card", NOW, PrepaidTerms())
    again = store.credit("ACME", "topup:pay-1", 7 * DOLLAR, "topup", "card", NOW + 1, PrepaidTerms())

    assert (first.duplicate, again.duplicate) == (False, True) and again.entries == first.entries
    assert store.account("ACME").balance_micros == 7 * DOLLAR
    assert client.ttl(credit_key("ACME", "topup:pay-1")) == -1          # kept for ever
    with pytest.raises(LedgerConflict):
        store.credit("ACME", "topup:pay-1", 8 * DOLLAR, "topup", "card", NOW, PrepaidTerms())


def test_auto_recharge_books_one_entry_below_the_trigger(store):
    terms = PrepaidTerms(recharge_below_micros=DOLLAR, recharge_amount_micros=10 * DOLLAR)
    store.credit("ACME", "topup:t1", DOLLAR + CALL // 2, "topup", "", NOW, terms)

    result = store.charge(debit(entry="e1", terms=terms))

    debit_entry, recharge = result.entries
    assert (debit_entry.kind, debit_entry.balance_after_micros) == ("debit", DOLLAR - CALL // 2)
    assert (recharge.entry_id, recharge.kind, recharge.amount_micros) == ("e1#recharge", "auto_recharge", 10 * DOLLAR)
    assert result.balance_micros == 11 * DOLLAR - CALL // 2 == recharge.balance_after_micros
    assert [a.code for a in result.alerts] == [AlertCode.AUTO_RECHARGE]


def test_auto_recharge_before_the_debit_saves_an_exhausted_account(store):
    terms = PrepaidTerms(recharge_below_micros=CALL, recharge_amount_micros=DOLLAR)
    store.open_account("ACME", NOW)

    result = store.charge(debit(entry="e1", terms=terms))

    assert result.charged and [e.kind for e in result.entries] == ["auto_recharge", "debit"]
    assert result.entries[0].balance_after_micros == DOLLAR and result.balance_micros == DOLLAR - CALL


def test_postpaid_totals_per_cycle_with_soft_alert_and_hard_refusal(store, client):
    terms = PostpaidTerms("2026-11-01", credit_limit_micros=10 * CALL, soft_limit_micros=8 * CALL)
    verified(store, "BETA")
    results = [store.charge(debit("BETA", f"p{n}", terms=terms)) for n in range(12)]
    again = store.charge(debit("BETA", "p3", terms=terms))

    assert [r.charged for r in results] == [True] * 10 + [False] * 2
    assert {r.reason.value for r in results[10:]} == {"CREDIT_LIMIT"}
    assert [a.code for r in results for a in r.alerts] == [AlertCode.CREDIT_SOFT_LIMIT, AlertCode.CREDIT_LIMIT_REACHED]
    assert again.duplicate and store.cycle_total("BETA", "2026-11-01") == (10 * CALL, 10)
    assert 0 < client.ttl(cycle_key("BETA", "2026-11-01")) <= 100 * 86_400


def test_a_refusal_is_decided_again_only_on_an_operator_replay(store):
    store.open_account("ACME", NOW)
    refused = store.charge(debit(entry="e1"))
    store.credit("ACME", "topup:t1", DOLLAR, "topup", "", NOW, PrepaidTerms())

    redelivered = store.charge(debit(entry="e1"))
    replayed = store.charge(debit(entry="e1", replay=True))
    replayed_again = store.charge(debit(entry="e1", replay=True))

    assert (refused.charged, redelivered.charged, redelivered.duplicate) == (False, False, True)
    assert (replayed.charged, replayed_again.duplicate) == (True, True)
    assert store.account("ACME").balance_micros == DOLLAR - CALL


def test_a_missing_account_is_reported_not_created(store, client):
    with pytest.raises(AccountNotLoaded):
        store.charge(debit(customer="GHOST"))
    assert client.exists(account_key("GHOST")) == 0


def test_large_balances_stay_exact_to_the_micro_unit(store):
    huge = 2**50 - 3
    store.credit("ACME", "topup:big", huge, "topup", "", NOW, PrepaidTerms())

    result = store.charge(debit(entry="e1", amount=1))

    assert result.balance_micros == huge - 1 and store.account("ACME").balance_micros == huge - 1


def test_the_dedup_mark_expires_after_the_dedup_window(store, client):
    store.credit("ACME", "topup:t1", DOLLAR, "topup", "", NOW, PrepaidTerms())
    store.charge(debit())

    assert 3 * 86_400 - 5 < client.ttl(event_key("ACME", "e1")) <= 3 * 86_400


def test_the_recent_ledger_stream_holds_the_entries(store):
    store.credit("ACME", "topup:t1", DOLLAR, "topup", "card", NOW, PrepaidTerms())
    store.charge(debit())

    newest, oldest = store.recent_ledger("ACME", 5)
    assert (newest.entry_id, newest.amount_micros, oldest.entry_id) == ("e1", -CALL, "topup:t1")


def test_a_pipelined_batch_decides_exactly_as_one_call_at_a_time(client):
    terms = PrepaidTerms(low_balance_threshold_micros=DOLLAR, recharge_below_micros=CALL,
                         recharge_amount_micros=DOLLAR // 2)
    requests = [debit(entry=f"e{n % 37}", amount=(n * 7919) % (3 * CALL), terms=terms, at=NOW + n) for n in range(80)]
    answers = []
    for pipelined in (False, True):
        client.flushall()
        store = RedisBalances(client, dedup_ttl_s=3600)
        store.credit("ACME", "topup:t1", 2 * DOLLAR, "topup", "", NOW, terms)
        results = store.charge_many(requests) if pipelined else [store.charge(r) for r in requests]
        answers.append((results, store.account("ACME")))

    assert answers[0] == answers[1]


def test_a_stored_result_survives_encoding_for_the_rebuild(store):
    terms = PrepaidTerms(recharge_below_micros=DOLLAR, recharge_amount_micros=DOLLAR)
    store.credit("ACME", "topup:t1", DOLLAR, "topup", "", NOW, terms)
    result = store.charge(debit(terms=terms))

    again = decode_result(encode_result(replace(result, alerts=())), "ACME", "e1", "voice", duplicate=False)

    assert again.entries == result.entries and again.balance_micros == result.balance_micros


# -- the fake agrees with the scripts -------------------------------------------------------------

steps = st.lists(st.one_of(
    st.tuples(st.just("debit"), st.integers(0, 9), st.integers(0, 400_000), st.integers(0, 30)),
    st.tuples(st.just("replay"), st.integers(0, 9), st.integers(0, 400_000), st.integers(0, 30)),
    st.tuples(st.just("topup"), st.integers(0, 3), st.integers(1, 900_000), st.integers(0, 30)),
    st.tuples(st.just("postpaid"), st.integers(0, 9), st.integers(0, 400_000), st.integers(0, 1)),
    st.tuples(st.just("hold"), st.integers(0, 1), st.integers(0, 1), st.integers(0, 30)),
), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps, st.booleans())
def test_the_fake_balance_store_behaves_like_the_lua_scripts(client, script, recharge):
    client.flushall()
    real, fake = RedisBalances(client, dedup_ttl_s=3600), FakeBalances()
    holds = RedisAccountHolds(client)
    terms = PrepaidTerms(low_balance_threshold_micros=500_000, suspend_after_s=7200,
                         recharge_below_micros=100_000 if recharge else None,
                         recharge_amount_micros=300_000 if recharge else None)
    postpaid = PostpaidTerms("2026-11-01", credit_limit_micros=1_000_000, soft_limit_micros=600_000)
    topups: dict[int, int] = {}
    for store in (real, fake):
        store.open_account("ACME", NOW)
    verified(real, "BETA")
    for operation, key, drawn, hours in script:
        at = NOW + hours * 3600_000
        amount = topups.setdefault(key, drawn) if operation == "topup" else drawn
        if operation == "hold":        # dunning suspends (drawn 1) or reinstates (0) ACME (key 0) or BETA
            customer = ("ACME", "BETA")[key]
            if drawn:
                holds.suspend(AccountHold(customer, at, "INV-1"))
                fake.held.add(customer)
            else:
                holds.reinstate(customer)
                fake.held.discard(customer)
            continue
        if operation == "topup":
            answers = [s.credit("ACME", f"topup:{key}", amount, "topup", "", at, terms) for s in (real, fake)]
        else:
            request = debit("ACME" if operation != "postpaid" else "BETA", f"e{key}", amount, at,
                            terms if operation != "postpaid" else postpaid, replay=operation == "replay")
            answers = [s.charge(request) for s in (real, fake)]
        assert answers[0] == answers[1], (operation, key, amount, hours)
    assert real.account("ACME").balance_micros == fake.account("ACME").balance_micros


# -- failures: Redis restarted mid-stream, a crash between debit and usage write ------------------

def test_redis_restarted_mid_stream_then_rebuilt_from_the_ledger_charges_nothing_twice():
    node = RedisProcess().start()
    try:
        client = redis.Redis(port=node.port, decode_responses=True, socket_timeout=1, socket_connect_timeout=1)
        world = on_redis(make_world(), RedisBalances(client, dedup_ttl_s=3 * 86_400), heal=False)
        world.topup("ACME", 10 * DOLLAR)
        events = [voice_event(f"e{n}", seconds=6 * (1 + n % 20)) for n in range(60)]
        for event in events[:40]:
            world.handle(event)
        before = world.balances.account("ACME").balance_micros

        node.kill()
        with pytest.raises(TransientError) as down:
            world.handle(events[40])
        assert isinstance(down.value, BalancesUnavailable)

        node.start()                                        # back, but empty (no persistence)
        with pytest.raises(TransientError) as empty:
            world.handle(events[40])
        assert empty.value.code is TransientCode.ACCOUNT_NOT_LOADED

        report = rebuild_balances(world.ledger, world.balances, dedup_ttl_s=3 * 86_400, clock=world.clock,
                                  terms_for=lambda customer: world.catalog.current(customer).prepaid)
        assert report.balances == {"ACME": before} == {"ACME": world.ledger.balance("ACME")}

        for event in events:                                # Pub/Sub redelivers the whole stream
            world.handle(event)
        charged = [entry for entry in world.ledger.by_id.values() if entry.kind == "debit"]
        assert len(charged) == len(world.usage.rated) == 60
        assert world.balances.account("ACME").balance_micros == world.ledger.balance("ACME")
        assert world.balances.account("ACME").balance_micros == 10 * DOLLAR - sum(-e.amount_micros for e in charged)
        client.close()
    finally:
        node.stop()


def test_a_crash_between_debit_and_usage_write_then_redelivery_charges_once_and_keeps_one_row(world):
    world.topup("ACME", DOLLAR)
    world.usage.fail_next()

    with pytest.raises(TransientError):
        world.handle(voice_event("e1"))
    after_crash = world.balances.account("ACME").balance_micros
    redelivered = world.handle(voice_event("e1"))
    once_more = world.handle(voice_event("e1"))

    assert after_crash == DOLLAR - CALL == world.balances.account("ACME").balance_micros
    assert (redelivered.duplicate, once_more.duplicate) == (True, True)
    assert list(world.usage.rated) == ["e1"] and world.usage.rated["e1"]["amount"] == "0.050000"
    assert world.ledger.balance("ACME") == DOLLAR - CALL


def test_rebuild_keeps_topups_idempotent_and_recent_debits_deduplicated(world):
    world.topup("ACME", 2 * DOLLAR, topup_id="pay-1")
    for number in range(5):
        world.handle(voice_event(f"e{number}"))
    world.balances.client.flushall()

    rebuild_balances(world.ledger, world.balances, dedup_ttl_s=3 * 86_400, clock=world.clock)

    assert world.handle(voice_event("e3")).duplicate
    again = world.balances.credit("ACME", "topup:pay-1", 2 * DOLLAR, "topup", "", NOW, PrepaidTerms())
    assert again.duplicate
    assert world.balances.account("ACME").balance_micros == 2 * DOLLAR - 5 * CALL


def test_an_unreachable_redis_is_transient_for_reads_too():
    client = redis.Redis(port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)
    store = RedisBalances(client, dedup_ttl_s=60)

    with pytest.raises(BalancesUnavailable):
        store.prior_result("ACME", "e1", "voice")
    with pytest.raises(BalancesUnavailable):
        store.charge_many([debit()])


# -- the round trip: one per charge, the server run_id read once per connection --------------------

def test_a_charge_is_one_round_trip_with_no_info_and_no_script_exists_per_call(store, client, monkeypatch):
    verified(store, "ACME")
    store.credit("ACME", "topup:rt", 100 * DOLLAR, "topup", "", NOW, PrepaidTerms())
    store.charge(debit(entry="warm-up"))            # the store's connection has read its run_id
    client.config_resetstat()
    sends = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counted(connection, command, check_health=True):
        sends.append(command)
        return original(connection, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    for number in range(40):
        store.persisted([], [("ACME", f"p{number}")], deferred=True)   # an outbox clear rides with the charge
        store.charge(debit(entry=f"rt{number}"))
    store.charge_many([debit(entry=f"batch{number}") for number in range(25)])
    monkeypatch.undo()
    stats = client.info("commandstats")

    assert len(sends) == 40 + 1                     # one write (one round trip) per charge and per batch
    assert stats["cmdstat_evalsha"]["calls"] == 40 + 25
    assert "cmdstat_script|exists" not in stats and "cmdstat_script" not in stats
    assert "cmdstat_info" not in stats              # the run_id is not read per call


def test_scripts_missing_on_the_server_are_loaded_and_the_calls_sent_again(store, client):
    verified(store, "ACME")
    store.credit("ACME", "topup:ns", DOLLAR, "topup", "", NOW, PrepaidTerms())
    client.script_flush()                           # what a restarted or new server looks like to EVALSHA

    first = store.charge(debit(entry="ns1"))
    client.script_flush()
    batch = store.charge_many([debit(entry="ns2"), debit(entry="ns1"), debit(entry="ns3")])

    assert first.charged and not first.duplicate
    assert [(result.charged, result.duplicate) for result in batch] == [(True, False), (True, True), (True, False)]
    assert store.account("ACME").balance_micros == DOLLAR - 3 * CALL


def test_each_thread_keeps_one_connection_for_its_charges_instead_of_one_pool_checkout_per_charge(store, client):
    verified(store, "ACME")
    store.credit("ACME", "topup:held", 100 * DOLLAR, "topup", "", NOW, PrepaidTerms())
    pool = client.connection_pool
    taken = []
    original = pool.get_connection

    def counted(*args, **kwargs):
        taken.append(threading.get_ident())
        return original(*args, **kwargs)

    pool.get_connection = counted
    try:
        def work(thread: int) -> None:
            for number in range(30):
                store.charge(debit(entry=f"held-{thread}-{number}"))
            store.charge_many([debit(entry=f"held-batch-{thread}-{number}") for number in range(10)])

        workers = [threading.Thread(target=work, args=(thread,)) for thread in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        del pool.get_connection
    assert len(taken) == 4 and len(set(taken)) == 4        # one checkout per thread, not per charge
    gc.collect()                                            # the 4 threads ended: their connections are back
    assert len(pool._in_use_connections) == 1               # only this (main) thread still holds one
    assert store.account("ACME").balance_micros == 100 * DOLLAR - 4 * 40 * CALL


def test_a_connection_the_server_dropped_is_replaced_and_the_charge_answers_once(store, client):
    verified(store, "ACME")
    store.credit("ACME", "topup:kill", DOLLAR, "topup", "", NOW, PrepaidTerms())
    store.charge(debit(entry="before-kill"))
    client.client_kill_filter(_type="normal", skipme=True)   # every other connection: the store's held one
    after = store.charge(debit(entry="after-kill"))
    again = store.charge(debit(entry="after-kill"))

    assert after.charged and not after.duplicate and again.duplicate
    assert store.account("ACME").balance_micros == DOLLAR - 2 * CALL


def test_a_forked_child_never_writes_on_the_connection_its_parent_holds(store, client, monkeypatch):
    from warp_billing.adapters import redis_round_trip

    verified(store, "ACME")
    store.credit("ACME", "topup:fork", DOLLAR, "topup", "", NOW, PrepaidTerms())
    store.charge(debit(entry="parent"))
    parent = redis_round_trip._HELD.leases[id(client.connection_pool)].connection
    monkeypatch.setattr(redis_round_trip.os, "getpid", lambda: -1)   # what the child sees after fork
    store.charge(debit(entry="child"))
    child = redis_round_trip._HELD.leases[id(client.connection_pool)].connection

    assert child is not parent
    assert store.account("ACME").balance_micros == DOLLAR - 2 * CALL


def test_a_new_connection_reads_the_run_id_of_the_server_it_reaches(server):
    from warp_billing.adapters.redis_round_trip import server_run_id

    client = redis.Redis(port=server.port, decode_responses=True, socket_timeout=2)
    try:
        connection = client.connection_pool.get_connection()
        first = server_run_id(connection)
        assert first == client.info("server")["run_id"]
        connection.disconnect()                     # a dropped connection (restart, failover) ...
        connection._warp_server = (connection._sock, "f" * 40)   # ... must not keep what it knew
        assert server_run_id(connection) == first
        client.connection_pool.release(connection)
    finally:
        client.close()
