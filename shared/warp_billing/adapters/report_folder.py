"""Reconciliation outputs in a local folder, each file written aside and renamed into place
(an interrupted run leaves the previous complete file, never half of one)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class FolderSink:
    """``ReportSink`` on a directory (created when missing)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def put(self, name: str, data: bytes, content_type: str) -> str:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            os.replace(temporary, target)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        return str(target)
