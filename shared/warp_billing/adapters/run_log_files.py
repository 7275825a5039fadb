"""``cycle_runs`` rows appended to a JSONL file (``CloseRunLog``, the embedded default)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson


class JsonlRunLog:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def record(self, rows: Sequence[Mapping]) -> None:
        if not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = b"".join(orjson.dumps(dict(row)) + b"\n" for row in rows)
        # One write of whole lines in append mode: concurrent runs never interleave inside a line.
        with open(self.path, "ab") as handle:
            handle.write(data)

    def rows(self) -> list[dict]:
        try:
            return [orjson.loads(line) for line in self.path.read_bytes().splitlines() if line.strip()]
        except FileNotFoundError:
            return []
