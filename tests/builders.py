"""Test builders: decks and plans from literal text, events with sensible defaults."""

from __future__ import annotations

import io
from pathlib import Path

import yaml

from warp_billing.plan import LoadedPlan, parse_plan
from warp_billing.rating.deck import RateDeck, read_deck_rows
from warp_billing.rating.numbering import NumberingPlan
from warp_billing.rating.rater import CustomerRater, Rater

HEADER = ("prefix,destination,rate,interstate_rate,intrastate_rate,indeterminate_rate,effective_date,end_date,"
          "first_increment,next_increment,connect_fee\n")


def deck(text: str, name: str = "test.csv") -> RateDeck:
    """A compiled deck from CSV text (a header is added when the text has none)."""
    body = text if text.lstrip().startswith("prefix") else HEADER + text
    return RateDeck(read_deck_rows(io.StringIO(body), name), name=name)


def plan_from(yaml_text: str):
    return parse_plan(yaml.safe_load(yaml_text))


def rater(plan_yaml: str, decks: dict[str, str], numbering: NumberingPlan | None = None) -> Rater:
    """A Rater for one plan whose deck paths map to the given CSV texts."""
    plan = plan_from(plan_yaml)
    compiled = {path: deck(text, path) for path, text in decks.items()}
    return Rater({plan.customer_id: CustomerRater(plan, compiled, numbering or NumberingPlan.embedded())})


def write_files(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def voice(event_id: str = "e1", **fields) -> dict:
    event = {
        "event_id": event_id,
        "kind": "voice",
        "customer_id": "ACME",
        "start_time": "2026-11-03T02:00:00Z",
        "duration_s": 60,
        "calling_number": "+13125550000",
        "called_number": "+12125551234",
        "direction": "termination",
    }
    event.update(fields)
    return {key: value for key, value in event.items() if value is not ...}


def message(event_id: str = "m1", kind: str = "sms", **fields) -> dict:
    event = {
        "event_id": event_id,
        "kind": kind,
        "customer_id": "ACME",
        "start_time": "2026-11-03T02:00:00Z",
        "direction": "outbound",
        "from_number": "+12125550000",
        "to_number": "+13125551234",
        "segments": 1,
    }
    event.update(fields)
    return {key: value for key, value in event.items() if value is not ...}


def query(event_id: str = "q1", **fields) -> dict:
    event = {
        "event_id": event_id,
        "kind": "api_query",
        "customer_id": "ACME",
        "start_time": "2026-11-03T02:00:00Z",
        "query_type": "lrn",
    }
    event.update(fields)
    return {key: value for key, value in event.items() if value is not ...}


__all__ = ["deck", "plan_from", "rater", "voice", "message", "query", "write_files", "LoadedPlan"]
