"""The ``netsuite_sync`` HTTP function's delivery: one Cloud Tasks request in, one answer out.

Bodies (JSON):

* ``{"doc_id": ..., "revision": N, "attempt": A}``: sync that document (one task = one document);
* ``{"task": "sweep"}``: enqueue every pending outbox document (Cloud Scheduler, or an operator).

Answers: 200 when the document is done (synced, already synced, superseded) or permanently
refused (recorded in ``sync_errors``: the queue must stop); 429 or 503 with ``Retry-After`` when
it must be tried again later (throttled, NetSuite down, a prerequisite not synced yet), which
Cloud Tasks retries with its backoff. A body that is not a task is answered 400 to a direct
caller, and 200 (logged at ERROR with the body) to Cloud Tasks, which would otherwise retry a
request that can never succeed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson

from .enqueue import EnqueueReport
from .sync import SyncOutcome

log = logging.getLogger(__name__)

JSON = {"Content-Type": "application/json"}


class SyncService(Protocol):
    def sync(self, doc_id: str, revision: int, attempt: int = 0) -> SyncOutcome: ...


class TaskRequest(Protocol):
    """What the function needs of a Flask request."""

    headers: Mapping[str, str]

    def get_data(self) -> bytes: ...


def _answer(record: Mapping[str, Any], status: int, retry_after_s: int | None = None):
    headers = dict(JSON)
    if retry_after_s is not None:
        headers["Retry-After"] = str(int(retry_after_s))
    return orjson.dumps(record), status, headers


def handle_task_request(request: TaskRequest, sync_service: Callable[[], SyncService],
                        sweep: Callable[[], EnqueueReport]):
    """Decode, run, and map the outcome to (body, status, headers) for functions-framework."""
    task_header = request.headers.get("X-CloudTasks-TaskName", "")
    retry_count = request.headers.get("X-CloudTasks-TaskRetryCount", "")
    try:
        body = orjson.loads(request.get_data() or b"{}")
        if not isinstance(body, dict):
            raise ValueError("the body is not a JSON object")
        if body.get("task") == "sweep":
            report = sweep()
            return _answer({"result": "swept", **report.to_record()}, 200)
        doc_id = body["doc_id"]
        revision = int(body["revision"])
        attempt = int(body.get("attempt", 0))
        if not isinstance(doc_id, str) or not doc_id:
            raise ValueError("doc_id must be a non-empty string")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        log.error("not a netsuite_sync task; dropped from the queue" if task_header else "not a netsuite_sync task",
                  extra={"task_name": task_header, "reason": str(exc), "body": request.get_data()[:2000]})
        return _answer({"result": "bad_request", "reason": str(exc)}, 200 if task_header else 400)
    outcome = sync_service().sync(doc_id, revision, attempt)
    log.info("netsuite task handled", extra={"doc_id": doc_id, "revision": revision, "result": outcome.result,
                                             "task_name": task_header, "retry_count": retry_count})
    return _answer({"result": outcome.result, "doc_id": doc_id, "revision": revision, "detail": outcome.detail},
                   outcome.http_status, outcome.retry_after_s if outcome.http_status >= 400 else None)
