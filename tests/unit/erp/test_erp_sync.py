"""The sync service (one task = one document), the enqueue service and the HTTP delivery, on fakes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from tests.erp_builders import (
    BusyErp,
    FakeErp,
    FakeErrors,
    FakeOutbox,
    FakeQueue,
    customer_doc,
    draft,
    issued,
    mapping,
    payment_doc,
)

from warp_billing.erp.delivery import handle_task_request
from warp_billing.erp.enqueue import enqueue_pending, retry_document
from warp_billing.erp.errors import ErpRejected, ErpTransient
from warp_billing.erp.outbox_documents import issued_documents
from warp_billing.erp.sync import DocumentSync
from warp_billing.erp.task_names import TASK_ID, task_name

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
INVOICE = issued(draft(), "ACME-INV-000001")


def world(*documents, erp=None, current_mapping=None):
    outbox = FakeOutbox(documents)
    errors = FakeErrors()
    erp = erp or FakeErp()
    sync = DocumentSync(outbox, erp, errors, lambda: current_mapping or mapping(), now=lambda: NOW)
    return outbox, erp, errors, sync


def invoice_docs(invoice=INVOICE, first=2):
    return issued_documents([invoice], first_sequence=first, issued_at="t", journals=False)


def test_an_invoice_whose_customer_is_not_synced_yet_answers_retry_later_and_writes_nothing():
    outbox, erp, errors, sync = world(customer_doc(), *invoice_docs())
    outcome = sync.sync("ACME-INV-000001", 1)
    assert (outcome.result, outcome.http_status) == ("retry_later", 503)
    assert outcome.retry_after_s and "customer:ACME" in outcome.detail
    assert erp.calls == [] and errors.rows == {}
    assert outbox.get("ACME-INV-000001").status == "pending"


def test_customer_then_invoice_then_payment_sync_with_the_internal_ids_of_their_prerequisites():
    outbox, erp, errors, sync = world(customer_doc(), *invoice_docs(), payment_doc(INVOICE, 3))
    assert sync.sync("payment:T1", 1).http_status == 503
    assert sync.sync("customer:ACME", 1).result == "synced"
    assert sync.sync("payment:T1", 1).http_status == 503  # still waiting for the invoice
    assert sync.sync("ACME-INV-000001", 1).result == "synced"
    assert sync.sync("payment:T1", 1).result == "synced"
    invoice_id = erp.ids[("invoice", "ACME-INV-000001")]
    assert erp.records[("customerPayment", "payment:T1")]["apply"]["items"][0]["doc"] == {"id": invoice_id}
    assert erp.records[("invoice", "ACME-INV-000001")]["entity"] == {"id": erp.ids[("customer", "customer:ACME")]}
    assert outbox.get("ACME-INV-000001").detail.startswith(f"invoice/{invoice_id} mapping=test-1")


def test_a_redelivered_task_of_a_synced_document_writes_nothing_again():
    outbox, erp, errors, sync = world(customer_doc())
    sync.sync("customer:ACME", 1)
    outcome = sync.sync("customer:ACME", 1)
    assert (outcome.result, outcome.http_status) == ("already_synced", 200)
    assert len(erp.calls) == 1


def test_a_prerequisite_the_outbox_does_not_hold_is_looked_up_in_netsuite():
    erp = FakeErp()
    erp.ids[("customer", "customer:ACME")] = "77"
    outbox, erp, errors, sync = world(*invoice_docs(), erp=erp)
    assert sync.sync("ACME-INV-000001", 1).result == "synced"
    assert erp.records[("invoice", "ACME-INV-000001")]["entity"] == {"id": "77"}


def test_an_unmapped_sku_records_one_sync_error_answers_2xx_and_a_redelivery_adds_no_row():
    bad = issued(draft(lines=(("VOICE-MARS", "1", "1.00"),)), "ACME-INV-000001")
    outbox, erp, errors, sync = world(customer_doc(), *invoice_docs(bad))
    sync.sync("customer:ACME", 1)
    for _ in range(3):
        outcome = sync.sync("ACME-INV-000001", 1, attempt=0)
        assert (outcome.result, outcome.http_status) == ("failed", 200)
    [error] = errors.rows.values()
    assert (error.doc_id, error.code, error.path) == ("ACME-INV-000001", "UNMAPPED_SKU", "items.VOICE-MARS")
    assert "VOICE-MARS" in error.detail and "test-1" in error.detail
    assert outbox.get("ACME-INV-000001").status == "failed"
    assert ("invoice", "ACME-INV-000001") not in erp.calls


def test_a_netsuite_validation_error_is_permanent_with_its_code_and_path():
    erp = FakeErp(fail_with=[ErpRejected("INVALID_KEY_OR_REF", "Invalid item reference key.", "item.items[0].item")])
    outbox, erp, errors, sync = world(customer_doc(), erp=erp)
    outcome = sync.sync("customer:ACME", 1)
    assert outcome.http_status == 200 and outcome.result == "failed"
    [error] = errors.rows.values()
    assert (error.code, error.path) == ("INVALID_KEY_OR_REF", "item.items[0].item")


def test_a_refusal_that_loses_the_race_to_a_duplicate_delivery_does_not_mark_the_synced_document_failed():
    outbox, erp, errors, sync = world(customer_doc())

    class RacingErp(FakeErp):
        def upsert(self, record_type, external_id, body):
            outbox.mark("customer:ACME", 1, "synced", "customer/9 mapping=test-1")  # the duplicate won
            raise ErpRejected("DUP_RCRD", "A record with this external ID already exists.", "externalId")

    sync.erp = RacingErp()
    outcome = sync.sync("customer:ACME", 1)
    assert (outcome.result, outcome.http_status) == ("already_synced", 200)
    assert outbox.get("customer:ACME").status == "synced" and errors.rows == {}


@pytest.mark.parametrize("code, status", [("429", 429), ("SSS_REQUEST_LIMIT_EXCEEDED", 429), ("503", 503),
                                          ("TIMEOUT", 503)])
def test_throttling_5xx_and_timeouts_answer_429_or_503_with_retry_after_and_record_nothing(code, status):
    erp = FakeErp(fail_with=[ErpTransient("busy", retry_after_s=7, code=code)])
    outbox, erp, errors, sync = world(customer_doc(), erp=erp)
    outcome = sync.sync("customer:ACME", 1)
    assert (outcome.http_status, outcome.retry_after_s) == (status, 7)
    assert errors.rows == {} and outbox.get("customer:ACME").status == "pending"
    assert sync.sync("customer:ACME", 1).result == "synced"


def test_an_unknown_document_or_revision_is_a_permanent_error_not_a_retry_loop():
    outbox, erp, errors, sync = world(customer_doc())
    assert sync.sync("customer:NOBODY", 1).http_status == 200
    assert sync.sync("customer:ACME", 2).http_status == 200
    assert {e.code for e in errors.rows.values()} == {"UNKNOWN_DOCUMENT"}


def test_an_older_revisions_task_is_superseded():
    outbox, erp, errors, sync = world(customer_doc(), replace(customer_doc(), revision=2, sequence=5))
    assert sync.sync("customer:ACME", 1).result == "superseded"
    assert erp.calls == []


def test_a_new_revision_of_a_synced_invoice_is_refused_never_written_over():
    outbox, erp, errors, sync = world(customer_doc(), *invoice_docs())
    sync.sync("customer:ACME", 1)
    sync.sync("ACME-INV-000001", 1)
    changed = replace(outbox.get("ACME-INV-000001"), revision=2, status="pending", detail="")
    outbox.add(changed)
    written = dict(erp.records[("invoice", "ACME-INV-000001")])
    outcome = sync.sync("ACME-INV-000001", 2)
    assert (outcome.result, outcome.http_status) == ("failed", 200)
    assert [e.code for e in errors.rows.values()] == ["IMMUTABLE_DOCUMENT"]
    assert erp.records[("invoice", "ACME-INV-000001")] == written


def test_an_outbox_restored_from_an_old_snapshot_resends_into_the_same_records():
    outbox, erp, errors, sync = world(customer_doc(), *invoice_docs())
    sync.sync("customer:ACME", 1)
    sync.sync("ACME-INV-000001", 1)
    for doc in outbox.documents():
        outbox.mark(doc.doc_id, doc.revision, "pending")  # the snapshot predates the sync
    assert enqueue_pending(outbox, FakeQueue(), now=lambda: NOW).enqueued == ["customer:ACME", "ACME-INV-000001"]
    sync.sync("customer:ACME", 1)
    sync.sync("ACME-INV-000001", 1)
    assert len(erp.records) == 2 and len(erp.ids) == 2


# -- enqueue -----------------------------------------------------------------------------------


def test_enqueue_names_tasks_deterministically_in_issue_order_and_a_second_pass_enqueues_nothing():
    outbox = FakeOutbox([customer_doc(), *invoice_docs()])
    queue = FakeQueue()
    report = enqueue_pending(outbox, queue, now=lambda: NOW)
    assert report.enqueued == ["customer:ACME", "ACME-INV-000001"]
    assert queue.created == [task_name("customer:ACME", 1), task_name("ACME-INV-000001", 1)]
    again = enqueue_pending(outbox, queue, now=lambda: NOW + timedelta(minutes=5))
    assert again.enqueued == [] and len(queue.created) == 2


def test_a_stale_enqueued_document_is_enqueued_again_under_the_same_name():
    outbox = FakeOutbox([customer_doc()])
    queue = FakeQueue()
    enqueue_pending(outbox, queue, now=lambda: NOW)
    queue.tasks.clear()  # the queue lost it (purged, or gave up after max retries)
    report = enqueue_pending(outbox, queue, now=lambda: NOW + timedelta(hours=27))
    assert report.enqueued == ["customer:ACME"]
    assert list(queue.tasks) == [task_name("customer:ACME", 1)]


def test_enqueue_never_overwrites_a_document_the_function_synced_meanwhile():
    outbox = FakeOutbox([customer_doc()])

    class SyncingQueue(FakeQueue):
        def enqueue(self, name, body, *, delay_s=0):
            created = super().enqueue(name, body)
            outbox.mark(body["doc_id"], body["revision"], "synced", "customer/1")  # dispatched at once
            return created

    enqueue_pending(outbox, SyncingQueue(), now=lambda: NOW)
    assert outbox.get("customer:ACME").status == "synced"


def test_retry_after_a_mapping_fix_uses_the_next_attempt_and_syncs():
    bad = issued(draft(lines=(("VOICE-MARS", "1", "1.00"),)), "ACME-INV-000001")
    outbox, erp, errors, sync = world(customer_doc(), *invoice_docs(bad))
    queue = FakeQueue()
    enqueue_pending(outbox, queue, now=lambda: NOW)
    for body in list(queue.tasks.values()):
        sync.sync(body["doc_id"], body["revision"], body["attempt"])
    assert enqueue_pending(outbox, queue, now=lambda: NOW).skipped_failed == ["ACME-INV-000001"]
    fixed = mapping(items={**mapping().items, "VOICE-MARS": "1999"})
    sync._mapping = lambda: fixed
    name = retry_document(outbox, queue, errors, "ACME-INV-000001", now=lambda: NOW)
    assert name == task_name("ACME-INV-000001", 1, attempt=1)
    assert sync.sync("ACME-INV-000001", 1, queue.tasks[name]["attempt"]).result == "synced"
    with pytest.raises(ValueError, match="already synced"):
        retry_document(outbox, queue, errors, "ACME-INV-000001")
    with pytest.raises(KeyError):
        retry_document(outbox, queue, errors, "NOPE")


@given(st.text(min_size=1, max_size=300), st.integers(1, 10**6), st.integers(0, 1000))
@example("customer:ACME/../#x y", 1, 0)
@example("\udcff", 1, 0)
def test_task_names_are_valid_cloud_tasks_ids_and_differ_for_ids_that_slug_alike(doc_id, revision, attempt):
    name = task_name(doc_id, revision, attempt)
    assert TASK_ID.fullmatch(name)
    assert name == task_name(doc_id, revision, attempt)
    assert name != task_name(doc_id + "_", revision, attempt)
    assert name != task_name(doc_id, revision, attempt + 1)
    alike = doc_id.replace(":", "_")
    if alike != doc_id:
        assert task_name(alike, revision, attempt) != name


# -- delivery -----------------------------------------------------------------------------------


class Request:
    def __init__(self, body: bytes, headers=None):
        self._body = body
        self.headers = headers or {}

    def get_data(self):
        return self._body


def test_delivery_maps_outcomes_to_status_codes_and_retry_after():
    outbox, erp, errors, sync = world(customer_doc(), erp=BusyErp())
    body, status, headers = handle_task_request(
        Request(orjson.dumps({"doc_id": "customer:ACME", "revision": 1})), lambda: sync, lambda: None)
    assert status == 429 and headers["Retry-After"] == "7"
    assert orjson.loads(body)["result"] == "retry_later"


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"revision": 1}', b'{"doc_id": "", "revision": 1}',
                                 b'{"doc_id": "x", "revision": "one"}'])
def test_a_body_that_is_not_a_task_is_400_to_a_caller_and_200_to_cloud_tasks(raw):
    _, status, _ = handle_task_request(Request(raw), lambda: None, lambda: None)
    assert status == 400
    _, status, _ = handle_task_request(Request(raw, {"X-CloudTasks-TaskName": "t"}), lambda: None, lambda: None)
    assert status == 200
