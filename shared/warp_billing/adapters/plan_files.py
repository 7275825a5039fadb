"""``PlanStore`` on a folder of plan YAMLs and deck CSVs (the embedded configuration).

The folder holds one plan file per customer (``*.yaml`` / ``*.yml``, any name; the plan's
``customer_id`` says whose) with its decks beside it, exactly as `warp rate --plan` reads them.
Deck ids are the paths the plan names, relative to the folder. The version of a plan is a
digest of the plan file and of its decks' sizes and modification times, so editing a deck or
the plan is a new version that warm instances pick up. Only the current version is kept.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

import yaml

from ..plan import PlanError, parse_plan
from ..rating.rater import deck_paths


class PlanFolder:
    """Plans and decks in ``folder`` (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)
        self._index: dict[str, Path] = {}
        self._listing: tuple | None = None
        self._lock = threading.Lock()

    def current_version(self, customer_id: str) -> str | None:
        path = self._plan_path(customer_id)
        if path is None:
            return None
        text = path.read_bytes()
        digest = hashlib.sha256(text)
        for deck_id in sorted(_deck_ids(yaml.safe_load(text))):
            try:
                stat = self._resolve(deck_id).stat()
            except (OSError, ValueError):
                digest.update(f"{deck_id}:missing".encode())
                continue
            digest.update(f"{deck_id}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return digest.hexdigest()[:16]

    def plan_document(self, customer_id: str, version: str) -> Mapping:
        path = self._plan_path(customer_id)
        if path is None:
            raise LookupError(f"no plan for customer {customer_id!r} in {self.folder}")
        current = self.current_version(customer_id)
        if current != version:
            raise LookupError(f"plan {customer_id}@{version} is not the current version ({current}) in {self.folder}")
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict):
            raise PlanError(f"{path}: a plan is a YAML mapping")
        return document

    def deck_text(self, deck_id: str) -> str:
        return self._resolve(deck_id).read_text(encoding="utf-8-sig")

    def put_plan(self, customer_id: str, plan_yaml: str, decks: Mapping[str, str]) -> str:
        """Write the decks (by the names the plan uses) and the plan; return the new version."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for deck_id, text in decks.items():
            target = self._resolve(deck_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(target, text)
        target = self._plan_path(customer_id) or self.folder / f"{customer_id.lower()}-plan.yaml"
        _write_atomically(target, plan_yaml)
        with self._lock:
            self._listing = None
        version = self.current_version(customer_id)
        assert version is not None
        return version

    def customers(self) -> list[str]:
        with self._lock:
            self._refresh_index()
            return sorted(self._index)

    def _plan_path(self, customer_id: str) -> Path | None:
        with self._lock:
            self._refresh_index()
            return self._index.get(customer_id)

    def _refresh_index(self) -> None:
        try:
            files = sorted(p for p in self.folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        except FileNotFoundError:
            files = []
        listing = tuple((p.name, p.stat().st_mtime_ns) for p in files)
        if listing == self._listing:
            return
        index: dict[str, Path] = {}
        for path in files:
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(raw, dict) and isinstance(raw.get("customer_id"), str):
                index.setdefault(raw["customer_id"], path)
        self._index, self._listing = index, listing

    def _resolve(self, deck_id: str) -> Path:
        relative = PurePosixPath(deck_id)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"deck id {deck_id!r} must be a path inside the plan folder")
        return self.folder / relative


def _deck_ids(raw: object) -> list[str]:
    if not isinstance(raw, dict):
        return []
    try:
        plan = parse_plan(raw)
    except PlanError:
        return []
    ids = deck_paths(plan)
    if plan.voice is not None and plan.voice.npa_nxx:
        ids.append(plan.voice.npa_nxx)
    return ids


def _write_atomically(target: Path, text: str) -> None:
    temporary = target.with_name(f".{target.name}.tmp{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, target)
