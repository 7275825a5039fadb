"""Core rating A/B: compile a plan's decks once, then time passes of Rater.rate over voice and mixed events.

Used to compare two builds in one run on a loaded machine (BENCHMARKS.md, issue 7): run it with
each build's interpreter (or ``PYTHONPATH=<copy without .so files>`` for pure Python), alternating.

    python bench/rating_core_ab.py PLAN.yaml USAGE.jsonl PASSES

Prints one JSON line: the build, the rater build time and events/s of each pass.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time

import orjson

import warp_billing.rating.voice as voice
from warp_billing.plan import load_plan
from warp_billing.rating.rater import Rater


def main() -> None:
    plan_path, usage_path, passes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.sched_setaffinity(0, {0})
    decoded = []
    with open(usage_path, "rb") as handle:
        for line in handle:
            with contextlib.suppress(orjson.JSONDecodeError):
                decoded.append(orjson.loads(line))
    voice_events = [event for event in decoded if isinstance(event, dict) and event.get("kind") == "voice"]
    started = time.perf_counter()
    rater = Rater.from_plans([load_plan(plan_path)])
    build_s = time.perf_counter() - started
    results: dict[str, list[int]] = {"voice": [], "mixed": []}
    for _ in range(passes):
        for name, events in (("voice", voice_events), ("mixed", decoded)):
            fresh = Rater(rater._customers)  # the same compiled plan, an empty duplicate set
            gc.collect()
            gc.disable()
            began = time.perf_counter()
            rate = fresh.rate
            for event in events:
                rate(event)
            elapsed = time.perf_counter() - began
            gc.enable()
            results[name].append(round(len(events) / elapsed))
    print(orjson.dumps({"build": "compiled" if voice.__file__.endswith(".so") else "pure",
                        "package": os.path.dirname(voice.__file__), "rater_build_s": round(build_s, 1),
                        "voice_events": len(voice_events), "mixed_events": len(decoded), **results}).decode())


if __name__ == "__main__":
    main()
