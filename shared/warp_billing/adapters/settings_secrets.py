"""The embedded ``SecretSource``: secrets from ``WARP_*`` settings, or from files they name.

In the cloud the function's secrets live in Secret Manager and reach it as environment
variables (``secret_environment_variables`` in Terraform), which this adapter reads the same
way; ``WARP_NETSUITE_PRIVATE_KEY_FILE`` names a PEM file instead of holding the key itself (the
local stack writes a test key there).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class SettingsSecrets:
    """Secrets by name from given values, or from files for names given as paths."""

    def __init__(self, values: Mapping[str, str | None], files: Mapping[str, Path | None] | None = None):
        self._values = dict(values)
        self._files = dict(files or {})

    def secret(self, name: str) -> str:
        value = self._values.get(name)
        if value:
            return value
        path = self._files.get(name)
        if path is not None:
            try:
                return Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise KeyError(f"secret {name}: cannot read {path}: {exc}") from None
        raise KeyError(f"secret {name} is not configured (set WARP_{name.upper()} or WARP_{name.upper()}_FILE)")
