"""The ``sync_errors`` stores and the SQLite outbox: idempotent by their keys, views in order."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.erp_builders import customer_doc
from tests.integration.conftest import PROJECT, RUN_ID

from warp_billing.adapters.firestore_plans import firestore_client
from warp_billing.adapters.firestore_sync_errors import FirestoreSyncErrors
from warp_billing.adapters.sqlite_outbox import SqliteSyncErrors, SqliteSyncOutbox
from warp_billing.ports import SyncError


def error(doc_id="ACME-INV-000001", attempt=0, at="2026-12-01T06:00:00+00:00", customer="ACME", code="UNMAPPED_SKU"):
    return SyncError(doc_id, 1, attempt, "invoice", customer, code, "SKU 'X' of doc has no item", "items.X", at)


@pytest.fixture(params=["sqlite", "firestore"])
def errors_store(request, tmp_path):
    if request.param == "sqlite":
        return SqliteSyncErrors(tmp_path / "outbox.sqlite")
    host = request.getfixturevalue("firestore_stack")
    return FirestoreSyncErrors(lambda: firestore_client(PROJECT, host),
                               collection=f"it{RUN_ID}_{tmp_path.name}_sync_errors")


def test_a_redelivered_failure_records_one_row_and_a_retry_generation_another(errors_store):
    errors_store.record(error())
    errors_store.record(error(code="SOMETHING_ELSE"))  # same key: the first stands
    errors_store.record(error(attempt=1, at="2026-12-01T07:00:00+00:00"))
    errors_store.record(error("BETA-INV-000001", customer="BETA", at="2026-12-01T05:00:00+00:00"))
    rows = errors_store.errors(doc_id="ACME-INV-000001")
    assert [(row.attempt, row.code) for row in rows] == [(0, "UNMAPPED_SKU"), (1, "UNMAPPED_SKU")]
    assert [row.doc_id for row in errors_store.errors(customer_id="BETA")] == ["BETA-INV-000001"]
    assert [row.doc_id for row in errors_store.errors()][0] == "BETA-INV-000001"  # oldest first


def test_a_document_id_with_slashes_and_colons_is_kept_apart(errors_store):
    errors_store.record(error("a/b:c"))
    errors_store.record(error("a%2Fb:c"))
    assert {row.doc_id for row in errors_store.errors()} == {"a/b:c", "a%2Fb:c"}


def test_the_sqlite_outbox_keeps_the_first_add_shows_latest_revisions_in_issue_order(tmp_path):
    outbox = SqliteSyncOutbox(tmp_path / "outbox.sqlite")
    first = customer_doc("ACME", 5)
    outbox.add(first)
    outbox.add(replace(first, payload={"changed": True}))  # the same (doc_id, revision): ignored
    outbox.add(customer_doc("BETA", 2))
    outbox.add(replace(first, revision=2, sequence=9, payload={"company_name": "Acme 2"}))
    assert [(d.doc_id, d.revision) for d in outbox.pending()] == [("customer:BETA", 1), ("customer:ACME", 2)]
    assert outbox.get("customer:ACME").payload == {"company_name": "Acme 2"}
    outbox.mark("customer:BETA", 1, "synced", "customer/7")
    assert [d.doc_id for d in outbox.pending()] == ["customer:ACME"]
    assert [d.status for d in outbox.documents()] == ["synced", "pending"]
    assert [d.doc_id for d in outbox.documents("BETA")] == ["customer:BETA"]
    with pytest.raises(KeyError):
        outbox.mark("customer:NOBODY", 1, "synced")
    assert outbox.get("customer:NOBODY") is None
    again = SqliteSyncOutbox(tmp_path / "outbox.sqlite")  # a second process sees the same file
    assert again.get("customer:BETA").detail == "customer/7"
