"""`warp reasons`: the reject reason codes and what each means, from the ``Reason`` enum itself."""

from __future__ import annotations

import click

from ..rating.rejections import MEANINGS, Reason


def reasons_text(markdown: bool = False) -> str:
    """One line per code, in the enum's order (``--markdown``: the README's list)."""
    if markdown:
        return "\n".join(f"- `{reason.value}`: {MEANINGS[reason]}" for reason in Reason)
    width = max(len(reason.value) for reason in Reason)
    return "\n".join(f"{reason.value:<{width}}  {MEANINGS[reason]}" for reason in Reason)


@click.command()
@click.option("--markdown", is_flag=True, help="A Markdown list (what the README shows).")
def reasons(markdown: bool) -> None:
    """List the stable reason codes of rejected events."""
    click.echo(reasons_text(markdown))
