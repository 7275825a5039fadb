"""Output files of the `warp` commands: checked before any work, written atomically.

Every command that writes files goes through here, so an operator's data is never clobbered:

- ``check_outputs`` refuses (exit 2, before any input is read) an output that is an input or
  another output (same real path, or the same inode through a hard link) and an output whose
  folder does not exist.
- ``AtomicOutputs`` writes each output to a temporary file in the target's own folder (same
  file system, so the final rename is atomic), then on success flushes, fsyncs and renames
  them over their final names. On an error, Ctrl-C (SIGINT) or SIGTERM the temporaries are
  removed and no existing file is replaced: a cut run never leaves a partial file under a
  name that looks complete.

A cycle close writes thousands of small files: ``AtomicOutputs.write`` keeps each as a closed
temporary and ``commit`` fsyncs them all from a few threads at once (the file system's journal
then commits them together instead of once per file), renames them, and fsyncs each folder once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import BinaryIO

import click

USAGE_EXIT = 2
FSYNC_THREADS = 16


class OutputRefused(click.exceptions.Exit):
    """An output path refused before anything was read (exit status 2)."""

    def __init__(self, message: str):
        click.echo(f"warp: error: {message}", err=True)
        super().__init__(USAGE_EXIT)
        self.message = message


class Terminated(BaseException):
    """SIGTERM during a write: unwinds like Ctrl-C so the temporaries are removed."""


def _identity(path: str) -> tuple[str, tuple[int, int] | None]:
    """The real path and, for an existing file, its (device, inode)."""
    real = os.path.realpath(path)
    try:
        status = os.stat(real)
    except OSError:
        return real, None
    return real, (status.st_dev, status.st_ino)


def check_outputs(outputs: Mapping[str, str | os.PathLike[str] | None],
                  inputs: Mapping[str, Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None]) -> None:
    """Refuse outputs that alias an input or each other, or whose folder is missing.

    ``outputs`` maps an option name (``--out``) to a path (None = not given); ``inputs`` maps a
    name to one path or several. Raises ``OutputRefused`` (exit 2) naming both sides.
    """
    seen: list[tuple[str, str, str, tuple[str, tuple[int, int] | None]]] = []
    for name, value in inputs.items():
        if value is None:
            continue
        paths = [value] if isinstance(value, (str, os.PathLike)) else list(value)
        for path in paths:
            seen.append(("input", name, os.fspath(path), _identity(os.fspath(path))))
    for name, value in outputs.items():
        if value is None:
            continue
        path = os.fspath(value)
        real, inode = identity = _identity(path)
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise OutputRefused(f"{name} {path}: folder {folder} does not exist")
        if os.path.isdir(real):
            raise OutputRefused(f"{name} {path} is a folder, not a file")
        for kind, other_name, other_path, (other_real, other_inode) in seen:
            if real == other_real or (inode is not None and inode == other_inode):
                raise OutputRefused(f"{name} {path} is the same file as the {kind} {other_name} {other_path}; "
                                    "refusing to overwrite it")
        seen.append(("output", name, path, identity))


def check_output_folder(name: str, folder: str | os.PathLike[str] | None) -> None:
    """A folder the command creates files in: it may be created, but its parent must exist."""
    if folder is None:
        return
    path = os.path.abspath(os.fspath(folder))
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputRefused(f"{name} {folder} is a file, not a folder")
    if not os.path.isdir(os.path.dirname(path)):
        raise OutputRefused(f"{name} {folder}: folder {os.path.dirname(path)} does not exist")


class _Temporary:
    """One output being written: a temporary file beside its final name."""

    def __init__(self, final: str):
        self.final = final
        folder, name = os.path.split(os.path.abspath(final))
        descriptor, self.path = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=folder)
        self.handle: BinaryIO = os.fdopen(descriptor, "wb", buffering=1 << 20)

    def finish(self) -> None:
        """Flush and fsync the temporary (reopened when it was already closed)."""
        if not self.handle.closed:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
        else:
            descriptor = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        os.chmod(self.path, 0o666 & ~_umask())

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.handle.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"signal {signum}")


@contextmanager
def _terminate_unwinds() -> Iterator[None]:
    """Within the block SIGTERM raises ``Terminated`` (SIGINT already raises KeyboardInterrupt)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class AtomicOutputs:
    """Open outputs as temporaries; ``commit`` renames them all into place.

    Use as a context manager: leaving the block with an exception (or Ctrl-C / SIGTERM)
    removes every temporary and leaves the existing files as they were.
    """

    def __init__(self) -> None:
        self._open: list[_Temporary] = []
        self._committed = False

    def open(self, path: str | os.PathLike[str]) -> BinaryIO:
        temporary = _Temporary(os.fspath(path))
        self._open.append(temporary)
        return temporary.handle

    def write(self, path: str | os.PathLike[str], data: bytes) -> None:
        """A whole small file: written to its temporary and closed now, made durable at ``commit``."""
        handle = self.open(path)
        handle.write(data)
        handle.flush()
        handle.close()

    def commit(self) -> None:
        """Flush and fsync every temporary (several at once), then rename each over its final name."""
        if len(self._open) > 1:
            with ThreadPoolExecutor(max_workers=min(FSYNC_THREADS, len(self._open))) as pool:
                list(pool.map(_Temporary.finish, self._open))
        else:
            for temporary in self._open:
                temporary.finish()
        folders = set()
        for temporary in self._open:
            os.replace(temporary.path, temporary.final)
            folders.add(os.path.dirname(os.path.abspath(temporary.final)))
        for folder in folders:  # make the renames themselves durable
            _fsync_folder(folder)
        self._committed = True

    def discard(self) -> None:
        for temporary in self._open:
            temporary.discard()

    def __enter__(self) -> AtomicOutputs:
        self._signals = _terminate_unwinds()
        self._signals.__enter__()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if not self._committed:
                self.discard()
        finally:
            self._signals.__exit__(kind, value, traceback)
        if kind is Terminated:  # a SIGTERM: exit like a process killed by it would report
            raise click.exceptions.Exit(128 + signal.SIGTERM)


def _fsync_folder(folder: str) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary, fsync, rename); nothing replaced on failure."""
    with AtomicOutputs() as outputs:
        outputs.open(path).write(data)
        outputs.commit()


def write_all_atomic(files: Sequence[tuple[Path, bytes]]) -> None:
    """Several files written as one step: all temporaries first, then the renames."""
    with AtomicOutputs() as outputs:
        for path, data in files:
            outputs.open(path).write(data)
        outputs.commit()
