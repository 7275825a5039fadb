"""Money rules: exact decimals, the documented rounding points, and the float refusal.

Every money value in WARP Billing is a ``decimal.Decimal`` (or an integer count of
micro-units where a store needs integers, e.g. Redis). This module is the one place
that rounds; contracts.md section 4 says where:

* per-event amounts (voice, messaging, API) are rounded once to 6 decimals, half up;
* invoice lines sum per-event amounts and round once to cents, half up.

Arithmetic before those points runs in a context wide enough to be exact for
rating inputs (rates of up to 8 decimals, multipliers, seconds), so nothing is
rounded twice.
"""

from __future__ import annotations

import decimal
from decimal import ROUND_HALF_UP, Decimal

MICRO = Decimal("0.000001")
CENT = Decimal("0.01")
ZERO = Decimal(0)
RATE_MAX_PLACES = 8
MICROS_PER_UNIT = 1_000_000
SIXTY = Decimal(60)

# 60 significant digits: products of rates, multipliers and durations are exact, and a
# division by 60 (per-minute pricing) carries error far below the 7th decimal, so the
# single half-up quantize that follows cannot be pushed across a boundary.
EXACT = decimal.Context(prec=60, rounding=ROUND_HALF_UP, traps=[decimal.InvalidOperation])


class MoneyError(ValueError):
    """A value that cannot be a money amount (a float, a malformed string, too many places)."""


def to_decimal(value: object, *, field: str = "amount", max_places: int | None = None) -> Decimal:
    """Convert a decimal string, int or Decimal to an exact Decimal; refuse floats.

    Floats are refused because a binary float cannot hold most decimal prices
    exactly (0.0061 is 0.00609999...); the caller must quote money values.
    """
    if isinstance(value, bool):
        raise MoneyError(f"{field}: a boolean is not a money value")
    if isinstance(value, float):
        raise MoneyError(
            f"{field}: float {value!r} refused for a money value; write it as a quoted decimal string"
        )
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            result = Decimal(text)
        except decimal.InvalidOperation:
            raise MoneyError(f"{field}: {value!r} is not a decimal number") from None
    else:
        raise MoneyError(f"{field}: {type(value).__name__} is not a money value")
    if not result.is_finite():
        raise MoneyError(f"{field}: {value!r} is not a finite decimal")
    if max_places is not None and places(result) > max_places:
        raise MoneyError(f"{field}: {value!r} has more than {max_places} decimal places")
    return result


def places(value: Decimal) -> int:
    """Number of decimal places written in ``value`` (trailing zeros count)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def round_micro(value: Decimal) -> Decimal:
    """Round a per-event amount once to 6 decimals, half up."""
    return value.quantize(MICRO, rounding=ROUND_HALF_UP)


def round_cents(value: Decimal) -> Decimal:
    """Round an invoice line once to cents, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def per_minute_amount(rate: Decimal, billed_seconds: int, connect_fee: Decimal = ZERO) -> Decimal:
    """Voice amount = rate x billed seconds / 60 (+ connect fee), rounded once to 6 decimals.

    Computed as an exact integer division in micro-units (quotient and remainder), so the
    only rounding is the final half-up step and no 60-digit long division is needed.
    """
    sixty_times = EXACT.multiply(rate, billed_seconds)
    if connect_fee:
        sixty_times = EXACT.add(sixty_times, EXACT.multiply(connect_fee, 60))
    micros, remainder = EXACT.divmod(sixty_times.scaleb(6, EXACT), SIXTY)
    if remainder + remainder >= SIXTY:
        micros += 1
    return micros.scaleb(-6, EXACT)


def to_micros(value: Decimal) -> int:
    """An amount of at most 6 decimals as integer micro-units (for integer stores such as Redis)."""
    scaled = value * MICROS_PER_UNIT
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{value} has more than 6 decimal places; round it before storing")
    return int(scaled)


def from_micros(micros: int) -> Decimal:
    """Integer micro-units back to a Decimal with 6 places."""
    return (Decimal(micros) / MICROS_PER_UNIT).quantize(MICRO)


def format_amount(value: Decimal | None) -> str | None:
    """Money as a plain decimal string (never exponent notation)."""
    if value is None:
        return None
    return format(value, "f")


def format_rate(value: Decimal | None) -> str | None:
    """A rate without trailing zeros beyond its meaning ("0.00671", "0.01"), never exponent form."""
    if value is None:
        return None
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
