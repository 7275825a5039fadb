"""The tax-engine port: what an invoice asks of a tax engine, and the offline default.

A ``TaxEngine`` (the port, declared in ``ports.py``) receives the invoice's priced lines and
returns the tax and regulatory fee lines to add. The default ``OfflineTaxEngine`` needs no network: it applies the FCC
USF contribution factor of the period's quarter from the dated table (``usf``), when the
plan says USF applies. ``warp_billing.adapters.avalara`` implements the same port
against Avalara Communications (AFC CalcTaxes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from ..ports import TaxEngine  # noqa: F401  (re-exported: the port lives in ports.py)
from .cycles import BillingCycle
from .fees import Fee
from .usf import ContributionFactorTable, usf_fee


@dataclass(frozen=True, slots=True)
class TaxableLine:
    """A priced invoice line as a tax engine sees it (amount already in cents)."""

    sku: str
    amount: Decimal
    quantity: Fraction
    unit: str


@dataclass(frozen=True)
class TaxRequest:
    """What an invoice asks a tax engine.

    Attributes:
        document: a stable id of the invoice being taxed ("ACME-2026-11").
        usf_applies: the plan's ``fees.usf.applies``; False for carrier's-carrier
            (wholesale, reseller-certificate) customers.
    """

    customer_id: str
    document: str
    cycle: BillingCycle
    issue_date: date
    lines: tuple[TaxableLine, ...]
    usf_applies: bool


class OfflineTaxEngine:
    """USF from the dated contribution-factor table; no other taxes."""

    def __init__(self, factors: ContributionFactorTable | None = None):
        self._factors = factors

    @property
    def factors(self) -> ContributionFactorTable:
        if self._factors is None:
            self._factors = ContributionFactorTable.embedded()
        return self._factors

    def taxes(self, request: TaxRequest) -> list[Fee]:
        if not request.usf_applies:
            return []
        amounts: dict[str, Decimal] = {}
        for line in request.lines:
            amounts[line.sku] = amounts.get(line.sku, Decimal(0)) + line.amount
        return [usf_fee(self.factors, request.cycle.quarter, amounts)]
