"""Shared pieces of the CLI: loading plans into a rater, one-line fatal errors, progress."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import click
from tqdm import tqdm

from ..plan import LoadedPlan, PlanError, load_plan
from ..rating.deck import DeckError
from ..rating.numbering import NumberingError, NumberingPlan
from ..rating.rater import Rater


def fail(message: str) -> click.exceptions.Exit:
    """Print a one-line error naming the problem and exit non-zero."""
    click.echo(f"warp: error: {message}", err=True)
    return click.exceptions.Exit(1)


def first_line(error: Exception) -> str:
    text = str(error)
    lines = text.splitlines()
    if len(lines) > 1:
        return f"{lines[0]} (and {len(lines) - 1} more problems)"
    return text


def load_plans(paths: Sequence[str]) -> list[LoadedPlan]:
    plans = []
    for path in paths:
        try:
            loaded = load_plan(path)
        except PlanError as exc:
            raise fail(f"plan {first_line(exc)}") from None
        for key in loaded.unknown_keys:
            click.echo(f"warp: warning: {path}: unknown plan key {key!r} ignored", err=True)
        plans.append(loaded)
    return plans


def build_rater(plans: Sequence[LoadedPlan], npa_nxx: str | None = None) -> Rater:
    try:
        numbering = NumberingPlan.embedded()
        if npa_nxx:
            numbering = numbering.with_lerg_csv(npa_nxx)
        return Rater.from_plans(plans, numbering)
    except DeckError as exc:
        raise fail(f"deck {first_line(exc)}") from None
    except NumberingError as exc:
        raise fail(f"NPA-NXX file {first_line(exc)}") from None
    except ValueError as exc:
        raise fail(str(exc)) from None


@contextmanager
def byte_progress(path: str, label: str, enabled: bool | None) -> Iterator[tqdm]:
    """A progress bar over a file's bytes; shown on a terminal unless forced on or off."""
    total = os.path.getsize(path) if os.path.isfile(path) else None
    disable = (not sys.stderr.isatty()) if enabled is None else not enabled
    with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=disable, file=sys.stderr,
              mininterval=0.5) as bar:
        yield bar
