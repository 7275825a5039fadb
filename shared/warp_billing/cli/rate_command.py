"""`warp rate`: rate a usage file against one or more customer plans."""

from __future__ import annotations

import gc

import click
import orjson

from ..rating.usage_file import rate_lines
from .common import build_rater, byte_progress, fail, load_plans


@click.command()
@click.option("--plan", "plans", multiple=True, required=True, metavar="PLAN.yaml",
              help="Customer plan; repeat for several customers (events are routed by customer_id).")
@click.option("--in", "in_path", required=True, metavar="USAGE.jsonl", help="Usage events, one JSON object a line.")
@click.option("--out", "out_path", required=True, metavar="RATED.jsonl",
              help="One rated or rejected line per input line.")
@click.option("--rejects", "rejects_path", metavar="REJECTS.jsonl",
              help="Also write rejections here (with line number and raw text).")
@click.option("--summary", "summary_path", metavar="SUMMARY.json", help="Write the closing summary as JSON too.")
@click.option("--npa-nxx", "npa_nxx", metavar="LERG.csv",
              help="NPA-NXX to state file (npa_nxx,state[,lata,ocn]) replacing the embedded one.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def rate(plans, in_path, out_path, rejects_path, summary_path, npa_nxx, progress) -> None:
    """Rate USAGE.jsonl into RATED.jsonl; print a summary (accepted = rated + rejected)."""
    rater = build_rater(load_plans(plans), npa_nxx)
    # The compiled decks live for the whole run: keep the cyclic GC from re-scanning their
    # hundreds of thousands of rows on every full collection while events stream through.
    gc.freeze()
    try:
        source = open(in_path, "rb")
    except OSError as exc:
        raise fail(f"cannot read usage file {in_path}: {exc.strerror}") from None
    try:
        out = open(out_path, "wb")
        rejects = open(rejects_path, "wb") if rejects_path else None
    except OSError as exc:
        source.close()
        raise fail(f"cannot write {exc.filename}: {exc.strerror}") from None
    with source, out, byte_progress(in_path, "rating", progress) as bar:
        try:
            summary = rate_lines(rater, source, out, rejects, bar.update)
        finally:
            if rejects is not None:
                rejects.close()
    if summary_path:
        with open(summary_path, "wb") as handle:
            handle.write(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2))
    click.echo(summary.render())
