"""`warp sample`: write the sample customers' decks, plans and a month of traffic."""

from __future__ import annotations

from pathlib import Path

import click

from ..sample_data import SAMPLE_DAY, write_sample_setup, write_usage
from .common import StrictCommand
from .output_files import AtomicOutputs, check_output_folder, write_atomic


@click.command(cls=StrictCommand)
@click.option("--out", "folder", required=True, type=click.Path(file_okay=False),
              help="Folder for decks, plans and usage.")
@click.option("--events", default=200_000, show_default=True, help="Usage events to generate.")
@click.option("--seed", default=7, show_default=True, help="Random seed (same seed, same files).")
@click.option("--day", default=SAMPLE_DAY, show_default=True,
              help="A day of the sample month: events spread over its whole month; decks change rates that day.")
@click.option("--us-rows", default=20_000, show_default=True, help="NPA-NXX rows per US deck.")
@click.option("--international-rows", default=1_500, show_default=True, help="International rows per deck.")
def sample(folder: str, events: int, seed: int, day: str, us_rows: int, international_rows: int) -> None:
    """Generate sample decks, three customer plans and a usage file with some bad lines."""
    check_output_folder("--out", folder)
    target = Path(folder)
    target.mkdir(exist_ok=True)
    plans = write_sample_setup(target, seed=seed, us_rows=us_rows, international_rows=international_rows, day=day,
                               writer=write_atomic)
    usage = target / "usage.jsonl"
    with AtomicOutputs() as files:
        written = write_usage(usage, events, seed=seed, day=day, customers=tuple(plans), out=files.open(usage))
        files.commit()
    for customer, path in plans.items():
        click.echo(f"plan {customer}: {path}")
    click.echo(f"usage: {usage} ({written:,} events)")
