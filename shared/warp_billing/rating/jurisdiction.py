"""US wholesale jurisdiction: interstate, intrastate, indeterminate or international.

Rules (reference.md "US wholesale voice rules"):
* terminating state from the LRN when the LNP dip gave one, else the called NPA-NXX;
* originating state from the calling number;
* same state -> intrastate, different states -> interstate;
* a destination outside the US (non-NANP, or a NANP country other than the US such as
  Canada or Jamaica) -> international;
* a missing, invalid or non-geographic calling number -> indeterminate (priced by the
  plan's policy). A valid foreign calling number cannot be intrastate: it is interstate
  by default (plan ``foreign_origin``).

contracts.md section 2 (December 2026) makes three rules explicit: the LRN applies only to
a US called number (for a Canadian, Caribbean or non-NANP called number it is ignored and
the call is international); a toll-free (8YY) called number has no terminating state, so
the call is indeterminate whatever the caller (and whatever LRN came with it); a duration
of 86,400 s or more is BAD_FIELD (``events.MAX_CALL_SECONDS``).
"""

from __future__ import annotations

from .numbering import DOMESTIC_REGIONS, NumberingPlan
from .rejections import Reason, Rejection

INTERSTATE = "interstate"
INTRASTATE = "intrastate"
INDETERMINATE = "indeterminate"
INTERNATIONAL = "international"
JURISDICTIONS = (INTERSTATE, INTRASTATE, INDETERMINATE, INTERNATIONAL)

_N_DIGITS = frozenset("23456789")
# NANP toll-free codes in service and reserved for toll-free (8YY).
TOLL_FREE_NPAS = frozenset({"800", "833", "844", "855", "866", "877", "888", "822", "880", "881", "882", "883",
                            "884", "885", "886", "887", "889"})
_FOREIGN = "foreign"


def e164_digits(number: str) -> str | None:
    """Digits of a well-formed E.164 number ('+' then 7-15 digits, no leading 0), else None.

    Seven digits is the shortest in use (Niue, Tokelau: a 3-digit country code and 4 digits).
    """
    if len(number) < 8 or number[0] != "+":
        return None
    digits = number[1:]
    if len(digits) > 15 or not digits.isdigit() or not digits.isascii() or digits[0] == "0":
        return None
    if digits[0] == "1" and (len(digits) != 11 or digits[1] not in _N_DIGITS or digits[4] not in _N_DIGITS):
        return None
    return digits


class JurisdictionRules:
    """Classifies a call and picks the digits its deck row is found by."""

    __slots__ = ("_domestic", "_foreign_origin", "_region", "_state")

    def __init__(
        self,
        numbering: NumberingPlan,
        territories_domestic: bool = True,
        foreign_origin: str = INTERSTATE,
    ):
        self._domestic = DOMESTIC_REGIONS if territories_domestic else frozenset({"US"})
        self._foreign_origin = foreign_origin
        self._region = numbering.npa_regions.get  # bound once: these run for every call
        self._state = numbering.state_of

    def classify(self, calling: str | None, called: str, lrn: str | None) -> tuple[str, str]:
        """(jurisdiction, digits to match in the deck); Rejection for a bad called number or LRN."""
        called_digits = e164_digits(called)
        if called_digits is None:
            raise Rejection(Reason.INVALID_NUMBER, f"called_number {called!r} is not a valid E.164 number")
        if called_digits[0] != "1":
            return INTERNATIONAL, called_digits
        region_of = self._region
        region = region_of(called_digits[1:4])
        if region is None:
            raise Rejection(Reason.INVALID_NUMBER,
                            f"called_number {called!r}: NPA {called_digits[1:4]} is not assigned")
        if region not in self._domestic:
            return INTERNATIONAL, called_digits     # the LRN of a non-US called number is ignored
        if called_digits[1:4] in TOLL_FREE_NPAS:
            return INDETERMINATE, called_digits     # toll-free: no terminating state, whatever the caller
        match_digits = called_digits
        if lrn is not None:
            lrn_digits = e164_digits(lrn)
            if lrn_digits is None or lrn_digits[0] != "1" or region_of(lrn_digits[1:4]) not in self._domestic:
                raise Rejection(Reason.INVALID_NUMBER, f"lrn {lrn!r} is not a valid US routing number")
            match_digits = lrn_digits
        term_state = self._state(match_digits[1:7])
        if term_state is None:
            return INDETERMINATE, match_digits
        origin = self._origin_state(calling)
        if origin is None:
            return INDETERMINATE, match_digits
        if origin is _FOREIGN:
            return self._foreign_origin, match_digits
        return (INTRASTATE if origin == term_state else INTERSTATE), match_digits

    def _origin_state(self, calling: str | None) -> str | None:
        if not calling:
            return None
        digits = e164_digits(calling)
        if digits is None:
            return None
        if digits[0] != "1":
            return _FOREIGN
        region = self._region(digits[1:4])
        if region is None:
            return None
        if region not in self._domestic:
            return _FOREIGN
        return self._state(digits[1:7])
