"""The bulk HubSpot push (`warp crm push`, the rollup's ``crm_push`` task): 250 customers' plans in
the Firestore emulator -> companies and deals in batches of at most 100 on a Cloud Tasks queue (the
stack's emulator, retrying with Retry-After) -> ``crm_sync`` under functions-framework -> the HubSpot
stand-in admitting one request a second (a 429 storm: 6 batches took 21 requests, 15 refused with
429 in two runs here). Every company and deal must end up updated exactly once.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
from google.cloud import tasks_v2
from google.protobuf import duration_pb2
from tests.integration.conftest import PROJECT, RUN_ID, require_stand_in
from tests.integration.netsuite_world import TASKS
from tests.integration.test_hubspot_storm import crm_sync  # noqa: F401  (the fixture, on this module's hubspot)
from tools.hubspot_standin import HubSpotStandIn

import local_stack
from warp_billing.adapters.cloud_tasks import CloudTasksQueue, tasks_client
from warp_billing.adapters.firestore_plans import FirestorePlanStore, firestore_client
from warp_billing.bootstrap import Container
from warp_billing.closing import handle_request
from warp_billing.dunning.crm import CrmUpdates
from warp_billing.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CUSTOMERS = 250
DECK = "prefix,destination,rate,effective_date\n1,US,0.0100,2026-01-01\n"


def plan_yaml(index: int) -> str:
    commitment = ("  commitment: {minutes: 1000, shortfall_rate: '0.004', start: '2026-06-01'}\n"
                  if index % 10 == 0 else "")
    return (f"customer_id: P{index:04d}\ntimezone: UTC\nvoice:\n  deck: deck.csv\n{commitment}"
            f"billing_profile: {{name: Carrier {index}, address: [1 Main St], account_number: N-{index}}}\n")


@pytest.fixture
def hubspot():
    """One request a second: of the 6 batches offered at once, 5 are refused 429 (Retry-After: 1)."""
    server = HubSpotStandIn(0, rate=1, window_s=1.0, retry_after_s=1)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def plans():
    require_stand_in("firestore")
    store = FirestorePlanStore(lambda: firestore_client(PROJECT, f"{local_stack.HOST}:{local_stack.FIRESTORE_PORT}"),
                               collection_prefix=f"push{RUN_ID}{uuid.uuid4().hex[:4]}_", timeout_s=30)
    for index in range(CUSTOMERS):
        store.put_plan(f"P{index:04d}", plan_yaml(index), {"deck.csv": DECK})
    return store


def test_250_customers_push_in_3_batches_and_a_429_storm_updates_every_company_exactly_once(
        plans, hubspot, crm_sync, tmp_path):  # noqa: F811
    require_stand_in("tasks")
    client = tasks_client(TASKS)
    queue_path = f"projects/{local_stack.PROJECT}/locations/{local_stack.LOCATION}/queues/push-{uuid.uuid4().hex[:8]}"
    client.create_queue(parent=queue_path.rsplit("/queues/", 1)[0], queue=tasks_v2.Queue(
        name=queue_path, rate_limits=tasks_v2.RateLimits(max_concurrent_dispatches=6),
        retry_config=tasks_v2.RetryConfig(min_backoff=duration_pb2.Duration(nanos=100_000_000),
                                          max_backoff=duration_pb2.Duration(seconds=2))))
    queue = CloudTasksQueue(lambda: client, queue_path, crm_sync)
    container = Container(Settings(data_dir=tmp_path / "data"), plan_store=plans, crm_updates=CrmUpdates(queue))

    summary, status = handle_request({"task": "crm_push"}, container)

    assert status == 200, summary
    assert (summary["companies"], summary["company_tasks"]) == (CUSTOMERS, 3)       # 100 + 100 + 50
    assert (summary["deals"], summary["deal_tasks"]) == (CUSTOMERS + CUSTOMERS // 10, 3)   # plans + commitments
    assert summary["errors"] == []

    stand_in = f"http://127.0.0.1:{hubspot.server_address[1]}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        companies = requests.get(stand_in + "/_objects/companies", timeout=5).json()
        deals = requests.get(stand_in + "/_objects/deals", timeout=5).json()
        if len(companies) == CUSTOMERS and len(deals) == CUSTOMERS + CUSTOMERS // 10:
            break
        time.sleep(0.3)
    time.sleep(1.5)   # a repeated batch would land within the queue's backoff

    companies, deals = hubspot.objects["companies"], hubspot.objects["deals"]
    assert len(companies) == CUSTOMERS and len(deals) == CUSTOMERS + CUSTOMERS // 10
    assert hubspot.throttled >= 5, f"only {hubspot.throttled} 429s: no storm"
    assert {item["updates"] for item in companies.values()} == {1}, "a company was updated more than once"
    assert {item["updates"] for item in deals.values()} == {1}, "a deal was updated more than once"
    assert companies["warp_customer_id=P0042"]["properties"]["name"] == "Carrier 42"
    assert companies["warp_customer_id=P0042"]["properties"]["warp_account_number"] == "N-42"
    assert deals["warp_deal_id=P0040:commitment:2026-06-01"]["properties"]["amount"] == "4.00"


def test_the_crm_push_task_names_what_it_cannot_run(tmp_path):
    container = Container(Settings(data_dir=tmp_path / "data", hubspot_sync=False))
    assert handle_request({"task": "crm_push"}, container) == (
        {"error": "crm_push needs the HubSpot sync (WARP_HUBSPOT_SYNC=true)"}, 400)
    assert handle_request({"task": "crm_push", "period": "2026-11"}, container)[1] == 400
