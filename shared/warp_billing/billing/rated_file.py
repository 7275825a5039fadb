"""One streaming pass over a rated usage file for any number of customers.

The file is read in blocks of a few megabytes and never held whole, so memory does not
grow with the number of events. On a large file the pass is split into byte ranges, one
per worker process (each range starts at the first line beginning inside it); the exact
per-customer sums of the ranges are merged afterwards, which is exact because Decimal
addition of the 6-decimal amounts is.

Several files may be closed together (``warp invoice --rated A --rated B``), and each event
counts once however the lines were split or repeated over them. Every billed line leaves a
64-bit digest of its ``event_id`` and the byte offset where the line starts (16 bytes a line,
no line text); after the pass the digests are sorted (numpy) and only the lines whose digest
repeats are read again, each by one positioned read at its offset (not a second pass over the
file), and compared exactly: the same event_id with byte-identical lines is one event (the
extra copies are taken back out of the sums and counted in the report), two different
rated versions of one event_id stop the close naming both lines, unless ``prefer="latest"``
keeps the later ``rated_at`` (or, without it, the later line). A digest collision of two
different ids is found by that exact comparison and changes nothing.
"""


from __future__ import annotations

import multiprocessing
import os
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from .errors import RatedFileError, RatedLineError
from .usage_lines import CustomerUsage, ScanReport, UsageAggregator, UsageWindow, subtract_usage

if TYPE_CHECKING:
    import numpy

BLOCK_BYTES = 8 << 20
PARALLEL_MIN_BYTES = 64 << 20
MAX_JOBS = 8
LINE_BITS = 40          # a located line: task index << LINE_BITS | byte offset of the line in its file
LINE_READ = 4096        # a repeated line is read back from its offset this many bytes at a time
FILTER_BITS = 24        # digests whose low bits match a repeated one's are checked exactly (a 16 MiB table)
PREFER_CHOICES = ("latest",)


@dataclass(frozen=True)
class ScanResult:
    """Per-customer usage of a pass and what the pass saw."""

    usage: dict[str, CustomerUsage]
    report: ScanReport


def default_jobs(path: str | Sequence[str]) -> int:
    """Worker processes worth starting for these files: one per CPU when large, else one."""
    paths = [path] if isinstance(path, str) else list(path)
    try:
        size = sum(os.path.getsize(one) for one in paths)
    except OSError:
        return 1
    if size < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_JOBS))


@dataclass(frozen=True)
class _Task:
    """A byte range of one rated file, scanned by one worker."""

    path: str
    start: int
    end: int


def scan_rated_file(path: str | Sequence[str], windows: Mapping[str, UsageWindow], jobs: int | None = None,
                    prefer: str | None = None) -> ScanResult:
    """Sum the billable usage of every customer in ``windows`` from the rated file(s) at ``path``.

    Each event_id counts once over all the files (see the module notes); ``prefer="latest"``
    resolves two different rated versions of one event instead of stopping.
    """
    paths = [path] if isinstance(path, str) else list(path)
    if prefer is not None and prefer not in PREFER_CHOICES:
        raise ValueError(f"prefer must be one of {PREFER_CHOICES}, not {prefer!r}")
    sizes = []
    for one in paths:
        try:
            sizes.append(os.path.getsize(one))
        except OSError as exc:
            raise RatedFileError(f"cannot read rated file {one}: {exc.strerror}") from None
        if sizes[-1] >= 1 << LINE_BITS:
            raise RatedFileError(f"rated file {one} is larger than {1 << LINE_BITS:,} bytes; split it into files")
    jobs = default_jobs(paths) if jobs is None else max(1, jobs)
    tasks: list[_Task] = []
    for one, size in zip(paths, sizes, strict=True):
        parts = jobs if size >= PARALLEL_MIN_BYTES or len(paths) == 1 else 1
        tasks.extend(_Task(one, size * part // parts, size * (part + 1) // parts) for part in range(parts))
    if jobs == 1:
        outcomes = [_scan_range(task.path, task.start, task.end, windows) for task in tasks]
    else:
        import numpy  # noqa: F401, PLC0415 - imported once before the fork, not by each worker (see _int64)

        context = multiprocessing.get_context("fork")   # the workers share this process's str hash key
        with context.Pool(min(jobs, len(tasks))) as pool:
            outcomes = pool.starmap(_scan_range, [(task.path, task.start, task.end, windows) for task in tasks])
    usage: dict[str, CustomerUsage] = {}
    report = ScanReport()
    digests: list[array[int]] = []
    located: list[array[int]] = []
    for index, (task, outcome) in enumerate(zip(tasks, outcomes, strict=True)):
        if isinstance(outcome, _RangeFailure):
            line = _lines_before(task.path, outcome.aligned_start) + outcome.error.line
            raise RatedFileError(f"rated file {task.path}: line {line}: {outcome.error.detail}")
        part_usage, part_report, part_digests, part_offsets, aligned = outcome
        tasks[index] = _Task(task.path, aligned, task.end)
        report.merge(part_report)
        for customer, found in part_usage.items():
            usage[customer] = usage[customer].merge(found) if customer in usage else found
        digests.append(part_digests)
        located.append(part_offsets)
    del outcomes
    extra = _duplicate_lines(tasks, digests, located, prefer, report)
    if extra:
        removed = UsageAggregator(windows)
        removed.consume(extra)
        for customer, less in removed.result().items():
            usage[customer] = subtract_usage(usage[customer], less)
        report.billed -= len(extra)
    return ScanResult(usage, report)


def _int64(values: array[int]) -> numpy.ndarray[Any, Any]:
    import numpy  # noqa: PLC0415 - only a close needs numpy; the functions' bundles import billing/ without it

    return numpy.frombuffer(values, dtype=numpy.int64) if len(values) else numpy.zeros(0, dtype=numpy.int64)


def _duplicate_lines(tasks: list[_Task], digests: list[array[int]], located: list[array[int]],
                     prefer: str | None, report: ScanReport) -> list[bytes]:
    """The billed lines to take back out: extra copies, and the versions ``prefer`` drops.

    ``digests[i]`` and ``located[i]`` are task i's billed lines: event_id digests and byte offsets.
    """
    lines = _read_lines(tasks, _repeated_places(digests, located))
    by_event: dict[str, list[tuple[int, bytes]]] = {}
    for place, text in lines:
        by_event.setdefault(orjson.loads(text)["event_id"], []).append((place, text))
    extra: list[bytes] = []
    for event_id, versions in by_event.items():
        if len(versions) < 2:
            continue     # a digest shared with another id: not a duplicate
        versions.sort()
        first = versions[0][1]
        distinct = {text for _, text in versions}
        if len(distinct) == 1:
            extra.extend(text for _, text in versions[1:])
            report.duplicates += len(versions) - 1
            continue
        if prefer != "latest":
            other = next(place for place, text in versions if text != first)
            raise RatedFileError(
                f"event {event_id} has two different rated versions: {_name(tasks, versions[0][0])} and "
                f"{_name(tasks, other)}; correct the files, or pass --prefer latest to keep the later rated_at")
        kept = max(range(len(versions)), key=lambda position: (_rated_at(versions[position][1]), position))
        for position, (_, text) in enumerate(versions):
            if position == kept:
                continue
            extra.append(text)
            if text == versions[kept][1]:
                report.duplicates += 1
            else:
                report.replaced += 1
    return extra


def _repeated_places(digests: list[array[int]], located: list[array[int]]) -> list[int]:
    """Located lines (task << LINE_BITS | offset, in file order) whose event_id digest occurs more than once.

    The digests are sorted once to find the repeated values; each task's lines are then picked by a
    table lookup on the low bits of their digest (a few false hits, removed by the exact test).
    """
    import numpy  # noqa: PLC0415 - see _int64

    parts = [_int64(part) for part in digests]
    if sum(len(part) for part in parts) < 2:
        return []
    ordered = numpy.sort(numpy.concatenate(parts))
    repeated = ordered[1:] == ordered[:-1]
    values = numpy.unique(ordered[1:][repeated])
    del ordered, repeated
    if not len(values):
        return []
    mask = numpy.int64((1 << FILTER_BITS) - 1)
    table = numpy.zeros(1 << FILTER_BITS, dtype=bool)
    table[values & mask] = True
    places: list[int] = []
    for index, (part, offsets) in enumerate(zip(parts, located, strict=True)):
        maybe = numpy.flatnonzero(table[part & mask])
        hits = maybe[numpy.isin(part[maybe], values)]
        found = _int64(offsets)[hits] | numpy.int64(index << LINE_BITS)
        places.extend(sorted(found.tolist()))
    digests.clear()
    located.clear()
    return places


def _rated_at(text: bytes) -> str:
    value = orjson.loads(text).get("rated_at")
    return value if isinstance(value, str) else ""


def _read_lines(tasks: list[_Task], places: list[int]) -> list[tuple[int, bytes]]:
    """The located lines' text, each read at its byte offset (a line ends at its newline, less a CR)."""
    found = []
    descriptors: dict[str, int] = {}
    try:
        for place in places:
            path = tasks[place >> LINE_BITS].path
            descriptor = descriptors.get(path)
            if descriptor is None:
                descriptor = descriptors[path] = os.open(path, os.O_RDONLY)
            found.append((place, _line_at(descriptor, place & ((1 << LINE_BITS) - 1))))
    finally:
        for descriptor in descriptors.values():
            os.close(descriptor)
    return found


def _line_at(descriptor: int, offset: int) -> bytes:
    """The line starting at ``offset``, without its newline (and a CR before it)."""
    text = b""
    while True:
        data = os.pread(descriptor, LINE_READ, offset + len(text))
        newline = data.find(b"\n")
        if newline >= 0:
            text += data[:newline]
            break
        text += data
        if len(data) < LINE_READ:   # the file's last line, without a newline
            break
    return text[:-1] if text.endswith(b"\r") else text


def _name(tasks: list[_Task], place: int) -> str:
    """A located line as the operator sees it: file and line number."""
    path = tasks[place >> LINE_BITS].path
    return f"{path} line {_lines_before(path, place & ((1 << LINE_BITS) - 1)) + 1}"


@dataclass(frozen=True)
class _RangeFailure:
    aligned_start: int
    error: RatedLineError


_RangeResult = tuple[dict[str, CustomerUsage], ScanReport, "array[int]", "array[int]", int]


def _scan_range(path: str, start: int, end: int, windows: Mapping[str, UsageWindow]) -> _RangeResult | _RangeFailure:
    """Aggregate the lines that begin in ``[start, end)``; a bad line comes back as a failure.

    Returns the usage, the report, the billed lines' event_id digests and the byte offsets
    where those lines start (the aggregator's line numbers, turned into offsets block by block).
    """
    aggregator = UsageAggregator(windows)
    offsets = array("q")
    try:
        handle = open(path, "rb", buffering=0)
    except OSError as exc:
        raise RatedFileError(f"cannot read rated file {path}: {exc.strerror}") from None
    with handle:
        aligned = _align(handle, start)
        number = 1
        try:
            for first_offset, lines in _line_blocks(handle, aligned, end):
                after = aggregator.consume(lines, number)
                _offsets_of(aggregator.id_lines, number, first_offset, lines, offsets)
                number = after
        except RatedLineError as error:
            return _RangeFailure(aligned, error)
    return aggregator.result(), aggregator.report, aggregator.id_digests, offsets, aligned


def _offsets_of(numbers: array[int], first: int, first_offset: int, lines: list[bytes], offsets: array[int]) -> None:
    """Append to ``offsets`` where the lines numbered ``numbers`` start (``lines[0]`` is number ``first`` and
    starts at byte ``first_offset``), and empty ``numbers``."""
    import numpy  # noqa: PLC0415 - see _int64

    if numbers:
        steps = numpy.array(list(map(len, lines)), dtype=numpy.int64) + 1   # faster than fromiter here
        starts = numpy.cumsum(steps) - steps + first_offset
        wanted = numpy.frombuffer(numbers, dtype=numpy.int64) - first
        offsets.frombytes(starts[wanted].tobytes())
        del wanted           # the view of ``numbers``: released before it is emptied
        del numbers[:]


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


def _line_blocks(handle: BinaryIO, position: int, end: int) -> Iterator[tuple[int, list[bytes]]]:
    """Lists of complete lines beginning before ``end``, read a block at a time, each with the
    byte offset where its first line starts."""
    carry = b""
    while position < end:
        data = handle.read(min(BLOCK_BYTES, end - position))
        if not data:
            break
        first = position - len(carry)
        position += len(data)
        lines = data.split(b"\n")
        lines[0] = carry + lines[0]
        carry = lines.pop()
        if lines:
            yield first, lines
    if carry:  # the last line began inside the range: finish it
        first = position - len(carry)
        while True:
            more = handle.read(64 << 10)
            if not more:
                break
            newline = more.find(b"\n")
            if newline >= 0:
                carry += more[:newline]
                break
            carry += more
        yield first, [carry]


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
