"""The ``netsuite_sync`` entry point under functions-framework (its Flask test client), on fakes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from functions_framework import create_app
from tests.erp_builders import FakeErp, FakeErrors, FakeOutbox, FakeQueue, customer_doc, draft, issued, mapping

from warp_billing import bootstrap
from warp_billing.erp.outbox_documents import issued_documents
from warp_billing.settings import Settings

SOURCE = Path(__file__).resolve().parents[3] / "functions" / "netsuite_sync" / "main.py"


class Holder:
    def current(self):
        return mapping()


@pytest.fixture
def app():
    invoice = issued(draft(), "ACME-INV-000001")
    outbox = FakeOutbox([customer_doc(), *issued_documents([invoice], first_sequence=2, issued_at="t",
                                                          journals=False)])
    parts = bootstrap.Container(Settings(_env_file=None), sync_outbox=outbox, erp=FakeErp(), sync_errors=FakeErrors(),
                                erp_mapping=Holder(), netsuite_queue=FakeQueue())
    bootstrap.reset(parts)
    yield create_app("netsuite_sync", str(SOURCE), "http").test_client(), parts
    bootstrap.reset()


def post(client, body: dict, task: bool = True):
    headers = {"X-CloudTasks-TaskName": "t1", "X-CloudTasks-TaskRetryCount": "0"} if task else {}
    return client.post("/", data=orjson.dumps(body), headers=headers, content_type="application/json")


def test_a_task_whose_customer_is_not_synced_is_answered_503_with_retry_after_then_synced(app):
    client, parts = app
    response = post(client, {"doc_id": "ACME-INV-000001", "revision": 1, "attempt": 0})
    assert response.status_code == 503 and response.headers["Retry-After"] == "10"
    assert post(client, {"doc_id": "customer:ACME", "revision": 1}).status_code == 200
    response = post(client, {"doc_id": "ACME-INV-000001", "revision": 1})
    assert response.status_code == 200 and response.get_json()["result"] == "synced"
    assert parts.sync_outbox.get("ACME-INV-000001").status == "synced"


def test_a_sweep_request_enqueues_the_pending_documents(app):
    client, parts = app
    response = post(client, {"task": "sweep"}, task=False)
    assert response.status_code == 200 and response.get_json()["enqueued"] == 2
    assert len(parts.netsuite_queue.created) == 2
