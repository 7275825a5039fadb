"""Rating benchmark (issue: rating core): one core, 1,000,000 mixed events, a 300k-row LRN deck.

Reports, for BENCHMARKS.md:
  * deck compile time (300,000 US NPA-NXX rows + 20,000 international rows);
  * core rating throughput: events/s of Rater.rate on already-decoded events (no file I/O),
    for voice only and for the mixed file;
  * per-event latency p50/p99 in microseconds (voice);
  * end-to-end `warp rate` file to file (a subprocess pinned to one core), and its peak RSS.
Each figure is the median of --runs runs. Inputs are generated once into build/bench/.
When the package is the compiled (mypyc) build, core and end-to-end figures are also taken
for the pure-Python package (a copy without the .so files, as Cloud Functions deploy it) in
the same run, so the two builds are compared as a ratio on the same, shared machine.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson
import yaml

from machine import machine
from warp_billing.plan import load_plan
from warp_billing.rating.deck import load_deck
from warp_billing.rating.numbering import NumberingPlan
from warp_billing.rating.rater import Rater
from warp_billing.sample_data import international_destinations, us_npas, write_deck, write_usage

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "bench"


def prepare(events: int) -> tuple[Path, Path]:
    WORK.mkdir(parents=True, exist_ok=True)
    deck = WORK / "lrn-deck-320k.csv"
    vendor = WORK / "vendor-deck-320k.csv"
    numbering = NumberingPlan.embedded()
    npas, destinations = us_npas(numbering), international_destinations()
    for path, seed, scale in ((deck, 11, "1.0"), (vendor, 12, "0.8")):
        if not path.exists():
            from decimal import Decimal

            write_deck(path, npas, destinations, random.Random(seed), us_rows=300_000 - len(npas),
                       international_rows=20_000, scale=Decimal(scale))
    messaging_deck = WORK / "messaging-deck.csv"
    messaging_deck.write_text("prefix,destination,rate,effective_date\n1,US/CANADA,0.0040,2026-01-01\n"
                              + "".join(f"{d.prefix},{d.name},0.0350,2026-01-01\n" for d in destinations),
                              encoding="utf-8")
    plan = WORK / "bench-plan.yaml"
    plan.write_text(yaml.safe_dump({
        "customer_id": "ACME", "billing": "postpaid", "timezone": "America/New_York",
        "voice": {"deck": deck.name, "vendor_decks": {"V1": vendor.name, "V2": vendor.name}, "increments": "6/6",
                  "indeterminate": {"policy": "piu", "piu": 60},
                  "time_of_day": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00",
                                   "multiplier": "1.10"}],
                  "quality_tiers": {"premium": "1.20", "standard": "1.00"}},
        "messaging": {"deck": messaging_deck.name, "mms_surcharge": "0.003",
                      "carrier_surcharges": {"T-MOBILE": "0.0025"},
                      "campaign_overrides": {"CAMP123": "0.0020"}, "inbound_rate": "0.0010"},
        "api_queries": {"prices": {"lrn": "0.001", "cnam": "0.004"}},
        "margin": {"overhead_per_minute": "0.0001", "alert_below_pct": "15"},
    }, sort_keys=False), encoding="utf-8")
    usage = WORK / f"usage-{events}.jsonl"
    if not usage.exists():
        write_usage(usage, events, seed=5, customers=("ACME",))
    return plan, usage


def timed_compile(plan_path: Path) -> float:
    loaded = load_plan(plan_path)
    started = time.perf_counter()
    load_deck(loaded.resolve(loaded.plan.voice.deck))
    return time.perf_counter() - started


def core_throughput(plan_path: Path, events: list[dict]) -> float:
    rater = Rater.from_plans([load_plan(plan_path)])
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        rate = rater.rate
        for event in events:
            rate(event)
        return len(events) / (time.perf_counter() - started)
    finally:
        gc.enable()


def latencies(plan_path: Path, events: list[dict]) -> tuple[float, float]:
    rater = Rater.from_plans([load_plan(plan_path)])
    clock, rate = time.perf_counter_ns, rater.rate
    samples = []
    for event in events:
        started = clock()
        rate(event)
        samples.append(clock() - started)
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.99)] / 1000


def end_to_end(plan_path: Path, usage: Path, events: int) -> tuple[float, float | None]:
    """`warp rate` file to file on core 0: (events/s, peak RSS in MiB or None).

    Peak RSS comes from GNU time's %M: the parent's RUSAGE_CHILDREN would also count the
    forked child's copy of this (large) benchmark process before it execs warp.
    """
    warp = Path(sys.executable).with_name("warp")
    out = WORK / "rated.jsonl"
    command = ["taskset", "-c", "0", str(warp), "rate", "--plan", str(plan_path), "--in", str(usage), "--out", str(out),
               "--no-progress"]
    gnu_time = Path("/usr/bin/time")
    if gnu_time.exists():
        command = [str(gnu_time), "-f", "peak_rss_kib=%M", *command]
    started = time.perf_counter()
    done = subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    peaks = [line.split("=", 1)[1] for line in done.stderr.splitlines() if line.startswith("peak_rss_kib=")]
    return events / elapsed, int(peaks[-1]) / 1024 if peaks else None


def build_name() -> str:
    import warp_billing.rating.voice as voice

    return "compiled (mypyc)" if voice.__file__.endswith(".so") else "pure Python"


def pure_package() -> Path:
    """A copy of warp_billing without compiled modules (what the functions deploy)."""
    import shutil

    import warp_billing

    target = WORK / "pure"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(Path(warp_billing.__file__).parent, target / "warp_billing",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only-core-and-e2e", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})  # one core, as the target says
    plan_path, usage = prepare(args.events)
    if args.only_core_and_e2e:
        core_and_e2e(plan_path, usage, args)
        return
    print(f"machine: {machine()}; pinned to core 0; build: {build_name()}")
    print(f"deck: {sum(1 for _ in open(WORK / 'lrn-deck-320k.csv')) - 1:,} rows; usage: {args.events:,} events")

    compile_s = statistics.median(timed_compile(plan_path) for _ in range(args.runs))
    print(f"deck compile: {compile_s:.2f} s (median of {args.runs})")

    core_and_e2e(plan_path, usage, args)
    if build_name() != "pure Python":
        print("same figures for the pure-Python package (as deployed to Cloud Functions):", flush=True)
        env = {**os.environ, "PYTHONPATH": str(pure_package())}
        subprocess.run([sys.executable, __file__, "--events", str(args.events), "--runs", str(args.runs),
                        "--only-core-and-e2e"], env=env, check=True)


def core_and_e2e(plan_path: Path, usage: Path, args: argparse.Namespace) -> None:
    print(f"[{build_name()}]", flush=True)
    with open(usage, "rb") as handle:
        decoded = []
        for line in handle:
            try:
                decoded.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                decoded.append(None)
    voice = [event for event in decoded if isinstance(event, dict) and event.get("kind") == "voice"]
    mixed = [event for event in decoded if event is not None]
    voice_rates = [core_throughput(plan_path, voice) for _ in range(args.runs)]
    mixed_rates = [core_throughput(plan_path, mixed) for _ in range(args.runs)]
    print(f"core rating, voice ({len(voice):,} events): {statistics.median(voice_rates):,.0f} events/s "
          f"(runs: {', '.join(f'{rate:,.0f}' for rate in voice_rates)})")
    print(f"core rating, mixed ({len(mixed):,} events): {statistics.median(mixed_rates):,.0f} events/s")
    p50, p99 = latencies(plan_path, voice[:200_000])
    print(f"per-event latency (voice): p50 {p50:.1f} us, p99 {p99:.1f} us", flush=True)
    del decoded, voice, mixed
    gc.collect()

    runs = [end_to_end(plan_path, usage, args.events) for _ in range(args.runs)]
    throughput = statistics.median(rate for rate, _ in runs)
    peaks = [rss for _, rss in runs if rss is not None]
    peak = f"{max(peaks):,.0f} MiB" if peaks else "not measured (no /usr/bin/time)"
    each = ", ".join(f"{rate:,.0f}" for rate, _ in runs)
    print(f"warp rate file to file: {throughput:,.0f} events/s (runs: {each}); "
          f"peak RSS {peak}", flush=True)


if __name__ == "__main__":
    main()
