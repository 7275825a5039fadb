"""Admission checks of the real-time path that are about money safety, not rating.

(The id format rule, 1-128 printable ASCII characters without whitespace, is the shared event
check's: ``rating.event_check``.)

* Reserved ids: the ledger keys a debit by its event_id, a top-up by ``topup:<id>``, an
  adjustment by ``adjustment:<id>``, a gateway payment by ``payment:<transaction id>``
  and an auto-recharge by ``<event_id>#recharge``. An event
  whose id has one of those shapes could overwrite (or be swallowed by) another movement's
  ledger row, so it is refused BAD_FIELD. (Redis keys are namespaced on top of this: events under
  ``event:``, credits under ``credit:``.)
* The future bound: an event that starts more than ``max_future_skew_s`` after the processing
  time is EVENT_IN_FUTURE. Without it a future-dated event is never "too old", so it stays
  acceptable after its dedup mark has expired and a late redelivery would charge it again.
* The dedup horizon: an event whose Redis dedup mark may already have expired (it started more
  than ``dedup_ttl_s - max_future_skew_s`` ago), and every operator replay, is checked against
  the durable usage store by event_id before it is charged.
* Oversized raw payloads of rejects are truncated, with their sha256 and length kept, so a store
  never refuses a reject for its size.
"""

from __future__ import annotations

import hashlib

RESERVED_PREFIXES = ("topup:", "adjustment:", "payment:")
RECHARGE_SUFFIX = "#recharge"
RAW_LIMIT_CHARS = 16_384


def reserved_id_problem(event_id: str) -> str | None:
    """Why ``event_id`` cannot be a usage event's id (it has the shape of another movement's key)."""
    for prefix in RESERVED_PREFIXES:
        if event_id.startswith(prefix):
            return f"event_id: {prefix!r} is reserved for {prefix[:-1]} ledger entries"
    if event_id.endswith(RECHARGE_SUFFIX):
        return f"event_id: the suffix {RECHARGE_SUFFIX!r} is reserved for auto-recharge ledger entries"
    return None


def future_problem(start_ms: int, now_ms: int, max_future_skew_s: int, start_text: str) -> str | None:
    """Why an event that starts at ``start_ms`` is too far in the future (None when it is not)."""
    if start_ms - now_ms > max_future_skew_s * 1000:
        return (f"starts {start_text}, more than {max_future_skew_s} s after it was processed "
                f"(WARP_MAX_FUTURE_SKEW_S)")
    return None


def beyond_dedup_horizon(start_ms: int, now_ms: int, dedup_ttl_s: int, max_future_skew_s: int) -> bool:
    """True when the event's Redis dedup mark may have expired: check the durable store instead.

    A mark is written when the event is charged, at the earliest ``max_future_skew_s`` before its
    start, and lives ``dedup_ttl_s``; so it is certainly alive while now - start is below the difference.
    """
    return now_ms - start_ms > (dedup_ttl_s - max_future_skew_s) * 1000


def truncated_raw(raw: str | None, limit: int = RAW_LIMIT_CHARS) -> str | None:
    """``raw`` unchanged when short; else its first ``limit`` characters and a note with its sha256 and length."""
    if raw is None or len(raw) <= limit:
        return raw
    data = raw.encode("utf-8", "replace")
    return (f"{raw[:limit]}... [truncated: {len(data)} bytes, {len(raw)} characters, "
            f"sha256 {hashlib.sha256(data).hexdigest()}]")
