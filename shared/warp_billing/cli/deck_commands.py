"""`warp deck check`: validate a rate deck and summarize it."""

from __future__ import annotations

import time

import click
import orjson

from ..rating.deck import DeckError, DeckIssue, load_deck
from ..rating.deck_report import summarize
from .common import StrictGroup


@click.group(cls=StrictGroup)
def deck() -> None:
    """Rate deck tools."""


@deck.command("check")
@click.argument("deck_path", metavar="DECK.csv")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def check(deck_path: str, as_json: bool) -> None:
    """Validate DECK.csv (every problem named by file, row and column) and summarize it."""
    started = time.perf_counter()
    try:
        compiled = load_deck(deck_path)
    except (DeckError, ValueError) as exc:
        if not isinstance(exc, DeckError):
            exc = DeckError([DeckIssue(deck_path, 0, "-", str(exc))])
        for issue in exc.issues:
            click.echo(f"error: {issue}", err=True)
        click.echo(f"warp: error: {deck_path}: {len(exc.issues)} problem(s); deck not usable", err=True)
        raise click.exceptions.Exit(1) from None
    report = summarize(compiled)
    report["compile_seconds"] = round(time.perf_counter() - started, 3)
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"{deck_path}: OK")
    for key, value in report.items():
        click.echo(f"  {key:<22} {value}")
