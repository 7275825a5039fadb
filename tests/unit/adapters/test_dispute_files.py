"""The file dispute store (``DisputeStore``): gapless ids under the customer's lock, changes decided under it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from warp_billing.adapters.dispute_files import DisputeFiles
from warp_billing.reconciliation.customer_disputes import DisputeError, open_dispute

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def opener(sku: str):
    def make(dispute_id, existing):
        if any(d.sku == sku for d in existing):
            raise DisputeError(f"{sku} is already disputed")
        return open_dispute(dispute_id, "ACME", "ACME-INV-000001", sku, Decimal("5.00"), None, "r", NOW)
    return make


def test_concurrent_opens_get_distinct_gapless_ids_and_one_per_line(tmp_path):
    store = DisputeFiles(tmp_path)
    skus = [f"SKU-{n}" for n in range(6)] * 2
    opened, refused = [], []
    start = threading.Barrier(len(skus))

    def open_line(sku):
        start.wait()
        try:
            opened.append(store.open("ACME", opener(sku)).dispute_id)
        except DisputeError:
            refused.append(sku)

    threads = [threading.Thread(target=open_line, args=(sku,)) for sku in skus]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(opened) == [f"ACME-DSP-{n:06d}" for n in range(1, 7)] and len(refused) == 6
    assert sorted(d.sku for d in store.of_customer("ACME")) == sorted(set(skus))


def test_a_change_is_kept_and_a_failed_one_leaves_the_dispute_as_it_was(tmp_path):
    store = DisputeFiles(tmp_path)
    dispute_id = store.open("ACME", opener("SKU-1")).dispute_id
    assert store.change(dispute_id, lambda d: d.move("under_review", NOW)).status == "under_review"
    with pytest.raises(DisputeError, match="can move to accepted, rejected"):
        store.change(dispute_id, lambda d: d.move("open", NOW))
    with pytest.raises(DisputeError, match="cannot make it"):
        store.change(dispute_id, lambda d: open_dispute("ACME-DSP-000009", "ACME", "X", "S", Decimal(1), None, "r",
                                                        NOW))
    assert [entry[1] for entry in store.get(dispute_id).history] == ["open", "under_review"]
    with pytest.raises(DisputeError, match="no dispute ACME-DSP-000002"):
        store.change("ACME-DSP-000002", lambda d: d)
