"""Rating a JSON Lines usage file: one output line per input line, in order.

Lines that are not JSON objects become ``MALFORMED_JSON`` rejections in place, so the
output always lines up with the input. Rejections are also written, with their line
number and the original text, to the rejects file so they can be corrected and replayed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

import orjson

from .rated_event import RatedEvent, RejectedEvent
from .rater import Rater
from .rejections import Reason
from .summary import RatingSummary

WRITE_BATCH = 4096
UTF8_BOM = b"\xef\xbb\xbf"


def rate_lines(
    rater: Rater,
    source: BinaryIO,
    out: BinaryIO,
    rejects: BinaryIO | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> RatingSummary:
    """Rate every line of ``source`` into ``out``; return the run's summary."""
    summary = RatingSummary()
    loads, dumps, rate, add = orjson.loads, orjson.dumps, rater.rate, summary.add
    pending: list[bytes] = []
    rejected_lines: list[bytes] = []
    consumed = 0
    for number, line in enumerate(source, start=1):
        consumed += len(line)
        text = line.rstrip(b"\r\n")
        if number == 1 and text.startswith(UTF8_BOM):  # files saved by Windows tools
            text = text[len(UTF8_BOM):]
        result: RatedEvent | RejectedEvent
        try:
            event = loads(text)
        except orjson.JSONDecodeError as exc:
            detail = "empty line" if not text.strip() else f"not valid JSON: {exc}"
            result = RejectedEvent(None, None, None, Reason.MALFORMED_JSON.value, detail)
        else:
            result = rate(event)
        add(result)
        record = result.to_record()
        pending.append(dumps(record))
        if rejects is not None and isinstance(result, RejectedEvent):
            record["line"] = number
            record["raw"] = text.decode("utf-8", errors="replace")
            rejected_lines.append(dumps(record))
        if len(pending) >= WRITE_BATCH:
            out.write(b"\n".join(pending) + b"\n")
            pending.clear()
            if rejected_lines and rejects is not None:
                rejects.write(b"\n".join(rejected_lines) + b"\n")
                rejected_lines.clear()
            if on_progress is not None:
                on_progress(consumed)
                consumed = 0
    if pending:
        out.write(b"\n".join(pending) + b"\n")
    if rejected_lines and rejects is not None:
        rejects.write(b"\n".join(rejected_lines) + b"\n")
    if on_progress is not None and consumed:
        on_progress(consumed)
    return summary
