"""The rollup function's task requests (warp_billing.closing.handle_request) on embedded adapters."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
from tests.unit.billing.billing_builders import rated

from warp_billing.bootstrap import Container
from warp_billing.closing import handle_request
from warp_billing.settings import Settings


def container(tmp_path: Path) -> Container:
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
    return Container(settings)


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
