"""`warp netsuite status|retry|sweep` on fakes of the outbox, sync_errors and the queue."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner
from tests.erp_builders import FakeErp, FakeErrors, FakeOutbox, FakeQueue, customer_doc, draft, issued, mapping

from warp_billing import bootstrap
from warp_billing.cli import main
from warp_billing.erp.outbox_documents import issued_documents
from warp_billing.erp.sync import DocumentSync
from warp_billing.settings import Settings


@pytest.fixture
def parts():
    bad = issued(draft("MARS", lines=(("VOICE-MARS", "1", "1.00"),)), "MARS-INV-000001")
    outbox = FakeOutbox([customer_doc("MARS"), *issued_documents([bad], first_sequence=2, issued_at="t",
                                                                 journals=False), customer_doc("ACME", 9)])
    container = bootstrap.Container(Settings(), sync_outbox=outbox, sync_errors=FakeErrors(),
                                    netsuite_queue=FakeQueue(), erp=FakeErp())
    bootstrap.reset(container)
    yield container
    bootstrap.reset()


def run(*args):
    return CliRunner().invoke(main, ["netsuite", *args], catch_exceptions=False)


def sync_all(parts, current=mapping):
    service = DocumentSync(parts.sync_outbox, parts.erp, parts.sync_errors, current)
    for body in parts.netsuite_queue.tasks.values():
        service.sync(body["doc_id"], body["revision"], body["attempt"])
    parts.netsuite_queue.tasks.clear()


def test_sweep_status_retry(parts):
    result = run("sweep")
    assert result.exit_code == 0 and "enqueued 3" in result.output
    sync_all(parts)
    sync_all(parts)  # nothing left: the queue was drained
    result = run("status", "--customer", "MARS")
    assert "pending: 0  enqueued: 0  failed: 1  synced: 1" in result.output
    assert "UNMAPPED_SKU" in result.output and "(at items.VOICE-MARS)" in result.output
    lines = [orjson.loads(line) for line in run("status", "--json").output.splitlines()]
    assert {line["doc_id"]: line["status"] for line in lines} == {
        "customer:MARS": "synced", "MARS-INV-000001": "failed", "customer:ACME": "synced"}
    assert next(line for line in lines if line["status"] == "failed")["error"]["code"] == "UNMAPPED_SKU"
    result = run("retry", "MARS-INV-000001")
    assert result.exit_code == 0 and "-a1" in result.output
    sync_all(parts, lambda: mapping(items={"VOICE-MARS": 1099}))
    assert "failed: 0  synced: 3" in run("status").output


def test_retry_of_an_unknown_or_synced_document_fails_with_a_clear_message(parts):
    result = run("retry", "NOPE")
    assert result.exit_code == 1 and "NOPE is not in the outbox" in result.output
    run("sweep")
    sync_all(parts)
    result = run("retry", "customer:ACME")
    assert result.exit_code == 1 and "already synced" in result.output
