"""The rollup function's task requests (warp_billing.closing.handle_request) on embedded adapters."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
from tests.erp_builders import FakeQueue
from tests.unit.billing.billing_builders import rated

from warp_billing.bootstrap import Container
from warp_billing.closing import handle_request
from warp_billing.settings import Settings


def container(tmp_path: Path, queue=None) -> Container:
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "deck.csv").write_text("prefix,destination,rate,effective_date\n1,US,0.01,2020-01-01\n", encoding="utf-8")
    for customer in ("ACME", "BETA"):
        (plans / f"{customer.lower()}.yaml").write_text(
            f"customer_id: {customer}\ntimezone: America/New_York\nvoice: {{deck: deck.csv}}\n", encoding="utf-8")
    (plans / "broken.yaml").write_text("customer_id: BROKEN\nvoice: {deck: deck.csv}\ntimezone: Mars/Olympus\n",
                                       encoding="utf-8")
    rated_path = tmp_path / "rated.jsonl"
    rated_path.write_bytes(b"\n".join(orjson.dumps(r) for r in (
        rated(event_id="a1", amount="1.000000"), rated(event_id="b1", customer="BETA", amount="2.000000"))) + b"\n")
    # Settings from arguments only: a unit test never reads the caller's WARP_* environment.
    settings = Settings.model_construct(**{**Settings.model_construct().__dict__, **{
        "plans_dir": plans, "rated_file": rated_path, "register_dir": tmp_path / "register",
        "documents_dir": tmp_path / "documents", "data_dir": tmp_path / "data"}})
    # The netsuite queue is a fake: a unit test never reaches for Cloud Tasks.
    return Container(settings, netsuite_queue=queue if queue is not None else FakeQueue())


def test_a_bad_request_is_refused_with_400_naming_the_problem(tmp_path):
    graph = container(tmp_path)
    for body, words in ((None, "JSON object"), ([], "JSON object"), ({"task": "close_all"}, "unknown task"),
                        ({"task": "cycle_close", "customr": "ACME"}, "unknown key"),
                        ({"task": "cycle_close", "customer": "ACME"}, "period too"),
                        ({"task": "cycle_close", "period": "2026-13"}, "2026-13"),
                        ({"task": "hourly_rollup"}, "WARP_RATED_SOURCE=bigquery"),
                        ({"task": "hourly_rollup", "period": "2026-11"}, "no customer or period")):
        answer, status = handle_request(body, graph)
        assert status == 400 and words in answer["error"], (body, answer)


def test_cycle_close_task_closes_every_customer_and_reports_the_broken_plan(tmp_path):
    graph = container(tmp_path)
    answer, status = handle_request({"task": "cycle_close", "period": "2026-11"}, graph)
    assert status == 200
    [run] = answer["runs"]
    assert run["by_status"] == {"failed": 1, "issued": 2}
    assert [f["customer_id"] for f in run["failed"]] == ["BROKEN"] and "Mars/Olympus" in run["failed"][0]["error"]
    again, _ = handle_request({"task": "cycle_close", "period": "2026-11"}, graph)
    assert [r["by_status"] for r in again["runs"]] == [{"failed": 1}]   # issued ones are left alone
    rerun, _ = handle_request({"task": "cycle_close", "customer": "ACME", "period": "2026-11"}, graph)
    assert rerun["runs"][0]["by_status"] == {"unchanged": 1}


def test_a_cycle_issued_but_not_stored_is_finished_by_the_next_run_without_a_new_number(tmp_path):
    graph = container(tmp_path)
    handle_request({"task": "cycle_close", "period": "2026-11"}, graph)
    shutil.rmtree(tmp_path / "documents" / "BETA")     # as if storing had failed after the issue
    answer, _ = handle_request({"task": "cycle_close", "period": "2026-11"}, graph)
    rows = {row["customer_id"]: row for row in answer["runs"][0]["closes"]}
    assert set(rows) == {"BETA", "BROKEN"}
    assert (rows["BETA"]["status"], rows["BETA"]["document_number"]) == ("unchanged", "BETA-INV-000001")
    assert (tmp_path / "documents" / "BETA" / "2026-11" / "BETA-INV-000001.json").exists()


def test_a_close_enqueues_what_it_issued_in_issue_order_and_a_repeated_close_enqueues_nothing_new(tmp_path):
    queue = FakeQueue()
    graph = container(tmp_path, queue)
    assert graph.sync_outbox is graph.close_register.outbox   # the default: the outbox the close writes
    answer, status = handle_request({"task": "cycle_close", "period": "2026-11"}, graph)
    assert status == 200 and answer["netsuite"] == {"enqueued": 6, "already_queued": 0, "failed_waiting_for_retry": 0}
    enqueued = [body["doc_id"] for body in queue.tasks.values()]
    for customer in ("ACME", "BETA"):   # the customers closed in parallel; each one's documents in issue order
        assert [doc for doc in enqueued if customer in doc] == [
            f"customer:{customer}", f"{customer}-INV-000001", f"journal:{customer}-INV-000001"]
    assert {doc.status for doc in graph.sync_outbox.documents()} == {"enqueued"}
    again, _ = handle_request({"task": "cycle_close", "period": "2026-11"}, graph)
    assert again["netsuite"]["enqueued"] == 0 and len(queue.tasks) == 6


def test_the_netsuite_sweep_task_enqueues_what_an_earlier_enqueue_missed(tmp_path):
    class DownQueue(FakeQueue):
        def enqueue(self, name, body, *, delay_s=0):
            raise ConnectionError("Cloud Tasks unavailable")

    graph = container(tmp_path, DownQueue())
    answer, status = handle_request({"task": "cycle_close", "period": "2026-11"}, graph)
    assert status == 200 and answer["runs"][0]["by_status"] == {"failed": 1, "issued": 2}  # the close stands
    assert "ConnectionError" in answer["netsuite"]["error"]
    assert {doc.status for doc in graph.sync_outbox.documents()} == {"pending"}

    queue = FakeQueue()
    graph._parts["netsuite_queue"] = queue   # the queue is back
    swept, status = handle_request({"task": "netsuite_sweep"}, graph)
    assert status == 200 and swept == {"task": "netsuite_sweep", "netsuite": {
        "enqueued": 6, "already_queued": 0, "failed_waiting_for_retry": 0}}
    assert handle_request({"task": "netsuite_sweep", "period": "2026-11"}, graph)[1] == 400
