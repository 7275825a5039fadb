"""HubSpot upserts: batches of at most 100 on the queue, and the task handler's answers."""

import pytest
from tests.erp_builders import FakeQueue

from warp_billing.charging.errors import TransientCode, TransientError
from warp_billing.dunning.crm import (
    COMPANIES,
    CrmRefused,
    CrmThrottled,
    CrmUpdates,
    company_from_plan,
    company_input,
    deals_from_plan,
    run_crm_task,
)
from warp_billing.plan import parse_plan


class Crm:
    def __init__(self, *failures):
        self.failures = list(failures)
        self.calls = []

    def batch_upsert(self, object_type, id_property, inputs):
        if self.failures:
            raise self.failures.pop(0)
        self.calls.append((object_type, id_property, list(inputs)))


def test_inputs_are_batched_by_100_and_the_same_batch_is_one_task():
    queue = FakeQueue()
    updates = CrmUpdates(queue)
    companies = [company_input(f"C{index}", {"name": str(index)}) for index in range(250)]
    assert updates.upsert(COMPANIES, companies) == 3
    assert [len(task["inputs"]) for task in queue.tasks.values()] == [100, 100, 50]
    updates.upsert(COMPANIES, companies)                   # a retried enqueue: the same task names
    assert len(queue.tasks) == 3


def test_the_last_change_of_a_company_in_one_call_wins():
    queue = FakeQueue()
    CrmUpdates(queue).upsert(COMPANIES, [company_input("A", {"stage": "remind"}),
                                         company_input("A", {"stage": "warn"})])
    [task] = queue.tasks.values()
    assert [item["properties"]["stage"] for item in task["inputs"]] == ["warn"]


def test_a_batch_size_above_hubspots_limit_is_refused():
    with pytest.raises(ValueError, match="1..100"):
        CrmUpdates(FakeQueue(), 101)


def test_the_task_handler_answers_so_the_queue_retries_only_what_can_succeed():
    body = {"object_type": "companies", "inputs": [company_input("A", {"name": "A"})]}
    assert run_crm_task(body, Crm(CrmThrottled(7)))[1:] == (429, {"Retry-After": "7"})
    assert run_crm_task(body, Crm(TransientError(TransientCode.ALERTS_UNAVAILABLE, "down")))[1] == 503
    assert run_crm_task(body, Crm(CrmRefused("bad property")))[:2] == ({"status": "refused",
                                                                       "detail": "bad property"}, 200)
    crm = Crm()
    assert run_crm_task(body, crm)[1] == 200 and crm.calls[0][1] == "warp_customer_id"
    assert run_crm_task({"object_type": "tickets", "inputs": []}, crm)[1] == 400
    assert run_crm_task(None, crm)[1] == 400


def test_a_plan_is_a_company_a_plan_deal_and_a_commitment_deal():
    plan = parse_plan({"customer_id": "ACME", "timezone": "UTC",
                       "billing_profile": {"name": "Acme Telecom", "address": ["1 Main"], "account_number": "A-1"},
                       "voice": {"deck": "d.csv", "commitment": {"minutes": 1000, "shortfall_rate": "0.004",
                                                                 "start": "2026-06-01"}}})
    company = company_from_plan(plan)
    assert company["id"] == "ACME" and company["properties"]["name"] == "Acme Telecom"
    deals = deals_from_plan(plan)
    assert [deal["id"] for deal in deals] == ["ACME:plan", "ACME:commitment:2026-06-01"]
    assert deals[1]["properties"]["amount"] == "4.00"     # 1000 minutes x 0.004, a decimal string
