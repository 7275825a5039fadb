"""Embedded adapters: SQLite usage/ledger stores (idempotent by business key) and the plan folder."""

from __future__ import annotations

import os
import threading
import time

import pytest
import yaml
from tests.charging_world import DECKS, PREPAID_PLAN

from warp_billing.adapters.plan_files import PlanFolder
from warp_billing.adapters.sqlite_stores import SqliteLedgerStore, SqliteUsageStore
from warp_billing.charging.plan_catalog import PlanCatalog
from warp_billing.ports import LedgerEntry


def entry(entry_id: str, amount: int, customer: str = "ACME") -> LedgerEntry:
    return LedgerEntry(entry_id, customer, "debit", amount, 0, "2026-11-03T00:00:00.000+00:00", "voice")


def test_a_rated_row_and_a_reject_are_kept_once_per_key(tmp_path):
    store = SqliteUsageStore(tmp_path / "usage.sqlite")

    for _ in range(3):
        store.insert_rated([{"event_id": "e1", "customer_id": "ACME", "amount": "0.050000"}])
        store.insert_rejects([{"reject_id": "message:9", "event_id": None, "reason": "MALFORMED_JSON"}])

    assert store.counts() == (1, 1)
    assert next(store.rated())["amount"] == "0.050000"


def test_ledger_entries_are_kept_once_per_customer_and_entry_id_across_writers(tmp_path):
    path = tmp_path / "ledger.sqlite"
    writers = [SqliteLedgerStore(path) for _ in range(3)]

    def write(store):
        for number in range(200):
            store.append([entry(f"e{number}", -number)])

    threads = [threading.Thread(target=write, args=(store,)) for store in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    entries = list(SqliteLedgerStore(path).entries("ACME"))
    assert len(entries) == 200 and sum(e.amount_micros for e in entries) == -sum(range(200))
    assert list(SqliteLedgerStore(path).entries("OTHER")) == []


@pytest.fixture
def folder(tmp_path):
    for name, text in DECKS.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "acme.yaml").write_text(yaml.safe_dump(PREPAID_PLAN))
    (tmp_path / "notes.yaml").write_text("just: notes\n")
    return PlanFolder(tmp_path)


def test_the_plan_folder_finds_plans_by_customer_id(folder):
    assert folder.customers() == ["ACME"]
    assert folder.current_version("NOBODY") is None
    version = folder.current_version("ACME")
    assert folder.plan_document("ACME", version)["billing"] == "prepaid"


def test_editing_a_deck_is_a_new_plan_version(folder):
    before = folder.current_version("ACME")
    deck = folder.folder / "voice.csv"
    deck.write_text(DECKS["voice.csv"].replace("0.050000", "0.040000"))
    os.utime(deck, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))

    after = folder.current_version("ACME")

    assert after != before
    with pytest.raises(LookupError):
        folder.plan_document("ACME", before)


def test_a_warm_catalog_on_the_folder_rates_with_the_edited_deck(folder):
    catalog = PlanCatalog(folder, 0)
    first = catalog.current("ACME")
    deck = folder.folder / "voice.csv"
    deck.write_text(DECKS["voice.csv"].replace("0.050000", "0.040000"))
    os.utime(deck, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))

    second = catalog.current("ACME")

    assert first.version != second.version


def test_put_plan_writes_decks_and_plan_and_refuses_paths_outside_the_folder(tmp_path):
    folder = PlanFolder(tmp_path / "plans")

    version = folder.put_plan("ACME", yaml.safe_dump(PREPAID_PLAN), DECKS)

    assert folder.current_version("ACME") == version
    assert folder.deck_text("voice.csv") == DECKS["voice.csv"]
    with pytest.raises(ValueError):
        folder.put_plan("ACME", yaml.safe_dump(PREPAID_PLAN), {"../escape.csv": "x"})
