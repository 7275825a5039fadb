"""A cloud client built on first use, once per instance, thread-safely (never at import)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class LazyClient:
    """Holds a client, or the zero-argument factory that builds it on the first ``get()``."""

    def __init__(self, client_or_factory: Any | Callable[[], Any]):
        self._factory = client_or_factory
        self._client = None if callable(client_or_factory) else client_or_factory
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
        return self._client

    @property
    def built(self) -> bool:
        return self._client is not None
