"""`warp rate`: rate a usage file against one or more customer plans."""

from __future__ import annotations

import gc

import click
import orjson

from ..rating.rater import deck_paths
from ..rating.usage_file import rate_lines
from .common import StrictCommand, build_rater, byte_progress, fail, load_plans
from .output_files import AtomicOutputs, check_outputs


@click.command(cls=StrictCommand)
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
    outputs = {"--out": out_path, "--rejects": rejects_path, "--summary": summary_path}
    inputs = {"--in": in_path, "--plan": plans, "--npa-nxx": npa_nxx}
    check_outputs(outputs, inputs)
    loaded = load_plans(plans)
    decks = [str(plan.resolve(deck)) for plan in loaded for deck in deck_paths(plan.plan)]
    check_outputs(outputs, {**inputs, "deck": decks})
    rater = build_rater(loaded, npa_nxx)
    # The compiled decks live for the whole run: keep the cyclic GC from re-scanning their
    # hundreds of thousands of rows on every full collection while events stream through.
    gc.freeze()
    try:
        source = open(in_path, "rb")
    except OSError as exc:
        raise fail(f"cannot read usage file {in_path}: {exc.strerror}") from None
    # Every output is a temporary until the whole file is rated: an error or Ctrl-C leaves
    # the previous files untouched and never a partial RATED.jsonl under its final name.
    with source, AtomicOutputs() as files, byte_progress(in_path, "rating", progress) as bar:
        try:
            out = files.open(out_path)
            rejects = files.open(rejects_path) if rejects_path else None
        except OSError as exc:
            raise fail(f"cannot write {exc.filename}: {exc.strerror}") from None
        summary = rate_lines(rater, source, out, rejects, bar.update)
        if summary_path:
            files.open(summary_path).write(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2))
        files.commit()
    click.echo(summary.render())
