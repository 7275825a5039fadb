"""Fixtures for integration tests against the local stack (tools/local_stack.py).

`make test` starts the stack before pytest and stops it afterwards; run `make stack-up` first
when running these tests by hand. A test that needs a stand-in which is not answering FAILS
with that instruction: nothing here is skipped silently. Each session works in its own
BigQuery dataset and its own Firestore collections, so runs never see each other's rows.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import local_stack  # noqa: E402  (tools/ is not a package)

PROJECT = local_stack.PROJECT
HOST = local_stack.HOST
BIGQUERY_ENDPOINT = f"http://{HOST}:{local_stack.BIGQUERY_REST_PORT}"
FIRESTORE_HOST = f"{HOST}:{local_stack.FIRESTORE_PORT}"
STAND_INS = {
    "redis": local_stack.REDIS_PORT,
    "bigquery": local_stack.BIGQUERY_REST_PORT,
    "firestore": local_stack.FIRESTORE_PORT,
    "tasks": local_stack.TASKS_PORT,
    "netsuite": local_stack.NETSUITE_PORT,
    "storage": local_stack.STORAGE_PORT,
    "authorize_net": local_stack.AUTHORIZE_NET_PORT,
    "webhooks": local_stack.WEBHOOKS_PORT,
}
RUN_ID = uuid.uuid4().hex[:8]


def settings_from_env(env: Mapping[str, str], **overrides):
    """Settings as a function of the stack reads them: its ``WARP_*`` variables through the environment
    source (so JSON values such as ``WARP_SENDGRID_TEMPLATES`` parse as they do in a function)."""
    from warp_billing.settings import Settings

    values = {key: value for key, value in os.environ.items() if not key.startswith("WARP_")}
    values.update({key: value for key, value in env.items() if key.startswith("WARP_")})
    with mock.patch.dict(os.environ, values, clear=True):
        return Settings(**overrides)


def _answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((HOST, port)) == 0


def require_stand_in(name: str) -> None:
    """Fail (never skip) the calling test when a stand-in of the local stack is not answering."""
    port = STAND_INS[name]
    if not _answers(port):
        pytest.fail(
            f"the local stack's {name} stand-in is not answering on {HOST}:{port}. "
            "Start the stack with `make stack-up` (after `make stack-install`), or run `make test`, "
            "which starts and stops it around pytest.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def bigquery_stack():
    require_stand_in("bigquery")
    return BIGQUERY_ENDPOINT


@pytest.fixture(scope="session")
def firestore_stack():
    require_stand_in("firestore")
    return FIRESTORE_HOST


@pytest.fixture(scope="session")
def bigquery_dataset(bigquery_stack):
    """A dataset of this session's own, deleted at the end."""
    from warp_billing.adapters.bigquery_usage import bigquery_client

    client = bigquery_client(PROJECT, bigquery_stack)
    name = f"it_{RUN_ID}"
    yield name
    client.delete_dataset(f"{PROJECT}.{name}", delete_contents=True, not_found_ok=True)


@pytest.fixture(scope="session")
def usage_store(bigquery_stack, bigquery_dataset):
    from warp_billing.adapters.bigquery_usage import BigQueryUsageStore, bigquery_client

    store = BigQueryUsageStore(lambda: bigquery_client(PROJECT, bigquery_stack), project=PROJECT,
                               dataset=bigquery_dataset, deadline_s=30)
    store.ensure_schema()
    return store


@pytest.fixture(scope="session")
def ledger_store(usage_store, bigquery_stack, bigquery_dataset):
    from warp_billing.adapters.bigquery_usage import BigQueryLedgerStore, bigquery_client

    return BigQueryLedgerStore(lambda: bigquery_client(PROJECT, bigquery_stack), project=PROJECT,
                               dataset=bigquery_dataset, deadline_s=30)


@pytest.fixture(scope="session")
def plan_store(firestore_stack):
    """A PlanStore on the emulator, in collections of this session's own."""
    from warp_billing.adapters.firestore_plans import FirestorePlanStore, firestore_client

    return FirestorePlanStore(lambda: firestore_client(PROJECT, firestore_stack),
                              collection_prefix=f"it{RUN_ID}_", timeout_s=30)
