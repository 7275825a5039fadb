"""The matching query on DuckDB, small cases worked by hand: one to one, closest wins, call ids."""

from __future__ import annotations

import orjson

from warp_billing.adapters.duckdb_recon import DuckDBReconEngine
from warp_billing.reconciliation.mapping import load_mapping
from warp_billing.reconciliation.service import period_bounds

MAPPING = load_mapping("""vendor_id: V
columns: {call_id: Id, start_time: Start, calling: A, called: B, duration: Dur, rate: Rate, cost: Cost}
""")


def ours(event_id, start, duration, cost="0.006000", call_id=None, calling="+12125550001", called="+13125550002"):
    return {
        "event_id": event_id,
        "status": "rated",
        "kind": "voice",
        "vendor_id": "V",
        "start_time": start,
        "duration_s": duration,
        "calling_number": calling,
        "called_number": called,
        "call_id": call_id,
        "vendor_cost": cost,
        "vendor_rate": "0.006",
        "vendor_billed_units": duration,
        "jurisdiction": "interstate",
    }


def run(tmp_path, our_events, vendor_lines):
    (tmp_path / "rated.jsonl").write_bytes(b"\n".join(orjson.dumps(e) for e in our_events) + b"\n")
    (tmp_path / "v.csv").write_text("Id,Start,A,B,Dur,Rate,Cost\n" + "\n".join(vendor_lines) + "\n")
    start, end = period_bounds("2026-06")
    engine = DuckDBReconEngine(memory_limit="256MB", threads=1)
    try:
        engine.load_vendor(MAPPING, [str(tmp_path / "v.csv")], start, end, names=["v"])
        engine.load_ours([str(tmp_path / "rated.jsonl")], "V", start, end)
        engine.match(MAPPING)
        return {(i["class"], i["event_id"], i["vendor_record"]) for i in engine.items()}
    finally:
        engine.close()


def test_two_calls_between_the_same_numbers_pair_with_the_closest_start(tmp_path):
    events = [ours("E1", "2026-06-02T10:00:00Z", 60), ours("E2", "2026-06-02T10:00:50Z", 60)]
    vendor = [
        ",2026-06-02 10:00:45,12125550001,13125550002,60,0.006,0.006000",  # 5 s from E2, 45 s from E1
        ",2026-06-02 10:00:02,12125550001,13125550002,60,0.006,0.006000",
    ]  # 2 s from E1
    assert run(tmp_path, events, vendor) == {("exact", "E2", "v:2"), ("exact", "E1", "v:3")}


def test_one_vendor_record_never_pairs_twice(tmp_path):
    events = [ours("E1", "2026-06-02T10:00:00Z", 60), ours("E2", "2026-06-02T10:00:10Z", 60)]
    vendor = [",2026-06-02 10:00:05,12125550001,13125550002,60,0.006,0.006000"]
    result = run(tmp_path, events, vendor)
    assert ("exact", "E1", "v:2") in result and ("ours_only", "E2", None) in result and len(result) == 2


def test_call_ids_decide_when_both_carry_them_and_differing_ids_never_pair(tmp_path):
    events = [
        ours("E1", "2026-06-02T10:00:00Z", 60, call_id="abc"),
        ours("E2", "2026-06-02T11:00:00Z", 60, call_id="xyz"),
    ]
    vendor = [
        "abc,2026-06-02 12:00:00,12125550001,13125550002,62,0.006,0.006000",  # far in time, same id
        "nope,2026-06-02 11:00:00,12125550001,13125550002,60,0.006,0.006000",
    ]  # same time, other id
    assert run(tmp_path, events, vendor) == {
        ("partial", "E1", "v:2"),
        ("vendor_only", None, "v:3"),
        ("ours_only", "E2", None),
    }


def test_classes_at_the_boundaries_of_the_tolerances(tmp_path):
    events = [ours(f"E{n}", f"2026-06-0{n}T10:00:00Z", 60, call_id=f"c{n}") for n in range(1, 6)]
    vendor = [
        "c1,2026-06-01 10:00:00,,,60.9,0.006,0.006000",  # same second: exact
        "c2,2026-06-02 10:00:00,,,62,0.006,0.006000",  # 2 s: partial
        "c3,2026-06-03 10:00:00,,,63,0.006,0.006000",  # 3 s: mismatch
        "c4,2026-06-04 10:00:00,,,60,0.006,0.006100",  # cost 0.0001 apart: partial
        "c5,2026-06-05 10:00:00,,,60,0.006,0.006101",
    ]  # beyond: mismatch
    vendor = [line.replace(",,,", ",12125550001,13125550002,") for line in vendor]
    assert run(tmp_path, events, vendor) == {
        ("exact", "E1", "v:2"),
        ("partial", "E2", "v:3"),
        ("mismatch", "E3", "v:4"),
        ("partial", "E4", "v:5"),
        ("mismatch", "E5", "v:6"),
    }


def test_a_redelivered_event_of_ours_is_matched_once(tmp_path):
    items = run(
        tmp_path,
        [
            ours("e1", "2026-06-02T10:00:05Z", 60),
            ours("e1", "2026-06-02T10:00:00Z", 60),  # the same event delivered twice
            ours("e2", "2026-06-03T10:00:00Z", 30),
        ],
        ["x,2026-06-02 10:00:00,+12125550001,+13125550002,60,0.006,0.006000"],
    )
    assert items == {("exact", "e1", "v:2"), ("ours_only", "e2", None)}


def test_records_of_several_files_name_their_own_file_and_line_and_rejects_outlive_the_release(tmp_path):
    # the line of a record is read off its file's first row in the loaded table, not stored
    (tmp_path / "rated.jsonl").write_bytes(orjson.dumps(ours("E1", "2026-06-02T10:00:00Z", 60)) + b"\n")
    (tmp_path / "a.csv").write_text(
        "Id,Start,A,B,Dur,Rate,Cost\n"
        ",2026-06-02 10:00:00,12125550001,13125550002,60,0.006,0.006000\n"
        ",2026-07-02 10:00:00,12125550001,13125550002,60,0.006,0.006000\n"
    )
    (tmp_path / "b.csv").write_text(
        "Id,Start,A,B,Dur,Rate,Cost\n"
        ",not a time,12125550001,13125550002,60,0.006,0.006000\n"
        ",2026-06-03 11:00:00,12125550009,13125550002,30,0.006,0.003000\n"
    )
    start, end = period_bounds("2026-06")
    engine = DuckDBReconEngine(memory_limit="256MB", threads=1)
    try:
        engine.load_vendor(MAPPING, [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")], start, end, names=["a", "b"])
        assert [(r["source_file"], r["source_line"]) for r in engine.normalised_vendor_rows()] == [("a", 2), ("b", 3)]
        engine.load_ours([str(tmp_path / "rated.jsonl")], "V", start, end)
        engine.match(MAPPING)
        engine.release_inputs()
        assert [(r["source_file"], r["source_line"], r["reason"]) for r in engine.vendor_rejects()] == [
            ("a", 3, "OUT_OF_PERIOD"),
            ("b", 2, "BAD_START_TIME"),
        ]
        tables = {row[0] for row in engine.db.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "vendor_checked" not in tables and "our_cdrs" not in tables
        items = {(i["class"], i["event_id"], i["vendor_record"]) for i in engine.items()}
        assert items == {("exact", "E1", "a:2"), ("vendor_only", None, "b:3")}
    finally:
        engine.close()
