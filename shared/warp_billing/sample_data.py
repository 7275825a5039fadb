"""Realistic sample traffic for `make run` and the benchmarks (not used by rating itself).

Builds decks (a US LRN deck by NPA-NXX plus international prefixes), three customer plans
on different terms, vendor decks, and a month of mixed usage with a share of malformed
events, all from one seed so every run produces the same files.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import yaml

from .products import API_QUERY, MMS, SMS, VOICE
from .rating.numbering import NumberingPlan

NOT_A_KIND = "fax"  # a bad line's kind: not in the product table (products.py), so UNKNOWN_KIND

DECK_HEADER = ("prefix,destination,rate,interstate_rate,intrastate_rate,indeterminate_rate,"
               "effective_date,end_date,first_increment,next_increment,connect_fee\n")
CARRIERS = ("T-MOBILE", "AT&T", "VERIZON", "US CELLULAR")
QUERY_TYPES = ("lrn", "cnam")


@dataclass(frozen=True)
class Destination:
    prefix: str
    name: str
    sample: str      # a valid national significant number under the prefix (international)


def us_npas(numbering: NumberingPlan) -> list[tuple[str, str]]:
    """(NPA, state) for every geographic US NPA, sorted."""
    return [(npa, numbering.state_of(npa + "200") or "") for npa in numbering.domestic_geographic_npas()]


def international_destinations() -> list[Destination]:
    """One destination per non-NANP country that phonenumbers can give an example number for."""
    # imported here: its geocoding data is ~100 MB resident, and every `warp` command (a cycle close
    # and its forked workers too) imports this module through the CLI
    import phonenumbers  # noqa: PLC0415
    from phonenumbers import geocoder  # noqa: PLC0415

    found = []
    for code, regions in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()):
        if code == 1:
            continue
        for region in regions:
            example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE) \
                or phonenumbers.example_number(region)
            if example is None:
                continue
            name = geocoder.country_name_for_number(example, "en").upper().replace(",", "") or region   # "BAHRAIN"
            found.append(Destination(str(code), name, f"{example.country_code}{example.national_number}"))
            break
    return found


def _price(rng: random.Random, low: str, high: str, places: int = 6) -> Decimal:
    lo, hi = Decimal(low), Decimal(high)
    step = Decimal(1).scaleb(-places)
    span = int((hi - lo) / step)
    return lo + step * rng.randint(0, span)


def write_deck(
    path: Path,
    npas: list[tuple[str, str]],
    destinations: list[Destination],
    rng: random.Random,
    *,
    us_rows: int,
    international_rows: int,
    scale: Decimal = Decimal(1),
    writer: Writer | None = None,
    effective: str = "2026-01-01",
    change_day: str | None = None,
) -> int:
    """Write a deck of about ``us_rows`` NPA-NXX rows and ``international_rows`` prefixes.

    US rows carry interstate/intrastate/indeterminate rates; a ``change_day`` splits a
    share of rows into an old and a new window (a mid-period rate change).
    """
    lines = [DECK_HEADER]
    count = 0

    def row(prefix, name, rate="", inter="", intra="", indet="", start=effective, end="", first="", following="",
            fee=""):
        nonlocal count
        count += 1
        lines.append(f"{prefix},{name},{rate},{inter},{intra},{indet},{start},{end},{first},{following},{fee}\n")

    def q(value: Decimal) -> str:
        return format((value * scale).quantize(Decimal("0.000001")), "f")

    for npa, state in npas:  # NPA-level fallback rows
        inter = _price(rng, "0.0030", "0.0120")
        row(f"1{npa}", f"US-{state}", rate=q(inter), inter=q(inter), intra=q(inter * Decimal("1.4")))
    per_npa = max(1, us_rows // max(1, len(npas)))
    nxx_codes = [str(n) for n in range(200, 1000)]
    for npa, state in npas:
        for nxx in nxx_codes[:per_npa] if per_npa < len(nxx_codes) else nxx_codes:
            inter = _price(rng, "0.0020", "0.0150")
            intra = inter * Decimal(rng.choice(("1.2", "1.5", "2.0", "0.9")))
            indet = max(inter, intra)
            prefix = f"1{npa}{nxx}"
            if change_day is not None and rng.random() < 0.02:
                row(prefix, f"US-{state}", inter=q(inter), intra=q(intra), indet=q(indet), end=change_day)
                row(prefix, f"US-{state}", inter=q(inter * Decimal("1.05")), intra=q(intra), indet=q(indet),
                    start=change_day)
            else:
                row(prefix, f"US-{state}", inter=q(inter), intra=q(intra), indet=q(indet))
            if count >= us_rows + len(npas):
                break
        if count >= us_rows + len(npas):
            break
    extra = us_rows + len(npas) - count
    thousands = iter((npa, nxx, block) for npa, _ in npas for nxx in nxx_codes for block in "0123456789")
    while extra > 0:  # thousands-block rows (NPA-NXX-X) to reach the size of a full LRN deck
        npa, nxx, block = next(thousands)
        inter = _price(rng, "0.0020", "0.0150")
        row(f"1{npa}{nxx}{block}", "US-BLOCK", inter=q(inter), intra=q(inter * Decimal("1.3")))
        extra -= 1
    toll_free = _price(rng, "0.0100", "0.0200")
    for npa in ("800", "833", "844", "855", "866", "877", "888"):
        row(f"1{npa}", "US TOLL FREE", rate=q(toll_free))
    produced = 0
    for destination in destinations:
        rate = _price(rng, "0.0080", "0.3500")
        row(destination.prefix, destination.name, rate=q(rate), first=rng.choice(("", "60", "30", "1")),
            following=rng.choice(("", "60", "6", "1")), fee=rng.choice(("", "", "", "0.01")))
        produced += 1
    sub = 0
    while produced < international_rows and destinations:  # city / mobile sub-prefixes
        destination = destinations[sub % len(destinations)]
        depth = 1 + (sub // len(destinations)) // 10
        digits = destination.sample[len(destination.prefix):len(destination.prefix) + depth]
        tail = str((sub // len(destinations)) % 10)
        prefix = destination.prefix + digits[:-1] + tail if digits else destination.prefix + tail
        sub += 1
        if len(prefix) > 15:
            continue
        rate = _price(rng, "0.0080", "0.4500")
        row(prefix, f"{destination.name} - {prefix}", rate=q(rate))
        produced += 1
    (writer or _write_bytes)(path, "".join(_unique(lines)).encode("utf-8"))
    return count


Writer = Callable[[Path, bytes], None]


def _write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _unique(lines: list[str]) -> Iterator[str]:
    """Drop repeated (prefix, window) rows that the sub-prefix walk may produce."""
    seen = set()
    for line in lines:
        parts = line.split(",")
        key = (parts[0], parts[6])
        if key in seen:
            continue
        seen.add(key)
        yield line


SAMPLE_PLANS: dict[str, dict[str, Any]] = {
    "ACME": {
        "billing": "postpaid", "timezone": "America/New_York",
        "voice": {
            "increments": "6/6", "indeterminate": {"policy": "piu", "piu": 60},
            "time_of_day": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00",
                             "multiplier": "1.10"}],
            "tiers": {"mode": "retrospective", "unit": "minute",
                      "bands": [{"up_to": 500000, "rate": "0.006"}, {"up_to": 5000000, "rate": "0.004"},
                                {"rate": "0.0025"}]},
            "commitment": {"minutes": 1000000, "shortfall_rate": "0.004", "rebate_above_pct": "10",
                           "start": "{month}"},
        },
        "messaging": {"mms_surcharge": "0.003", "carrier_surcharges": {"T-MOBILE": "0.0025", "AT&T": "0.002"},
                      "campaign_overrides": {"CAMP123": "0.0020"}, "inbound_rate": "0.0010"},
        "api_queries": {"prices": {"lrn": "0.001", "cnam": "0.004"}, "bulk_discount": {"threshold": 10000,
                                                                                       "percent": "20"}},
        "margin": {"overhead_per_minute": "0.0001", "alert_below_pct": "15"},
        "recurring": [{"sku": "DID-LOCAL", "description": "Local DID", "quantity": 250, "unit_price": "1.00",
                       "start": "{day+7}"}],
        "fees": {"e911_per_did": "0.25", "usf": {"applies": False}},
        "terms": {"cycle": "monthly", "net_days": 15},
        "billing_profile": {"name": "Acme Voice Networks, LLC", "attention": "Accounts Payable",
                            "address": ["1200 Avenue of the Americas, Suite 1810", "New York, NY 10036",
                                        "United States"],
                            "account_number": "WB-100231", "po_number": "PO-2026-0457",
                            "contract_reference": "MSA-ACME-2025-01", "email": "ap@acmevoice.example"},
    },
    "BETA": {
        "billing": "prepaid", "timezone": "America/Chicago",
        "voice": {
            "increments": "60/60", "indeterminate": {"policy": "higher"},
            "quality_tiers": {"premium": "1.20", "standard": "1.00"},
            "tiers": {"mode": "graduated", "unit": "minute",
                      "bands": [{"up_to": 100000, "rate": "0.008"}, {"rate": "0.005"}]},
        },
        "messaging": {"mms_surcharge": "0.004", "inbound_rate": "0.0008"},
        "margin": {"overhead_per_minute": "0.0002", "alert_below_pct": "10"},
        "recurring": [{"sku": "TF-NUMBER", "description": "Toll-free number", "quantity": 40, "unit_price": "2.50",
                       "start": "{month-1}", "timing": "advance"}],
        "fees": {"e911_per_did": "0", "usf": {"applies": False}},
        "prepaid": {"low_balance_threshold": "500.00", "suspend_after_hours": 24},
        "terms": {"cycle": "monthly", "net_days": 0},
        "billing_profile": {"name": "Beta Telecom Corp.", "attention": "Finance",
                            "address": ["233 South Wacker Drive, Floor 42", "Chicago, IL 60606", "United States"],
                            "account_number": "WB-100487", "contract_reference": "PREPAID-BETA-2026",
                            "email": "billing@betatelecom.example"},
    },
    "GAMMA": {
        "billing": "postpaid", "timezone": "America/Los_Angeles",
        "voice": {"increments": "30/6", "indeterminate": {"policy": "indeterminate_rate"},
                  "time_of_day": [{"days": ["sat", "sun"], "from": "00:00", "to": "24:00", "multiplier": "0.90"}]},
        "api_queries": {"prices": {"lrn": "0.0008", "cnam": "0.0035"}, "bulk_discount": {"threshold": 50000,
                                                                                         "percent": "25"}},
        "margin": {"overhead_per_minute": "0.0001", "alert_below_pct": "12"},
        "recurring": [{"sku": "DID-LOCAL", "description": "Local DID", "quantity": 1200, "unit_price": "0.80",
                       "start": "{month-5}", "end": "{day+17}"}],
        "fees": {"e911_per_did": "0.30", "usf": {"applies": True}},
        "terms": {"cycle": "monthly", "net_days": 30},
        "billing_profile": {"name": "Gamma Communications Inc.", "attention": "Carrier Relations / AP",
                            "address": ["600 West 7th Street, Suite 900", "Los Angeles, CA 90017", "United States"],
                            "account_number": "WB-100912", "po_number": "4500081234",
                            "contract_reference": "ICA-GAMMA-2024-07", "email": "carrier-ap@gammacomm.example"},
    },
}
DECK_SCALE = {"ACME": Decimal("1.00"), "BETA": Decimal("1.15"), "GAMMA": Decimal("0.95")}


SAMPLE_DAY = "2026-06-03"  # a quarter with a published FCC USF factor (GAMMA pays USF)


def _sample_dates(day: date) -> dict[str, str]:
    """Recurring-charge dates relative to the sample day: a DID added mid-month, a toll-free
    number billed in advance since the month before, DIDs released later in the month."""
    first = day.replace(day=1)
    month_before = (first - timedelta(days=1)).replace(day=1)
    five_before = first
    for _ in range(5):
        five_before = (five_before - timedelta(days=1)).replace(day=1)
    return {"{month}": first.isoformat(), "{day+7}": (day + timedelta(days=7)).isoformat(),
            "{month-1}": month_before.isoformat(),
            "{month-5}": five_before.isoformat(), "{day+17}": (day + timedelta(days=17)).isoformat()}


def _dated(value: Any, dates: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _dated(item, dates) for key, item in value.items()}
    if isinstance(value, list):
        return [_dated(item, dates) for item in value]
    return dates.get(value, value) if isinstance(value, str) else value


SAMPLE_SELLER = {
    "legal_name": "WARP Wholesale Communications, LLC",
    "address": ["1001 Carrier Exchange Blvd, Suite 400", "Dallas, TX 75201", "United States"],
    "tax_id": "EIN 84-3920157",
    "remit_to": ["WARP Wholesale Communications, LLC", "Lockbox 772019", "PO Box 650123", "Dallas, TX 75265-0123"],
    "bank": {"bank_name": "First Carrier Bank, N.A.", "account_name": "WARP Wholesale Communications, LLC",
             "account_number": "4471 0092 3318", "routing_number": "110000000", "swift": "FCBKUS44",
             "reference": "Account and invoice number"},
    "contact": {"name": "Carrier Billing", "email": "billing@warp-wholesale.example", "phone": "+1 214 555 0142"},
    "website": "warp-wholesale.example",
}


def write_sample_setup(folder: Path, seed: int = 7, us_rows: int = 20_000, international_rows: int = 1_500,
                       day: str = SAMPLE_DAY, writer: Writer | None = None) -> dict[str, Path]:
    """Decks, vendor decks and plans for the sample customers; returns plan paths by customer.

    ``writer(path, data)`` writes each file (the CLI passes an atomic one).
    """
    write = writer or _write_bytes
    sample_day = date.fromisoformat(day)
    dates = _sample_dates(sample_day)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    numbering = NumberingPlan.embedded()
    npas = us_npas(numbering)
    destinations = international_destinations()
    for vendor, scale in (("V1", Decimal("0.78")), ("V2", Decimal("0.93"))):
        write_deck(folder / f"vendor-{vendor.lower()}-voice.csv", npas, destinations, random.Random(seed + 1),
                   us_rows=us_rows, international_rows=international_rows, scale=scale, writer=write)
    messaging_deck = folder / "messaging.csv"
    messaging_lines = ["prefix,destination,rate,effective_date\n", "1,US/CANADA,0.0040,2026-01-01\n"]
    messaging_lines += [f"{d.prefix},{d.name},{_price(rng, '0.0100', '0.0900')},2026-01-01\n" for d in destinations]
    write(messaging_deck, "".join(messaging_lines).encode("utf-8"))
    vendor_messaging = folder / "vendor-v1-messaging.csv"
    write(vendor_messaging, b"prefix,destination,rate,effective_date\n1,US/CANADA,0.0021,2026-01-01\n")
    write(folder / "seller.yaml", yaml.safe_dump(SAMPLE_SELLER, sort_keys=False).encode("utf-8"))
    plans = {}
    for customer, body in SAMPLE_PLANS.items():
        deck_name = f"{customer.lower()}-voice.csv"
        write_deck(folder / deck_name, npas, destinations, random.Random(seed + 1), us_rows=us_rows,
                   international_rows=international_rows, scale=DECK_SCALE[customer],
                   change_day=f"{sample_day.isoformat()}T12:00:00Z", writer=write)
        plan = {"customer_id": customer, "currency": "USD", **_dated(body, dates)}
        plan["voice"] = {"deck": deck_name, "vendor_decks": {"V1": "vendor-v1-voice.csv", "V2": "vendor-v2-voice.csv"},
                         **plan["voice"]}
        if "messaging" in plan:
            plan["messaging"] = {"deck": messaging_deck.name, "vendor_decks": {"V1": vendor_messaging.name},
                                 **body["messaging"]}
        path = folder / f"{customer.lower()}-plan.yaml"
        write(path, yaml.safe_dump(plan, sort_keys=False).encode("utf-8"))
        plans[customer] = path
    return plans


class TrafficMix:
    """Draws usage events for the sample customers over one day, or over the month of that day.

    With ``whole_month`` (what ``warp sample`` uses) start times are spread evenly from the 1st
    at 12:00 UTC to the last day at 12:00 UTC, so every event falls inside the month's billing
    cycle in any zone from UTC-12 to UTC+12 and a sample invoice shows a real month. Without
    it (the real-time benchmark, whose events must be recent) they fall within ``day``.
    """

    def __init__(self, numbering: NumberingPlan, rng: random.Random, day: datetime, customers: list[str],
                 whole_month: bool = False):
        self._rng = rng
        self._day = day
        self._customers = customers
        self._npas = us_npas(numbering)
        self._states: dict[str, list[str]] = {}
        for npa, state in self._npas:
            self._states.setdefault(state, []).append(npa)
        self._international = [d for d in international_destinations() if len(d.sample) <= 15]
        self._serial = 0
        if whole_month:
            first = day.replace(day=1, hour=12, minute=0, second=0, microsecond=0)
            following = (first + timedelta(days=32)).replace(day=1)
            self._span_start, self._span_seconds = first, int((following - timedelta(days=1) - first).total_seconds())
        else:
            self._span_start, self._span_seconds = day, 86_400

    def _us_number(self, npa: str | None = None) -> str:
        rng = self._rng
        npa = npa or rng.choice(self._npas)[0]
        return f"+1{npa}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"

    def _instant(self) -> str:
        moment = self._span_start + timedelta(seconds=self._rng.randrange(self._span_seconds))
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def event(self) -> dict:
        rng = self._rng
        self._serial += 1
        customer = rng.choice(self._customers)
        base = {"event_id": f"{customer}-{self._day:%Y%m%d}-{self._serial:08d}", "customer_id": customer,
                "start_time": self._instant()}
        draw = rng.random()
        if draw < 0.62 or customer == "GAMMA" and draw < 0.8:
            return {**base, "kind": VOICE.kind, **self._call()}
        if customer != "GAMMA" and (draw < 0.9 or customer == "BETA" and draw < 0.995):
            return {**base, **self._message()}
        query = {"kind": API_QUERY.kind, "query_type": rng.choice(QUERY_TYPES), "count": rng.choice((1, 1, 1, 5, 25,
                                                                                                     100))}
        if customer == "BETA":  # BETA buys no data APIs: these become NO_RATE rejections
            query["query_type"] = "lrn"
        return {**base, **query}

    def _call(self) -> dict:
        rng = self._rng
        draw = rng.random()
        called_npa, state = rng.choice(self._npas)
        calling: str | None
        if draw < 0.45:        # interstate
            calling = self._us_number()
        elif draw < 0.75:      # intrastate: same state, possibly another NPA
            calling = self._us_number(rng.choice(self._states[state]))
        elif draw < 0.85:      # indeterminate: missing, garbled or toll-free ANI
            calling = rng.choice((None, "", "anonymous", "+1800" + "5551212", "+12"))
        else:
            calling = self._us_number()
        call = {"calling_number": calling, "called_number": self._us_number(called_npa),
                "duration_s": rng.choice((0, 0, 3, 6, 7, 12, 30, 31, 59, 60, 61)) if rng.random() < 0.3
                else int(rng.expovariate(1 / 150)),
                "direction": "termination" if rng.random() < 0.9 else "origination",
                "vendor_id": rng.choice(("V1", "V1", "V2", None))}
        if draw >= 0.93:       # international
            destination = rng.choice(self._international)
            call["called_number"] = "+" + destination.sample
        elif rng.random() < 0.3:  # ported: the LRN routes elsewhere in the state
            call["lrn"] = self._us_number(rng.choice(self._states[state]))
        if rng.random() < 0.1:
            call["route_class"] = rng.choice(("premium", "standard"))
        if call["calling_number"] is None:
            del call["calling_number"]
        return call

    def _message(self) -> dict:
        rng = self._rng
        kind = MMS.kind if rng.random() < 0.12 else SMS.kind
        direction = "inbound" if rng.random() < 0.25 else "outbound"
        to_number = self._us_number() if rng.random() < 0.92 else "+" + rng.choice(self._international).sample
        message = {"kind": kind, "direction": direction, "from_number": self._us_number(), "to_number": to_number,
                   "segments": 1 if kind == MMS.kind else rng.choice((1, 1, 1, 2, 3)), "vendor_id": "V1"}
        if rng.random() < 0.5:
            message["carrier"] = rng.choice(CARRIERS)
        if rng.random() < 0.2:
            message["campaign_id"] = rng.choice(("CAMP123", "CAMP999"))
        return message

    def malformed(self, good: dict) -> bytes:
        """A realistic bad line: broken JSON, missing or wrong fields, absurd values, repeats."""
        rng = self._rng
        choice = rng.randrange(8)
        broken = dict(good)
        if choice == 0:
            return orjson.dumps(good)[:-7]
        if choice == 1:
            broken.pop("start_time")
        elif choice == 2:
            broken["kind"] = NOT_A_KIND
        elif choice == 3 and good["kind"] == VOICE.kind:
            broken["duration_s"] = -rng.randint(1, 60)
        elif choice == 4 and good["kind"] == VOICE.kind:
            broken["called_number"] = "12125551234"
        elif choice == 5 and good["kind"] == VOICE.kind:
            broken["duration_s"] = str(good["duration_s"])
        elif choice == 6:
            broken["start_time"] = "yesterday"
        else:
            return b"{not json"
        return orjson.dumps(broken)


def write_usage(path: Path, events: int, seed: int = 7, day: str = SAMPLE_DAY,
                customers: tuple[str, ...] = ("ACME", "BETA", "GAMMA"), bad_share: float = 0.004,
                duplicate_share: float = 0.002, out: BinaryIO | None = None) -> int:
    """Write ``events`` usage lines (malformed and duplicated ones included); return the count.

    ``out``: an open binary file to write to instead of opening ``path``.
    """
    rng = random.Random(seed)
    mix = TrafficMix(NumberingPlan.embedded(), rng, datetime.fromisoformat(day).replace(tzinfo=UTC),
                     list(customers), whole_month=True)
    written = 0
    recent: list[bytes] = []
    with (contextlib.nullcontext(out) if out is not None else open(path, "wb")) as out:
        batch = []
        while written < events:
            draw = rng.random()
            if draw < bad_share:
                line = mix.malformed(mix.event())
            elif draw < bad_share + duplicate_share and recent:
                line = rng.choice(recent)
            else:
                line = orjson.dumps(mix.event())
                if len(recent) < 1000:
                    recent.append(line)
                elif rng.random() < 0.01:
                    recent[rng.randrange(1000)] = line
            batch.append(line)
            written += 1
            if len(batch) >= 10_000:
                out.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            out.write(b"\n".join(batch) + b"\n")
    return written
