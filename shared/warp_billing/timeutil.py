"""Instants and dates as the contracts define them: ISO 8601, no offset means UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

__all__ = ["UTC", "InstantError", "parse_boundary", "parse_instant"]  # UTC is re-exported for the core


class InstantError(ValueError):
    """Text that is not an ISO 8601 instant or date."""


def parse_instant(text: object) -> datetime:
    """An ISO 8601 instant as an aware datetime; a time without an offset is UTC."""
    if not isinstance(text, str):
        raise InstantError(f"expected an ISO 8601 string, got {type(text).__name__}")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InstantError(f"{text!r} is not an ISO 8601 instant") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def parse_boundary(text: str) -> datetime:
    """A deck date or instant: a bare date means 00:00 UTC of that day."""
    text = text.strip()
    if len(text) == 10:
        try:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        except ValueError:
            raise InstantError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    return parse_instant(text)
