"""HubSpot 429 storm: 1,000 companies and their deals upserted through a rate-limited Cloud Tasks
queue (the stack's emulator, which retries with Retry-After like Cloud Tasks) to ``crm_sync``
under functions-framework, against the HubSpot stand-in throttling far below the offered load.
Every company must end up updated exactly once: a throttled batch is applied by nobody and
retried whole; a batch that went through is never repeated.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid

import pytest
import requests
from google.cloud import tasks_v2
from google.protobuf import duration_pb2
from tests.integration.conftest import require_stand_in
from tests.integration.netsuite_world import FUNCTIONS_FRAMEWORK, ROOT, TASKS, free_port
from tools.hubspot_standin import HubSpotStandIn

import local_stack
from warp_billing.adapters.cloud_tasks import CloudTasksQueue, tasks_client
from warp_billing.dunning.crm import COMPANIES, DEALS, CrmUpdates, company_input, deals_from_plan
from warp_billing.plan import parse_plan

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COMPANY_COUNT = 1000


@pytest.fixture
def hubspot():
    server = HubSpotStandIn(0, rate=4, window_s=1.0, retry_after_s=1)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def crm_sync(tmp_path, hubspot):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("WARP_")}
    env.update({"WARP_HUBSPOT_URL": f"http://127.0.0.1:{hubspot.server_address[1]}", "WARP_HUBSPOT_TOKEN": "pat-test",
                "WARP_DATA_DIR": str(tmp_path / "data"), "WARP_LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT / "shared")})
    log = (tmp_path / "crm_sync.log").open("w")
    process = subprocess.Popen(
        [str(FUNCTIONS_FRAMEWORK), "--target", "crm_sync", "--source", str(ROOT / "functions" / "crm_sync" / "main.py"),
         "--signature-type", "http", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/"
    process.terminate()
    process.wait(10)


def test_a_429_storm_updates_every_company_exactly_once(hubspot, crm_sync):
    require_stand_in("tasks")
    client = tasks_client(TASKS)
    queue_path = f"projects/{local_stack.PROJECT}/locations/{local_stack.LOCATION}/queues/hs-{uuid.uuid4().hex[:8]}"
    client.create_queue(parent=queue_path.rsplit("/queues/", 1)[0], queue=tasks_v2.Queue(
        name=queue_path, rate_limits=tasks_v2.RateLimits(max_concurrent_dispatches=6),
        retry_config=tasks_v2.RetryConfig(min_backoff=duration_pb2.Duration(nanos=100_000_000),
                                          max_backoff=duration_pb2.Duration(seconds=2))))
    updates = CrmUpdates(CloudTasksQueue(lambda: client, queue_path, crm_sync))
    companies = [company_input(f"C{index:04d}", {"name": f"Carrier {index}", "warp_balance_due": "0.00"})
                 for index in range(COMPANY_COUNT)]
    plan = parse_plan({"customer_id": "C0000", "timezone": "UTC",
                       "voice": {"deck": "d.csv", "commitment": {"minutes": 1000, "shortfall_rate": "0.004",
                                                                 "start": "2026-06-01"}}})

    assert updates.upsert(COMPANIES, companies) == 10          # batches of at most 100
    assert updates.upsert(DEALS, deals_from_plan(plan)) == 1

    def done() -> bool:
        stored = requests.get(f"http://127.0.0.1:{hubspot.server_address[1]}/_objects/companies", timeout=5).json()
        return len(stored) == COMPANY_COUNT
    deadline = time.monotonic() + 120
    while not done() and time.monotonic() < deadline:
        time.sleep(0.3)

    stored = hubspot.objects["companies"]
    assert len(stored) == COMPANY_COUNT
    assert {item["updates"] for item in stored.values()} == {1}, "a company was updated more than once"
    assert stored["warp_customer_id=C0042"]["properties"]["name"] == "Carrier 42"
    assert hubspot.throttled > 0, "the stand-in never throttled: no storm"
    time.sleep(1.5)
    assert len(hubspot.objects["deals"]) == 2   # the plan and its commitment
    assert {item["updates"] for item in hubspot.objects["companies"].values()} == {1}
