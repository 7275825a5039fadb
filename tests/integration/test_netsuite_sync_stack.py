"""The NetSuite sync end to end on the local stack: outbox -> Cloud Tasks emulator -> netsuite_sync
(functions-framework) -> NetSuite stand-in, with injected faults.

Checks are made on the stand-in's raw records (``/_control/records``: every stored record with
its write count), never through a deduplicating view, and against the invoice register.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from tests.erp_builders import customer_doc, draft, payment_doc
from tests.integration.conftest import require_stand_in
from tests.integration.netsuite_world import SyncWorld

from warp_billing.adapters.file_register import FileCloseRegister
from warp_billing.billing.erp_outbox import DEFAULT_ACCOUNTS
from warp_billing.billing.invoice_store import REISSUED, InvoiceRegister
from warp_billing.erp.enqueue import enqueue_pending, task_body
from warp_billing.erp.outbox_documents import issued_documents
from warp_billing.erp.task_names import task_name

FAULTS_20 = {"rate_429": 0.04, "rate_limit400": 0.03, "rate_5xx": 0.04, "rate_timeout": 0.02,
             "rate_commit_drop": 0.05, "rate_slow": 0.02}
PERIODS = [f"2026-{month:02d}" for month in range(1, 9)]


@pytest.fixture
def world(tmp_path):
    require_stand_in("tasks")
    require_stand_in("netsuite")
    world = SyncWorld(tmp_path)
    world.control({"reset": True, "faults": {}, "concurrency_limit": 5, "latency_ms": 0, "timeout_s": 0.6,
                   "slow_ms": 100, "token_lifetime_s": 3600, "seed": 11})
    yield world
    world.close()


def issue_invoices(register: InvoiceRegister, customer: str, count: int, offset: int = 0):
    """Issue ``count`` invoices of different months and contents through the file register."""
    issued = []
    for index in range(count):
        cents = Decimal(100 + offset * 37 + index * 13) / 100
        lines = (("VOICE-INTERSTATE", f"{1000 + index}", format(cents, "f")),
                 ("SMS-OUTBOUND", f"{index + 1}", format(Decimal(index + 1) / 100, "f")))
        issued.append(register.issue(draft(customer, PERIODS[index], lines=lines)).invoice)
    return issued


def register_documents(register: InvoiceRegister, customer: str) -> dict[str, list[tuple[str, Decimal]]]:
    """Each document's (sku or fee code, amount) lines as the register holds them."""
    return {doc.number: [(line.sku, line.amount) for line in doc.lines] + [(fee.code, fee.amount) for fee in doc.fees]
            for doc in register.documents(customer)}


def test_1000_documents_with_20_percent_faults_land_exactly_once_and_match_the_register(world, tmp_path):
    register = InvoiceRegister(tmp_path / "register")
    outbox = world.container.sync_outbox
    documents, sequence = [], 1
    for number in range(40):  # 40 x (customer + 8 invoices + 8 journals + 8 payments) = 1,000 documents
        customer = f"BULK{number:02d}"
        documents.append(customer_doc(customer, sequence))
        invoices = issue_invoices(register, customer, 8, number)
        issued = issued_documents(invoices, first_sequence=sequence + 1, issued_at="2026-12-01T00:00:00Z")
        documents.extend(issued)
        sequence += 1 + len(issued)
        for invoice in invoices:
            documents.append(payment_doc(invoice, sequence, txn=f"{invoice.number}-P"))
            sequence += 1
    assert len(documents) == 1000
    for document in documents:
        outbox.add(document)
    world.control({"faults": FAULTS_20})

    report = enqueue_pending(outbox, world.container.netsuite_queue)
    assert len(report.enqueued) == 1000
    ids = [document.doc_id for document in documents]
    world.wait_until(lambda: set(world.statuses(ids).values()) == {"synced"}, 600, "1,000 documents synced")

    records = world.records()
    keys = Counter((record["type"], record["externalId"]) for record in records)
    assert len(records) == 1000
    assert [key for key, count in keys.items() if count > 1] == []
    assert Counter(record["type"] for record in records) == {
        "customer": 40, "invoice": 320, "journalEntry": 320, "customerPayment": 320}
    expected = {}
    for number in range(40):
        expected.update(register_documents(register, f"BULK{number:02d}"))
    invoices = {record["externalId"]: record for record in records if record["type"] == "invoice"}
    assert set(invoices) == set(expected)
    for number, record in invoices.items():
        lines = [(item["custcol_warp_sku"], Decimal(str(item["amount"]))) for item in record["body"]["item"]["items"]]
        assert lines == expected[number], number
        assert Decimal(record["total"]) == sum(amount for _, amount in expected[number])
    assert world.container.sync_errors.errors() == []
    stats = world.stats()
    injected = sum(stats[name] for name in FAULTS_20)
    assert injected >= 150 and stats["rate_commit_drop"] >= 30, stats  # the faults did happen
    assert stats["max_in_flight"] > 1, stats  # dispatched concurrently (queue concurrency 5)
    assert world.queued_tasks() == []


def test_a_payment_and_a_credit_note_enqueued_before_their_invoice_land_after_it(world, tmp_path):
    register = InvoiceRegister(tmp_path / "register")
    first = register.issue(draft("ORDER", "2026-11")).invoice
    outcome = register.issue(draft("ORDER", "2026-11", lines=(("VOICE-INTERSTATE", "2000", "12.00"),)))
    assert outcome.outcome == REISSUED
    rebill, note = outcome.invoice, outcome.credit_note
    docs = issued_documents([first, note, rebill], first_sequence=10, issued_at="t", journals=False)
    payment = payment_doc(rebill, 1, txn="ORDER-PAY")
    # Issue order reversed on purpose: the payment and the credit memo first, the customer last.
    outbox = world.container.sync_outbox
    for document in (payment, docs[1], docs[0], docs[2]):
        outbox.add(document)
    outbox.add(customer_doc("ORDER", 99))
    world.control({"faults": {"rate_429": 0.1, "rate_commit_drop": 0.1}})
    swept = warp(world, "netsuite", "sweep", "--customer", "ORDER")
    assert swept.returncode == 0 and "enqueued 5" in swept.stdout, swept.stderr
    all_ids = ["customer:ORDER", first.number, note.number, rebill.number, "payment:ORDER-PAY"]
    world.wait_until(lambda: set(world.statuses(all_ids).values()) == {"synced"}, 120, "ordering documents synced")

    by_key = {(r["type"], r["externalId"]): r for r in world.records()}
    original, memo = by_key[("invoice", first.number)], by_key[("creditMemo", note.number)]
    new, paid = by_key[("invoice", rebill.number)], by_key[("customerPayment", "payment:ORDER-PAY")]
    assert original["created"] < memo["created"] and new["created"] < paid["created"]
    assert memo["body"]["apply"]["items"][0]["doc"]["id"] == original["id"]
    assert paid["body"]["apply"]["items"][0]["doc"]["id"] == new["id"]
    # Nothing changes a synced invoice in place: the original is as first written.
    assert Decimal(original["total"]) == first.total and original["writes"] <= 2
    assert Decimal(memo["total"]) == first.total and Decimal(new["total"]) == rebill.total
    assert world.stats()["validation_errors"] == 0


def test_duplicate_tasks_of_one_document_make_one_record(world, tmp_path):
    """The emulator accepts a duplicate task name (Cloud Tasks would refuse it): dedup must hold anyway."""
    register = InvoiceRegister(tmp_path / "register")
    invoices = issue_invoices(register, "DUP", 3)
    documents = [customer_doc("DUP", 1), *issued_documents(invoices, first_sequence=2, issued_at="t")]
    outbox, queue = world.container.sync_outbox, world.container.netsuite_queue
    for document in documents:
        outbox.add(document)
    world.control({"faults": {"rate_commit_drop": 0.2, "rate_5xx": 0.1}})
    for _ in range(3):  # the same names three times, as a crashed sweep re-run would
        for document in reversed(documents):
            assert queue.enqueue(task_name(document.doc_id, 1), task_body(document, 0)) is True
    ids = [document.doc_id for document in documents]
    world.wait_until(lambda: set(world.statuses(ids).values()) == {"synced"}, 120, "duplicates synced")
    world.wait_until(lambda: world.queued_tasks() == [], 60, "every duplicate delivered")
    records = world.records()
    assert sorted(record["externalId"] for record in records) == sorted(ids)
    assert world.container.sync_errors.errors() == []


def warp(world: SyncWorld, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("warp")), *args], check=False,
                          env=world.env, capture_output=True, text=True, timeout=60, cwd=world.home)


def test_an_unmapped_sku_gives_one_sync_error_no_retry_storm_then_a_fixed_mapping_and_retry_sync_it(world, tmp_path):
    register = InvoiceRegister(tmp_path / "register")
    invoice = register.issue(draft("MARS", "2026-11", lines=(("VOICE-MARS", "60", "0.60"),))).invoice
    outbox = world.container.sync_outbox
    outbox.add(customer_doc("MARS", 1))
    for document in issued_documents([invoice], first_sequence=2, issued_at="t", journals=False):
        outbox.add(document)
    enqueue_pending(outbox, world.container.netsuite_queue)
    world.wait_until(lambda: world.statuses([invoice.number])[invoice.number] == "failed", 60, "invoice failed")
    world.wait_until(lambda: world.queued_tasks() == [], 30, "queue empty")

    [error] = world.container.sync_errors.errors(doc_id=invoice.number)
    assert error.code == "UNMAPPED_SKU" and "VOICE-MARS" in error.detail and "test-1" in error.detail
    calls_after_failure = world.stats()["record_calls"]
    status = warp(world, "netsuite", "status", "--customer", "MARS")
    assert status.returncode == 0, status.stderr
    assert "failed: 1" in status.stdout and "UNMAPPED_SKU" in status.stdout and "VOICE-MARS" in status.stdout
    assert world.stats()["record_calls"] == calls_after_failure  # nothing keeps retrying
    assert len(world.container.sync_errors.errors(doc_id=invoice.number)) == 1

    world.write_mapping(version="test-2", items={"VOICE-INTERSTATE": 1001, "VOICE-MARS": 1099, "SMS-*": 1101})
    retried = warp(world, "netsuite", "retry", invoice.number)
    assert retried.returncode == 0, retried.stderr
    assert "-a1" in retried.stdout
    world.wait_until(lambda: world.statuses([invoice.number])[invoice.number] == "synced", 60, "invoice synced")
    status = warp(world, "netsuite", "status", "--customer", "MARS")
    assert "synced: 2" in status.stdout and "mapping=test-2" in status.stdout
    again = warp(world, "netsuite", "retry", invoice.number)
    assert again.returncode == 1 and "already synced" in again.stderr


def test_token_expiry_in_the_middle_of_a_run_is_refreshed_and_nothing_is_lost(world, tmp_path):
    register = InvoiceRegister(tmp_path / "register")
    outbox = world.container.sync_outbox
    ids, sequence = [], 1
    world.control({"token_lifetime_s": 4, "latency_ms": 50})  # tokens run out several times during the run
    for number in range(10):
        customer = f"TOK{number}"
        outbox.add(customer_doc(customer, sequence))
        ids.append(f"customer:{customer}")
        docs = issued_documents(issue_invoices(register, customer, 4), first_sequence=sequence + 1, issued_at="t")
        for document in docs:
            outbox.add(document)
            ids.append(document.doc_id)
        sequence += 1 + len(docs)
    enqueue_pending(outbox, world.container.netsuite_queue)
    world.wait_until(lambda: sum(s == "synced" for s in world.statuses(ids).values()) >= 8, 60, "8 synced")
    world.control({"expire_tokens": True})  # revoked under the function's feet: the next call gets 401
    synced_at_expiry = sum(s == "synced" for s in world.statuses(ids).values())
    assert synced_at_expiry < len(ids)
    world.wait_until(lambda: set(world.statuses(ids).values()) == {"synced"}, 120, "all synced")
    records = world.records()
    assert len(records) == len(ids) == 90
    stats = world.stats()
    assert stats["tokens_issued"] >= 2 and stats["unauthorized"] >= 1, stats
    assert world.container.sync_errors.errors() == []


def test_an_accepted_dispute_s_credit_note_reaches_netsuite_as_a_credit_memo_on_its_invoice(tmp_path):
    """`warp dispute` on the configured file register (no --register): the note's credit memo is in the
    register's outbox, which the sync drains (WARP_SYNC_OUTBOX=register, the default)."""
    require_stand_in("tasks")
    require_stand_in("netsuite")
    world = SyncWorld(tmp_path, settings={"sync_outbox": "register", "register_store": "files",
                                          "register_dir": str(tmp_path / "register")})
    try:
        world.control({"reset": True, "faults": {}, "concurrency_limit": 5, "latency_ms": 0, "timeout_s": 0.6,
                       "slow_ms": 100, "token_lifetime_s": 3600, "seed": 11})
        register = world.container.close_register
        assert isinstance(register, FileCloseRegister) and world.container.sync_outbox is register.outbox
        lines = (("VOICE-INTERSTATE", "1000", "6.00"), ("SMS-OUTBOUND", "10", "0.40"))
        invoice = register.issue_close(draft("DISP", "2026-11", lines=lines),
                                       watermark=datetime(2026, 12, 1, tzinfo=UTC),
                                       customer=customer_doc("DISP", 0), accounts=DEFAULT_ACCOUNTS).invoice
        opened = warp(world, "dispute", "open", "--invoice", str(invoice.number), "--sku", "VOICE-INTERSTATE",
                      "--amount", "1.50", "--reason", "calls not made")
        assert opened.returncode == 0, opened.stderr
        dispute_id = opened.stdout.split()[0]
        assert warp(world, "dispute", "review", dispute_id).returncode == 0
        accepted = warp(world, "dispute", "accept", dispute_id, "--as-of", "2026-12-05")
        assert accepted.returncode == 0, accepted.stderr
        [note] = [d for d in register.documents("DISP") if d.document_type == "credit_note"]

        swept = warp(world, "netsuite", "sweep", "--customer", "DISP")
        assert swept.returncode == 0, swept.stderr
        ids = ["customer:DISP", invoice.number, f"journal:{invoice.number}", note.number, f"journal:{note.number}"]
        world.wait_until(lambda: set(world.statuses(ids).values()) == {"synced"}, 120, "dispute credit synced")

        by_key = {(r["type"], r["externalId"]): r for r in world.records()}
        original, memo = by_key[("invoice", invoice.number)], by_key[("creditMemo", note.number)]
        assert memo["body"]["apply"]["items"][0]["doc"]["id"] == original["id"]
        assert Decimal(memo["total"]) == Decimal("1.50") and Decimal(original["total"]) == invoice.total
        assert [r["externalId"] for r in world.records() if r["type"] == "creditMemo"] == [note.number]
        assert world.container.sync_errors.errors() == []
    finally:
        world.close()
