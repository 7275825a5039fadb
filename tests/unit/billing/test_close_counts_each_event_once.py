"""Issue 9 item 3 and 5: a close counts each event_id once over any files, and is loud about odd input."""

from __future__ import annotations

import random
from decimal import Decimal

import numpy
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.unit.billing.billing_builders import plan_from, rated

from warp_billing.billing import rated_file
from warp_billing.billing.cycle_close import close_cycles
from warp_billing.billing.errors import RatedFileError
from warp_billing.billing.taxes import OfflineTaxEngine

PLAN = plan_from(api_queries={"prices": {"lrn": "0.001"}, "bulk_discount": {"threshold": 5, "percent": "10"}},
                 voice={"deck": "x.csv", "tiers": {"mode": "graduated",
                                                    "bands": [{"up_to": 3, "rate": "0.02"}, {"rate": "0.01"}]}})


def event(serial: int, kind: str, units: int, micros: int, customer: str = "ACME") -> dict:
    return rated(kind, units=units, amount=f"{micros // 1_000_000}.{micros % 1_000_000:06d}", customer=customer,
                 event_id=f"ev-{serial}", start="2026-11-10T12:00:00Z")


def write(folder, name: str, records: list[dict]) -> str:
    path = folder / name
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return str(path)


def invoice(paths, **options) -> tuple[dict, object]:
    closed, report = close_cycles([PLAN], paths, "2026-11", taxes=OfflineTaxEngine(), **options)
    return closed[0].draft.to_record(), report


events = st.lists(
    st.tuples(st.sampled_from(["voice", "sms", "api_query"]), st.integers(0, 3600), st.integers(0, 9_999_999),
              st.sampled_from(["ACME", "ACME", "OTHER"])),
    min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events, files=st.integers(1, 4), copies=st.lists(st.integers(1, 3), min_size=40, max_size=40),
       seed=st.integers(0, 2**32 - 1), jobs=st.sampled_from([1, 2]))
@example(events=[("voice", 60, 6000, "ACME")], files=2, copies=[3] * 40, seed=1, jobs=1)
def test_any_split_of_the_same_events_into_files_with_duplicates_gives_the_same_invoice(
        tmp_path_factory, events, files, copies, seed, jobs):
    folder = tmp_path_factory.mktemp("split")
    records = [event(serial, kind, units, micros, customer)
               for serial, (kind, units, micros, customer) in enumerate(events)]
    reference, _ = invoice([write(folder, "once.jsonl", records)])
    rng = random.Random(seed)
    parts: list[list[dict]] = [[] for _ in range(files)]
    for record, count in zip(records, copies[:len(records)], strict=True):
        for _ in range(count):        # each event lands in 1-3 places, in any file, in any order
            parts[rng.randrange(files)].append(record)
    for part in parts:
        rng.shuffle(part)
    paths = [write(folder, f"part-{index}.jsonl", part) for index, part in enumerate(parts)]
    split, report = invoice(paths, jobs=jobs)
    assert split == reference
    billed = sum(1 for record in records if record["customer_id"] == "ACME")
    extra = sum(count - 1 for record, count in zip(records, copies[:len(records)], strict=True)
                if record["customer_id"] == "ACME")
    assert (report.billed, report.duplicates) == (billed, extra)


def test_the_same_file_twice_is_billed_once(tmp_path):
    records = [event(n, "voice", 60, 6000) for n in range(10)]
    path = write(tmp_path, "rated.jsonl", records)
    once, _ = invoice([path])
    twice, report = invoice([path, path])
    assert once == twice and report.duplicates == 10 and report.billed == 10
    assert "identical duplicate lines counted once 10" in report.render()


def test_a_crlf_copy_of_a_line_is_the_same_line(tmp_path):
    record = event(1, "voice", 60, 6000)
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(orjson.dumps(record) + b"\r\n" + orjson.dumps(record) + b"\n")
    _, report = invoice([str(path)])
    assert (report.billed, report.duplicates) == (1, 1)


def test_two_different_versions_stop_the_close_naming_both_lines(tmp_path):
    first = write(tmp_path, "a.jsonl", [event(1, "voice", 60, 6000), event(2, "voice", 60, 6000)])
    second = write(tmp_path, "b.jsonl", [event(9, "sms", 1, 4000), event(2, "voice", 120, 12000)])
    with pytest.raises(RatedFileError) as error:
        invoice([first, second])
    assert f"event ev-2 has two different rated versions: {first} line 2 and {second} line 2" in str(error.value)


def test_prefer_latest_keeps_the_later_rated_at(tmp_path):
    old = {**event(2, "voice", 60, 6000), "rated_at": "2026-12-02T00:00:00Z"}
    new = {**event(2, "voice", 120, 12000), "rated_at": "2026-12-03T00:00:00Z"}
    path = write(tmp_path, "a.jsonl", [new, old])      # the later version first in the file
    record, report = invoice([path], prefer="latest")
    assert report.replaced == 1 and report.billed == 1
    voice = [line for line in record["lines"] if line["sku"] == "VOICE-INTERSTATE"]
    assert voice[0]["quantity"] == "2"   # the 120-second version


def test_a_digest_collision_of_two_different_ids_changes_nothing(tmp_path, monkeypatch):
    """Every id hashed to the same digest: only the exact comparison can tell them apart."""
    records = [event(n, "voice", 60, 6000) for n in range(5)]
    path = write(tmp_path, "rated.jsonl", records + records[:2])
    original = rated_file.UsageAggregator

    class Colliding(original):
        def __init__(self, windows):
            super().__init__(windows)
            self.id_digests = _Constant()

    class _Constant(list):
        def append(self, value):
            super().append(42)

        def __len__(self):
            return super().__len__()

    monkeypatch.setattr(rated_file, "UsageAggregator", Colliding)
    monkeypatch.setattr(rated_file, "_int64", _as_int64)
    _, report = invoice([path])
    assert (report.billed, report.duplicates) == (5, 2)


def _as_int64(values):
    return numpy.asarray(list(values), dtype=numpy.int64)


def test_a_negative_amount_is_refused_with_its_line_number(tmp_path):
    records = [event(1, "voice", 60, 6000), {**event(2, "voice", 60, 6000), "amount": "-0.006000"}]
    with pytest.raises(RatedFileError, match="line 2: negative usage"):
        invoice([write(tmp_path, "rated.jsonl", records)])


@pytest.mark.parametrize("amount", [" -0.006000", "\t-1", "  -0"])
def test_a_negative_amount_behind_white_space_is_refused_too(tmp_path, amount):
    records = [event(1, "voice", 60, 6000), {**event(2, "voice", 60, 6000), "amount": amount}]
    with pytest.raises(RatedFileError, match="line 2: negative usage"):
        invoice([write(tmp_path, "rated.jsonl", records)])


def test_lines_of_customers_without_a_plan_and_a_plan_matching_nothing_are_warnings(tmp_path):
    records = [event(n, "voice", 60, 6000, customer="ZETA") for n in range(3)] + [event(9, "sms", 1, 4000, "YOTA")]
    _, report = invoice([write(tmp_path, "rated.jsonl", records)])
    assert report.warnings == [
        "4 rated line(s) of 2 customer(s) without a plan were not invoiced: ZETA (3), YOTA (1)",
        "plan ACME matches no line of the rated file(s); its invoice has no usage"]
    assert "warning: plan ACME matches no line" in report.render()


def test_an_empty_file_is_not_a_warning_about_plans(tmp_path):
    _, report = invoice([write(tmp_path, "empty.jsonl", [])])
    assert report.warnings == []


def test_a_billed_line_without_an_event_id_is_refused(tmp_path):
    record = event(1, "voice", 60, 6000)
    del record["event_id"]
    with pytest.raises(RatedFileError, match="line 1: missing field 'event_id'"):
        invoice([write(tmp_path, "rated.jsonl", [record])])


def test_amount_sums_stay_exact_after_taking_copies_out(tmp_path):
    records = [event(n, "voice", 7, 1) for n in range(3)]
    _, report = invoice([write(tmp_path, "a.jsonl", records * 3)])
    closed, _ = close_cycles([PLAN], [str(tmp_path / "a.jsonl")], "2026-11", taxes=OfflineTaxEngine())
    assert closed[0].usage.voice.amount == Decimal("0.000003") and closed[0].usage.voice.units == 21


@pytest.mark.parametrize("jobs", [1, 3])
def test_repeated_lines_are_found_by_offset_across_blocks_ranges_and_crlf(tmp_path, monkeypatch, jobs):
    """Tiny blocks and three ranges: the offsets the workers record still point at the right lines."""
    monkeypatch.setattr(rated_file, "BLOCK_BYTES", 64)
    records = [event(n, "voice", 60, 6000) for n in range(12)]
    lines = [orjson.dumps(record) for record in records] + [orjson.dumps(records[3]), orjson.dumps(records[0])]
    changed = orjson.dumps(event(5, "voice", 120, 12000))
    path = tmp_path / "rated.jsonl"
    path.write_bytes(b"".join(line + (b"\r\n" if number % 2 else b"\n") for number, line in enumerate(lines)))
    record, report = invoice([str(path)], jobs=jobs)
    assert (report.billed, report.duplicates) == (12, 2)
    path.write_bytes(path.read_bytes() + changed)          # line 15, without a final newline
    with pytest.raises(RatedFileError, match=f"event ev-5 has two different rated versions: {path} line 6 and "
                                             f"{path} line 15"):
        invoice([str(path)], jobs=jobs)
