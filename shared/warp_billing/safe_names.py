"""Business keys (customer ids, invoice and dispute numbers) as one file name or document id."""

from __future__ import annotations

from urllib.parse import quote


def safe_name(key: str) -> str:
    """``key`` percent-encoded (no '/'), a leading '.' too: never '.', '..' or a hidden name."""
    escaped = quote(key, safe="")
    return "%2E" + escaped[1:] if escaped.startswith(".") else escaped
