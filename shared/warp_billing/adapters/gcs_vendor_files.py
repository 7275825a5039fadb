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

from .lazy_client import LazyClient


class GcsVendorFiles:
    """``VendorFileSource`` on a bucket (object names relative to the bucket)."""

    def __init__(self, client: Any, bucket: str, *, timeout_s: float = 120.0):
        if not bucket:
            raise ValueError("GcsVendorFiles needs a bucket (WARP_VENDOR_CDR_BUCKET)")
        self._client = LazyClient(client)
        self.bucket_name = bucket
        self.timeout_s = timeout_s

    @property
    def client(self):
        return self._client.get()

    def names(self, prefix: str) -> list[str]:
        blobs = self.client.list_blobs(self.bucket_name, prefix=prefix, timeout=self.timeout_s)
        return sorted(
            blob.name
            for blob in blobs
            if not blob.name.endswith("/") and not blob.name.rsplit("/", 1)[-1].startswith(".")
        )

    def read(self, name: str) -> bytes:
        blob = self.client.bucket(self.bucket_name).blob(name)
        try:
            # raw=True: a gzip file stored with Content-Encoding: gzip stays gzip (the loader inflates it)
            return blob.download_as_bytes(timeout=self.timeout_s, raw_download=True)
        except NotFound:
            raise FileNotFoundError(f"gs://{self.bucket_name}/{name}") from None

    def location(self, name: str) -> str:
        return f"gs://{self.bucket_name}/{name}"


class GcsReportSink:
    """``ReportSink`` on a bucket prefix: each object created once (see the module docstring)."""

    def __init__(self, client: Any, bucket: str, prefix: str, *, read_first: bool = True, timeout_s: float = 120.0):
        if not bucket:
            raise ValueError("GcsReportSink needs a bucket (WARP_VENDOR_CDR_BUCKET)")
        self._client = LazyClient(client)
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.read_first = read_first
        self.timeout_s = timeout_s

    @property
    def client(self):
        return self._client.get()

    def put(self, name: str, data: bytes, content_type: str) -> str:
        object_name = f"{self.prefix}/{name}" if self.prefix else name
        blob = self.client.bucket(self.bucket_name).blob(object_name)
        where = f"gs://{self.bucket_name}/{object_name}"
        if self.read_first and blob.exists(timeout=self.timeout_s):
            return where  # this delivery's output is there already (a retried run)
        # created by an earlier attempt of the same delivery (PreconditionFailed): kept, never overwritten
        with contextlib.suppress(PreconditionFailed):
            blob.upload_from_string(data, content_type=content_type, if_generation_match=0, timeout=self.timeout_s)
        return where
