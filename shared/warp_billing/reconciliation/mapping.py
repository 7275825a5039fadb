"""A vendor's CDR layout: which column holds what, in which unit and zone (one YAML per vendor).

Example::

    vendor_id: V1
    format: csv                  # csv | tsv; default from the file name (.tsv / .tsv.gz)
    encoding: utf-8              # utf-8 | latin-1 | utf-16
    currency: USD                # rows billed in another currency are rejected (BAD_CURRENCY)
    columns:                     # header names in the vendor's file
      call_id: CallID            # optional; matched to our call_id when both sides carry one
      start_time: StartTime
      calling: ANI
      called: DNIS
      duration: Duration
      rate: Rate                 # optional
      cost: Charge
      currency: Currency         # optional
      jurisdiction: Jurisdiction # optional
      destination: Destination   # optional
      billed_duration: BilledSec # optional (seconds)
    start_time: {format: "%Y-%m-%d %H:%M:%S", timezone: America/New_York}
    duration_unit: seconds       # seconds | milliseconds | mm:ss (also h:mm:ss)
    default_country: "1"         # country code put before national numbers
    jurisdictions: {INTER: interstate, INTRA: intrastate}   # their codes -> ours
    tolerances: {start_s: 60, duration_s: 2, cost: "0.0001", rate: "0.000001"}
    dispute: {threshold_pct: "5", send_to: operator, vendor_email: billing@vendor.example}
    invoice: {destination: Destination, minutes: Minutes, amount: Amount,
              destinations: {"USA INTERSTATE": interstate}}

A misspelt key is an error that names it (a silently ignored ``tolerance`` would reconcile
against the wrong rules). Money is a quoted decimal, never a YAML float.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..money import MoneyError, to_decimal
from .matching_sql import Tolerances

OUR_JURISDICTIONS = ("interstate", "intrastate", "indeterminate", "international", "tollfree")
OFFSET = re.compile(r"[+-](\d\d):?(\d\d)")


class MappingError(ValueError):
    """A vendor mapping that cannot be used; the message names the file and the key."""


def _exact(value: Any) -> Decimal:
    try:
        result = to_decimal(value, field="value", max_places=9)
    except MoneyError as exc:
        raise ValueError(str(exc).split(": ", 1)[-1]) from None
    if result < 0:
        raise ValueError(f"{value!r} is negative")
    return result


Exact = Annotated[Decimal, BeforeValidator(_exact)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Columns(_Strict):
    start_time: str
    calling: str
    called: str
    duration: str
    cost: str
    call_id: str | None = None
    rate: str | None = None
    currency: str | None = None
    jurisdiction: str | None = None
    destination: str | None = None
    billed_duration: str | None = None


class StartTime(_Strict):
    format: str = "%Y-%m-%d %H:%M:%S"
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value.upper() == "UTC" or OFFSET.fullmatch(value):
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name, UTC or +HH:MM)") from None
        return value


class ToleranceSettings(_Strict):
    start_s: int = Field(60, ge=0, le=86_400)
    duration_s: int = Field(2, ge=0, le=3_600)
    cost: Exact = Decimal("0.0001")
    rate: Exact = Decimal("0.000001")


class DisputeSettings(_Strict):
    threshold_pct: Exact = Decimal("5")
    send_to: Literal["operator", "vendor"] = "operator"
    vendor_email: str | None = None

    @model_validator(mode="after")
    def _addressed(self) -> DisputeSettings:
        # refused when the mapping is read, before any output: a package meant for the vendor never
        # goes nowhere (or to the operator) in silence
        if self.send_to == "vendor" and not (self.vendor_email and "@" in self.vendor_email):
            raise ValueError("send_to: vendor needs vendor_email (the address the dispute package is emailed to)")
        return self


class InvoiceLayout(_Strict):
    destination: str = "destination"
    minutes: str = "minutes"
    amount: str = "amount"
    destinations: dict[str, str] = Field(default_factory=dict)


class VendorMapping(_Strict):
    """One vendor's CDR layout and reconciliation settings (see the module docstring)."""

    vendor_id: str = Field(min_length=1)
    format: Literal["csv", "tsv"] | None = None
    encoding: Literal["utf-8", "latin-1", "utf-16"] = "utf-8"
    header: bool = True
    currency: str = "USD"
    columns: Columns
    start_time: StartTime = StartTime()
    duration_unit: Literal["seconds", "milliseconds", "mm:ss"] = "seconds"
    default_country: str = Field("1", pattern=r"^[1-9]\d{0,2}$")
    jurisdictions: dict[str, str] = Field(default_factory=dict)
    tolerances: ToleranceSettings = ToleranceSettings()
    dispute: DisputeSettings = DisputeSettings()
    invoice: InvoiceLayout = InvoiceLayout()

    @field_validator("jurisdictions")
    @classmethod
    def _ours(cls, value: dict[str, str]) -> dict[str, str]:
        for theirs, ours in value.items():
            if ours not in OUR_JURISDICTIONS:
                raise ValueError(f"{theirs!r} maps to {ours!r}, not one of {', '.join(OUR_JURISDICTIONS)}")
        return value

    @property
    def match_tolerances(self) -> Tolerances:
        t = self.tolerances
        return Tolerances(t.start_s, t.duration_s, t.cost, t.rate)

    def delimiter_for(self, file_name: str) -> str:
        kind = self.format or ("tsv" if re.search(r"\.tsv(\.gz)?$", file_name, re.IGNORECASE) else "csv")
        return "\t" if kind == "tsv" else ","


def parse_mapping(document: Mapping, source: str = "mapping") -> VendorMapping:
    """Validate a mapping document; errors name ``source`` and every bad key."""
    if not isinstance(document, Mapping):
        raise MappingError(f"{source}: a vendor mapping is a YAML mapping, not {type(document).__name__}")
    try:
        return VendorMapping.model_validate(dict(document))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: "
            f"{'unknown key' if error['type'] == 'extra_forbidden' else error['msg']}"
            for error in exc.errors()
        )
        raise MappingError(f"{source}: {problems}") from None


def load_mapping(text: str, source: str = "mapping") -> VendorMapping:
    """Parse and validate a mapping YAML text."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"{source}: not valid YAML: {exc}") from None
    return parse_mapping(document, source)


def offset_minutes(zone: str) -> int | None:
    """Minutes east of UTC for a fixed ``+HH:MM`` zone (``UTC`` is 0); None for a named zone."""
    if zone.upper() == "UTC":
        return 0
    match = OFFSET.fullmatch(zone)
    if match is None:
        return None
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    return -minutes if zone.startswith("-") else minutes
