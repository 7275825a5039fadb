"""NetSuite sync benchmark: documents per second through the Cloud Tasks emulator into the stand-in.

Needs the local stack (``make stack-up`` with the same ``WARP_STACK_PORT_OFFSET``). For each
scenario it fills a fresh outbox with DOCS documents (customers, invoices from the file
register, their journals and payments), enqueues them on a queue of concurrency 5 (the NetSuite
account's limit), and times from the enqueue to the last document marked synced. The stand-in
answers every record call in 50 ms, so the ceiling is concurrency / latency = 100 documents/s
(a document is one call when nothing fails). Scenarios: no faults, then 20 % injected faults
(429, SSS_REQUEST_LIMIT_EXCEEDED, 5xx, timeouts, commit-then-drop, slow answers).

    .venv/bin/python bench/netsuite_bench.py [--docs 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tools"), str(ROOT / "shared")]

from tests.erp_builders import customer_doc, payment_doc  # noqa: E402
from tests.integration.netsuite_world import SyncWorld  # noqa: E402
from tests.integration.test_netsuite_sync_stack import FAULTS_20, issue_invoices  # noqa: E402

from warp_billing.billing.invoice_store import InvoiceRegister  # noqa: E402
from warp_billing.erp.enqueue import enqueue_pending  # noqa: E402
from warp_billing.erp.outbox_documents import issued_documents  # noqa: E402

LATENCY_MS = 50
CONCURRENCY = 5


def fill(world: SyncWorld, register: InvoiceRegister, docs: int, tag: str) -> list[str]:
    """Customers of 25 documents each (1 customer, 8 invoices, 8 journals, 8 payments)."""
    outbox, ids, sequence = world.container.sync_outbox, [], 1
    for number in range(docs // 25):
        customer = f"{tag}{number:04d}"
        batch = [customer_doc(customer, sequence)]
        invoices = issue_invoices(register, customer, 8, number)
        batch += issued_documents(invoices, first_sequence=sequence + 1, issued_at="2026-12-01T00:00:00Z")
        batch += [payment_doc(invoice, sequence + 20 + n, txn=f"{invoice.number}-P") for n, invoice in
                  enumerate(invoices)]
        for document in batch:
            outbox.add(document)
            ids.append(document.doc_id)
        sequence += 30
    return ids


def run(docs: int, faults: dict, label: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="netsuite-bench-") as home:
        world = SyncWorld(Path(home), timeout_ms=400, concurrency=CONCURRENCY)
        try:
            world.control({"reset": True, "faults": faults, "concurrency_limit": CONCURRENCY,
                           "latency_ms": LATENCY_MS, "timeout_s": 0.6, "slow_ms": 200, "seed": 5,
                           "token_lifetime_s": 3600})
            ids = fill(world, InvoiceRegister(Path(home) / "register"), docs, label.upper()[:4])
            started = time.perf_counter()
            enqueue_pending(world.container.sync_outbox, world.container.netsuite_queue)
            world.wait_until(lambda: set(world.statuses(ids).values()) == {"synced"}, 1800, label)
            elapsed = time.perf_counter() - started
            records = world.records()
            stats = world.stats()
        finally:
            world.close()
    assert len(records) == len(ids), (len(records), len(ids))
    return {"scenario": label, "docs": len(ids), "seconds": round(elapsed, 2),
            "docs_per_s": round(len(ids) / elapsed, 1),
            "record_calls": stats["record_calls"], "injected": sum(stats[name] for name in FAULTS_20),
            "max_in_flight": stats["max_in_flight"], "over_limit_429": stats["over_limit"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1000, help="documents per scenario (a multiple of 25)")
    args = parser.parse_args()
    print(f"offset {os.environ.get('WARP_STACK_PORT_OFFSET', '0')}; load {os.getloadavg()}; "
          f"ceiling {CONCURRENCY * 1000 // LATENCY_MS} docs/s", flush=True)
    for label, faults in (("no_faults", {}), ("faults_20pct", FAULTS_20)):
        result = run(args.docs, faults, label)
        print(result, f"load {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
