#!/usr/bin/env python3
"""The nearest thing to `terraform validate` that works offline: argument and block names checked
against the google provider's own schema.

`terraform validate` needs the provider binary, which only the Terraform registry serves (PyPI,
Debian and npm carry none). The npm registry does carry ``@cdktf/provider-google``: bindings
GENERATED from the provider's schema (16.12.1 = hashicorp/google 6.50.0). Each ``lib/<resource>/
index.d.ts`` has one interface per block whose properties link to the registry docs by their
Terraform names (``...#uri_override_enforce_mode CloudTasksQueue#uri_override_enforce_mode``), and
marks optional ones with ``?``. From those this checks, for every ``google_*`` resource: each
argument and nested block exists where it is written, and every required argument is set.

It does NOT check types, values, references or provider-side validation: that part of a plan
stays unchecked until a plan runs against a real project (README, Deployment guide).

The package (31 MB packed) is fetched once with ``npm pack`` into build/deploy-check/ and only the
``index.d.ts`` files are kept.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import hcl2

PACKAGE = "@cdktf/provider-google"
VERSION = "16.12.1"
PROVIDER_VERSION = "6.50.0"
META = {"for_each", "count", "depends_on", "lifecycle", "provider", "provisioner", "connection"}
PROPERTY = re.compile(r"#(\w+) \w+#\w+\}(?:(?!\*/).)*?\*/\s*readonly (\w+)(\?)?:", re.S)
INTERFACE = re.compile(r"export interface (\w+) (?:extends [^{]+)?\{(.*?)\n\}", re.S)


@dataclass(frozen=True)
class Block:
    """One block of the schema: its arguments and which of them are required."""

    arguments: frozenset[str]
    required: frozenset[str]


def fetch(cache: Path) -> Path:
    """The unpacked bindings' lib/ folder, downloaded once (npm pack) into ``cache``."""
    lib = cache / f"provider-google-{VERSION}" / "lib"
    if (lib.parent / ".complete").is_file():
        return lib
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: it fetches the provider schema bindings (apt-get install npm)")
    if lib.parent.exists():
        shutil.rmtree(lib.parent)
    lib.parent.mkdir(parents=True)
    subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=lib.parent, check=True,
                   capture_output=True, timeout=600)
    tarball = next(lib.parent.glob("*.tgz"))
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers() if re.fullmatch(r"package/lib/[^/]+/index\.d\.ts", m.name)]
        for member in members:
            member.name = member.name.removeprefix("package/")
        archive.extractall(lib.parent, members=members, filter="data")
    tarball.unlink()
    (lib.parent / ".complete").touch()
    return lib


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


class Schema:
    """Blocks of the google provider's resources, read from the bindings on demand."""

    def __init__(self, lib: Path):
        self.lib = lib
        self._resources: dict[str, dict[str, Block]] = {}

    def blocks(self, resource_type: str) -> dict[str, Block]:
        folder = resource_type.removeprefix("google_").replace("_", "-")
        if folder not in self._resources:
            path = self.lib / folder / "index.d.ts"
            found = {}
            if path.is_file():
                for match in INTERFACE.finditer(path.read_text(encoding="utf-8")):
                    properties = PROPERTY.findall(match.group(2))
                    found[match.group(1)] = Block(frozenset(name for name, _, _ in properties),
                                                  frozenset(name for name, _, optional in properties if not optional))
            self._resources[folder] = found
        return self._resources[folder]


def check_files(terraform: Path, schema: Schema) -> list[str]:
    """Unknown arguments/blocks and missing required arguments of every google_* resource."""
    errors: list[str] = []
    for path in sorted(terraform.glob("*.tf")):
        parsed = hcl2.loads(path.read_text(encoding="utf-8"))
        for block in parsed.get("resource", []):
            for resource_type, named in block.items():
                if not resource_type.startswith("google_"):
                    continue
                blocks = schema.blocks(resource_type)
                base = _camel(resource_type.removeprefix("google_"))
                if f"{base}Config" not in blocks:
                    errors.append(f"{path.name}: {resource_type} is not a resource of "
                                  f"google provider {PROVIDER_VERSION}")
                    continue
                for name, body in named.items():
                    errors += _check_block(blocks, f"{base}Config", base, body, f"{path.name}: {resource_type}.{name}")
    return errors


def _check_block(blocks: dict[str, Block], interface: str, prefix: str, body: dict, where: str) -> list[str]:
    block, errors = blocks[interface], []
    present = set()
    for key, value in body.items():
        if key in META:
            continue
        if key == "dynamic":
            for dynamic in value:
                for name, spec in dynamic.items():
                    present.add(name)
                    errors += _check_nested(blocks, block, prefix, name, spec.get("content", []), where)
            continue
        present.add(key)
        nested = [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
        if key not in block.arguments:
            errors.append(f"{where}: unknown argument or block {key!r}")
        elif nested and f"{prefix}{_camel(key)}" in blocks:
            errors += _check_nested(blocks, block, prefix, key, nested, where)
    errors += [f"{where}: required argument {name!r} is not set" for name in sorted(block.required - present)]
    return errors


def _check_nested(blocks: dict[str, Block], parent: Block, prefix: str, name: str, bodies: list,
                  where: str) -> list[str]:
    if name not in parent.arguments:
        return [f"{where}: unknown block {name!r}"]
    interface = f"{prefix}{_camel(name)}"
    if interface not in blocks:
        return []  # an attribute of object type written as a block-like value: nothing more to check
    errors = []
    for body in bodies:
        errors += _check_block(blocks, interface, interface, body, f"{where}.{name}")
    return errors
