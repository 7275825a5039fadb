"""The FCC's quarterly USF contribution factors, as a dated table, and the USF fee.

The factor of the quarter the billing period falls in (the quarter of the cycle's first
day) applies. A quarter the table does not have, or has as ``n/a`` (not yet published),
is an error naming the quarter: a USF charge is never guessed. New factors are added to
``data/usf_contribution_factors.csv`` (or given in a file of the same columns with
``warp invoice --usf-table``) when the FCC publishes them.

The USF base is the customer's interstate and international revenue: the invoiced
``VOICE-INTERSTATE`` and ``VOICE-INTERNATIONAL`` usage lines. Tier adjustments,
commitment lines and the indeterminate line are not in the base (volume pricing spans
every jurisdiction and is not allocated to one); carrier's-carrier customers
(``fees.usf.applies: false``) pay no USF.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ..money import MoneyError, to_decimal
from .amounts import cents, exact, rate_text
from .errors import ContributionFactorMissing, TaxError
from .fees import Fee

USF_CODE = "USF"
USF_BASE_SKUS = ("VOICE-INTERSTATE", "VOICE-INTERNATIONAL")
EMBEDDED_TABLE = Path(__file__).parent / "data" / "usf_contribution_factors.csv"
NOT_PUBLISHED = {"", "n/a", "na", "-"}


@dataclass(frozen=True)
class ContributionFactorTable:
    """Quarterly contribution factors in percent, by (year, quarter)."""

    factors: Mapping[tuple[int, int], Decimal]
    source: str

    @classmethod
    def embedded(cls) -> ContributionFactorTable:
        table = cls.from_csv(EMBEDDED_TABLE)
        return cls(table.factors, "the embedded table")

    @classmethod
    def from_csv(cls, path: str | Path) -> ContributionFactorTable:
        """Read ``year,quarter,factor_pct`` rows (``n/a`` = not published)."""
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                return cls.from_rows(csv.DictReader(handle), str(path))
        except OSError as exc:
            raise TaxError(f"cannot read USF contribution factors {path}: {exc.strerror}") from None

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, str]], source: str) -> ContributionFactorTable:
        factors: dict[tuple[int, int], Decimal] = {}
        for number, row in enumerate(rows, start=2):
            try:
                year, quarter = int(row["year"]), int(row["quarter"])
            except (KeyError, TypeError, ValueError):
                raise TaxError(f"{source}: row {number}: year and quarter must be whole numbers") from None
            if not 1 <= quarter <= 4:
                raise TaxError(f"{source}: row {number}: quarter {quarter} is not 1 to 4")
            text = (row.get("factor_pct") or "").strip()
            if text.lower() in NOT_PUBLISHED:
                continue
            try:
                factor = to_decimal(text, field="factor_pct")
            except MoneyError as exc:
                raise TaxError(f"{source}: row {number}: {exc}") from None
            if not 0 <= factor < 100:
                raise TaxError(f"{source}: row {number}: factor_pct {text} is not a percentage below 100")
            if (year, quarter) in factors:
                raise TaxError(f"{source}: row {number}: {year} Q{quarter} appears twice")
            factors[(year, quarter)] = factor
        return cls(factors, source)

    def factor_pct(self, year: int, quarter: int) -> Decimal:
        """The factor in percent; ContributionFactorMissing names the quarter when there is none."""
        try:
            return self.factors[(year, quarter)]
        except KeyError:
            raise ContributionFactorMissing(
                f"no FCC USF contribution factor for {year} Q{quarter} in {self.source} "
                "(not published yet, or missing from the table); USF is not guessed"
            ) from None


def usf_fee(table: ContributionFactorTable, quarter: tuple[int, int], line_amounts: Mapping[str, Decimal]) -> Fee:
    """USF on the interstate and international lines at the quarter's factor."""
    percent = table.factor_pct(*quarter)
    base = sum((line_amounts.get(sku, Decimal(0)) for sku in USF_BASE_SKUS), Decimal("0.00"))
    rate = Decimal(rate_text(percent / 100))     # 37.6% -> 0.376
    year, number = quarter
    return Fee(
        USF_CODE, f"Federal Universal Service Fund, {year} Q{number} contribution factor {percent}%",
        base, rate, cents(exact(base) * exact(percent) / 100), rate_percent=percent, account_hint="usf",
    )
