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

Why a connection is kept per thread: taking one from redis-py's pool and giving it back cost about
as much Python time per charge as packing and parsing together (BENCHMARKS.md, issue 8), so each
thread keeps the connection it took and returns it only when it fails. A connection taken before
a fork is never used after it (the child takes its own).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis import exceptions as redis_errors

_pack_one: Any
try:
    from hiredis import pack_command as _pack_one
except ImportError:  # pragma: no cover - hiredis is in requirements.txt; redis-py packs without it
    _pack_one = None

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


_CHUNK = 6000   # bytes per write, as redis-py does: the server starts on a batch before all of it is sent


def _pack(connection: Any, wire: list[tuple[str, ...]]) -> Any:
    """The commands in the wire protocol, in writes of about ``_CHUNK`` bytes.

    One write for a whole batch of 100 charges measured slower than redis-py's 6 KB writes
    (BENCHMARKS.md, issue 8), so a batch keeps that size; a charge is one write.
    """
    if _pack_one is None:
        return connection.pack_commands(wire)
    chunks: list[bytes] = []
    pieces: list[bytes] = []
    size = 0
    for command in wire:
        packed = _pack_one(command)
        pieces.append(packed)
        size += len(packed)
        if size > _CHUNK:
            chunks.append(b"".join(pieces))
            pieces, size = [], 0
    if pieces:
        chunks.append(b"".join(pieces))
    return chunks


def _exchange(connection: Any, wire: list[tuple[str, ...]]) -> list[Any]:
    connection.send_packed_command(_pack(connection, wire), check_health=False)
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


class _Lease:
    """A connection a thread keeps; given back to its pool when the thread ends (the lease is
    collected with the thread's locals) or when the connection fails."""

    __slots__ = ("connection", "pid", "pool")

    def __init__(self, pool: Any, connection: Any):
        self.pool, self.connection, self.pid = pool, connection, os.getpid()

    def give_back(self, *, disconnect: bool) -> None:
        connection, self.connection = self.connection, None
        if connection is None or self.pid != os.getpid():
            return
        if disconnect:
            connection.disconnect()
        self.pool.release(connection)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):   # interpreter shutdown or a closed pool: nothing to give back to
            self.give_back(disconnect=False)


class _Held(threading.local):
    """This thread's leases, per pool."""

    def __init__(self) -> None:
        self.leases: dict[int, _Lease] = {}


_HELD = _Held()


def _take(pool: Any) -> Any:
    lease = _HELD.leases.get(id(pool))
    if lease is not None and lease.pool is pool and lease.pid == os.getpid() and lease.connection is not None:
        return lease.connection
    lease = _Lease(pool, pool.get_connection())
    _HELD.leases[id(pool)] = lease
    return lease.connection


def _give_back(pool: Any) -> None:
    """A failed connection goes back to the pool disconnected; the next call takes a fresh one."""
    lease = _HELD.leases.pop(id(pool), None)
    if lease is not None:
        lease.give_back(disconnect=True)


def round_trip(client: Any, items: Sequence[ScriptCall | Command]) -> list[Any]:
    """Send ``items`` in order in one round trip; return one reply (or ``ResponseError``) each.

    A connection that fails is dropped and the whole sequence is sent once more on a fresh one
    (which reads its server's run_id again): every charging step is idempotent by its dedup mark,
    so a step that ran before the connection broke answers with its stored result. A second
    failure raises the ``ConnectionError`` / ``TimeoutError`` for the caller to report as transient.
    """
    pool = client.connection_pool
    for attempt in (1, 2):
        connection = _take(pool)
        try:
            return _on_connection(connection, items)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError):
            _give_back(pool)
            if attempt == 2:
                raise
        except BaseException:
            _give_back(pool)   # a reply may be left unread: never reuse the connection
            raise
    raise AssertionError("unreachable")
