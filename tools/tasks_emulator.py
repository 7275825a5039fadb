#!/usr/bin/env python3
"""Starts ``gcloud-tasks-emulator`` with the dispatch behaviour of Cloud Tasks that WARP relies on.

The emulator (PyPI ``gcloud-tasks-emulator==0.6.2``) dispatches one task at a time per queue
and re-dispatches a failed task at once. Cloud Tasks dispatches up to the queue's
``rate_limits.max_concurrent_dispatches`` at once (the NetSuite queue's concurrency is the
account's limit), and retries a failed task after a backoff (``retry_config`` min/max backoff,
doubling), honouring ``Retry-After`` on 429/503. This launcher, run with the emulator's own
Python, replaces the emulator's per-queue loop with one that does that, then starts the
emulator unchanged otherwise (same arguments). Gaps kept: duplicate task names are still
accepted (the real API answers ALREADY_EXISTS), OIDC is not checked, ``Retry-After`` is capped
by the queue's ``max_backoff`` (10 s when the queue sets none) so local runs stay short.

A queue created without rate limits dispatches up to 1,000 tasks at once (Cloud Tasks' default);
``--queue-concurrency NAME=N`` (repeatable, before the emulator's own arguments are passed on)
gives a queue created at start (``-d``) the concurrency Terraform gives it.
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib import error

from gcloud_tasks_emulator import __main__ as emulator_main
from gcloud_tasks_emulator import server
from google.cloud.tasks_v2 import Queue

DEFAULT_CONCURRENCY = 1000
DEFAULT_MIN_BACKOFF_S = 0.1
DEFAULT_MAX_BACKOFF_S = 10.0
WORKERS = 64
_LOCK = threading.Lock()


def _seconds(duration, default: float) -> float:
    if duration is None:
        return default
    value = duration.total_seconds() if hasattr(duration, "total_seconds") else float(duration)
    return value if value > 0 else default


def _backoff(queue: Queue, attempts: int, retry_after: float | None) -> float:
    config = queue.retry_config
    low = _seconds(config.min_backoff if config else None, DEFAULT_MIN_BACKOFF_S)
    high = _seconds(config.max_backoff if config else None, DEFAULT_MAX_BACKOFF_S)
    delay = retry_after if retry_after is not None else low * 2 ** max(0, attempts - 1)
    return min(max(delay, 0.0), high)


def _dispatch(state: server.QueueState, queue_name: str, task, running: set) -> None:
    try:
        task.dispatch_count += 1
        retry_after = None
        try:
            response = server._make_task_request(queue_name, task, state._target_host, state._target_port)
            status = response.status
            response.read()
        except error.HTTPError as exc:
            status = exc.code
            value = exc.headers.get("Retry-After") if exc.headers else None
            try:
                retry_after = float(value) if value is not None else None
            except ValueError:
                retry_after = None
        except Exception:  # noqa: BLE001 (a connection failure counts as a failed attempt, as in the emulator)
            status = 500
        if 200 <= status < 300:
            return
        if state._max_retries >= 0 and task.dispatch_count > state._max_retries:
            server.logger.info("[TASKS] Giving up failed task %s", task.name)
            return
        queue = state._queues.get(queue_name)
        if queue is None:
            return
        delay = _backoff(queue, task.dispatch_count, retry_after)
        task.schedule_time = datetime.now(UTC) + timedelta(seconds=delay)
        with _LOCK:
            if queue_name in state._queue_tasks:
                state._queue_tasks[queue_name].append(task)
    finally:
        with _LOCK:
            running.discard(id(task))


def _due(task, now: datetime) -> bool:
    scheduled = task.schedule_time
    return not scheduled or scheduled <= now


def _process_queue(self: server.Processor, queue_name: str) -> None:
    """Dispatch due tasks, at most max_concurrent_dispatches at once (1 when the queue sets none)."""
    state = self._state
    pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="dispatch")
    running: set[int] = set()
    while self._is_running.is_set():
        queue = state._queues.get(queue_name)
        if queue is None or queue_name not in state._queue_tasks:
            break
        limit = (queue.rate_limits.max_concurrent_dispatches if queue.rate_limits else 0) or DEFAULT_CONCURRENCY
        if queue.state == Queue.State.RUNNING:
            now = datetime.now(UTC)
            with _LOCK:
                tasks = state._queue_tasks[queue_name]
                free = limit - len(running)
                chosen = []
                for task in list(tasks):
                    if free <= 0:
                        break
                    if _due(task, now):
                        tasks.remove(task)
                        running.add(id(task))
                        chosen.append(task)
                        free -= 1
            for task in chosen:
                pool.submit(_dispatch, state, queue_name, task, running)
        time.sleep(0.005 if running else 0.02)
    pool.shutdown(wait=False)


def _with_concurrency(concurrency: dict[str, int]):
    original = server.QueueState.create_queue

    def create_queue(self, parent, queue: Queue):
        short = queue.name.rsplit("/", 1)[-1]
        if short in concurrency and not queue.rate_limits.max_concurrent_dispatches:
            queue.rate_limits.max_concurrent_dispatches = concurrency[short]
        return original(self, parent, queue)

    return create_queue


def _split_arguments(argv: list[str]) -> tuple[dict[str, int], list[str]]:
    concurrency, rest = {}, []
    items = iter(argv)
    for item in items:
        if item == "--queue-concurrency":
            name, _, value = next(items).partition("=")
            concurrency[name] = int(value)
        else:
            rest.append(item)
    return concurrency, rest


server.Processor._process_queue = _process_queue

if __name__ == "__main__":
    queue_concurrency, arguments = _split_arguments(sys.argv[1:])
    server.QueueState.create_queue = _with_concurrency(queue_concurrency)
    sys.argv = ["gcloud-tasks-emulator", *arguments]
    sys.exit(emulator_main.main())
