"""Cycle-close benchmark: close a month of rated usage for many customers in one streaming pass.

Generates a rated file as `warp rate` writes it (default 10,000,000 events for 1,000
customers in four time zones, with rejected lines and events outside the month), writes
one plan per customer (tiers, commitments, bulk discounts, recurring numbers, E911, USF
for some), then runs ``warp invoice --plan ... --rated ... --period 2026-05 --out-dir ...
--register ...`` in a fresh process per file size and reports elapsed seconds and peak
RSS: of the main process and of the largest worker. Running it at two sizes (by default
1/10 of the events, then all of them) shows whether memory grows with the event count.
The rated file repeats a share of its lines (``--duplicate-share``, default 1%) as a file
given twice would: the close checks every event_id and counts each event once, and the
report line shows how many copies it took out.

    .venv/bin/python bench/cycle_close_bench.py                       # 1M then 10M events
    .venv/bin/python bench/cycle_close_bench.py --events 2000000 --compare 200000

The measurement runs the real click command in-process (same code as the console script),
so ``resource.getrusage`` sees exactly the close: RUSAGE_SELF for the main process,
RUSAGE_CHILDREN for the worker processes that scan parts of the file.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ZONES = ("America/New_York", "America/Chicago", "America/Los_Angeles", "UTC")
PERIOD = "2026-05"
JURISDICTIONS = ("interstate", "interstate", "intrastate", "intrastate", "indeterminate", "international")


def customer_ids(count: int) -> list[str]:
    return [f"C{number:05d}" for number in range(1, count + 1)]


def write_plans(folder: Path, customers: list[str], seed: int) -> list[Path]:
    """One plan per customer, with a rotating mix of the features a cycle close prices."""
    rng = random.Random(seed)
    paths = []
    for index, customer in enumerate(customers):
        plan: dict = {"customer_id": customer, "currency": "USD", "timezone": ZONES[index % len(ZONES)],
                      "voice": {"deck": "unused.csv"}, "terms": {"cycle": "monthly", "net_days": 15 + index % 3 * 15}}
        if index % 2 == 0:
            plan["voice"]["tiers"] = {"mode": ("graduated", "retrospective")[index % 4 // 2], "unit": "minute",
                                      "bands": [{"up_to": 5000, "rate": "0.006"}, {"up_to": 50000, "rate": "0.004"},
                                                {"rate": "0.0025"}]}
        if index % 3 == 0:
            plan["voice"]["commitment"] = {"minutes": rng.choice((10000, 40000)), "shortfall_rate": "0.004",
                                           "rebate_above_pct": "5", "start": "2026-01-01"}
        plan["api_queries"] = {"prices": {"lrn": "0.001", "cnam": "0.004"},
                               "bulk_discount": {"threshold": rng.choice((500, 5000)), "percent": "20"}}
        plan["recurring"] = [{"sku": "DID-LOCAL", "description": "Local DID", "quantity": rng.randint(10, 500),
                              "unit_price": "1.00", "start": f"2026-0{rng.randint(1, 5)}-{rng.randint(1, 28):02d}",
                              "timing": ("arrears", "advance")[index % 2]}]
        plan["fees"] = {"e911_per_did": "0.25", "usf": {"applies": index % 5 == 0}}
        if index % 7 == 0:
            plan["terms"]["anchor_day"] = 15
        path = folder / f"{customer.lower()}-plan.yaml"
        path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
        paths.append(path)
    return paths


def write_rated(path: Path, events: int, customers: list[str], seed: int, duplicate_share: float = 0.0) -> None:
    """Rated lines in `warp rate`'s format: ~0.4% rejected, a few outside May, voice, messaging and API.

    ``duplicate_share`` of the events are written a second time (a copy of a line among the last 20,000).
    """
    rng = random.Random(seed)
    randrange, random_ = rng.randrange, rng.random
    count = len(customers)
    buffer: list[str] = []
    with open(path, "w", encoding="ascii", buffering=1 << 20) as out:
        for serial in range(events):
            customer = customers[randrange(count)]
            day = 1 + randrange(31)
            instant = f"2026-05-{day:02d}T{randrange(24):02d}:{randrange(60):02d}:{randrange(60):02d}Z"
            if day == 1 and random_() < 0.1:
                instant = "2026-04-30T23:30:00Z"
            draw = random_()
            if draw < 0.004:
                buffer.append(
                    f'{{"event_id":"{customer}-{serial:09d}","status":"rejected","kind":"voice","customer_id":"{customer}",'
                    f'"jurisdiction":null,"matched_prefix":null,"rate":null,"billed_units":null,"amount":null,'
                    f'"vendor_cost":null,"margin_pct":null,"low_margin":false,"start_time":"{instant}",'
                    f'"reason":"NO_RATE","detail":"no deck row matches 4420"}}\n')
            elif draw < 0.70:
                seconds = 6 * (1 + randrange(100))
                micros = seconds * (40 + randrange(200)) // 6
                buffer.append(
                    f'{{"event_id":"{customer}-{serial:09d}","status":"rated","kind":"voice","customer_id":"{customer}",'
                    f'"jurisdiction":"{JURISDICTIONS[randrange(6)]}","matched_prefix":"1212555","rate":"0.0061",'
                    f'"billed_units":{seconds},"amount":"0.{micros:06d}","vendor_cost":"0.000100","margin_pct":"23.45",'
                    f'"low_margin":false,"start_time":"{instant}","direction":"termination","query_type":null,'
                    f'"duration_s":{seconds - 3},"destination":"US-NY","vendor_id":"V1"}}\n')
            elif draw < 0.92:
                kind = "mms" if draw > 0.89 else "sms"
                direction = "inbound" if randrange(4) == 0 else "outbound"
                segments = 1 + randrange(3)
                buffer.append(
                    f'{{"event_id":"{customer}-{serial:09d}","status":"rated","kind":"{kind}","customer_id":"{customer}",'
                    f'"jurisdiction":null,"matched_prefix":"1","rate":"0.004","billed_units":{segments},'
                    f'"amount":"0.{4000 * segments:06d}","vendor_cost":"0.002100","margin_pct":"40.00",'
                    f'"low_margin":false,'
                    f'"start_time":"{instant}","direction":"{direction}","query_type":null,"duration_s":null,'
                    f'"destination":"US/CANADA","vendor_id":"V1"}}\n')
            else:
                query = "lrn" if randrange(3) else "cnam"
                queries = (1, 1, 1, 5, 25)[randrange(5)]
                price = 1000 if query == "lrn" else 4000
                buffer.append(
                    f'{{"event_id":"{customer}-{serial:09d}","status":"rated","kind":"api_query","customer_id":"{customer}",'
                    f'"jurisdiction":null,"matched_prefix":null,"rate":"0.{price:06d}","billed_units":{queries},'
                    f'"amount":"0.{price * queries:06d}","vendor_cost":null,"margin_pct":null,"low_margin":false,'
                    f'"start_time":"{instant}","direction":null,"query_type":"{query}","duration_s":null,'
                    f'"destination":null,"vendor_id":null}}\n')
            if duplicate_share and random_() < duplicate_share:
                buffer.append(buffer[randrange(len(buffer))])
            if len(buffer) >= 20_000:
                out.write("".join(buffer))
                buffer.clear()
        out.write("".join(buffer))


def measure(rated: str, plans_file: str, out_dir: str, register: str, jobs: int | None) -> dict:
    """Run `warp invoice` in this process and report time and peak RSS (called in a fresh process)."""
    from warp_billing.cli.invoice_command import invoice

    plans = Path(plans_file).read_text(encoding="utf-8").split()
    args = [arg for path in plans for arg in ("--plan", path)]
    # the close is measured, not the PDF layout (WeasyPrint takes a large fraction of a second per document)
    args += ["--rated", rated, "--period", PERIOD, "--out-dir", out_dir, "--register", register, "--no-pdf"]
    if jobs:
        args += ["--jobs", str(jobs)]
    started = time.perf_counter()
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        try:
            invoice.main(args, standalone_mode=False)
        except SystemExit as exit_:  # pragma: no cover - an error already printed
            if exit_.code:
                raise
    elapsed = time.perf_counter() - started
    lines = captured.getvalue().splitlines()
    return {
        "events": sum(1 for _ in open(rated, "rb")),
        "seconds": round(elapsed, 2),
        "peak_rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "peak_rss_largest_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,
        "invoices": sum(1 for line in lines if " 2026-05 " in line and "total" in line),
        "scan": next((line for line in lines if line.startswith("rated file:")), lines[-1] if lines else ""),
    }


def run_size(events_path: Path, plan_list: Path, work: Path, label: str, jobs: int | None) -> dict:
    out_dir, register = work / f"invoices-{label}", work / f"register-{label}"
    for folder in (out_dir, register):
        shutil.rmtree(folder, ignore_errors=True)
    command = [sys.executable, __file__, "--measure", str(events_path), "--plan-list", str(plan_list),
               "--out-dir", str(out_dir), "--register", str(register)] + (["--jobs", str(jobs)] if jobs else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measurement failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def copy_head(source: Path, target: Path, lines: int) -> None:
    with open(source, "rb") as reading, open(target, "wb") as writing:
        for number, line in enumerate(reading):
            if number >= lines:
                break
            writing.write(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--compare", type=int, default=None,
                        help="smaller size for the memory comparison (default events/10)")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: warp's choice)")
    parser.add_argument("--duplicate-share", type=float, default=0.01,
                        help="share of events whose line is written twice (the close counts them once)")
    parser.add_argument("--workdir", help="keep generated files here (default: a temporary folder, removed)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--plan-list", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    parser.add_argument("--register", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.measure:
        print(json.dumps(measure(options.measure, options.plan_list, options.out_dir, options.register, options.jobs)))
        return

    work = Path(options.workdir) if options.workdir else Path(tempfile.mkdtemp(prefix="cycle-close-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        customers = customer_ids(options.customers)
        plans = write_plans(work, customers, options.seed)
        plan_list = work / "plans.txt"
        plan_list.write_text("\n".join(str(path) for path in plans), encoding="utf-8")
        big = work / f"rated-{options.events}.jsonl"
        started = time.perf_counter()
        write_rated(big, options.events, customers, options.seed, options.duplicate_share)
        generated = time.perf_counter() - started
        small_count = options.compare or max(1, options.events // 10)
        small = work / f"rated-{small_count}.jsonl"
        copy_head(big, small, small_count)
        print(f"generated {options.events:,} rated events for {options.customers:,} customers "
              f"({big.stat().st_size / 1e9:.2f} GB) in {generated:.1f} s; CPUs: {os.cpu_count()}")
        results = []
        for path, label in ((small, "small"), (big, "large")):
            result = run_size(path, plan_list, work, label, options.jobs)
            results.append(result)
            print(f"{result['events']:>12,} events: {result['seconds']:7.2f} s  "
                  f"peak RSS main {result['peak_rss_main_mb']} MB, "
                  f"largest worker {result['peak_rss_largest_worker_mb']} MB  "
                  f"({result['invoices']} invoices)  {result['scan']}")
        small_result, large_result = results
        ratio = large_result["events"] / max(1, small_result["events"])
        small, large = small_result, large_result
        print(f"events x{ratio:.0f}: main RSS {small['peak_rss_main_mb']} -> {large['peak_rss_main_mb']} MB, "
              f"worker RSS {small['peak_rss_largest_worker_mb']} -> {large['peak_rss_largest_worker_mb']} MB; "
              f"throughput {large_result['events'] / large_result['seconds']:,.0f} events/s")
    finally:
        if not options.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
