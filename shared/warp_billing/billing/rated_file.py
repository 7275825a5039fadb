"""One streaming pass over a rated usage file for any number of customers.

The file is read in blocks of a few megabytes and never held whole, so memory does not
grow with the number of events. On a large file the pass is split into byte ranges, one
per worker process (each range starts at the first line beginning inside it); the exact
per-customer sums of the ranges are merged afterwards, which is exact because Decimal
addition of the 6-decimal amounts is.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from .errors import RatedFileError, RatedLineError
from .usage_lines import CustomerUsage, ScanReport, UsageAggregator, UsageWindow

BLOCK_BYTES = 8 << 20
PARALLEL_MIN_BYTES = 64 << 20
MAX_JOBS = 8


@dataclass(frozen=True)
class ScanResult:
    """Per-customer usage of a pass and what the pass saw."""

    usage: dict[str, CustomerUsage]
    report: ScanReport


def default_jobs(path: str) -> int:
    """Worker processes worth starting for this file: one per CPU for large files, else one."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return 1
    if size < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_JOBS))


def scan_rated_file(path: str, windows: Mapping[str, UsageWindow], jobs: int | None = None) -> ScanResult:
    """Sum the billable usage of every customer in ``windows`` from the rated file at ``path``."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise RatedFileError(f"cannot read rated file {path}: {exc.strerror}") from None
    jobs = default_jobs(path) if jobs is None else max(1, jobs)
    ranges = [(size * part // jobs, size * (part + 1) // jobs) for part in range(jobs)]
    if jobs == 1:
        parts = [_scan_range(path, 0, size, windows)]
    else:
        context = multiprocessing.get_context("fork")
        with context.Pool(jobs) as pool:
            parts = pool.starmap(_scan_range, [(path, start, end, windows) for start, end in ranges])
    usage: dict[str, CustomerUsage] = {}
    report = ScanReport()
    for outcome in parts:
        if isinstance(outcome, _RangeFailure):
            line = _lines_before(path, outcome.aligned_start) + outcome.error.line
            raise RatedFileError(f"rated file {path}: line {line}: {outcome.error.detail}")
        part_usage, part_report = outcome
        report.merge(part_report)
        for customer, found in part_usage.items():
            usage[customer] = usage[customer].merge(found) if customer in usage else found
    return ScanResult(usage, report)


@dataclass(frozen=True)
class _RangeFailure:
    aligned_start: int
    error: RatedLineError


def _scan_range(path: str, start: int, end: int,
                windows: Mapping[str, UsageWindow]) -> tuple[dict[str, CustomerUsage], ScanReport] | _RangeFailure:
    """Aggregate the lines that begin in ``[start, end)``; a bad line comes back as a failure."""
    aggregator = UsageAggregator(windows)
    try:
        handle = open(path, "rb", buffering=0)
    except OSError as exc:
        raise RatedFileError(f"cannot read rated file {path}: {exc.strerror}") from None
    with handle:
        aligned = _align(handle, start)
        number = 1
        try:
            for lines in _line_blocks(handle, aligned, end):
                number = aggregator.consume(lines, number)
        except RatedLineError as error:
            return _RangeFailure(aligned, error)
    return aggregator.result(), aggregator.report


def _align(handle: BinaryIO, start: int) -> int:
    """Position ``handle`` at the first line that begins at or after ``start``."""
    if start == 0:
        handle.seek(0)
        return 0
    handle.seek(start - 1)
    skipped = 0
    while True:
        block = handle.read(64 << 10)
        if not block:
            return start - 1 + skipped
        newline = block.find(b"\n")
        if newline >= 0:
            aligned = start - 1 + skipped + newline + 1
            handle.seek(aligned)
            return aligned
        skipped += len(block)


def _line_blocks(handle: BinaryIO, position: int, end: int) -> Iterator[list[bytes]]:
    """Lists of complete lines beginning before ``end``, read a block at a time."""
    carry = b""
    while position < end:
        data = handle.read(min(BLOCK_BYTES, end - position))
        if not data:
            break
        position += len(data)
        lines = data.split(b"\n")
        lines[0] = carry + lines[0]
        carry = lines.pop()
        if lines:
            yield lines
    if carry:  # the last line began inside the range: finish it
        while True:
            more = handle.read(64 << 10)
            if not more:
                break
            newline = more.find(b"\n")
            if newline >= 0:
                carry += more[:newline]
                break
            carry += more
        yield [carry]


def _lines_before(path: str, offset: int) -> int:
    """Newlines in the first ``offset`` bytes (to name a bad line by its number in the file)."""
    count = 0
    with open(path, "rb") as handle:
        remaining = offset
        while remaining > 0:
            block = handle.read(min(BLOCK_BYTES, remaining))
            if not block:
                break
            count += block.count(b"\n")
            remaining -= len(block)
    return count
