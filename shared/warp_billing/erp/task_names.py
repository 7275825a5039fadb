"""Deterministic Cloud Tasks names for outbox documents.

A task ID may hold only ``[A-Za-z0-9_-]`` (at most 500 characters), while document ids hold
``:``, ``/``, ``#`` and anything a customer id holds. The name is ``<hash>-<slug>-r<revision>-a<attempt>``:
the hash (of the exact document id) keeps two ids that slug alike ("a:b", "a_b") apart and
spreads names over the queue's key space (Cloud Tasks dislikes sequential prefixes); the slug
keeps it readable in the console. ``attempt`` is 0 for the first enqueue and grows with each
operator retry, so a retry after a mapping fix is not refused as a name used within the last hour.
"""

from __future__ import annotations

import hashlib
import re

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]")
TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,500}")
SLUG_MAX = 120


def task_name(doc_id: str, revision: int, attempt: int = 0) -> str:
    """The task ID of one delivery generation of one document revision."""
    digest = hashlib.sha256(doc_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    slug = _NOT_ALLOWED.sub("_", doc_id)[:SLUG_MAX]
    return f"{digest}-{slug}-r{int(revision)}-a{int(attempt)}"
