"""Vendor CDR files and reconciliation outputs in Cloud Storage (``VendorFileSource``, ``ReportSink``).

Vendors drop their files under ``vendor-cdrs/<vendor>/<period>/...`` (gzip allowed: the loader
reads ``.gz`` by name, the bytes are kept as stored); ``vendor-cdrs/<vendor>/mapping.yaml`` is the
column mapping. Objects are listed with their prefix and read whole (a month of one vendor is
loaded by DuckDB anyway); the client is built on first use and reaches the local stand-in through
``storage_client(endpoint=...)`` (``gcs_documents``).

Outputs go under ``<reports>/<vendor>/<period>/<delivery>/`` where ``delivery`` names the input
objects it was computed from (``ReconciliationJob`` digests their names and bytes). The function's
account holds ``objectCreator`` only (create, never overwrite or delete), so each object is created
once: a retried run of the same delivery finds its objects and keeps them; new files make a new
delivery folder, never a changed object. The local stand-in ignores the create-only precondition,
so against it (``read_first``) the object is looked up first.
"""

from __future__ import annotations

import contextlib
from typing import Any

from google.api_core.exceptions import NotFound, PreconditionFailed

from .gcs_documents import BucketObjects


class GcsVendorFiles(BucketObjects):
    """``VendorFileSource`` on a bucket (object names relative to the bucket)."""

    setting = "WARP_VENDOR_CDR_BUCKET"

    def __init__(self, client: Any, bucket: str, *, timeout_s: float = 120.0):
        super().__init__(client, bucket, timeout_s=timeout_s)

    def names(self, prefix: str) -> list[str]:
        blobs = self.client.list_blobs(self.bucket_name, prefix=prefix, timeout=self.timeout_s)
        return sorted(
            blob.name
            for blob in blobs
            if not blob.name.endswith("/") and not blob.name.rsplit("/", 1)[-1].startswith(".")
        )

    def read(self, name: str) -> bytes:
        try:
            # raw=True: a gzip file stored with Content-Encoding: gzip stays gzip (the loader inflates it)
            return bytes(self.blob(name).download_as_bytes(timeout=self.timeout_s, raw_download=True))
        except NotFound:
            raise FileNotFoundError(self.location(name)) from None


class GcsReportSink(BucketObjects):
    """``ReportSink`` on a bucket prefix: each object created once (see the module docstring)."""

    setting = "WARP_VENDOR_CDR_BUCKET"

    def __init__(self, client: Any, bucket: str, prefix: str, *, read_first: bool = True, timeout_s: float = 120.0):
        super().__init__(client, bucket, prefix=prefix, timeout_s=timeout_s)
        self.read_first = read_first

    def put(self, name: str, data: bytes, content_type: str) -> str:
        blob = self.blob(name)
        if self.read_first and blob.exists(timeout=self.timeout_s):
            return self.location(name)  # this delivery's output is there already (a retried run)
        # created by an earlier attempt of the same delivery (PreconditionFailed): kept, never overwritten
        with contextlib.suppress(PreconditionFailed):
            blob.upload_from_string(data, content_type=content_type, if_generation_match=0, timeout=self.timeout_s)
        return self.location(name)
