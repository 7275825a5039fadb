#!/usr/bin/env python3
"""Assemble each function's deployable source: build/functions/<name>/ for Terraform to zip.

A Cloud Function's source is one directory: its ``main.py`` and ``requirements.txt``
(functions/<name>/) with the ``warp_billing`` package copied beside ``main.py``, so
``from warp_billing...`` imports the same code the tests ran. Terraform's ``archive_file``
zips each directory and uploads it as ``<name>/bundle-<md5>.zip`` (terraform/functions.tf).

Usage: ``python tools/function_bundles.py [--out build/functions] [NAME ...]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
PACKAGE = ROOT / "shared" / "warp_billing"
# Compiled (mypyc) modules are built for this machine's Python and libc; functions deploy the pure source.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", "*.so")
# Every file and folder of a bundle gets this modification time (1980-01-01, the zip epoch), so
# the same sources always zip to the same bytes: Terraform names the upload by the zip's md5, and
# a rebuild that changed nothing must not redeploy every function (nor break a rollback).
FIXED_MTIME = 315532800


class BundleError(RuntimeError):
    """A function that cannot be bundled (no main.py, no requirements.txt)."""


def bundle(name: str, out_dir: Path) -> Path:
    """(Re)build ``out_dir/name`` from functions/<name>/ and shared/warp_billing; return it."""
    source = FUNCTIONS / name
    for required in ("main.py", "requirements.txt"):
        if not (source / required).is_file():
            raise BundleError(f"functions/{name}/{required} is missing")
    target = out_dir / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=IGNORED)
    shutil.copytree(PACKAGE, target / "warp_billing", ignore=IGNORED)
    for folder, _, files in os.walk(target):
        for entry in files:
            os.utime(Path(folder) / entry, (FIXED_MTIME, FIXED_MTIME))
        os.utime(folder, (FIXED_MTIME, FIXED_MTIME))
    return target


def usage_functions() -> list[str]:
    """The usage functions the product table names (warp_billing.products): each must have a bundle."""
    sys.path.insert(0, str(PACKAGE.parent))
    from warp_billing.products import functions

    return sorted(functions())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="functions to bundle (default: every functions/<name>/main.py)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "functions")
    args = parser.parse_args(argv)
    names = args.names or sorted(path.parent.name for path in FUNCTIONS.glob("*/main.py"))
    failures = [f"the product table names function {name} but functions/{name}/main.py is missing"
                for name in usage_functions() if not args.names and name not in names]
    for name in names:
        try:
            print(f"bundled {name} -> {bundle(name, args.out)}")
        except BundleError as exc:
            failures.append(str(exc))
    for failure in failures:
        print(f"function-bundles: error: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
