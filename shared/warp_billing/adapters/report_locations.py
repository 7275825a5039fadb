"""Reconciliation outputs read back by the reference their sink returned (``ReportReader``).

A ``gs://bucket/name`` reference (``GcsReportSink``) is read through ``GcsVendorFiles``, the
Cloud Storage adapter on the shared ``BucketObjects`` base (client built on first use, the local
stand-in through ``WARP_STORAGE_ENDPOINT``), and only in the buckets named at construction (the
reconciliation's bucket): an alert never makes ``notify`` read anything else. A path
(``FolderSink``: `warp reconcile --out-dir`, the files source) is read through ``FolderVendorFiles``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from ..ports import PermanentStoreError, VendorFileSource
from .vendor_files import FolderVendorFiles

GS = "gs://"


class ReportLocationRefused(PermanentStoreError):
    """A reference this reader may never read (another bucket, a bucket with no object name)."""


class ReportLocations:
    """``ReportReader`` over folders and the allowed buckets."""

    def __init__(self, bucket_files: Callable[[str], VendorFileSource], buckets: Collection[str]):
        self._bucket_files = bucket_files
        self.buckets = frozenset(bucket for bucket in buckets if bucket)
        self._sources: dict[str, VendorFileSource] = {}

    def read(self, location: str) -> bytes:
        if location.startswith(GS):
            bucket, _, name = location[len(GS):].partition("/")
            if bucket not in self.buckets or not name:
                allowed = ", ".join(sorted(self.buckets)) or "no bucket"
                raise ReportLocationRefused(f"{location}: not an object of {allowed} (WARP_VENDOR_CDR_BUCKET)")
            source = self._sources.get(bucket)
            if source is None:
                source = self._sources[bucket] = self._bucket_files(bucket)
            return source.read(name)
        path = Path(location)
        return FolderVendorFiles(path.parent).read(path.name)
