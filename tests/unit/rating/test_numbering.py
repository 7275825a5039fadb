"""NumberingPlan: the embedded NANP table, its agreement with phonenumbers, LERG overrides."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType, geocoder

from warp_billing.rating.numbering import DOMESTIC_REGIONS, NumberingError, NumberingPlan

ROOT = Path(__file__).resolve().parents[3]
DATA_FILE = ROOT / "shared" / "warp_billing" / "rating" / "data" / "nanp.csv"
GEOGRAPHIC_TYPES = {PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def load_generator():
    """tools/build_numbering_data.py as a module (for its state-name table)."""
    spec = importlib.util.spec_from_file_location("build_numbering_data", ROOT / "tools" / "build_numbering_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def plan() -> NumberingPlan:
    return NumberingPlan.embedded()


def write_csv(tmp_path: Path, text: str, name: str = "lerg.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- embedded table ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("npa_nxx", "state"),
    [("212555", "NY"), ("201555", "NJ"), ("202555", "DC"), ("206555", "WA"), ("907555", "AK"), ("808555", "HI")],
)
def test_us_npa_nxx_gives_its_state(plan, npa_nxx, state):
    assert plan.region_of_npa(npa_nxx[:3]) == "US"
    assert plan.is_geographic_npa(npa_nxx[:3])
    assert plan.state_of(npa_nxx) == state


@pytest.mark.parametrize(("npa", "region"), [("787", "PR"), ("939", "PR"), ("340", "VI"), ("671", "GU"), ("670", "MP"),
                                             ("684", "AS")])
def test_territory_npa_gives_the_territory_as_state(plan, npa, region):
    assert region in DOMESTIC_REGIONS
    assert plan.region_of_npa(npa) == region
    assert plan.state_of(npa + "555") == region


@pytest.mark.parametrize(("npa", "region"), [("416", "CA"), ("604", "CA"), ("876", "JM"), ("658", "JM"), ("242", "BS"),
                                             ("809", "DO")])
def test_other_nanp_countries_have_a_region_but_no_state(plan, npa, region):
    assert plan.region_of_npa(npa) == region
    assert plan.is_geographic_npa(npa)
    assert plan.state_of(npa + "555") is None


@pytest.mark.parametrize("npa", ["800", "833", "844", "855", "866", "877", "888", "900", "500", "533", "700", "710"])
def test_service_npas_are_us_non_geographic_without_state(plan, npa):
    assert plan.region_of_npa(npa) == "US"
    assert not plan.is_geographic_npa(npa)
    assert plan.state_of(npa + "555") is None


@pytest.mark.parametrize("npa", ["530", "531"])
def test_geographic_npas_inside_the_personal_number_range_stay_geographic(plan, npa):
    assert plan.is_geographic_npa(npa)
    assert plan.state_of(npa + "555") == {"530": "CA", "531": "NE"}[npa]


@pytest.mark.parametrize("npa", ["211", "555", "999", "123"])
def test_unassigned_npa_has_no_region_and_no_state(plan, npa):
    assert plan.region_of_npa(npa) is None
    assert not plan.is_geographic_npa(npa)
    assert plan.state_of(npa + "555") is None


def test_npa_nxx_in_a_different_state_than_its_npa(plan):
    # phonenumbers geocodes 201-631 as "New York, NY" while the rest of 201 is New Jersey.
    assert plan.state_of("201631") == "NY"
    assert plan.state_of("201630") == "NJ"


def test_embedded_plan_is_loaded_once():
    assert NumberingPlan.embedded() is NumberingPlan.embedded()


def test_data_file_says_how_it_was_made():
    first_line = DATA_FILE.read_text(encoding="utf-8").splitlines()[0]
    assert "tools/build_numbering_data.py" in first_line
    assert f"phonenumbers {phonenumbers.__version__}" in first_line


def expected_from_phonenumbers(npa_nxx: str, state_codes: dict[str, str]) -> tuple[str, str | None] | None:
    """(region, state) phonenumbers gives NPA-NXX-4567, or None when it rejects the number."""
    number = phonenumbers.parse(f"+1{npa_nxx}4567")
    if not phonenumbers.is_valid_number(number):
        return None
    region = phonenumbers.region_code_for_number(number)
    if phonenumbers.number_type(number) not in GEOGRAPHIC_TYPES:
        return region, None
    if region in DOMESTIC_REGIONS - {"US"}:
        return region, region
    if region != "US":
        return region, None
    description = geocoder.description_for_number(number, "en")
    city, comma, state = description.rpartition(", ")
    return region, (state if comma else state_codes[description])


def test_embedded_answers_match_phonenumbers_for_a_sample_of_npa_nxx_codes(plan):
    state_codes = load_generator().STATE_CODES
    rng = random.Random(20240601)
    sample = {f"{rng.randrange(200, 1000)}{rng.randrange(200, 1000)}" for _ in range(2000)} | {"201631", "671646"}
    checked = 0
    for npa_nxx in sorted(sample):
        expected = expected_from_phonenumbers(npa_nxx, state_codes)
        if expected is None:
            continue
        checked += 1
        assert (plan.region_of_npa(npa_nxx[:3]), plan.state_of(npa_nxx)) == expected, npa_nxx
    assert checked > 1000


def test_npas_missing_from_the_table_are_unknown_to_phonenumbers(plan):
    for npa in range(200, 1000):
        if plan.region_of_npa(str(npa)) is None:
            for nxx in (200, 355, 555, 742, 999):
                assert not phonenumbers.is_valid_number(phonenumbers.parse(f"+1{npa}{nxx}4567")), (npa, nxx)


def test_plan_answers_no_state_for_non_domestic_or_non_geographic_npas_it_is_given():
    plan = NumberingPlan(
        npa_region={"212": "US", "416": "CA", "800": "US"},
        npa_state={"212": "NY", "416": "ON", "800": "TX"},
        npa_nxx_state={"212999": "NJ", "416555": "ON", "800555": "TX"},
        non_geographic_npas=frozenset({"800"}),
    )
    assert plan.state_of("212555") == "NY"
    assert plan.state_of("212999") == "NJ"
    assert plan.state_of("416555") is None
    assert plan.state_of("800555") is None
    assert plan.state_of("800556") is None


# --- LERG override --------------------------------------------------------------------


def test_lerg_file_overrides_the_state_and_unlisted_codes_fall_back(plan, tmp_path):
    lerg = plan.with_lerg_csv(write_csv(tmp_path, "npa_nxx,state,lata,ocn\n212555,NJ,224,9206\n718200,NY,132,9104\n"))
    assert lerg.state_of("212555") == "NJ"
    assert lerg.state_of("212556") == "NY"
    assert lerg.state_of("718200") == "NY"
    assert plan.state_of("212555") == "NY"


def test_lerg_file_replaces_the_embedded_npa_nxx_exceptions(plan, tmp_path):
    lerg = plan.with_lerg_csv(write_csv(tmp_path, "npa_nxx,state\n212555,NY\n"))
    assert lerg.state_of("201631") == "NJ"


def test_lerg_file_keeps_regions_and_non_geographic_npas(plan, tmp_path):
    lerg = plan.with_lerg_csv(write_csv(tmp_path, "npa_nxx,state\n416555,ON\n800555,TX\n"))
    assert lerg.region_of_npa("416") == "CA"
    assert lerg.state_of("416555") is None
    assert not lerg.is_geographic_npa("800")
    assert lerg.state_of("800555") is None


def test_lerg_header_may_order_columns_freely_and_carry_extra_ones(plan, tmp_path):
    path = write_csv(tmp_path, "\ufeffOCN, State ,LATA,NPA_NXX\n9206, CT ,224, 212555 \n")
    assert plan.with_lerg_csv(path).state_of("212555") == "CT"


def test_lerg_repeated_code_with_the_same_state_is_accepted(plan, tmp_path):
    path = write_csv(tmp_path, "npa_nxx,state\n212555,NJ\n212555,NJ\n")
    assert plan.with_lerg_csv(path).state_of("212555") == "NJ"


@pytest.mark.parametrize(
    ("text", "row", "column"),
    [
        ("npa_nxx,state\n212555,NY\n21255,NY\n", 3, "npa_nxx"),
        ("npa_nxx,state\n2125550,NY\n", 2, "npa_nxx"),
        ("npa_nxx,state\n112555,NY\n", 2, "npa_nxx"),
        ("npa_nxx,state\n212155,NY\n", 2, "npa_nxx"),
        ("npa_nxx,state\n21a555,NY\n", 2, "npa_nxx"),
        ("npa_nxx,state\n212555,ny\n", 2, "state"),
        ("npa_nxx,state\n212555,NYC\n", 2, "state"),
        ("npa_nxx,state\n212555,\n", 2, "state"),
        ("npa_nxx,state,lata\n\n212555\n", 3, "state"),
        ("npa_nxx,lata\n212555,224\n", 1, "state"),
        ("# exported 2024-06-01\nnpa,state\n212,NY\n", 2, "npa_nxx"),
    ],
)
def test_bad_lerg_row_names_file_row_and_column(plan, tmp_path, text, row, column):
    path = write_csv(tmp_path, text)
    with pytest.raises(NumberingError) as caught:
        plan.with_lerg_csv(path)
    error = caught.value
    assert (error.path, error.row, error.column) == (str(path), row, column)
    assert str(error).startswith(f"{path}: row {row}, column {column!r}: ")


def test_lerg_conflicting_duplicate_names_both_rows(plan, tmp_path):
    path = write_csv(tmp_path, "npa_nxx,state\n212555,NY\n212556,NY\n212555,NJ\n")
    with pytest.raises(NumberingError) as caught:
        plan.with_lerg_csv(path)
    assert (caught.value.row, caught.value.column) == (4, "state")
    assert str(caught.value) == f"{path}: row 4, column 'state': 212555 is NJ here but NY at row 2"


def test_missing_lerg_file_is_a_numbering_error_naming_it(plan, tmp_path):
    path = tmp_path / "absent.csv"
    with pytest.raises(NumberingError, match="absent.csv: cannot read"):
        plan.with_lerg_csv(path)


def test_empty_lerg_file_is_a_numbering_error(plan, tmp_path):
    with pytest.raises(NumberingError, match="no header row"):
        plan.with_lerg_csv(write_csv(tmp_path, "\n"))
