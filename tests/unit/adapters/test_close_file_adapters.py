"""The cycle close's embedded adapters: the SQLite ERP outbox and the document folder."""

from __future__ import annotations

import pytest

from warp_billing.adapters.document_files import DocumentConflict, DocumentFolder
from warp_billing.adapters.file_register import SqliteOutbox
from warp_billing.ports import OutboxDocument


def test_sqlite_outbox_is_idempotent_ordered_and_markable(tmp_path):
    outbox = SqliteOutbox(tmp_path / "outbox.sqlite")
    first = OutboxDocument("customer:A", 1, "customer", "A", 0, "2026-12-01T00:00:00+00:00", {"customer_id": "A"})
    invoice = OutboxDocument("A-INV-000001", 1, "invoice", "A", 0, "2026-12-01T00:00:00+00:00", {"total": "1.00"},
                             ("customer:A",))
    outbox.add(first)
    outbox.add(invoice)
    outbox.add(OutboxDocument("customer:A", 1, "customer", "A", 0, "later", {"changed": True}))
    assert [d.doc_id for d in outbox.pending()] == ["customer:A", "A-INV-000001"]
    assert outbox.get("customer:A").payload == {"customer_id": "A"}
    outbox.mark("customer:A", 1, "synced", "netsuite:42")
    assert [d.doc_id for d in outbox.pending()] == ["A-INV-000001"]
    assert outbox.get("customer:A").detail == "netsuite:42"
    outbox.add(OutboxDocument("customer:A", 2, "customer", "A", 0, "later", {"customer_id": "A", "v": 2}))
    assert outbox.get("customer:A").revision == 2
    assert [d.doc_id for d in outbox.documents("A")] == ["customer:A", "A-INV-000001", "customer:A"]
    with pytest.raises(KeyError):
        outbox.mark("nope", 1, "synced")
    with pytest.raises(ValueError):
        outbox.mark("customer:A", 1, "done")


def test_document_folder_writes_once(tmp_path):
    folder = DocumentFolder(tmp_path)
    reference = folder.put("A/2026-11/A-INV-000001.json", b"{}", "application/json")
    assert folder.put("A/2026-11/A-INV-000001.json", b"{}", "application/json") == reference
    with pytest.raises(DocumentConflict):
        folder.put("A/2026-11/A-INV-000001.json", b"{ }", "application/json")
    for bad in ("../x.json", "/etc/x", "a/../../x"):
        with pytest.raises(ValueError):
            folder.put(bad, b"", "text/plain")
