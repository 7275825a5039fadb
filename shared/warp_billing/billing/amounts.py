"""Exact intermediate amounts and their text forms for billing documents.

Tiers, proration and percentages are kept as ``Fraction`` (exact, whatever the divisor)
until the one rounding to cents on the line they produce; that rounding is
``money.round_cents``. Quantities that are not money (minutes of billed seconds) are shown
exactly when they terminate, else to 6 places with ``money.round_micro``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

from ..money import EXACT, format_rate, round_cents, round_micro

HUNDRED = Fraction(100)


def exact(value: Decimal | int | Fraction) -> Fraction:
    """A Decimal, int or Fraction as an exact Fraction (Decimals convert without loss)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, (Decimal, int)) and not isinstance(value, bool):
        return Fraction(value)
    raise TypeError(f"{type(value).__name__} is not an exact amount")


def to_exact_decimal(value: Fraction) -> Decimal:
    """A Fraction as a Decimal: exact when it terminates, else to 60 significant digits.

    60 digits cannot move a later half-up rounding to cents: a non-terminating value is
    never exactly on a half-cent boundary, and its distance from one is far above 1e-40.
    """
    return EXACT.divide(Decimal(value.numerator), Decimal(value.denominator))


def cents(value: Fraction | Decimal | int) -> Decimal:
    """Round an exact amount once to cents, half up (the line's one rounding)."""
    if isinstance(value, Fraction):
        value = to_exact_decimal(value)
    return _plain_zero(round_cents(Decimal(value)))


def _plain_zero(value: Decimal) -> Decimal:
    return value.copy_abs() if value.is_zero() else value


def percent_of(amount: Fraction | Decimal, percent: Decimal) -> Fraction:
    """``percent`` % of ``amount``, exactly."""
    return exact(amount) * exact(percent) / HUNDRED


def money_text(value: Decimal) -> str:
    """A cent amount as it appears in documents: "12.30", "-4.00", never "-0.00".

    Amounts reach here already rounded to cents; the quantize only fixes the written
    form of a sum such as ``Decimal(0)``.
    """
    return format(_plain_zero(round_cents(value)), "f")


def quantity_text(value: Fraction | Decimal | int) -> str:
    """A quantity as a decimal string without trailing zeros ("1234.5", "250").

    Terminating values are exact; a repeating one (minutes of 7 billed seconds) is shown
    to 6 places.
    """
    fraction = exact(value)
    denominator = fraction.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    text = to_exact_decimal(fraction)
    if denominator != 1:
        text = round_micro(text)
    return format_rate(text) or "0"


def minutes_text(value: Fraction | Decimal | int) -> str:
    """Minutes as printed on a document: 2 decimals, half up ("7875.28"); not money, so not ``cents``."""
    return format(_plain_zero(round_cents(to_exact_decimal(exact(value)))), "f")


def rate_text(value: Decimal) -> str:
    """A rate or factor without trailing zeros ("0.25", "0.376")."""
    return format_rate(value) or "0"


def iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()
