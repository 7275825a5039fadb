"""Real-time charging benchmark: the usage handler with a real redis-server, on this machine.

Runs ``ChargingService`` (decode -> max age -> rate -> Lua charge -> ledger -> usage row ->
alerts) exactly as the functions call it, against a redis-server started for the run, with the
embedded SQLite stores (``--stores sqlite``, the default) or in-memory ones (``--stores memory``,
to isolate rating + Redis). Three sample customers (sample_data): ACME postpaid, BETA prepaid
with low-balance threshold and auto-recharge, GAMMA postpaid with a credit limit it reaches.

Figures printed:
  1. sustained throughput, one event per call (closed loop), 1 and 4 threads;
  2. latency per event at an offered load of --rate events/s (open loop: latency counts from
     the scheduled arrival, so queueing behind a slow event is included), p50 / p99 / max;
  3. the batched path (``handle_batch``: one pipelined EVALSHA round trip per batch);
  4. chaos: --chaos-events events, 20 % of them delivered twice, crashes injected at every step
     (before the Lua call, after it with the reply lost, before the ledger write, before the
     usage write, before the alerts, ack lost after success) and redelivered later; then
     checks: zero lost events, zero double charges, Redis balances and cycle totals equal to
     the ledger / rated rows to the micro-unit, and again after FLUSHALL + rebuild from the ledger;
  5. chaos, restore: the same traffic; SAVE at a third of it, kill -9 at two thirds, restart from
     the dump (Redis goes back in time), keep sending, then redeliver every event of the phase
     (acknowledged ones included); same checks;
  6. chaos, rebuild: the same traffic from a second thread while `warp balance rebuild` (the
     fenced reconcile) runs in the middle of it; same checks.

    .venv/bin/python bench/realtime_bench.py                     # sqlite stores, all phases
    .venv/bin/python bench/realtime_bench.py --stores memory --chaos-events 20000
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import redis
import yaml

from warp_billing.adapters.plan_files import PlanFolder
from warp_billing.adapters.redis_balances import BalancesUnavailable, RedisBalances
from warp_billing.adapters.sqlite_stores import SqliteLedgerStore, SqliteUsageStore
from warp_billing.charging.errors import TransientError
from warp_billing.charging.plan_catalog import PlanCatalog
from warp_billing.charging.rebuild import PostpaidWindow, customer_reconciler, customer_terms, rebuild_balances
from warp_billing.charging.service import ChargingService, Delivery
from warp_billing.money import to_decimal, to_micros
from warp_billing.rating.numbering import NumberingPlan
from warp_billing.rating.rejections import Reason, Rejection
from warp_billing.sample_data import TrafficMix, write_sample_setup

DOLLAR = 1_000_000
BETA_FUNDS = 20_000 * DOLLAR


# -- infrastructure -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server of the benchmark's own (no persistence), killed at the end."""

    def __init__(self):
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="warp-bench-redis-")
        self._start()

    def _start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(1000):
            try:
                redis.Redis(port=self.port).ping()
                return
            except (redis.ConnectionError, redis.exceptions.BusyLoadingError):
                time.sleep(0.01)
        raise RuntimeError("redis-server did not restart")

    def restart_from_dump(self) -> None:
        """kill -9, then start again on the same port and folder: the server loads the last SAVE."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._start()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


class MemoryUsage:
    """UsageStore in memory (first write stands)."""

    def __init__(self):
        self.rated_rows: dict[str, dict] = {}
        self.reject_rows: dict[str, dict] = {}
        self._lock = threading.Lock()

    def insert_rated(self, records):
        with self._lock:
            for record in records:
                self.rated_rows.setdefault(record["event_id"], record)

    def insert_rejects(self, records):
        with self._lock:
            for record in records:
                self.reject_rows.setdefault(record["reject_id"], record)

    def rated(self):
        return iter(list(self.rated_rows.values()))

    def rejects(self):
        return iter(list(self.reject_rows.values()))

    def rated_event_ids(self, keys):
        return {event_id for event_id, _ in keys if event_id in self.rated_rows}

    def rated_amounts(self, customer_id, first_day, last_day):
        for row in list(self.rated_rows.values()):
            if row["customer_id"] == customer_id:
                yield row["event_id"], row["start_time"], row["amount"]


class MemoryLedger:
    """LedgerStore in memory (one entry per customer and entry id)."""

    def __init__(self):
        self.by_id = {}
        self._lock = threading.Lock()

    def append(self, entries):
        with self._lock:
            for entry in entries:
                self.by_id.setdefault((entry.customer_id, entry.entry_id), entry)

    def entries(self, customer_id=None):
        for entry in list(self.by_id.values()):
            if customer_id is None or entry.customer_id == customer_id:
                yield entry

    raw_entries = entries   # one row per key: nothing else to show


class CountingAlerts:
    def __init__(self):
        self.counts = collections.Counter()

    def publish(self, alert):
        self.counts[alert["type"]] += 1


class Crash(Exception):
    """An injected failure (stands for a crashed instance / a dropped connection)."""


class Injector:
    """Wraps a port; ``arm(point)`` makes its next matching call fail once."""

    def __init__(self, target, points):
        self._target = target
        self._points = points
        self.armed: str | None = None

    def __getattr__(self, name):
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            point = self.armed
            if point is not None and point in self._points.get(name, ()):
                self.armed = None
                if point.endswith("before"):
                    raise Crash(point)
                attribute(*args, **kwargs)  # the charge happens; only its reply is lost
                raise BalancesUnavailable(f"{point}: reply lost")
            return attribute(*args, **kwargs)

        return call


# -- set-up ---------------------------------------------------------------------------------------

def prepare_plans(folder: Path) -> None:
    """Sample plans and decks; BETA prepaid with auto-recharge, GAMMA with a reachable credit limit."""
    paths = write_sample_setup(folder)
    tweaks = {
        "ACME": {"postpaid": {"credit_limit": "1000000.00", "soft_limit_pct": "80"}},
        "BETA": {"prepaid": {"low_balance_threshold": "19000.00", "suspend_after_hours": 24,
                             "auto_recharge_below": "18500.00", "auto_recharge_amount": "200.00"}},
        "GAMMA": {"postpaid": {"credit_limit": "1500.00", "soft_limit_pct": "80"}},
    }
    for customer, path in paths.items():
        plan = yaml.safe_load(path.read_text())
        plan.update(tweaks[customer])
        path.write_text(yaml.safe_dump(plan, sort_keys=False))


class Bench:
    def __init__(self, stores: str, work: Path, server: RedisServer):
        self.work = work
        self.client = redis.Redis(port=server.port, decode_responses=True, socket_timeout=5)
        self.balances = RedisBalances(self.client, dedup_ttl_s=3 * 86_400)
        if stores == "sqlite":
            self.usage, self.ledger = SqliteUsageStore(work / "usage.sqlite"), SqliteLedgerStore(work / "ledger.sqlite")
        else:
            self.usage, self.ledger = MemoryUsage(), MemoryLedger()
        self.alerts = CountingAlerts()
        self.catalog = PlanCatalog(PlanFolder(work / "plans"), refresh_s=30)
        self.reconcile = customer_reconciler(self.ledger, self.balances, self.usage, self.catalog,
                                             dedup_ttl_s=3 * 86_400, window=PostpaidWindow(3 * 86_400, 300))
        self.service = self.charging(self.balances, self.usage, self.ledger, self.alerts)
        started = time.perf_counter()
        for customer in ("ACME", "BETA", "GAMMA"):
            self.catalog.current(customer)
        self.compile_s = time.perf_counter() - started
        self.rebuild()                  # what `warp plans load` does: Redis verified against the ledger
        beta = self.catalog.current("BETA").prepaid
        topup = self.balances.credit("BETA", "topup:bench-funds", BETA_FUNDS, "topup", "bench",
                                     self.service.clock.now_ms(), beta)
        self.ledger.append(list(topup.entries))
        day = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        self.mix = TrafficMix(NumberingPlan.embedded(), random.Random(7), day, ["ACME", "BETA", "GAMMA"])
        self._serial = 0

    def charging(self, balances, usage, ledger, alerts) -> ChargingService:
        """The service as bootstrap wires it: stale / missing customers reconciled on demand."""
        return ChargingService(self.catalog, balances, usage, ledger, alerts, max_event_age_s=3 * 86_400,
                               dedup_ttl_s=3 * 86_400, reconcile=self.reconcile)

    def rebuild(self, customers=None):
        terms_for, postpaid_plan_for = customer_terms(self.catalog)
        return rebuild_balances(self.ledger, self.balances, dedup_ttl_s=3 * 86_400, customers=customers,
                                terms_for=terms_for, postpaid_plan_for=postpaid_plan_for, usage=self.usage,
                                window=PostpaidWindow(3 * 86_400, 300))

    def deliveries(self, count: int, malformed_share: float = 0.004) -> list[Delivery]:
        """Fresh deliveries as the entry point decodes them (a few malformed bodies included)."""
        rng = self.mix._rng
        out = []
        for _ in range(count):
            self._serial += 1
            malformed = rng.random() < malformed_share  # drawn before the event, as it always was
            event = self.mix.event()
            body = self.mix.malformed(event) if malformed else orjson.dumps(event)
            out.append(decode(body, f"msg-{self._serial}"))
        return out


def decode(body: bytes, message_id: str) -> Delivery:
    raw = body.decode()
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return Delivery(None, message_id, raw, Rejection(Reason.MALFORMED_JSON, f"not valid JSON: {exc}"))
    if not isinstance(event, dict):
        return Delivery(None, message_id, raw, Rejection(Reason.MALFORMED_JSON, "not a JSON object"))
    return Delivery(event, message_id, raw)


def percentile(sorted_values: list[int], per_mille: int) -> int:
    """The value below which ``per_mille`` / 1000 of the sorted values fall."""
    return sorted_values[min(len(sorted_values) - 1, (len(sorted_values) * per_mille) // 1000)]


def ms(nanoseconds: int) -> str:
    return f"{nanoseconds / 1e6:.2f} ms"


# -- phases ---------------------------------------------------------------------------------------

def sustained(bench: Bench, events: int, threads: int) -> None:
    work = bench.deliveries(events)
    chunks = [work[i::threads] for i in range(threads)]
    started = time.perf_counter()
    workers = [threading.Thread(target=lambda part=part: [bench.service.handle(d) for d in part]) for part in chunks]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    print(f"  sustained, {threads} thread(s): {events} events in {elapsed:.2f} s = {events / elapsed:,.0f} events/s")


def offered_load(bench: Bench, rate: int, seconds: int) -> None:
    count = rate * seconds
    work = bench.deliveries(count)
    interval_ns = 1_000_000_000 // rate
    latencies = []
    start = time.perf_counter_ns() + 50_000_000
    for index, delivery in enumerate(work):
        due = start + index * interval_ns
        now = time.perf_counter_ns()
        if now < due:
            time.sleep((due - now) / 1e9)
        bench.service.handle(delivery)
        latencies.append(time.perf_counter_ns() - due)
    elapsed = (time.perf_counter_ns() - start) / 1e9
    latencies.sort()
    print(f"  offered {rate} events/s for {seconds} s ({count} events, achieved {count / elapsed:,.0f}/s): "
          f"p50 {ms(percentile(latencies, 500))}, p90 {ms(percentile(latencies, 900))}, "
          f"p99 {ms(percentile(latencies, 990))}, p99.9 {ms(percentile(latencies, 999))}, max {ms(latencies[-1])}")
    return latencies


def batched(bench: Bench, events: int, size: int) -> None:
    work = bench.deliveries(events)
    batch_ns = []
    started = time.perf_counter()
    for offset in range(0, events, size):
        begin = time.perf_counter_ns()
        bench.service.handle_batch(work[offset:offset + size])
        batch_ns.append(time.perf_counter_ns() - begin)
    elapsed = time.perf_counter() - started
    batch_ns.sort()
    print(f"  batched by {size}: {events} events in {elapsed:.2f} s = {events / elapsed:,.0f} events/s "
          f"(per batch p50 {ms(percentile(batch_ns, 500))}, p99 {ms(percentile(batch_ns, 990))})")


def chaos(bench: Bench, events: int, duplicate_share: float, crash_share: float, seed: int = 11,
          fault=None, name: str = "chaos") -> bool:
    """Chaotic traffic; ``fault(progress)`` is called once at each third of the schedule (restore, rebuild)."""
    rng = random.Random(seed)
    balances = Injector(bench.balances, {"charge": ("redis-before", "redis-reply-lost"),
                                         "prior_result": ("redis-before",)})
    ledger = Injector(bench.ledger, {"append": ("ledger-before",)})
    usage = Injector(bench.usage, {"insert_rated": ("usage-before",), "insert_rejects": ("usage-before",)})
    alerts = Injector(bench.alerts, {"publish": ("alerts-before",)})
    chaotic = bench.charging(balances, usage, ledger, alerts)
    fresh = bench.deliveries(events)
    schedule: list[Delivery] = list(fresh)
    for delivery in rng.sample(fresh, int(events * duplicate_share)):   # publisher / Pub/Sub duplicates
        schedule.insert(rng.randrange(len(schedule) + 1), delivery)
    points = ("redis-before", "redis-reply-lost", "ledger-before", "usage-before", "alerts-before", "ack-lost")
    injected = collections.Counter()
    redeliveries: collections.deque = collections.deque()
    deliveries_made = 0
    started = time.perf_counter()
    position = 0
    thirds = {len(schedule) // 3: 1, 2 * len(schedule) // 3: 2}
    while position < len(schedule) or redeliveries:
        if fault is not None and position in thirds:
            fault(thirds.pop(position))
        if redeliveries and (position >= len(schedule) or rng.random() < 0.05):
            delivery = redeliveries.popleft()
        else:
            delivery = schedule[position]
            position += 1
        point = rng.choice(points) if rng.random() < crash_share else None
        for port in (balances, ledger, usage, alerts):
            port.armed = point
        deliveries_made += 1
        try:
            chaotic.handle(delivery)
            if point == "ack-lost":
                injected[point] += 1
                redeliveries.append(delivery)
        except (Crash, TransientError) as exc:   # the stores' Crash arrives wrapped in a TransientError
            injected[_failure_kind(exc, point)] += 1
            redeliveries.append(delivery)
    elapsed = time.perf_counter() - started
    for port in (balances, ledger, usage, alerts):
        port.armed = None
    if fault is not None:
        fault(3)
        for delivery in fresh:   # Pub/Sub redelivers the whole phase, acknowledged events included
            bench.service.handle(delivery)
    print(f"  {name}: {events} events, {len(schedule) - events} duplicated deliveries, "
          f"{sum(injected.values())} injected crashes ({dict(sorted(injected.items()))}); "
          f"{deliveries_made} deliveries in {elapsed:.1f} s")
    return verify(bench, fresh)


def _failure_kind(exc: Exception, point: str | None) -> str:
    """The injection point a failure came from, or "transient" for a real one (Redis restarting, a fence)."""
    injected = point is not None and (isinstance(exc, Crash) or isinstance(exc.__cause__, Crash) or (
        isinstance(exc, BalancesUnavailable) and point.startswith("redis")))
    return point if injected and point is not None else "transient"


def verify(bench: Bench, fresh: list[Delivery]) -> bool:
    rated = {row["event_id"]: row for row in bench.usage.rated()}
    rejects = {row["reject_id"]: row for row in bench.usage.rejects()}
    expected = {d.event["event_id"] if isinstance(d.event, dict) and isinstance(d.event.get("event_id"), str)
                and d.event.get("event_id") else f"message:{d.message_id}" for d in fresh}
    lost = expected - set(rated) - set(rejects)
    both = set(rated) & set(rejects)
    entries = list(bench.ledger.entries())
    ok = not lost and not both
    print(f"  accepted {len(expected)} = rated {len(expected & set(rated))} + rejected {len(expected & set(rejects))}; "
          f"lost {len(lost)}; rated and rejected {len(both)}")
    by_reason = collections.Counter(row["reason"] for key, row in rejects.items() if key in expected)
    print(f"  rejects by reason: {dict(by_reason.most_common())}")
    # Prepaid: the Redis balance, the ledger and the rated rows agree to the micro-unit.
    ledger_sum = sum(e.amount_micros for e in entries if e.customer_id == "BETA")
    debits = collections.Counter(e.entry_id for e in entries if e.customer_id == "BETA" and e.kind == "debit")
    credits = sum(e.amount_micros for e in entries if e.customer_id == "BETA" and e.kind != "debit")
    rated_beta = sum(to_micros(to_decimal(row["amount"])) for row in rated.values() if row["customer_id"] == "BETA")
    redis_balance = bench.balances.account("BETA").balance_micros
    double = [entry_id for entry_id, count in debits.items() if count > 1]
    money_ok = redis_balance == ledger_sum == credits - rated_beta and not double
    print(f"  BETA prepaid: Redis {redis_balance} = ledger {ledger_sum} = credits {credits} - rated {rated_beta} "
          f"micro-units: {money_ok}; debits {sum(debits.values())}, double charges {len(double)}; "
          f"auto-recharges {sum(1 for e in entries if e.kind == 'auto_recharge')}")
    # Postpaid: every cycle total equals its rated rows.
    from warp_billing.charging.postpaid import cycle_start
    from warp_billing.timeutil import parse_instant

    totals_ok = True
    for customer in ("ACME", "GAMMA"):
        plan = bench.catalog.current(customer).plan
        sums = collections.Counter()
        for row in rated.values():
            if row["customer_id"] == customer:
                cycle = cycle_start(plan, parse_instant(row["start_time"])).isoformat()
                sums[cycle] += to_micros(to_decimal(row["amount"]))
        for cycle, total in sums.items():
            redis_total, _ = bench.balances.cycle_total(customer, cycle)
            totals_ok &= redis_total == total
        print(f"  {customer} postpaid cycle totals equal rated rows: {totals_ok} {dict(sums)}")
    # Redis loses everything: rebuild from the ledger, then a redelivery storm charges nothing.
    bench.client.flushall()
    report = bench.rebuild(["ACME", "BETA", "GAMMA"])
    rebuilt = bench.balances.account("BETA").balance_micros
    storm = [d for d in fresh if isinstance(d.event, dict) and d.event.get("customer_id") == "BETA"][:2000]
    before = rebuilt
    for delivery in storm:
        bench.service.handle(delivery)
    after = bench.balances.account("BETA").balance_micros
    rebuild_ok = rebuilt == ledger_sum and after == before and not report.conflicts
    print(f"  after FLUSHALL + rebuild: BETA {rebuilt} = ledger {ledger_sum}: {rebuilt == ledger_sum}; "
          f"{len(storm)} redeliveries moved {after - before} micro-units; dedup marks restored {report.dedup_marks}; "
          f"conflicts {len(report.conflicts)}")
    return ok and money_ok and totals_ok and rebuild_ok


def chaos_restore(bench: Bench, server: RedisServer, events: int) -> bool:
    """Chaos with Redis going back in time: SAVE at 1/3, kill -9 and restart from the dump at 2/3."""
    def fault(third: int) -> None:
        if third == 1:
            bench.client.save()
        elif third == 2:
            server.restart_from_dump()
            print(f"    restored from the snapshot: BETA balance in Redis went back to "
                  f"{bench.balances.account('BETA').balance_micros} micro-units")
    return chaos(bench, events, 0.20, 0.02, seed=12, fault=fault, name="chaos, restore from a snapshot mid run")


def chaos_rebuild(bench: Bench, events: int) -> bool:
    """Chaos while a fenced reconcile of every customer runs from another thread at 1/3."""
    worker: list[threading.Thread] = []
    reports = []

    def fault(third: int) -> None:
        if third == 1:
            worker.append(threading.Thread(target=lambda: reports.append(bench.rebuild())))
            worker[0].start()
        elif third == 3 and worker:
            worker[0].join()
            report = reports[0] if reports else None
            print(f"    rebuild mid run: conflicts {len(report.conflicts) if report else '?'}, "
                  f"outbox entries drained {report.drained if report else '?'}, "
                  f"busy {report.busy if report else '?'}, lost {report.lost if report else '?'}")
    return chaos(bench, events, 0.20, 0.02, seed=13, fault=fault, name="chaos, rebuild mid run")


def machine() -> str:
    memory = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) // 1024} MiB"
    except OSError:
        pass
    cpu = "?"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    return (f"nproc {os.cpu_count()}, memory {memory}, cpu {cpu}, Python {platform.python_version()}, "
            f"redis-server {version}, load average before the run {load}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument("--events", type=int, default=20_000, help="events for the sustained and batched runs")
    parser.add_argument("--rate", type=int, default=1000, help="offered load, events/s")
    parser.add_argument("--seconds", type=int, default=30, help="duration of the offered-load run")
    parser.add_argument("--chaos-events", type=int, default=100_000)
    parser.add_argument("--skip", nargs="*", default=(),
                        choices=("sustained", "load", "batched", "chaos", "restore", "rebuild"))
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"stores: {args.stores}; command: {' '.join(sys.argv)}")
    server = RedisServer()
    work = Path(tempfile.mkdtemp(prefix="warp-bench-"))
    try:
        prepare_plans(work / "plans")
        bench = Bench(args.stores, work, server)
        print(f"plans compiled in {bench.compile_s:.2f} s (3 customers, sample decks)")
        for delivery in bench.deliveries(2000):   # warm-up
            bench.service.handle(delivery)
        if "sustained" not in args.skip:
            sustained(bench, args.events, 1)
            sustained(bench, args.events, 4)
        if "load" not in args.skip:
            offered_load(bench, args.rate, args.seconds)
        if "batched" not in args.skip:
            for size in (100, 500):
                batched(bench, args.events, size)
        ok = True
        if "chaos" not in args.skip:
            ok = chaos(bench, args.chaos_events, 0.20, 0.02)
            print(f"chaos checks: {'PASS' if ok else 'FAIL'}")
        if "restore" not in args.skip:
            restored = chaos_restore(bench, server, args.chaos_events // 2)
            print(f"chaos restore checks: {'PASS' if restored else 'FAIL'}")
            ok = ok and restored
        if "rebuild" not in args.skip:
            rebuilt = chaos_rebuild(bench, args.chaos_events // 2)
            print(f"chaos rebuild checks: {'PASS' if rebuilt else 'FAIL'}")
            ok = ok and rebuilt
        print(f"alerts published: {dict(bench.alerts.counts)}")
        return 0 if ok else 1
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
