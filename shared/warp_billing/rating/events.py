"""Usage events (contracts.md section 2): field checks that turn bad input into named rejections.

Events arrive as decoded JSON objects. Each accessor here either returns a clean value
or raises ``Rejection`` with ``BAD_FIELD`` and the field's name: missing, wrongly typed
and absurd values never reach the pricing code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..timeutil import UTC, InstantError, parse_instant
from .rejections import Reason, Rejection

MAX_CALL_SECONDS = 86_399          # a "call" of a day or more (86,400 s) is a switch fault: BAD_FIELD
MAX_SEGMENTS = 255                 # the concatenated-SMS limit
MAX_QUERIES_PER_EVENT = 10_000_000
MAX_ID_LENGTH = 256
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100
_fromisoformat = datetime.fromisoformat


def bad(field: str, problem: str) -> Rejection:
    return Rejection(Reason.BAD_FIELD, f"{field}: {problem}")


def required_text(event: dict[str, Any], field: str) -> str:
    value = event.get(field)
    if value is None:
        raise bad(field, "missing")
    if type(value) is not str:
        raise bad(field, f"expected a string, got {_json_type(value)}")
    if not value.strip() or len(value) > MAX_ID_LENGTH:
        raise bad(field, "empty" if not value.strip() else f"longer than {MAX_ID_LENGTH} characters")
    return value


def optional_text(event: dict[str, Any], field: str) -> str | None:
    value = event.get(field)
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise bad(field, f"expected a string, got {_json_type(value)}")
    if len(value) > MAX_ID_LENGTH:
        raise bad(field, f"longer than {MAX_ID_LENGTH} characters")
    return value


def start_time(event: dict[str, Any]) -> datetime:
    value = event.get("start_time")
    if type(value) is str:  # the fast path: parse_instant's rules, inlined for the hot loop
        try:
            instant = _fromisoformat(value)
        except ValueError:
            raise bad("start_time", f"{value!r} is not an ISO 8601 instant") from None
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
    elif value is None:
        raise bad("start_time", "missing")
    else:
        try:
            instant = parse_instant(value)
        except InstantError as exc:
            raise bad("start_time", str(exc)) from None
    if not EARLIEST_YEAR <= instant.year <= LATEST_YEAR:
        raise bad("start_time", f"year {instant.year} is outside {EARLIEST_YEAR}-{LATEST_YEAR}")
    return instant


def whole_number(event: dict[str, Any], field: str, low: int, high: int, default: int | None = None) -> int:
    value = event.get(field)
    if value is None:
        if default is None:
            raise bad(field, "missing")
        return default
    if type(value) is not int:
        raise bad(field, f"expected a whole number, got {_json_type(value)} {value!r}")
    if value < low:
        raise bad(field, f"{value} is below {low}" if low else f"{value} is negative")
    if value > high:
        raise bad(field, f"{value} is above the maximum {high}")
    return value


def choice(event: dict[str, Any], field: str, allowed: tuple[str, ...], default: str) -> str:
    value = event.get(field)
    if value is None:
        return default
    if type(value) is not str or value not in allowed:
        raise bad(field, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
