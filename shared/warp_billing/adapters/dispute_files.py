"""Customer disputes on disk (``ports.DisputeStore``): one JSON file per dispute,
``DIR/<customer>/<customer>-DSP-000001.json``.

Numbers are gapless per customer, taken under an exclusive lock (``open``); a change of a dispute
reads, decides and writes under the same lock (``change``). Each write goes aside and is renamed
into place, so an interrupted command leaves the dispute as it was before.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import orjson

from ..reconciliation.customer_disputes import CustomerDispute, DisputeError
from ..safe_names import safe_name


def disputes_beside(register_dir: str | os.PathLike[str]) -> Path:
    """The default disputes folder of a file register: ``disputes`` beside the register folder."""
    return Path(os.path.abspath(register_dir)).parent / "disputes"


class DisputeFiles:
    """``DisputeStore`` in a folder (module docstring)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def _folder(self, customer_id: str) -> Path:
        return self.root / safe_name(customer_id)

    @contextmanager
    def locked(self, customer_id: str) -> Iterator[Path]:
        folder = self._folder(customer_id)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield folder
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def next_id(self, customer_id: str) -> str:
        """The next number (call under ``locked``)."""
        return f"{customer_id}-DSP-{len(self.of_customer(customer_id)) + 1:06d}"

    def open(self, customer_id: str,
             make: Callable[[str, Sequence[CustomerDispute]], CustomerDispute]) -> CustomerDispute:
        with self.locked(customer_id):
            dispute_id = self.next_id(customer_id)
            opened = make(dispute_id, self.of_customer(customer_id))
            if (opened.dispute_id, opened.customer_id) != (dispute_id, customer_id):
                raise DisputeError(f"{opened.dispute_id} is not the next dispute of {customer_id}")
            self.save(opened)
        return opened

    def change(self, dispute_id: str, move: Callable[[CustomerDispute], CustomerDispute]) -> CustomerDispute:
        customer_id = self.get(dispute_id).customer_id
        with self.locked(customer_id):
            moved = move(self.get(dispute_id))
            if moved.dispute_id != dispute_id or moved.customer_id != customer_id:
                raise DisputeError(f"a change of {dispute_id} cannot make it {moved.dispute_id} of {moved.customer_id}")
            self.save(moved)
        return moved

    def save(self, dispute: CustomerDispute) -> None:
        folder = self._folder(dispute.customer_id)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{quote(dispute.dispute_id, safe='')}.json"
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".saving-")
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(orjson.dumps(dispute.to_record(), option=orjson.OPT_INDENT_2) + b"\n")
        os.replace(temporary, target)

    def get(self, dispute_id: str) -> CustomerDispute:
        customer_id, _, _ = dispute_id.rpartition("-DSP-")
        path = self._folder(customer_id) / f"{quote(dispute_id, safe='')}.json"
        if not customer_id or not path.is_file():
            raise DisputeError(f"no dispute {dispute_id}")
        found = CustomerDispute.from_record(orjson.loads(path.read_bytes()))
        if (found.dispute_id, found.customer_id) != (dispute_id, customer_id):
            # a file put (or renamed) under another customer's folder is never taken for that customer's
            raise DisputeError(f"{path} holds {found.dispute_id} of {found.customer_id}, not {dispute_id}")
        return found

    def of_customer(self, customer_id: str) -> list[CustomerDispute]:
        folder = self._folder(customer_id)
        if not folder.is_dir():
            return []
        return sorted(
            (CustomerDispute.from_record(orjson.loads(path.read_bytes())) for path in folder.glob("*-DSP-*.json")),
            key=lambda d: d.dispute_id,
        )

    def all(self) -> list[CustomerDispute]:
        if not self.root.is_dir():
            return []
        found: list[CustomerDispute] = []
        for folder in sorted(path for path in self.root.iterdir() if path.is_dir()):
            found.extend(
                CustomerDispute.from_record(orjson.loads(path.read_bytes()))
                for path in sorted(folder.glob("*-DSP-*.json"))
            )
        return found
