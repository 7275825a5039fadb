"""One Redis round trip for a charge or a batch: the charging scripts and the outbox clears that
ride with them, sent on one pooled connection, each script told that connection's server run_id.

Why not a redis-py pipeline: ``Pipeline.execute`` asks ``SCRIPT EXISTS`` in a round trip of its
own before every pipeline that holds a script, which doubled the round trips of a charge. Here a
script is sent by SHA and loaded only when the server answers NOSCRIPT (a restarted or new
server), then the refused calls are sent again on the same connection.

Why the run_id travels with the call: the charging scripts refuse a customer whose Redis state
was verified on another server (the generation fence, see prepaid_debit.lua). Reading
``INFO server`` inside every script cost the server 18-30 us per call (BENCHMARKS.md). A
restart, a restore from a snapshot and a failover all drop the TCP connection, so the run_id a
connection read when it connected is the current server's for as long as the connection lives;
it is read again (one ``INFO server``) on every new connection.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis import exceptions as redis_errors

_RUN_ID = re.compile(r"run_id:([0-9a-f]+)")


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """EVALSHA of ``script`` (a redis-py ``Script``: sha + source) with the server run_id appended
    to ``args`` as the script's last argument."""

    script: Any
    keys: tuple[str, ...]
    args: tuple[str, ...]


Command = tuple[str, ...]   # a plain command, e.g. ("HDEL", key, field, ...)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def server_run_id(connection: Any) -> str:
    """The run_id of the server behind this connection, read once per (re)connection."""
    connection.connect()                       # no-op when connected
    sock = getattr(connection, "_sock", None)
    known = getattr(connection, "_warp_server", None)
    if known is None or known[0] is not sock:
        connection.send_command("INFO", "server")
        match = _RUN_ID.search(_text(connection.read_response()))
        if match is None:
            raise redis_errors.ResponseError("INFO server answered without a run_id")
        known = (sock, match.group(1))
        connection._warp_server = known
    return str(known[1])


def _wire(item: ScriptCall | Command, run_id: str) -> tuple[str, ...]:
    if isinstance(item, ScriptCall):
        return ("EVALSHA", item.script.sha, str(len(item.keys)), *item.keys, *item.args, run_id)
    return item


def _read(connection: Any) -> Any:
    try:
        return connection.read_response()
    except redis_errors.ResponseError as refused:   # one command's error; the others still answer
        return refused


def _exchange(connection: Any, wire: list[tuple[str, ...]]) -> list[Any]:
    connection.send_packed_command(connection.pack_commands(wire))
    return [_read(connection) for _ in wire]


def _on_connection(connection: Any, items: Sequence[ScriptCall | Command]) -> list[Any]:
    run_id = server_run_id(connection)
    wire = [_wire(item, run_id) for item in items]
    replies = _exchange(connection, wire)
    missing = [index for index, reply in enumerate(replies) if isinstance(reply, redis_errors.NoScriptError)]
    if missing:
        scripts = {item.script.sha: item.script for index in missing
                   if isinstance(item := items[index], ScriptCall)}
        _exchange(connection, [("SCRIPT", "LOAD", script.script) for script in scripts.values()])
        for index, reply in zip(missing, _exchange(connection, [wire[index] for index in missing]), strict=True):
            replies[index] = reply
    return replies


def round_trip(client: Any, items: Sequence[ScriptCall | Command]) -> list[Any]:
    """Send ``items`` in order in one round trip; return one reply (or ``ResponseError``) each.

    A connection that fails is dropped and the whole sequence is sent once more on a fresh one
    (which reads its server's run_id again): every charging step is idempotent by its dedup mark,
    so a step that ran before the connection broke answers with its stored result. A second
    failure raises the ``ConnectionError`` / ``TimeoutError`` for the caller to report as transient.
    """
    pool = client.connection_pool
    for attempt in (1, 2):
        connection = pool.get_connection()
        try:
            return _on_connection(connection, items)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError):
            connection.disconnect()
            if attempt == 2:
                raise
        finally:
            pool.release(connection)
    raise AssertionError("unreachable")
