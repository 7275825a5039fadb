"""Rendered documents in a Cloud Storage bucket (``DocumentStore``), created once.

Each object is uploaded with ``if_generation_match=0`` (create only); when it exists the
stored bytes are compared: the same bytes is a no-op (a retried close), other bytes raise
``DocumentConflict`` (issued documents never change). References are ``gs://bucket/name``.
The client is built on first use; ``storage_client(endpoint=...)`` reaches the local
stand-in (``gcp-storage-emulator``) with anonymous credentials. The stand-in ignores the
precondition, so against it (``WARP_STORAGE_ENDPOINT`` set) each object is read first.
"""

from __future__ import annotations

from typing import Any

from google.api_core.exceptions import NotFound, PreconditionFailed
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[attr-defined]

from .document_files import DocumentConflict
from .lazy_client import LazyClient


def storage_client(project: str, endpoint: str | None = None):
    """A Cloud Storage client: the real API, or a stand-in at ``endpoint`` (http://host:port)."""
    if not endpoint:
        return storage.Client(project=project)
    return storage.Client(project=project, credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": endpoint})


class BucketObjects:
    """Objects of one bucket under an optional prefix, through a client built on first use (the
    plumbing the Cloud Storage adapters share; ``setting`` names the bucket's setting for the error)."""

    setting = ""

    def __init__(self, client: Any, bucket: str, *, prefix: str = "", timeout_s: float = 60.0):
        if not bucket:
            raise ValueError(f"{type(self).__name__} needs a bucket ({self.setting})")
        self._client = LazyClient(client)
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.timeout_s = timeout_s

    @property
    def client(self):
        return self._client.get()

    def object_name(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def blob(self, name: str):
        return self.client.bucket(self.bucket_name).blob(self.object_name(name))

    def location(self, name: str) -> str:
        return f"gs://{self.bucket_name}/{self.object_name(name)}"


class GcsDocumentStore(BucketObjects):
    """``DocumentStore`` on one bucket, objects under an optional prefix."""

    setting = "WARP_DOCUMENTS_BUCKET"

    def __init__(self, client: Any, bucket: str, *, prefix: str = "", timeout_s: float = 60.0,
                 read_first: bool = True):
        """``read_first=False`` trusts the create-only precondition (the real API enforces it) and
        saves a request per object; the local stand-in needs the read (it ignores the precondition)."""
        super().__init__(client, bucket, prefix=prefix, timeout_s=timeout_s)
        self.read_first = read_first

    def put(self, name: str, data: bytes, content_type: str) -> str:
        blob = self.blob(name)
        existing: bytes | None = None
        if self.read_first:
            # The local stand-in ignores ifGenerationMatch: read first to keep the write-once rule there.
            try:
                existing = blob.download_as_bytes(timeout=self.timeout_s)
            except NotFound:
                existing = None
        if existing is None:
            try:
                blob.upload_from_string(data, content_type=content_type, if_generation_match=0,
                                        timeout=self.timeout_s)
            except PreconditionFailed:
                existing = blob.download_as_bytes(timeout=self.timeout_s)
        if existing is not None and existing != data:
            raise DocumentConflict(f"{self.location(name)} exists with other content; issued documents never change")
        return self.location(name)

    def exists(self, name: str) -> bool:
        return bool(self.blob(name).exists(timeout=self.timeout_s))

    def get(self, name: str) -> bytes:
        return bytes(self.blob(name).download_as_bytes(timeout=self.timeout_s))
