"""Vendor CDR files in a local folder laid out like the bucket (``<root>/vendor-cdrs/<vendor>/<period>/...``).

The files path of the reconciliation function: the same object names as Cloud Storage, so the
function behaves the same on one machine and in the cloud.
"""

from __future__ import annotations

import os
from pathlib import Path

from .report_folder import FolderSink


class FolderVendorFiles:
    """``VendorFileSource`` on a folder."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def names(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in base.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def location(self, name: str) -> str:
        return str(self.root / name)


__all__ = ["FolderVendorFiles", "FolderSink"]
