"""Rendered documents in a folder (``DocumentStore``), written once, then read-only.

``put`` writes aside and hard-links into place, which fails rather than replace: the same
bytes again is a no-op (a retried close), other bytes under an existing name raise, because
an issued document never changes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class DocumentConflict(RuntimeError):
    """A document name that already holds other bytes (issued documents never change)."""


class DocumentFolder:
    """``DocumentStore`` on a local folder; references are the files' paths."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def put(self, name: str, data: bytes, content_type: str) -> str:
        target = self._path(name)
        if target.exists():
            if target.read_bytes() != data:
                raise DocumentConflict(f"{target} exists with other content; issued documents never change")
            return str(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".writing-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o444)
            try:
                os.link(temporary, target)
            except FileExistsError:  # written meanwhile by a concurrent close: same rule
                if target.read_bytes() != data:
                    raise DocumentConflict(f"{target} exists with other content") from None
        finally:
            os.unlink(temporary)
        return str(target)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def get(self, name: str) -> bytes:
        """The document's bytes (FileNotFoundError when it is not there)."""
        return self._path(name).read_bytes()

    def _path(self, name: str) -> Path:
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or any(part in ("..", ".") for part in parts):
            raise ValueError(f"document name {name!r} must be a relative path without '..'")
        return self.root.joinpath(*parts)
