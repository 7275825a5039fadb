"""`warp`: the operator command line (contracts.md sections 5 and 6)."""

from __future__ import annotations

import click

from .. import __version__
from .account_commands import account
from .close_command import close
from .common import StrictGroup, make_strict
from .crm_commands import crm
from .deck_commands import deck
from .dispute_commands import dispute
from .explain_command import explain
from .invoice_command import invoice
from .netsuite_commands import netsuite
from .ops_commands import balance, plans, rejects
from .plan_commands import plan
from .rate_command import rate
from .reasons_command import reasons
from .reconcile_command import reconcile
from .register_commands import invoices
from .sample_command import sample


@click.group(cls=StrictGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="warp")
def main() -> None:
    """WARP Billing: rate usage, check decks, close billing cycles."""


for command in (rate, explain, deck, plan, sample, invoice, invoices, plans, balance, rejects, reasons, netsuite,
                reconcile, dispute, close, account, crm):
    main.add_command(command)
make_strict(main)  # every subcommand, also those declared without StrictCommand, refuses a repeated option
