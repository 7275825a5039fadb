"""The NetSuite sync on the local stack, for tests and the benchmark.

``SyncWorld`` runs the ``netsuite_sync`` function under functions-framework on a free port
(its own data directory, mapping file and test certificate), a Cloud Tasks queue of its own on
the stack's emulator targeting it, and talks to the stack's NetSuite stand-in through its
``/_control`` endpoint. The test process uses the same outbox and sync_errors files as the
function, through the same bootstrap container.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests
import yaml
from google.cloud import tasks_v2
from google.protobuf import duration_pb2
from tests.erp_builders import MAPPING
from tests.netsuite_keys import key_and_certificate

import local_stack  # tools/ (on sys.path through the integration conftest or the benchmark)
from warp_billing.adapters.cloud_tasks import tasks_client
from warp_billing.bootstrap import Container
from warp_billing.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_FRAMEWORK = Path(sys.executable).with_name("functions-framework")
STANDIN = f"http://{local_stack.HOST}:{local_stack.NETSUITE_PORT}"
TASKS = f"{local_stack.HOST}:{local_stack.TASKS_PORT}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SyncWorld:
    def __init__(self, home: Path, *, timeout_ms: int = 400, concurrency: int = 5, extra_env: dict | None = None,
                 settings: dict | None = None):
        """``settings``: values that replace the world's own (e.g. the close register's outbox instead of
        the standalone one), for the test's container, the function and `warp` subprocesses alike."""
        self.home = home
        self.concurrency = concurrency
        self.run = uuid.uuid4().hex[:8]
        self.kid, self.client_id = f"kid-{self.run}", f"client-{self.run}"
        key, cert = key_and_certificate()
        self.key_file = home / "private_key.pem"
        self.key_file.write_text(key)
        self.mapping_file = home / "netsuite-mapping.yaml"
        self.write_mapping()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.queue_path = f"projects/{local_stack.PROJECT}/locations/{local_stack.LOCATION}/queues/ns-{self.run}"
        self.settings_values = {
            "data_dir": str(home / "data"), "netsuite_account": "TEST", "netsuite_base_url": STANDIN,
            "netsuite_client_id": self.client_id, "netsuite_certificate_id": self.kid,
            "netsuite_private_key_file": str(self.key_file), "netsuite_mapping": str(self.mapping_file),
            "netsuite_timeout_ms": timeout_ms, "tasks_endpoint": TASKS, "netsuite_queue": self.queue_path,
            "netsuite_sync_url": self.url, "log_level": "WARNING",
            # A standalone outbox in data_dir that the test fills itself (no close writes it).
            "sync_outbox": "sqlite",
            **(settings or {}),
        }
        self.control({"certificates": {self.kid: cert}, "clients": {self.kid: self.client_id}})
        self.container = Container(Settings(**self.settings_values))
        self._create_queue()
        self.process = self._start_function(extra_env or {})

    @property
    def env(self) -> dict[str, str]:
        """The function's environment (also what a `warp` subprocess needs)."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("WARP_")}
        env.update({f"WARP_{key.upper()}": str(value) for key, value in self.settings_values.items()})
        env["PYTHONPATH"] = str(ROOT / "shared")
        return env

    def write_mapping(self, **changes) -> None:
        self.mapping_file.write_text(yaml.safe_dump({**MAPPING, **changes}, sort_keys=False))

    def control(self, update: dict) -> dict:
        response = requests.post(STANDIN + "/_control", json=update, timeout=10)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict:
        return requests.get(STANDIN + "/_control", timeout=10).json()["stats"]

    def records(self) -> list[dict]:
        return requests.get(STANDIN + "/_control/records", timeout=30).json()["records"]

    def _create_queue(self) -> None:
        client = tasks_client(TASKS)
        parent = self.queue_path.rsplit("/queues/", 1)[0]
        # The netsuite queue of Terraform (concurrency = the account's limit), with backoffs short
        # enough for a test (tools/tasks_emulator.py honours them and Retry-After up to max_backoff).
        client.create_queue(parent=parent, queue=tasks_v2.Queue(
            name=self.queue_path, rate_limits=tasks_v2.RateLimits(max_concurrent_dispatches=self.concurrency),
            retry_config=tasks_v2.RetryConfig(min_backoff=duration_pb2.Duration(nanos=100_000_000),
                                              max_backoff=duration_pb2.Duration(seconds=1))))
        self.tasks_client = client

    def queued_tasks(self) -> list:
        return list(self.tasks_client.list_tasks(parent=self.queue_path))

    def _start_function(self, extra_env: dict):
        log = (self.home / "netsuite_sync.log").open("w")
        process = subprocess.Popen(
            [str(FUNCTIONS_FRAMEWORK), "--target", "netsuite_sync", "--source",
             str(ROOT / "functions" / "netsuite_sync" / "main.py"), "--signature-type", "http",
             "--host", "127.0.0.1", "--port", str(self.port)],
            env={**self.env, **extra_env}, stdout=log, stderr=subprocess.STDOUT, cwd=self.home)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"netsuite_sync exited: {(self.home / 'netsuite_sync.log').read_text()[-2000:]}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return process
            time.sleep(0.1)
        process.kill()
        raise RuntimeError("netsuite_sync did not start within 60 s")

    def wait_until(self, done, timeout_s: float, what: str) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if done():
                return time.monotonic() - started
            time.sleep(0.2)
        raise AssertionError(f"not done after {timeout_s:.0f}s: {what}")

    def statuses(self, doc_ids) -> dict[str, str]:
        wanted = set(doc_ids)
        return {doc.doc_id: doc.status for doc in self.container.sync_outbox.documents() if doc.doc_id in wanted}

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        with contextlib.suppress(Exception):  # the emulator's cleanup is best effort
            self.tasks_client.delete_queue(name=self.queue_path)
