"""Cloud cycle-close benchmark: close 1,000 customers from events loaded into the BigQuery
emulator, through the ``rollup`` function (functions-framework, HTTP) as Cloud Scheduler calls it.

For each event count asked (``--events``, several allowed) the benchmark:

1. writes the events as ``rated_usage`` rows to an NDJSON file and loads it into a dataset of
   its own with a BigQuery load job (the emulator's load_table_from_json does not work);
2. writes one plan per customer (90% UTC, 10% New York; voice by jurisdiction, SMS, LRN queries,
   a recurring line) into a folder;
3. starts the rollup function in a fresh process on the local stack (Firestore register with a
   collection prefix of its own; documents in a folder, or with ``--documents gcs`` in the Cloud
   Storage stand-in, which slows down as objects accumulate), POSTs ``{"task": "cycle_close",
   "period": "2026-10"}`` and reports: load time, close time, the rows the aggregation query
   returned to Python, the customers issued, the conservation failures, and the function
   process's peak RSS (VmHWM) before and after the close. The close ends by enqueuing the ERP
   outbox (3 documents per customer) on a Cloud Tasks queue of the benchmark's own, paused, so
   the time includes the enqueue but no NetSuite sync runs (the NetSuite benchmark measures that).

Needs the local stack (``make stack-up`` with the same WARP_STACK_PORT_OFFSET). Results go to
stdout as JSON lines; BENCHMARKS.md has the figures with the machine's load.

    .venv/bin/python bench/rollup_close_bench.py --events 100000 --events 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "shared"))

import orjson  # noqa: E402
from google.cloud import bigquery, tasks_v2  # noqa: E402

import local_stack  # noqa: E402
from warp_billing.adapters.bigquery_usage import RATED_USAGE, BigQueryUsageStore, bigquery_client  # noqa: E402
from warp_billing.adapters.cloud_tasks import tasks_client  # noqa: E402

PERIOD = "2026-10"
DECK = "prefix,destination,rate,effective_date\n1,US,0.0100,2020-01-01\n"
RECURRING = ("recurring: [{sku: DID-LOCAL, description: Local DID, quantity: 5, unit_price: '1.00',"
             " start: '2020-01-01'}]\n")
INSERTED_AT = "2026-11-05 00:00:00.000000+00:00"
KINDS = (("voice", "interstate"), ("voice", "interstate"), ("voice", "intrastate"), ("voice", "international"),
         ("sms", "outbound"), ("api_query", "lrn"))


def customers(count: int) -> list[tuple[str, str]]:
    return [(f"BENCH{index:04d}", "America/New_York" if index % 10 == 0 else "UTC") for index in range(count)]


def write_rows(path: Path, events: int, people: list[tuple[str, str]], seed: int = 7) -> None:
    """``events`` rated_usage rows spread over the customers and over 2..30 October (inside every zone)."""
    rng = random.Random(seed)
    with open(path, "wb") as out:
        batch = []
        for number in range(events):
            customer = people[number % len(people)][0]
            kind, sub = KINDS[rng.randrange(len(KINDS))]
            day, second = rng.randrange(2, 31), rng.randrange(86_400)
            start = f"2026-10-{day:02d} {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}+00:00"
            units = rng.randrange(6, 3600) if kind == "voice" else rng.randrange(1, 4)
            micros = rng.randrange(1, 2_000_000)
            row = {"event_id": f"{customer}-{number}", "event_date": f"2026-10-{day:02d}", "customer_id": customer,
                   "kind": kind, "start_time": start, "jurisdiction": sub if kind == "voice" else None,
                   "direction": sub if kind == "sms" else "termination" if kind == "voice" else None,
                   "query_type": sub if kind == "api_query" else None, "billed_units": units,
                   "amount": f"{micros // 1_000_000}.{micros % 1_000_000:06d}",
                   "vendor_cost": f"0.{micros % 1_000_000 // 2:06d}", "inserted_at": INSERTED_AT, "low_margin": False}
            batch.append(orjson.dumps(row))
            if len(batch) >= 100_000:
                out.write(b"\n".join(batch) + b"\n")
                batch = []
        if batch:
            out.write(b"\n".join(batch) + b"\n")


def write_plans(folder: Path, people: list[tuple[str, str]]) -> None:
    (folder / "deck.csv").write_text(DECK, encoding="utf-8")
    for customer, zone in people:
        (folder / f"{customer.lower()}.yaml").write_text(
            f"customer_id: {customer}\ntimezone: {zone}\nvoice: {{deck: deck.csv}}\n"
            "api_queries: {prices: {lrn: '0.001'}, bulk_discount: {threshold: 1000, percent: '10'}}\n"
            + RECURRING,
            encoding="utf-8")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((local_stack.HOST, 0))
        return probe.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    """The largest VmHWM among ``pid`` and its descendants (functions-framework serves from a
    gunicorn worker, a child of the process it starts)."""
    best = 0.0
    for process in [pid, *descendants(pid)]:
        try:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]) / 1024)
        except FileNotFoundError:
            continue
    return best


def descendants(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, IndexError, ValueError):
                continue
            if parent == pid:
                children.append(int(entry.name))
    return children + [grandchild for child in children for grandchild in descendants(child)]


LOAD_CHUNK_BYTES = 900 * 1024 * 1024


def _chunks(path: Path, limit: int) -> list[Path]:
    """The NDJSON file as it is when small enough, else cut at line ends into parts of at most ``limit``
    bytes (one load job each: the BigQuery emulator caps an upload at 1 GiB)."""
    if path.stat().st_size <= limit:
        return [path]
    parts: list[Path] = []
    with open(path, "rb") as source:
        while True:
            block = source.read(limit)
            if not block:
                break
            cut = block.rfind(b"\n") + 1
            if cut and cut < len(block):
                source.seek(cut - len(block), os.SEEK_CUR)
                block = block[:cut]
            part = path.with_name(f"{path.stem}.part{len(parts)}{path.suffix}")
            part.write_bytes(block)
            parts.append(part)
    return parts


def measure(events: int, count: int, work: Path, documents: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WARP_")}
    env.update(local_stack.stack_env())
    tag = uuid.uuid4().hex[:6]
    dataset = f"bench_{tag}"
    endpoint = env["WARP_BIGQUERY_ENDPOINT"]
    client = bigquery_client(local_stack.PROJECT, endpoint)
    store = BigQueryUsageStore(client, project=local_stack.PROJECT, dataset=dataset, deadline_s=3600)
    store.ensure_schema()
    people = customers(count)
    rows_path = work / f"rated-{events}.ndjson"
    started = time.monotonic()
    write_rows(rows_path, events, people)
    generated_s = time.monotonic() - started
    started = time.monotonic()
    config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON)
    chunks = _chunks(rows_path, LOAD_CHUNK_BYTES)   # the emulator refuses an upload over 1 GiB
    for chunk in chunks:
        with open(chunk, "rb") as handle:
            client.load_table_from_file(handle, store.table_ref(RATED_USAGE), job_config=config).result(timeout=7200)
        if chunk != rows_path:
            chunk.unlink()
    load_s = time.monotonic() - started
    rows_path.unlink()
    plans = work / f"plans-{events}"
    plans.mkdir()
    write_plans(plans, people)
    env.update({"WARP_PLAN_STORE": "files", "WARP_PLANS_DIR": str(plans), "WARP_BIGQUERY_DATASET": dataset,
                "WARP_FIRESTORE_COLLECTION_PREFIX": f"bench{tag}_", "WARP_DOCUMENTS_PREFIX": f"bench{tag}",
                "WARP_CLOSE_WATERMARK_LAG_S": "1", "WARP_CLOSE_QUERY_TIMEOUT_S": "7200",
                "WARP_CLOSE_PDF": "false",  # as in the earlier runs: the query and the issues, not WeasyPrint
                "WARP_DOCUMENT_STORE": documents,
                "WARP_DOCUMENTS_DIR": str(work / f"documents-{tag}"),
                "WARP_LOG_LEVEL": "WARNING", "WARP_DATA_DIR": str(work / "data"),
                "PYTHONPATH": str(ROOT / "shared")})
    # The rollup enqueues what it issued: onto a paused queue of this run, deleted afterwards.
    tasks = tasks_client(env["WARP_TASKS_ENDPOINT"])
    queue = f"projects/{local_stack.PROJECT}/locations/{local_stack.LOCATION}/queues/bench-{tag}"
    tasks.create_queue(parent=queue.rsplit("/queues/", 1)[0], queue=tasks_v2.Queue(name=queue))
    tasks.pause_queue(name=queue)
    env.update({"WARP_NETSUITE_QUEUE": queue, "WARP_NETSUITE_SYNC_URL": f"http://{local_stack.HOST}:9/"})
    port = free_port()
    log = open(work / f"rollup-{events}.log", "wb")  # noqa: SIM115 - the child process writes it
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("functions-framework")), "--target", "rollup",
         "--source", str(ROOT / "functions" / "rollup" / "main.py"), "--signature-type", "http",
         "--host", local_stack.HOST, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{local_stack.HOST}:{port}/"
    try:
        while True:
            try:
                requests.get(url, timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        rss_before = peak_rss_mb(process.pid)
        started = time.monotonic()
        answer = requests.post(url, json={"task": "cycle_close", "period": PERIOD}, timeout=7200)
        close_s = time.monotonic() - started
        rss_after = peak_rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
        tasks.delete_queue(name=queue)
        client.delete_dataset(f"{local_stack.PROJECT}.{dataset}", delete_contents=True, not_found_ok=True)
    answer.raise_for_status()
    [run] = answer.json()["runs"]
    return {"events": events, "customers": count, "documents": documents,
            "generate_s": round(generated_s, 1), "load_s": round(load_s, 1), "load_jobs": len(chunks),
            "close_s": round(close_s, 1), "rows_returned": run["rows_returned"], "by_status": run["by_status"],
            "events_billed": sum(row["events"] for row in run["closes"]),
            "conservation_failures": len(run["conservation_failures"]), "netsuite": answer.json()["netsuite"],
            "peak_rss_mb_before_close": round(rss_before, 1), "peak_rss_mb_after_close": round(rss_after, 1),
            "load_average": os.getloadavg()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, action="append", help="events to load (repeat for a scaling run)")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--documents", choices=("files", "gcs"), default="files",
                        help="where the rendered documents go (the Cloud Storage stand-in is slow with many objects)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rollup-bench-") as work:
        for events in args.events or [1_000_000]:
            print(json.dumps(measure(events, args.customers, Path(work), args.documents)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
