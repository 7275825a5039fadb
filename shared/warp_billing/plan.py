"""Customer plans (contracts.md section 3): the YAML a contract is written in, validated.

Money fields must be quoted decimal strings (or integers): a YAML float such as
``rate: 0.006`` is refused at load time, because it has already lost exactness.
Plans are strict: an unknown key is an error naming the key with its path and the
closest valid key (``voice.incremnts: unknown key; did you mean 'increments'?``), because
a misspelt key silently ignored bills a contract wrongly. Strictness is the model setting
``extra="forbid"`` of every section, so a key added to a section model is simply valid.
``timezone`` is required (cycles and time-of-day windows depend on it) and ``currency``
is an ISO 4217 code.
"""

from __future__ import annotations

import difflib
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


# ISO 4217 active alphabetic codes (2026): three capital letters a plan's currency must be.
_ISO_4217_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD
CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD
OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC
SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU
XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG ZWL
"""
ISO_4217 = frozenset(_ISO_4217_CODES.split())


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
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


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


VoiceSku = Literal["VOICE-INTERSTATE", "VOICE-INTRASTATE", "VOICE-INDETERMINATE", "VOICE-INTERNATIONAL"]
DOMESTIC_VOICE_SKUS: tuple[VoiceSku, ...] = ("VOICE-INTERSTATE", "VOICE-INTRASTATE", "VOICE-INDETERMINATE")


class Tiers(_Section):
    """Monthly volume pricing of the billed minutes on the invoice lines in ``applies_to``.

    ``applies_to`` defaults to the domestic voice lines: international minutes are priced by
    their deck and neither count toward a band nor get repriced (contracts.md section 3).
    """

    mode: Literal["retrospective", "graduated"]
    unit: Literal["minute"] = "minute"
    bands: tuple[TierBand, ...] = Field(min_length=1)
    applies_to: tuple[VoiceSku, ...] = Field(DOMESTIC_VOICE_SKUS, min_length=1)

    @field_validator("applies_to", mode="before")
    @classmethod
    def _skus(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)):
            value = tuple(str(item).strip().upper() for item in value)
            if len(set(value)) != len(value):
                raise ValueError("applies_to names a line twice")
        return value

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
    """A monthly take-or-pay voice commitment over ``[start, end)``.

    ``start`` (required) is the first day the commitment applies and ``end`` (optional) the
    first day it no longer does, the convention of recurring charges and deck ``end_date``.
    A cycle partly inside the window commits ``minutes`` x days inside / days of the cycle.
    """

    minutes: int = Field(ge=0)
    shortfall_rate: Money
    rebate_above_pct: Factor = Decimal(0)
    start: date
    end: date | None = None

    @model_validator(mode="before")
    @classmethod
    def _start_named(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("start") is None:
            raise ValueError("commitment.start is required: the first day the commitment applies "
                             "(no shortfall is billed before it)")
        return value

    @model_validator(mode="after")
    def _window(self) -> Commitment:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"commitment end {self.end} must be after its start {self.start}")
        return self


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


class RechargeProfile(_Section):
    """The customer's stored card (Authorize.Net customer and payment profile ids) for auto-recharge."""

    customer_profile_id: str = Field(min_length=1, max_length=40)
    payment_profile_id: str = Field(min_length=1, max_length=40)


class Prepaid(_Section):
    """Prepaid charging settings (used by the real-time charging functions).

    With ``recharge_profile`` the auto-recharge charges that stored card when the balance crosses
    below ``auto_recharge_below`` and credits only what the gateway approved (issue 12); without it
    the amount is booked at once and collected later (the AUTO_RECHARGE alert).
    """

    low_balance_threshold: Money = Decimal(0)
    suspend_after_hours: int = Field(24, ge=0)
    auto_recharge_below: Money | None = None
    auto_recharge_amount: Money | None = None
    recharge_profile: RechargeProfile | None = None

    @model_validator(mode="after")
    def _card_recharge_needs_its_terms(self) -> Prepaid:
        if self.recharge_profile is not None and (self.auto_recharge_below is None
                                                  or not self.auto_recharge_amount or self.auto_recharge_amount <= 0):
            raise ValueError("prepaid.recharge_profile needs auto_recharge_below and a positive auto_recharge_amount")
        return self


class Postpaid(_Section):
    credit_limit: Money | None = None
    soft_limit_pct: Factor = Decimal(80)


DunningAction = Literal["remind", "warn", "suspend", "collections"]
DUNNING_ACTIONS: tuple[DunningAction, ...] = ("remind", "warn", "suspend", "collections")


class DunningStep(_Section):
    """One rung of the dunning ladder: ``action`` once an invoice is ``after_days`` past its due date."""

    after_days: int = Field(ge=0, le=3650)
    action: DunningAction


class Collections(_Section):
    """Collections of overdue postpaid invoices (issue 12): the dunning ladder walked daily.

    Each step runs once per invoice, in ``after_days`` order, and none runs once the invoice is
    paid or credited. ``suspend`` makes charging refuse the customer (ACCOUNT_SUSPENDED) until
    the overdue balance is settled. An empty ladder (the default) chases nobody.
    """

    ladder: tuple[DunningStep, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> Collections:
        days = [step.after_days for step in self.ladder]
        if days != sorted(set(days)):
            raise ValueError("ladder after_days must increase from step to step (one step a day at most)")
        actions = [step.action for step in self.ladder]
        if len(set(actions)) != len(actions):
            raise ValueError("ladder names an action twice")
        return self


class BillTo(_Section):
    """The customer's side of the billing profile: who the invoice is addressed to."""

    name: str = Field(min_length=1)
    address: tuple[str, ...] = Field(min_length=1)
    account_number: str = Field(min_length=1)
    po_number: str | None = None
    contract_reference: str | None = None
    email: str | None = None
    attention: str | None = None

    @field_validator("address", mode="before")
    @classmethod
    def _lines(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Plan(_Section):
    """A customer's contract as the rating and billing engines read it."""

    customer_id: str = Field(min_length=1)
    billing: Literal["postpaid", "prepaid"] = "postpaid"
    currency: str = "USD"
    timezone: str
    voice: VoicePlan | None = None
    messaging: MessagingPlan | None = None
    api_queries: ApiQueriesPlan | None = None
    margin: MarginPlan = MarginPlan()
    recurring: tuple[RecurringCharge, ...] = ()
    fees: Fees = Fees()
    terms: Terms = Terms()
    prepaid: Prepaid = Prepaid()
    postpaid: Postpaid = Postpaid()
    billing_profile: BillTo | None = None
    collections: Collections = Collections()

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if value not in ISO_4217:
            close = difflib.get_close_matches(value.upper(), sorted(ISO_4217), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"currency {value!r} is not an ISO 4217 code (USD, EUR, CAD, ...){hint}")
        return value

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
        problems = "; ".join(_problem(error) for error in exc.errors())
        raise PlanError(f"{source}: {problems}") from None


def _problem(error: Any) -> str:
    """One validation error as a line: the key's path, and for an unknown key the closest valid one."""
    loc = error["loc"]
    where = _dotted(loc) or "(plan)"
    if error["type"] != "extra_forbidden":
        return f"{where}: {error['msg']}"
    valid = _keys_at(loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else (f"; valid keys here: {', '.join(valid)}" if valid else "")
    return f"{where}: unknown key{hint}"


def _dotted(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _field_names(model: type[BaseModel]) -> dict[str, Any]:
    """The keys a model reads (field names and their aliases) with each one's annotation."""
    names: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        choices = [str(choice) for choice in alias.choices] if isinstance(alias, AliasChoices) else []
        for key in choices or [name]:
            names[key] = info.annotation
    return names


def _keys_at(path: tuple) -> list[str]:
    """The valid keys of the section at ``path`` (pydantic's error location) in a plan."""
    model: type[BaseModel] | None = Plan
    for part in path:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        annotation = _field_names(model).get(str(part))
        model = _model_of(annotation) if annotation is not None else None
    return sorted(_field_names(model)) if model is not None else []


def unknown_keys(raw: Any, model: type[BaseModel], prefix: str = "") -> list[str]:
    """Keys in ``raw`` that ``model`` does not read (a valid plan has none: plans are strict)."""
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


# --- the seller's billing profile (one per carrier, `warp invoice --seller SELLER.yaml`) ---------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BankInstructions(_Strict):
    """How to pay by bank transfer (ACH / wire)."""

    bank_name: str
    account_name: str
    account_number: str
    routing_number: str | None = None      # ABA routing number (ACH)
    swift: str | None = None               # for international wires
    reference: str = "Invoice number"      # what the payer should quote


class SellerContact(_Strict):
    name: str
    email: str
    phone: str | None = None


class SellerProfile(_Strict):
    """The carrier issuing the invoices: legal name, address, tax id, where and how to pay."""

    legal_name: str = Field(min_length=1)
    address: tuple[str, ...] = Field(min_length=1)
    tax_id: str = Field(min_length=1)
    remit_to: tuple[str, ...] = Field(min_length=1)
    bank: BankInstructions
    contact: SellerContact
    website: str | None = None

    def to_record(self) -> dict:
        return self.model_dump(mode="json")


def load_seller(path: str | os.PathLike[str]) -> SellerProfile:
    """Read and validate a seller profile YAML; PlanError names the file and each bad field."""
    seller_path = Path(path)
    try:
        raw = yaml.load(seller_path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except OSError as exc:
        raise PlanError(f"{seller_path}: cannot read seller profile: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PlanError(f"{seller_path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PlanError(f"{seller_path}: a seller profile is a YAML mapping")
    try:
        return SellerProfile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(part) for part in error['loc']) or '(seller)'}: {error['msg']}"
                             for error in exc.errors())
        raise PlanError(f"{seller_path}: {problems}") from None
