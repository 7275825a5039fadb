"""Issue 9 items 8 (`warp explain`) and 9 (a sample month that looks real)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import yaml

WARP = Path(sys.executable).with_name("warp")

DECK = """prefix,destination,rate,interstate_rate,intrastate_rate,indeterminate_rate,effective_date,end_date,connect_fee
1212,NY - NEW YORK,,0.0050,0.0040,0.0045,2026-01-01,,0.002
1800,TOLL-FREE,,0.0050,0.0040,0.0090,2026-01-01,,
"""
VENDOR = "prefix,rate,interstate_rate,intrastate_rate,effective_date\n1212,,0.0030,0.0020,2026-01-01\n"
PLAN = {"customer_id": "ACME", "timezone": "America/New_York",
        "voice": {"deck": "deck.csv", "increments": "60/60", "vendor_decks": {"V1": "vendor.csv"},
                  "time_of_day": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00",
                                   "multiplier": "1.10"}]}}


def warp(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(WARP), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def setup(folder: Path) -> None:
    (folder / "deck.csv").write_text(DECK, encoding="utf-8")
    (folder / "vendor.csv").write_text(VENDOR, encoding="utf-8")
    (folder / "plan.yaml").write_text(yaml.safe_dump(PLAN), encoding="utf-8")


def test_explain_prints_every_step_of_a_call_and_agrees_with_rate(tmp_path):
    setup(tmp_path)
    event = {"event_id": "e1", "kind": "voice", "customer_id": "ACME", "start_time": "2026-11-04T15:00:00Z",
             "duration_s": 61, "calling_number": "+13125550000", "called_number": "+12125551234", "vendor_id": "V1"}
    done = warp("explain", "--plan", "plan.yaml", orjson.dumps(event).decode(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for expected in ("interstate: from IL (calling number) to NY (from the called number +12125551234): "
                     "different states",
                     "deck.csv line 2: prefix 1212 (NY - NEW YORK), effective 2026-01-01",
                     "0.005 per minute (interstate_rate)",
                     "starts Wed 10:00 America/New_York: x 1.10", "rate applied  0.0055 per minute",
                     "60/60 (from the plan): 61 s billed as 120 s", "connect fee   0.002",
                     "vendor.csv line 2: prefix 1212", "vendor cost   0.003 x 120 / 60 = 0.006000",
                     "margin", "same as warp rate"):
        assert expected in text, (expected, text)


def test_explain_says_why_a_toll_free_call_is_indeterminate_and_reads_a_file(tmp_path):
    setup(tmp_path)
    (tmp_path / "event.json").write_bytes(orjson.dumps(
        {"event_id": "e2", "kind": "voice", "customer_id": "ACME", "start_time": "2026-11-07T15:00:00Z",
         "duration_s": 30, "calling_number": "+12125550000", "called_number": "+18005551234", "lrn": "+12125559999"}))
    done = warp("explain", "--plan", "plan.yaml", "event.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "indeterminate: called number +18005551234 is toll-free (800): no terminating state" in done.stdout
    assert "policy piu (PIU 60%)" in done.stdout


def test_explain_of_a_bad_event_names_the_rejection(tmp_path):
    setup(tmp_path)
    done = warp("explain", "--plan", "plan.yaml", '{"event_id":"e3","kind":"voice","customer_id":"ACME",'
                '"start_time":"2026-11-04T15:00:00Z","duration_s":86400,"called_number":"+12125551234"}', cwd=tmp_path)
    assert done.returncode == 0 and "rejected BAD_FIELD: duration_s" in done.stdout


def test_the_sample_spreads_its_events_over_the_whole_month(tmp_path):
    done = warp("sample", "--out", "s", "--events", "3000", "--us-rows", "200", "--international-rows", "50",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    days = Counter()
    with open(tmp_path / "s" / "usage.jsonl", "rb") as lines:
        for line in lines:
            try:
                start = orjson.loads(line).get("start_time")
            except orjson.JSONDecodeError:
                continue
            if isinstance(start, str) and start.startswith("2026-"):
                days[start[:10]] += 1
    assert (tmp_path / "s" / "usage.jsonl").read_bytes().count(b"\n") == 3000
    assert set(days) == {f"2026-06-{day:02d}" for day in range(1, 31)}
    assert max(days.values()) < 4 * min(days.values())
    assert not list((tmp_path / "s").glob(".*.partial"))
