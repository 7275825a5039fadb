"""Rate decks: validation that names file/row/column, windows, longest valid prefix."""

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from tests.builders import HEADER, deck

from warp_billing.rating.deck import DeckError, load_deck, read_deck_rows


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text else datetime.fromisoformat(text)


def test_longest_prefix_wins_among_valid_rows():
    compiled = deck("1212,NY,,0.005,0.004,,2026-01-01,,,,\n1212555,NYC,,0.006,0.0045,,2026-01-01,,,,\n")
    assert compiled.find("12125551234", at("2026-11-03T00:00:00")).prefix == "1212555"
    assert compiled.find("12125561234", at("2026-11-03T00:00:00")).prefix == "1212"


def test_a_not_yet_valid_longer_prefix_does_not_hide_a_valid_shorter_one():
    compiled = deck("1212,NY,,0.005,0.004,,2026-01-01,,,,\n1212555,NYC,,0.006,0.0045,,2026-11-15,,,,\n")
    assert compiled.find("12125551234", at("2026-11-14T23:59:59")).prefix == "1212"
    assert compiled.find("12125551234", at("2026-11-15T00:00:00")).prefix == "1212555"


def test_an_expired_longer_prefix_does_not_hide_a_valid_shorter_one():
    compiled = deck("1212,NY,,0.005,,,2026-01-01,,,,\n1212555,NYC,,0.006,,,2026-01-01,2026-06-01,,,\n")
    assert compiled.find("12125551234", at("2026-05-31T23:59:59")).prefix == "1212555"
    assert compiled.find("12125551234", at("2026-06-01T00:00:00")).prefix == "1212"


def test_effective_date_applies_from_the_exact_instant_and_end_date_is_exclusive():
    compiled = deck(
        "44,UK,0.0200,,,,2026-01-01,2026-11-10T12:00:00Z,,,\n"
        "44,UK,0.0180,,,,2026-11-10T12:00:00Z,,,,\n"
    )
    assert compiled.find("447700900123", at("2026-11-10T11:59:59.999999")).rate == Decimal("0.0200")
    assert compiled.find("447700900123", at("2026-11-10T12:00:00")).rate == Decimal("0.0180")
    assert compiled.find("447700900123", at("2025-12-31T23:59:59")) is None


def test_a_bare_date_is_midnight_utc_even_for_an_event_with_an_offset():
    compiled = deck("44,UK,0.02,,,,2026-11-10,,,,\n")
    assert compiled.find("44770", datetime.fromisoformat("2026-11-09T19:00:00-05:00")) is not None
    assert compiled.find("44770", datetime.fromisoformat("2026-11-09T18:59:59-05:00")) is None


def test_rates_keep_eight_decimals_exactly():
    compiled = deck("44,UK,0.00612345,,,,2026-01-01,,,,\n")
    assert compiled.find("4477", at("2026-02-01T00:00:00")).rate == Decimal("0.00612345")


def test_overlapping_windows_for_one_prefix_name_both_rows():
    with pytest.raises(DeckError) as error:
        deck("44,UK,0.02,,,,2026-01-01,2026-12-01,,,\n45,DK,0.02,,,,2026-01-01,,,,\n44,UK,0.018,,,,2026-11-01,,,,\n",
             "uk.csv")
    message = str(error.value)
    assert "uk.csv row 4 column effective_date" in message
    assert "rows 2 and 4" in message


def test_open_ended_row_overlaps_any_later_row():
    with pytest.raises(DeckError, match="rows 2 and 3"):
        deck("44,UK,0.02,,,,2026-01-01,,,,\n44,UK,0.018,,,,2027-01-01,,,,\n")


def test_adjacent_windows_do_not_overlap():
    compiled = deck("44,UK,0.02,,,,2026-01-01,2026-06-01,,,\n44,UK,0.018,,,,2026-06-01,,,,\n")
    assert compiled.row_count == 2


@pytest.mark.parametrize(
    "row, column, problem",
    [
        ("44,UK,0.0.2,,,,2026-01-01,,,,", "rate", "not a decimal number"),
        ("44,UK,-0.02,,,,2026-01-01,,,,", "rate", "negative"),
        ("44,UK,0.000000001,,,,2026-01-01,,,,", "rate", "more than 8 decimal places"),
        ("4a4,UK,0.02,,,,2026-01-01,,,,", "prefix", "not 1 to 15 digits"),
        (",UK,0.02,,,,2026-01-01,,,,", "prefix", "blank"),
        ("44,UK,0.02,,,,2026-13-01,,,,", "effective_date", "not a date"),
        ("44,UK,0.02,,,,,,,,", "effective_date", "blank"),
        ("44,UK,0.02,,,,2026-02-01,2026-01-01,,,", "end_date", "not after"),
        ("44,UK,0.02,,,,2026-01-01,,0,,", "first_increment", "whole number of seconds"),
        ("44,UK,0.02,,,,2026-01-01,,6,x,", "next_increment", "whole number of seconds"),
        ("44,UK,,,,,2026-01-01,,,,", "rate", "no rate"),
        ("44,UK,0.02,,,,2026-01-01,,,,abc", "connect_fee", "not a decimal number"),
    ],
)
def test_each_import_error_names_file_row_and_column(row, column, problem):
    with pytest.raises(DeckError) as error:
        deck("1,US,0.01,,,,2026-01-01,,,,\n" + row + "\n", "carrier.csv")
    assert f"carrier.csv row 3 column {column}" in str(error.value)
    assert problem in str(error.value)


def test_every_problem_is_reported_not_just_the_first():
    with pytest.raises(DeckError) as error:
        deck("44,UK,x,,,,2026-01-01,,,,\n45,DK,0.02,,,,someday,,,,\n")
    assert [(issue.row, issue.column) for issue in error.value.issues] == [(2, "rate"), (3, "effective_date")]


def test_missing_required_columns_are_named():
    with pytest.raises(DeckError) as error:
        list(read_deck_rows(io.StringIO("prefix,destination\n44,UK\n"), "x.csv"))
    columns = {issue.column for issue in error.value.issues}
    assert "effective_date" in columns
    assert any(column.startswith("rate") for column in columns)


def test_column_order_is_free_and_unknown_columns_are_ignored(tmp_path):
    path = tmp_path / "free.csv"
    path.write_text("notes,effective_date,rate,prefix\nhello,2026-01-01,0.02,44\n", encoding="utf-8")
    compiled = load_deck(path)
    assert compiled.find("4477", at("2026-03-01T00:00:00")).rate == Decimal("0.02")


def test_unreadable_file_is_a_deck_error_naming_it(tmp_path):
    with pytest.raises(DeckError, match="missing.csv.*cannot open"):
        load_deck(tmp_path / "missing.csv")


def test_header_only_deck_is_empty_but_valid():
    assert deck(HEADER).row_count == 0
