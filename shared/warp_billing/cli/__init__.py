"""`warp`: the operator command line (contracts.md sections 5 and 6)."""

from __future__ import annotations

import click

from .. import __version__
from .deck_commands import deck
from .rate_command import rate
from .sample_command import sample


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="warp")
def main() -> None:
    """WARP Billing: rate usage, check decks, close billing cycles."""


main.add_command(rate)
main.add_command(deck)
main.add_command(sample)

try:  # commands of later features register themselves when their module exists
    from .invoice_command import invoice

    main.add_command(invoice)
except ImportError:  # pragma: no cover - only while that feature is absent
    pass
