"""`warp explain`: how one event was (or would be) priced under a plan, step by step."""

from __future__ import annotations

import sys

import click
import orjson

from ..rating.deck import DeckError
from ..rating.explain import explain_event
from ..rating.numbering import NumberingError, NumberingPlan
from ..rating.rater import DeckCache, Rater, deck_paths
from .common import StrictCommand, fail, first_line, load_plans


@click.command(cls=StrictCommand)
@click.option("--plan", "plan_paths", multiple=True, required=True, metavar="PLAN.yaml",
              help="Customer plan; repeat for several customers (the event's customer_id picks one).")
@click.option("--npa-nxx", "npa_nxx", metavar="LERG.csv", help="NPA-NXX to state file replacing the embedded one.")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@click.argument("event_text", metavar="EVENT_JSON")
def explain(plan_paths, npa_nxx, as_json, event_text) -> None:
    """Explain how EVENT_JSON (a JSON object, a file holding one, or - for stdin) is priced.

    Prints the deck file and line, prefix and effective window, jurisdiction and why, base
    rate, multipliers, increments and billed seconds, connect fee, vendor cost row and margin,
    and checks the result against `warp rate`'s.
    """
    event = _read_event(event_text)
    loaded = load_plans(plan_paths)
    decks = DeckCache()
    try:
        numbering = NumberingPlan.embedded()
        if npa_nxx:
            numbering = numbering.with_lerg_csv(npa_nxx)
        rater = Rater.from_plans(loaded, numbering, decks)
    except DeckError as exc:
        raise fail(f"deck {first_line(exc)}") from None
    except (NumberingError, ValueError) as exc:
        raise fail(first_line(exc)) from None
    by_customer = {plan.plan.customer_id: plan for plan in loaded}
    customer_id = event.get("customer_id")
    chosen = by_customer.get(customer_id) if isinstance(customer_id, str) else None
    if chosen is None:
        chosen = loaded[0]
    files = {name: chosen.resolve(name) for name in deck_paths(chosen.plan)}
    compiled = {name: decks(str(path)) for name, path in files.items()}
    customer_numbering = numbering.with_lerg_csv(chosen.resolve(chosen.plan.voice.npa_nxx)) \
        if chosen.plan.voice is not None and chosen.plan.voice.npa_nxx else numbering
    explanation = explain_event(event, chosen.plan, compiled, files, customer_numbering, rater)
    if as_json:
        click.echo(orjson.dumps(explanation.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(explanation.render())


def _read_event(text: str) -> dict:
    if text == "-":
        raw = sys.stdin.buffer.read()
    elif text.lstrip().startswith("{"):
        raw = text.encode("utf-8")
    else:
        try:
            with open(text, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise fail(f"EVENT_JSON {text!r} is neither a JSON object nor a readable file: {exc.strerror}") from None
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise fail(f"EVENT_JSON is not valid JSON: {exc}") from None
    if not isinstance(event, dict):
        raise fail("EVENT_JSON must be one JSON object (a usage event)")
    return event
