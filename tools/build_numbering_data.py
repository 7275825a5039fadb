"""Build the embedded NANP numbering table from the ``phonenumbers`` package.

Writes ``shared/warp_billing/rating/data/nanp.csv``, the data behind
``warp_billing.rating.numbering.NumberingPlan.embedded()``: which NANP region each NPA
belongs to, whether it is geographic, and which US state (or territory) its NXX codes
are in. Run it after upgrading ``phonenumbers`` and commit the result:

    .venv/bin/python tools/build_numbering_data.py

How each NPA is decided (every NPA 200-999, every NXX 200-999, probing the number
NPA-NXX-4567):

* region: ``phonenumbers.region_code_for_number`` of the valid probes. Every probe of an
  NPA must agree; an NPA with no valid probe is left out, except the service codes in
  ``SERVICE_NPAS_UNKNOWN_TO_PHONENUMBERS`` (700, 710), which are written as US
  non-geographic so a call to them is indeterminate rather than "unassigned".
* geographic: an NPA is geographic when at least one valid probe is typed FIXED_LINE,
  MOBILE or FIXED_LINE_OR_MOBILE, and non-geographic when every probe has another type
  (TOLL_FREE 8YY, PREMIUM_RATE 900, PERSONAL_NUMBER 5XX/622/633, VOIP 600). The NANPA
  list of non-geographic codes (``KNOWN_NON_GEOGRAPHIC_NPAS``) is a cross-check: if
  ``phonenumbers`` calls one of them geographic the build fails instead of guessing.
* state: for US geographic probes the English geocoder description is either
  "City, ST" (ST is taken) or a full state name ("New Jersey", "Washington State",
  "Washington D.C."), mapped to its USPS code. A description that is neither stops the
  build. US territories (PR, VI, GU, MP, AS) get their own code as the state. Other
  regions (CA, JM, BS, ...) get no state.

Output, sorted by code so the file is reproducible: one row per NPA
(``code,region,state,geographic``) and one row per NPA-NXX whose state differs from the
state most of that NPA's NXX codes are in (``code,,state,``). NXX codes that
``phonenumbers`` rejects get no row; they take the NPA's state.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberType, geocoder

OUTPUT = Path(__file__).resolve().parent.parent / "shared" / "warp_billing" / "rating" / "data" / "nanp.csv"
HEADER = ("code", "region", "state", "geographic")
PROBE_LINE = "4567"  # any line number: phonenumbers' NANP patterns constrain NPA and NXX, not the line

TERRITORIES = frozenset({"PR", "VI", "GU", "MP", "AS"})
GEOGRAPHIC_TYPES = frozenset(
    {PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
)

# NANPA non-geographic service codes in US use. 530 and 531 are not here although they
# sit inside the 521-533 personal-communications range: they are geographic (California
# and Nebraska).
KNOWN_NON_GEOGRAPHIC_NPAS = frozenset(
    {"500", *(str(npa) for npa in range(521, 530)), "532", "533", "544", "566", "577", "588"}  # personal (5XX)
    | {"700", "710"}  # interexchange carrier services, US government
    | {"800", "833", "844", "855", "866", "877", "888"}  # toll-free
    | {"900"}  # premium
)
SERVICE_NPAS_UNKNOWN_TO_PHONENUMBERS = frozenset({"700", "710"})

# A bare "Washington" is not here: it could be the state or the city, so it stops the build.
STATE_CODES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Washington D.C.": "DC", "Washington DC": "DC", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
    "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA",
    "Washington State": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
}
USPS_STATES = frozenset(STATE_CODES.values())


class BuildError(Exception):
    """phonenumbers' data does not fit the model this table assumes; fix the script, not the data."""


def state_from_description(description: str) -> str:
    """USPS code of a US geocoder description: "Newark, NJ" -> NJ, "New Jersey" -> NJ."""
    if description in STATE_CODES:
        return STATE_CODES[description]
    _, sep, suffix = description.rpartition(", ")
    if sep and suffix in USPS_STATES:
        return suffix
    raise BuildError(f"US geocoder description {description!r} names no state")


def probe(npa: int, nxx: int) -> tuple[str, int, str] | None:
    """(region, number type, description) of NPA-NXX-4567, or None when phonenumbers rejects it."""
    number = phonenumbers.parse(f"+1{npa}{nxx}{PROBE_LINE}")
    if not phonenumbers.is_valid_number(number):
        return None
    return (
        phonenumbers.region_code_for_number(number),
        phonenumbers.number_type(number),
        geocoder.description_for_number(number, "en"),
    )


def npa_rows(npa: int) -> list[tuple[str, str, str, str]]:
    """The CSV rows for one NPA: the NPA row, then its NPA-NXX exception rows."""
    code = str(npa)
    probes = {nxx: result for nxx in range(200, 1000) if (result := probe(npa, nxx)) is not None}
    if not probes:
        if code in SERVICE_NPAS_UNKNOWN_TO_PHONENUMBERS:
            return [(code, "US", "", "0")]
        return []
    regions = {region for region, _, _ in probes.values()}
    if len(regions) != 1:
        raise BuildError(f"NPA {code} spans regions {sorted(regions)}")
    (region,) = regions
    geographic = {nxx: p for nxx, p in probes.items() if p[1] in GEOGRAPHIC_TYPES}
    if not geographic:
        return [(code, region, "", "0")]
    if code in KNOWN_NON_GEOGRAPHIC_NPAS:
        raise BuildError(f"NPA {code} is a non-geographic service code but phonenumbers has geographic numbers in it")
    if region in TERRITORIES:
        return [(code, region, region, "1")]
    if region != "US":
        return [(code, region, "", "1")]
    nxx_state = {nxx: state_from_description(description) for nxx, (_, _, description) in geographic.items()}
    counts = collections.Counter(nxx_state.values())
    # Most NXX codes decide the NPA's state; a tie (none seen so far) goes to the first code alphabetically.
    npa_state = min(counts, key=lambda state: (-counts[state], state))
    rows = [(code, region, npa_state, "1")]
    rows += [(f"{code}{nxx}", "", state, "") for nxx, state in sorted(nxx_state.items()) if state != npa_state]
    return rows


def build_rows() -> list[tuple[str, str, str, str]]:
    """Every row of the table, sorted by code."""
    rows = [row for npa in range(200, 1000) for row in npa_rows(npa)]
    return sorted(rows)


def render(rows: list[tuple[str, str, str, str]]) -> str:
    """The file text: provenance comments, header, rows (no quoting is ever needed)."""
    version = phonenumbers.__version__
    lines = [
        f"# Generated by tools/build_numbering_data.py from phonenumbers {version}; do not edit.",
        "# Regenerate: .venv/bin/python tools/build_numbering_data.py",
        "# NPA rows: code,region,state,geographic. NPA-NXX rows (6-digit code): only the state,",
        "# listed where it differs from the NPA's state.",
        ",".join(HEADER),
    ]
    lines += [",".join(row) for row in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    try:
        rows = build_rows()
    except BuildError as exc:
        print(f"build_numbering_data: {exc}", file=sys.stderr)
        return 1
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(render(rows), encoding="utf-8", newline="\n")
    npas = sum(1 for row in rows if len(row[0]) == 3)
    print(f"wrote {OUTPUT} ({npas} NPA rows, {len(rows) - npas} NPA-NXX rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
