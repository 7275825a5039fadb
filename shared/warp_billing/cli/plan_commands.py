"""`warp plan check`: validate a plan and every deck it names, without rating anything."""

from __future__ import annotations

import click

from ..plan import PlanError, load_plan
from ..rating.deck import DeckError, load_deck
from ..rating.numbering import NumberingError, NumberingPlan
from ..rating.rater import deck_paths
from .common import StrictGroup


@click.group(cls=StrictGroup)
def plan() -> None:
    """Customer plan tools."""


@plan.command("check")
@click.argument("plan_path", metavar="PLAN.yaml")
def check(plan_path: str) -> None:
    """Validate PLAN.yaml (strict keys, timezone, currency) and the decks it names."""
    try:
        loaded = load_plan(plan_path)
    except PlanError as exc:
        click.echo(f"error: {exc}", err=True)
        click.echo(f"warp: error: {plan_path}: plan not usable", err=True)
        raise click.exceptions.Exit(1) from None
    problems = 0
    checked = []
    for name in deck_paths(loaded.plan):
        path = loaded.resolve(name)
        try:
            deck = load_deck(path)
        except DeckError as exc:
            problems += len(exc.issues)
            for issue in exc.issues:
                click.echo(f"error: {issue}", err=True)
            continue
        checked.append(f"{name} ({deck.prefixes():,} prefixes)")
    npa_nxx = loaded.plan.voice.npa_nxx if loaded.plan.voice is not None else None
    if npa_nxx:
        try:
            NumberingPlan.embedded().with_lerg_csv(str(loaded.resolve(npa_nxx)))
        except (NumberingError, OSError, UnicodeDecodeError) as exc:
            problems += 1
            click.echo(f"error: npa_nxx {npa_nxx}: {exc}", err=True)
    if problems:
        click.echo(f"warp: error: {plan_path}: {problems} problem(s) in its decks; plan not usable", err=True)
        raise click.exceptions.Exit(1)
    plan_ = loaded.plan
    click.echo(f"{plan_path}: OK (customer {plan_.customer_id}, {plan_.billing}, {plan_.currency}, {plan_.timezone})")
    for line in checked:
        click.echo(f"  deck {line}")
