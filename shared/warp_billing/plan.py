"""Customer plans (contracts.md section 3): the YAML a contract is written in, validated.

Money fields must be quoted decimal strings (or integers): a YAML float such as
``rate: 0.006`` is refused at load time, because it has already lost exactness.
Unknown keys do not stop a load (contracts are extended over time) but are
reported, so that a misspelt key is seen rather than silently ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .money import RATE_MAX_PLACES, MoneyError, to_decimal

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader when libyaml is present
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PlanError(ValueError):
    """A plan that cannot be used; the message names the file and the field."""


def _money(value: Any) -> Decimal:
    try:
        result = to_decimal(value, field="value", max_places=RATE_MAX_PLACES)
    except MoneyError as exc:
        raise ValueError(str(exc).split(": ", 1)[-1]) from None
    if result < 0:
        raise ValueError(f"{value!r} is negative")
    return result


def _factor(value: Any) -> Decimal:
    """A multiplier or percentage: exact like money, never a float."""
    return _money(value)


Money = Annotated[Decimal, BeforeValidator(_money)]
Factor = Annotated[Decimal, BeforeValidator(_factor)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Increments(_Section):
    """Billing increments a/b in seconds (first, then each next)."""

    first: int = Field(6, ge=1, le=3600)
    next: int = Field(6, ge=1, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = value.strip().split("/")
            if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
                raise ValueError(f"increments {value!r} must look like '6/6' or '60/60'")
            return {"first": int(parts[0]), "next": int(parts[1])}
        return value


class IndeterminatePolicy(_Section):
    """How calls of unknown origin are priced: piu | intrastate | interstate | higher | indeterminate_rate."""

    policy: Literal["piu", "intrastate", "interstate", "higher", "indeterminate_rate"] = "piu"
    piu: Factor = Decimal(60)

    @field_validator("piu")
    @classmethod
    def _percent(cls, value: Decimal) -> Decimal:
        if value > 100:
            raise ValueError("piu is a percentage from 0 to 100")
        return value


class TimeOfDayWindow(_Section):
    """A multiplier on the per-minute rate for calls starting inside [from, to) local time."""

    days: tuple[Weekday, ...] = WEEKDAYS
    start: time = Field(validation_alias=AliasChoices("from", "start"))
    end: time = Field(validation_alias=AliasChoices("to", "end"))
    multiplier: Factor
    ends_at_midnight: bool = False

    @model_validator(mode="before")
    @classmethod
    def _times(cls, value: Any) -> Any:
        if isinstance(value, dict):
            value = dict(value)
            if "days" in value and isinstance(value["days"], list):
                value["days"] = tuple(str(day).lower()[:3] for day in value["days"])
            for key in ("from", "to", "start", "end"):
                raw = value.get(key)
                if isinstance(raw, int):  # YAML 1.1 reads 08:00 unquoted as sexagesimal minutes
                    raw = f"{raw // 60:02d}:{raw % 60:02d}"
                if isinstance(raw, str) and raw.strip() in ("24:00", "24:00:00"):
                    value["ends_at_midnight"] = True
                    raw = "00:00"
                if raw is not None:
                    value[key] = raw
        return value

    @property
    def start_s(self) -> int:
        return self.start.hour * 3600 + self.start.minute * 60 + self.start.second

    @property
    def end_s(self) -> int:
        if self.ends_at_midnight:
            return 86400
        return self.end.hour * 3600 + self.end.minute * 60 + self.end.second


class TierBand(_Section):
    up_to: int | None = Field(None, ge=1)
    rate: Money


class Tiers(_Section):
    mode: Literal["retrospective", "graduated"]
    unit: Literal["minute"] = "minute"
    bands: tuple[TierBand, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> Tiers:
        limits = [band.up_to for band in self.bands]
        if any(limit is None for limit in limits[:-1]):
            raise ValueError("only the last band may be open-ended (no up_to)")
        bounded = [limit for limit in limits if limit is not None]
        if bounded != sorted(set(bounded)):
            raise ValueError("band up_to limits must increase")
        return self


class Commitment(_Section):
    minutes: int = Field(ge=0)
    shortfall_rate: Money
    rebate_above_pct: Factor = Decimal(0)


class VoicePlan(_Section):
    deck: str
    origination_deck: str | None = None
    vendor_decks: dict[str, str] = Field(default_factory=dict)
    increments: Increments = Increments()
    indeterminate: IndeterminatePolicy = IndeterminatePolicy()
    time_of_day: tuple[TimeOfDayWindow, ...] = ()
    quality_tiers: dict[str, Factor] = Field(default_factory=dict)
    tiers: Tiers | None = None
    commitment: Commitment | None = None
    npa_nxx: str | None = None
    us_territories: Literal["domestic", "international"] = "domestic"
    foreign_origin: Literal["interstate", "indeterminate"] = "interstate"


class MessagingPlan(_Section):
    deck: str | None = None
    vendor_decks: dict[str, str] = Field(default_factory=dict)
    mms_surcharge: Money = Decimal(0)
    carrier_surcharges: dict[str, Money] = Field(default_factory=dict)
    campaign_overrides: dict[str, Money] = Field(default_factory=dict)
    inbound_rate: Money | None = None

    @field_validator("carrier_surcharges")
    @classmethod
    def _carrier_keys(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        return {name.strip().upper(): amount for name, amount in value.items()}


class BulkDiscount(_Section):
    threshold: int = Field(ge=1)
    percent: Factor


class ApiQueriesPlan(_Section):
    prices: dict[str, Money] = Field(default_factory=dict)
    bulk_discount: BulkDiscount | None = None
    vendor_prices: dict[str, dict[str, Money]] = Field(default_factory=dict)


class MarginPlan(_Section):
    overhead_per_minute: Money = Decimal(0)
    overhead_per_message: Money = Decimal(0)
    overhead_per_query: Money = Decimal(0)
    alert_below_pct: Decimal | None = None

    @field_validator("alert_below_pct", mode="before")
    @classmethod
    def _pct(cls, value: Any) -> Any:
        return None if value is None else _factor(value)


class RecurringCharge(_Section):
    sku: str
    description: str = ""
    quantity: int = Field(1, ge=0)
    unit_price: Money
    start: date
    end: date | None = None  # the first day no longer billed
    timing: Literal["advance", "arrears"] = Field(
        "arrears", validation_alias=AliasChoices("timing", "billing", "billed", "charge_timing")
    )
    e911: bool = True

    @field_validator("timing", mode="before")
    @classmethod
    def _timing(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower().replace("in_", "").replace("in ", "")
        return value


class Usf(_Section):
    applies: bool = False


class Fees(_Section):
    e911_per_did: Money = Decimal(0)
    usf: Usf = Usf()


class Terms(_Section):
    cycle: Literal["monthly"] = "monthly"
    net_days: int = Field(30, ge=0, le=365)
    anchor_day: int = Field(1, ge=1, le=28)


class Prepaid(_Section):
    """Prepaid charging settings (used by the real-time charging functions)."""

    low_balance_threshold: Money = Decimal(0)
    suspend_after_hours: int = Field(24, ge=0)
    auto_recharge_below: Money | None = None
    auto_recharge_amount: Money | None = None


class Postpaid(_Section):
    credit_limit: Money | None = None
    soft_limit_pct: Factor = Decimal(80)


class Plan(_Section):
    """A customer's contract as the rating and billing engines read it."""

    customer_id: str = Field(min_length=1)
    billing: Literal["postpaid", "prepaid"] = "postpaid"
    currency: str = "USD"
    timezone: str = "UTC"
    voice: VoicePlan | None = None
    messaging: MessagingPlan | None = None
    api_queries: ApiQueriesPlan | None = None
    margin: MarginPlan = MarginPlan()
    recurring: tuple[RecurringCharge, ...] = ()
    fees: Fees = Fees()
    terms: Terms = Terms()
    prepaid: Prepaid = Prepaid()
    postpaid: Postpaid = Postpaid()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class LoadedPlan:
    """A validated plan with the folder its relative paths resolve against."""

    plan: Plan
    path: Path
    unknown_keys: tuple[str, ...]

    def resolve(self, relative: str) -> Path:
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.path.parent / candidate


def load_plan(path: str | os.PathLike[str]) -> LoadedPlan:
    """Read and validate a plan YAML; PlanError names the file and each bad field."""
    plan_path = Path(path)
    try:
        text = plan_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"{plan_path}: cannot read plan: {exc.strerror}") from None
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise PlanError(f"{plan_path}: not valid YAML: {exc}") from None
    return LoadedPlan(parse_plan(raw, str(plan_path)), plan_path, tuple(unknown_keys(raw, Plan)))


def parse_plan(raw: Any, source: str = "plan") -> Plan:
    if not isinstance(raw, dict):
        raise PlanError(f"{source}: a plan is a YAML mapping")
    try:
        return Plan.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(plan)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise PlanError(f"{source}: {problems}") from None


def unknown_keys(raw: Any, model: type[BaseModel], prefix: str = "") -> list[str]:
    """Keys in ``raw`` that ``model`` does not read (reported as warnings)."""
    if not isinstance(raw, dict):
        return []
    names: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        names[name] = info.annotation
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            for choice in alias.choices:
                names[str(choice)] = info.annotation
    found = []
    for key, value in raw.items():
        if key not in names:
            found.append(f"{prefix}{key}")
            continue
        nested = _model_of(names[key])
        if nested is not None:
            if isinstance(value, dict):
                found.extend(unknown_keys(value, nested, f"{prefix}{key}."))
            elif isinstance(value, list):
                for position, item in enumerate(value):
                    found.extend(unknown_keys(item, nested, f"{prefix}{key}[{position}]."))
    return found


def _model_of(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None
