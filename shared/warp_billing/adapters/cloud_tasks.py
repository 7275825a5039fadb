"""Cloud Tasks: the ``TaskQueue`` port for the ``netsuite`` queue (HTTP tasks with an OIDC token).

A task is a POST of a JSON body to the ``netsuite_sync`` function; the queue's dispatch
concurrency is the NetSuite account's concurrency limit (Terraform). Task names are given by
the caller (deterministic, see ``erp.task_names``): the real API answers ALREADY_EXISTS for a
name used within about an hour, which ``enqueue`` reports as False. The local emulator accepts
duplicate names, so nothing may rely on that refusal alone (the sync is idempotent besides).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import orjson
from google.api_core.exceptions import AlreadyExists
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport
from google.protobuf import duration_pb2, timestamp_pb2

from .lazy_client import LazyClient

log = logging.getLogger(__name__)


def tasks_client(endpoint: str | None = None):
    """A Cloud Tasks client; ``endpoint`` = host:port of a plaintext emulator (local stack)."""
    if endpoint:
        return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(endpoint)))
    return tasks_v2.CloudTasksClient()


class CloudTasksQueue:
    """Creates named HTTP tasks on one queue (``projects/P/locations/L/queues/Q``)."""

    def __init__(self, client: Any | Callable[[], Any], queue_path: str, target_url: str, *,
                 invoker_account: str | None = None, dispatch_deadline_s: int = 300, timeout_s: float = 30):
        self._client = LazyClient(client)
        self.queue_path = queue_path
        self.target_url = target_url
        self.invoker_account = invoker_account
        self.dispatch_deadline_s = dispatch_deadline_s
        self.timeout_s = timeout_s

    def enqueue(self, name: str, body: Mapping, *, delay_s: int = 0) -> bool:
        http_request: dict[str, Any] = {
            "http_method": "POST", "url": self.target_url,
            "headers": {"Content-Type": "application/json"}, "body": orjson.dumps(dict(body)),
        }
        if self.invoker_account:
            http_request["oidc_token"] = {"service_account_email": self.invoker_account,
                                          "audience": self.target_url}
        task: dict[str, Any] = {"name": f"{self.queue_path}/tasks/{name}", "http_request": http_request,
                                "dispatch_deadline": duration_pb2.Duration(seconds=self.dispatch_deadline_s)}
        if delay_s > 0:
            when = timestamp_pb2.Timestamp()
            when.FromDatetime(datetime.now(UTC) + timedelta(seconds=delay_s))
            task["schedule_time"] = when
        try:
            self._client.get().create_task(parent=self.queue_path, task=task, timeout=self.timeout_s)
        except AlreadyExists:
            log.info("task already exists; not enqueued twice", extra={"task_name": name})
            return False
        return True
