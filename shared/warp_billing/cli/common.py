"""Shared pieces of the CLI: loading plans into a rater, one-line fatal errors, progress."""

from __future__ import annotations

import logging
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


def command_container():
    """The object graph for a command, with logs kept off stdout (which carries the command's own output)."""
    from .. import bootstrap, logs  # noqa: PLC0415 - the commands that rate files never build it

    logs.configure("WARNING", stream=sys.stderr)
    container = bootstrap.container()
    logging.getLogger().setLevel(logging.WARNING)
    return container


class StrictCommand(click.Command):
    """A command that refuses a single-value option given twice (click would keep the last).

    ``--rated A --rated B`` must never quietly mean ``--rated B``: repeatable options are
    declared ``multiple=True`` and take every value; any other option given twice is a usage
    error (exit 2) naming it.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        repeated = repeated_single_options(self, args)
        if repeated:
            raise click.UsageError(f"option {repeated} given more than once; it takes one value", ctx=ctx)
        return super().parse_args(ctx, args)


class StrictGroup(click.Group):
    """A group whose subcommands (declared with ``@group.command``) are StrictCommands."""

    command_class = StrictCommand


def make_strict(command: click.Command) -> None:
    """Give ``command`` and every subcommand under it StrictCommand's refusal of repeated options."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            make_strict(sub)
        if not any(isinstance(param, click.Option) for param in command.params):
            return
    if isinstance(command, StrictCommand):
        return
    plain = command.parse_args
    subcommands = set(command.commands) if isinstance(command, click.Group) else set()

    def parse_args(ctx: click.Context, args: list[str]) -> list[str]:
        # A group with options of its own (`warp invoice ... | show NUMBER`) counts only its own part.
        own = list(args)
        for index, token in enumerate(own):
            if token in subcommands:
                own = own[:index]
                break
        repeated = repeated_single_options(command, own)
        if repeated:
            raise click.UsageError(f"option {repeated} given more than once; it takes one value", ctx=ctx)
        return plain(ctx, args)

    command.parse_args = parse_args  # type: ignore[method-assign]


def repeated_single_options(command: click.Command, args: Sequence[str]) -> str | None:
    """The first single-value option of ``command`` that appears more than once in ``args``."""
    owner: dict[str, str] = {}
    for param in command.params:
        if isinstance(param, click.Option) and not param.multiple and not param.count:
            for name in (*param.opts, *param.secondary_opts):
                owner[name] = "/".join(param.opts + param.secondary_opts)
    counts: dict[str, int] = {}
    for token in args:
        if token == "--":
            break
        name = token.split("=", 1)[0] if token.startswith("--") else token
        if name in owner:
            counts[owner[name]] = counts.get(owner[name], 0) + 1
            if counts[owner[name]] > 1:
                return owner[name]
    return None


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
