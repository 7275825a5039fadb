"""Named errors of the cycle close; each message names what to fix."""

from __future__ import annotations


class BillingError(ValueError):
    """Base of every cycle-close error."""


class PeriodError(BillingError):
    """A billing period that is not a month written YYYY-MM."""


class RatedFileError(BillingError):
    """A rated usage file that cannot be billed (unreadable, or a line that is not a rated record)."""


class RatedLineError(BillingError):
    """A bad line inside a rated file; ``line`` counts from 1 within the part being read."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.detail = message

    def __reduce__(self) -> tuple[type[RatedLineError], tuple[int, str]]:  # survive the trip back from a worker process
        return (type(self), (self.line, self.detail))


class TaxError(BillingError):
    """A tax or regulatory fee that cannot be computed; never replaced by a guess."""


class ContributionFactorMissing(TaxError):
    """The FCC has no published USF contribution factor for the quarter (or the table lacks it)."""


class TaxEngineUnavailable(TaxError):
    """A transient failure of an external tax engine (throttled, down): retry later."""


class InvoiceRegisterError(BillingError):
    """The invoice register cannot be read or written consistently."""
