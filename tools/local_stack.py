#!/usr/bin/env python3
"""The local stack: install, start, stop and inspect the stand-ins for WARP Billing's cloud.

What runs (ports are fixed so functions, tests and the relay agree; see ``SERVICES``):

=============  =====================================  ===================================
service        stand-in                               port(s)
=============  =====================================  ===================================
redis          Debian ``redis-server`` (no disk)      6390
bigquery       PyPI ``bqemulator`` (DuckDB)           REST 9052, gRPC 9062, project warp-local
firestore      npm ``@firestore-emulator/server``     8086 (bound to 127.0.0.1 by our script)
tasks          PyPI ``gcloud-tasks-emulator``         8123, queue ``netsuite`` created at start (started by
                                                      tools/tasks_emulator.py: concurrent dispatch, backoff)
rate_voice     functions-framework (cloudevent)       8081 (only once functions/rate_voice/main.py exists)
rate_sms       functions-framework (cloudevent)       8082
rate_api       functions-framework (cloudevent)       8083
netsuite       tools/netsuite_standin.py (NetSuite)   8090 (test certificate in .local-stack/netsuite/)
netsuite_sync  functions-framework (http)             8091 (the netsuite queue's target)
storage        PyPI ``gcp-storage-emulator``          9023 (in memory), buckets created at start
rollup         functions-framework (http)             8092 (cycle close, hourly rollup, dunning)
webhooks       functions-framework (http)             8093 (Authorize.Net and NetSuite notifications)
authorize_net  tools/authorize_net_standin.py         8095 (request.api with a BOM; signed webhooks to
                                                      the webhooks function's /authorize-net)
sendgrid       tools/sendgrid_standin.py (SendGrid)   8096 (records mails, 202; sandbox mode honoured)
hubspot        tools/hubspot_standin.py (HubSpot)     8097 (batch upsert; 429 + Retry-After above 10/s)
crm_sync       functions-framework (http)             8098 (the hubspot queue's target)
notify         functions-framework (cloudevent)       8099 (billing alerts -> emails, reinstatement)
=============  =====================================  ===================================

Each emulator lives in its own environment under ``.local-stack/`` (their protobuf pins clash
with the project's), installed by ``install`` and recorded by stamp files so a second install
is a no-op. ``up`` starts every service in its own process group, records its pid in
``.local-stack/pids/NAME.pid``, waits until each port answers and provisions the BigQuery
dataset; a second ``up`` leaves running services alone. ``down`` stops the recorded process
groups and waits until no process of theirs is left. Logs go to ``.local-stack/logs/``.

The functions get their settings from ``WARP_*`` variables (``stack_env()``), also written to
``.local-stack/stack.env`` for shells and tests. No Pub/Sub stand-in exists here: deliver usage
to the functions with ``tools/pubsub_relay.py``, which posts the Eventarc CloudEvent envelope.

Usage: ``python tools/local_stack.py install|up|down|status|env`` (the Makefile's stack-* targets).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACK_DIR = ROOT / ".local-stack"
PID_DIR = STACK_DIR / "pids"
LOG_DIR = STACK_DIR / "logs"
STAMP_DIR = STACK_DIR / "stamps"
ENV_FILE = STACK_DIR / "stack.env"
PROJECT_VENV_BIN = ROOT / ".venv" / "bin"

PROJECT = "warp-local"
LOCATION = "us-central1"
HOST = "127.0.0.1"
# WARP_STACK_PORT_OFFSET shifts every port, so two checkouts on one machine (parallel work
# trees, a developer beside CI) each run a stack of their own. Default 0: the ports below.
PORT_OFFSET = int(os.environ.get("WARP_STACK_PORT_OFFSET", "0") or 0)
REDIS_PORT = 6390 + PORT_OFFSET
BIGQUERY_REST_PORT = 9052 + PORT_OFFSET
BIGQUERY_GRPC_PORT = 9062 + PORT_OFFSET
FIRESTORE_PORT = 8086 + PORT_OFFSET
TASKS_PORT = 8123 + PORT_OFFSET
NETSUITE_PORT = 8090 + PORT_OFFSET
NETSUITE_SYNC_PORT = 8091 + PORT_OFFSET
NETSUITE_DIR = STACK_DIR / "netsuite"
NETSUITE_KID = "warp-local-cert"
NETSUITE_CLIENT_ID = "warp-local-client"
NETSUITE_MAPPING = ROOT / "config" / "netsuite-mapping.yaml"
STORAGE_PORT = 9023 + PORT_OFFSET
WEBHOOKS_PORT = 8093 + PORT_OFFSET
AUTHORIZE_NET_PORT = 8095 + PORT_OFFSET
# Test credentials of the Authorize.Net stand-in (never real ones): API login, transaction key, signature key.
AUTHORIZE_NET_LOGIN_ID = "warp-local-login"
AUTHORIZE_NET_TRANSACTION_KEY = "warp-local-transaction-key"
AUTHORIZE_NET_SIGNATURE_KEY = "5741525000000000000000000000000000000000000000000000000000000000" * 2
NETSUITE_WEBHOOK_SECRET = "warp-local-netsuite-webhook-secret"
RECHARGE_TASK_KEY = "warp-local-recharge-task-key"
DOCUMENTS_BUCKET = f"{PROJECT}-documents"
VENDOR_CDR_BUCKET = f"{PROJECT}-vendor-cdrs"
USAGE_DATASET = "warp_billing"
NETSUITE_QUEUE = "netsuite"
NETSUITE_CONCURRENCY = 5  # terraform var.netsuite_concurrency's default: the NetSuite account's limit
# Collections (issue 12): SendGrid and HubSpot stand-ins, the HubSpot queue and its target, the alert consumer.
SENDGRID_PORT = 8096 + PORT_OFFSET
HUBSPOT_PORT = 8097 + PORT_OFFSET
CRM_SYNC_PORT = 8098 + PORT_OFFSET
NOTIFY_PORT = 8099 + PORT_OFFSET
HUBSPOT_QUEUE = "hubspot"
HUBSPOT_CONCURRENCY = 2    # terraform var.hubspot_concurrency's default
HUBSPOT_STANDIN_RATE = 10  # requests per second before the stand-in answers 429 (HubSpot: 100-190 per 10 s)
EMAIL_KINDS = ("remind", "warn", "suspend", "collections", "reinstated", "low_balance", "recharge_declined",
               "payment_receipt", "suspend_pending", "suspended")
RECHARGE_QUEUE = "recharge"  # card auto-recharge tasks, served by the webhooks function's /tasks/recharge

FUNCTIONS = (  # (name, target, port): the Pub/Sub-triggered rating functions
    ("rate_voice", "rate_voice", 8081 + PORT_OFFSET),
    ("rate_sms", "rate_sms", 8082 + PORT_OFFSET),
    ("rate_api", "rate_api", 8083 + PORT_OFFSET),
)
HTTP_FUNCTIONS = (  # (name, target, port): the HTTP functions Cloud Scheduler calls
    ("rollup", "rollup", 8092 + PORT_OFFSET),
    ("webhooks", "webhooks", WEBHOOKS_PORT),
)

DUCKDB_VERSION = "1.5.5"
BIGQUERY_PACKAGES = (
    "bqemulator==1.4.0",
    f"duckdb=={DUCKDB_VERSION}",
    f"duckdb-extension-spatial=={DUCKDB_VERSION}",
    f"duckdb-extension-avro=={DUCKDB_VERSION}",
    "numpy",
)
TASKS_PACKAGES = ("gcloud-tasks-emulator==0.6.2",)
STORAGE_PACKAGES = ("gcp-storage-emulator==2026.7.19",)
FIRESTORE_NPM_PACKAGE = "@firestore-emulator/server"
FIRESTORE_NPM_VERSION = "0.3.15"

INSTALL_TIMEOUT_S = 900
START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 20

FIRESTORE_START_JS = """\
// Starts the Firestore emulator on 127.0.0.1:PORT (the package's start() binds 0.0.0.0).
const { FirestoreServer } = require("@firestore-emulator/server");
const { ServerCredentials } = require("@grpc/grpc-js");
const port = Number(process.argv[2] || 8086);
const emulator = new FirestoreServer();
emulator.server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err) => {
  if (err) { console.error(`firestore emulator: cannot bind 127.0.0.1:${port}: ${err.message}`); process.exit(1); }
  console.log(`firestore emulator listening on 127.0.0.1:${port}`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => { emulator.stop(); process.exit(0); });
"""


class StackError(RuntimeError):
    """A stack step that failed; the message says what to do about it."""


# ---------------------------------------------------------------------------- settings


def stack_env() -> dict[str, str]:
    """The settings every function (and test) gets to reach the stand-ins (``warp_billing.settings`` names)."""
    env = {
        # Which adapter backs each port (warp_billing.settings): the cloud ones, on the stand-ins.
        "WARP_USAGE_STORE": "bigquery",
        "WARP_LEDGER_STORE": "bigquery",
        "WARP_PLAN_STORE": "firestore",
        "WARP_ALERT_SINK": "log",  # no Pub/Sub stand-in here: alerts become log lines
        "WARP_GCP_PROJECT": PROJECT,
        "WARP_REDIS_URL": f"redis://{HOST}:{REDIS_PORT}/0",
        "WARP_BIGQUERY_PROJECT": PROJECT,
        "WARP_BIGQUERY_ENDPOINT": f"http://{HOST}:{BIGQUERY_REST_PORT}",
        "WARP_BIGQUERY_DATASET": USAGE_DATASET,
        "WARP_FIRESTORE_PROJECT": PROJECT,
        "WARP_FIRESTORE_EMULATOR_HOST": f"{HOST}:{FIRESTORE_PORT}",
        "WARP_ALERT_TOPIC": "billing-alerts",
        # The cycle close (issue 10): BigQuery usage, Firestore register + outbox, Cloud Storage documents.
        "WARP_RATED_SOURCE": "bigquery",
        "WARP_REGISTER_STORE": "firestore",
        "WARP_DISPUTE_STORE": "firestore",  # `warp dispute` against the stack: disputes beside that register
        # The NetSuite sync drains the outbox the close writes, the Firestore register's erp_outbox: the
        # settings default (WARP_SYNC_OUTBOX=register) follows WARP_REGISTER_STORE, as in terraform.
        "WARP_DOCUMENT_STORE": "gcs",
        "WARP_RUN_LOG_STORE": "bigquery",
        "WARP_INVOICE_SINK": "log",  # no Pub/Sub stand-in: announcements become log lines
        "WARP_STORAGE_ENDPOINT": f"http://{HOST}:{STORAGE_PORT}",
        "WARP_DOCUMENTS_BUCKET": DOCUMENTS_BUCKET,
        "WARP_VENDOR_CDR_BUCKET": VENDOR_CDR_BUCKET,
        "STORAGE_EMULATOR_HOST": f"http://{HOST}:{STORAGE_PORT}",
        # Not (yet) read by settings.py; the stand-ins' addresses for Cloud Tasks clients and tests.
        "WARP_TASKS_ENDPOINT": f"{HOST}:{TASKS_PORT}",
        "WARP_NETSUITE_QUEUE": f"projects/{PROJECT}/locations/{LOCATION}/queues/{NETSUITE_QUEUE}",
        # The Google clients' own conventions, so a client built outside the settings layer
        # still lands on a stand-in and never on a real project.
        "FIRESTORE_EMULATOR_HOST": f"{HOST}:{FIRESTORE_PORT}",
        "GOOGLE_CLOUD_PROJECT": PROJECT,
    }
    for name, _target, port in FUNCTIONS + HTTP_FUNCTIONS:
        env[f"WARP_{name.upper()}_URL"] = f"http://{HOST}:{port}/"
    env.update(netsuite_env())
    env.update(collections_env())
    env.update(payments_env())
    return env


def collections_env() -> dict[str, str]:
    """Settings of dunning, emails and HubSpot on the stand-ins (sandbox mode, local test keys)."""
    return {
        "WARP_ACCOUNT_HOLDS": "redis",
        "WARP_DUNNING_STORE": "firestore",   # shared by rollup (dunning), notify and `warp account`, as deployed
        "WARP_EMAIL_LOG": "firestore",
        "WARP_SENDGRID_URL": f"http://{HOST}:{SENDGRID_PORT}",
        "WARP_SENDGRID_API_KEY": "SG.local-stand-in",
        "WARP_SENDGRID_SANDBOX": "true",
        "WARP_SENDGRID_FROM_EMAIL": "billing@warp.local",
        "WARP_SENDGRID_TEMPLATES": json.dumps({kind: f"d-local-{kind}" for kind in EMAIL_KINDS}),
        "WARP_HUBSPOT_URL": f"http://{HOST}:{HUBSPOT_PORT}",
        "WARP_HUBSPOT_TOKEN": "pat-local-stand-in",
        "WARP_HUBSPOT_QUEUE": f"projects/{PROJECT}/locations/{LOCATION}/queues/{HUBSPOT_QUEUE}",
        "WARP_HUBSPOT_TASK_URL": f"http://{HOST}:{CRM_SYNC_PORT}/",
    }


def payments_env() -> dict[str, str]:
    """Settings of the webhooks function and the payment side on the Authorize.Net stand-in."""
    return {
        "WARP_AUTHORIZE_NET_URL": f"http://{HOST}:{AUTHORIZE_NET_PORT}/xml/v1/request.api",
        "WARP_AUTHORIZE_NET_LOGIN_ID": AUTHORIZE_NET_LOGIN_ID,
        "WARP_AUTHORIZE_NET_TRANSACTION_KEY": AUTHORIZE_NET_TRANSACTION_KEY,
        "WARP_AUTHORIZE_NET_SIGNATURE_KEY": AUTHORIZE_NET_SIGNATURE_KEY,
        "WARP_NETSUITE_WEBHOOK_SECRET": NETSUITE_WEBHOOK_SECRET,
        # as in production (terraform/functions.tf): payments and receipts on Firestore
        "WARP_PAYMENT_STORE": "firestore",
        "WARP_WEBHOOK_RECEIPTS": "firestore",
        "WARP_RECHARGE_QUEUE": f"projects/{PROJECT}/locations/{LOCATION}/queues/{RECHARGE_QUEUE}",
        "WARP_RECHARGE_TASK_URL": f"http://{HOST}:{WEBHOOKS_PORT}/tasks/recharge",
        "WARP_RECHARGE_TASK_KEY": RECHARGE_TASK_KEY,
        "WARP_RECHARGE_TRIGGER": "true",
    }


def netsuite_env() -> dict[str, str]:
    """Settings of the NetSuite sync on the stand-in (its test certificate's key, the local mapping)."""
    return {
        "WARP_NETSUITE_ACCOUNT": "LOCAL",
        "WARP_NETSUITE_BASE_URL": f"http://{HOST}:{NETSUITE_PORT}",
        "WARP_NETSUITE_CLIENT_ID": NETSUITE_CLIENT_ID,
        "WARP_NETSUITE_CERTIFICATE_ID": NETSUITE_KID,
        "WARP_NETSUITE_PRIVATE_KEY_FILE": str(NETSUITE_DIR / "private_key.pem"),
        "WARP_NETSUITE_MAPPING": str(NETSUITE_MAPPING),
        "WARP_NETSUITE_SYNC_URL": f"http://{HOST}:{NETSUITE_SYNC_PORT}/",
    }


def netsuite_test_credentials(directory: Path = NETSUITE_DIR) -> tuple[Path, Path]:
    """A private key and self-signed certificate for the stand-in's token endpoint (made once)."""
    key_path, cert_path = directory / "private_key.pem", directory / "certificate.pem"
    if key_path.exists() and cert_path.exists():
        return key_path, cert_path
    from datetime import datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "warp local netsuite stand-in")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=730)).sign(key, hashes.SHA256()))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


# ---------------------------------------------------------------------------- install


@dataclass(frozen=True)
class Component:
    """One installable stand-in: a directory under .local-stack and how to fill it."""

    name: str
    spec: tuple[str, ...]  # what is installed; a change of spec reinstalls
    install: Callable[[Component, Path], None]
    ready: Callable[[], bool]  # the installed files are present

    @property
    def home(self) -> Path:
        return STACK_DIR / self.name

    @property
    def stamp(self) -> Path:
        return STAMP_DIR / f"{self.name}.stamp"

    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.spec).encode()).hexdigest()

    def is_installed(self) -> bool:
        return (
            self.stamp.exists()
            and self.stamp.read_text().strip() == self.fingerprint()
            and self.ready()
        )


def _run_logged(cmd: list[str], log: Path, *, cwd: Path | None = None, timeout: float = INSTALL_TIMEOUT_S) -> None:
    """Run one install command, its output appended to ``log``; raise StackError on failure."""
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        try:
            result = subprocess.run(
                cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise StackError(f"{cmd[0]} timed out after {timeout:.0f}s; see {log}") from None
        except FileNotFoundError:
            raise StackError(f"{cmd[0]} not found; see local-stack.md for what to install") from None
    if result.returncode != 0:
        raise StackError(f"`{' '.join(cmd)}` failed (exit {result.returncode}); last lines of {log}:\n{_tail(log)}")


def _install_python_venv(component: Component, log: Path) -> None:
    home = component.home
    if not (home / "bin" / "python").exists():
        _run_logged([_base_python(), "-m", "venv", str(home)], log)
    pip = [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run_logged([*pip, *component.spec], log)


def _base_python() -> str:
    """The interpreter that makes the emulators' venvs (the project venv's base, not the venv)."""
    return getattr(sys, "_base_executable", None) or sys.executable


DUCKDB_EXTENSIONS = ("spatial", "avro")  # bqemulator loads spatial at start and avro for query results


def _extension_source(name: str) -> Path:
    site = next((STACK_DIR / "bigquery" / "lib").glob("python3*/site-packages"), None)
    if site is None:
        raise StackError("the BigQuery emulator venv has no site-packages; rerun `make stack-install`")
    return site / f"duckdb_extension_{name}" / "extensions" / f"v{DUCKDB_VERSION}" / f"{name}.duckdb_extension"


def _extension_target(name: str) -> Path:
    return Path.home() / ".duckdb" / "extensions" / f"v{DUCKDB_VERSION}" / "linux_amd64" / f"{name}.duckdb_extension"


def _copy_duckdb_extensions() -> None:
    """The emulator's DuckDB would download these extensions, and this machine has no network at run time."""
    for name in DUCKDB_EXTENSIONS:
        source, target = _extension_source(name), _extension_target(name)
        if not source.exists():
            raise StackError(f"{source} is missing: duckdb-extension-{name} did not install its extension file")
        if target.exists() and target.stat().st_size == source.stat().st_size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def _install_bigquery(component: Component, log: Path) -> None:
    _install_python_venv(component, log)
    _copy_duckdb_extensions()


def _install_firestore(component: Component, log: Path) -> None:
    home = component.home
    home.mkdir(parents=True, exist_ok=True)
    package = {
        "name": "warp-firestore-emulator",
        "private": True,
        "description": "Local Firestore stand-in for WARP Billing (tools/local_stack.py)",
        "dependencies": {FIRESTORE_NPM_PACKAGE: FIRESTORE_NPM_VERSION},
    }
    (home / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    _run_logged(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], log, cwd=home)
    (home / "start.js").write_text(FIRESTORE_START_JS)


def _install_tasks(component: Component, log: Path) -> None:
    _install_python_venv(component, log)


def _install_storage(component: Component, log: Path) -> None:
    _install_python_venv(component, log)


COMPONENTS = (
    Component(
        "bigquery",
        BIGQUERY_PACKAGES,
        _install_bigquery,
        lambda: (STACK_DIR / "bigquery" / "bin" / "bqemulator").exists()
        and all(_extension_target(name).exists() for name in DUCKDB_EXTENSIONS),
    ),
    Component(
        "firestore",
        (f"{FIRESTORE_NPM_PACKAGE}@{FIRESTORE_NPM_VERSION}", hashlib.sha256(FIRESTORE_START_JS.encode()).hexdigest()),
        _install_firestore,
        lambda: (STACK_DIR / "firestore" / "node_modules" / "@firestore-emulator" / "server").is_dir()
        and (STACK_DIR / "firestore" / "start.js").exists(),
    ),
    Component(
        "tasks",
        TASKS_PACKAGES,
        _install_tasks,
        (STACK_DIR / "tasks" / "bin" / "gcloud-tasks-emulator").exists,
    ),
    Component(
        "storage",
        STORAGE_PACKAGES,
        _install_storage,
        (STACK_DIR / "storage" / "bin" / "gcp-storage-emulator").exists,
    ),
)


def _check_system_tools() -> None:
    missing = [tool for tool in ("redis-server", "node", "npm") if shutil.which(tool) is None]
    if "redis-server" in missing and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing redis-server from Debian packages ...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=False, stdout=subprocess.DEVNULL)
        missing = [tool for tool in missing if shutil.which(tool) is None]
    if missing:
        raise StackError(
            f"missing on PATH: {', '.join(missing)}. Install them (Debian: apt-get install -y redis-server nodejs npm)"
        )


def install(args: argparse.Namespace) -> int:
    """Install every emulator that is not installed yet, in parallel, each in its own directory."""
    started = time.monotonic()
    _check_system_tools()
    for directory in (STACK_DIR, LOG_DIR, STAMP_DIR):
        directory.mkdir(parents=True, exist_ok=True)
    if (STACK_DIR / "bigquery" / "bin" / "bqemulator").exists():
        _copy_duckdb_extensions()  # $HOME may be new although .local-stack was kept
    todo = [c for c in COMPONENTS if args.force or not c.is_installed()]
    for component in COMPONENTS:
        if component not in todo:
            print(f"  {component.name:<10} already installed ({component.home.relative_to(ROOT)})")

    def run(component: Component) -> float:
        t0 = time.monotonic()
        log = LOG_DIR / f"install-{component.name}.log"
        log.write_text("")
        component.stamp.unlink(missing_ok=True)
        component.install(component, log)
        component.stamp.write_text(component.fingerprint() + "\n")
        return time.monotonic() - t0

    failures = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(todo))) as pool:
        futures = {pool.submit(run, c): c for c in todo}
        for future in concurrent.futures.as_completed(futures):
            component = futures[future]
            try:
                print(f"  {component.name:<10} installed in {future.result():.1f}s")
            except StackError as exc:
                failures.append(f"{component.name}: {exc}")
    if failures:
        raise StackError("install failed:\n" + "\n".join(failures))
    print(f"stack installed in {time.monotonic() - started:.1f}s")
    return 0


# ---------------------------------------------------------------------------- services


@dataclass
class Service:
    """One long-running process of the stack and how to tell it is ready."""

    name: str
    command: list[str]
    ports: tuple[int, ...]
    http_probe: str | None = None  # a path that must answer 2xx on the first port
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid_file(self) -> Path:
        return PID_DIR / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return LOG_DIR / f"{self.name}.log"


def services() -> list[Service]:
    """Every service of the stack, in start order; functions only where their main.py exists."""
    functions_framework = PROJECT_VENV_BIN / "functions-framework"
    result = [
        Service(
            "redis",
            ["redis-server", "--port", str(REDIS_PORT), "--bind", HOST, "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(STACK_DIR)],
            (REDIS_PORT,),
        ),
        Service(
            "bigquery",
            [str(STACK_DIR / "bigquery" / "bin" / "bqemulator"), "start",
             "--rest-host", HOST, "--rest-port", str(BIGQUERY_REST_PORT),
             "--grpc-host", HOST, "--grpc-port", str(BIGQUERY_GRPC_PORT),
             "--project", PROJECT, "--ephemeral", "--log-level", "warning"],
            (BIGQUERY_REST_PORT, BIGQUERY_GRPC_PORT),
            http_probe=f"/bigquery/v2/projects/{PROJECT}/datasets",
        ),
        Service(
            "firestore",
            ["node", str(STACK_DIR / "firestore" / "start.js"), str(FIRESTORE_PORT)],
            (FIRESTORE_PORT,),
        ),
        Service(
            "tasks",
            # Through tools/tasks_emulator.py: concurrent dispatch up to the queue's limit and retry
            # backoff with Retry-After, as Cloud Tasks does (the emulator alone does neither).
            [str(STACK_DIR / "tasks" / "bin" / "python"), str(ROOT / "tools" / "tasks_emulator.py"), "start",
             "--queue-concurrency", f"{NETSUITE_QUEUE}={NETSUITE_CONCURRENCY}",
             "--queue-concurrency", f"{HUBSPOT_QUEUE}={HUBSPOT_CONCURRENCY}",
             "--queue-concurrency", f"{RECHARGE_QUEUE}=5", "-p", str(TASKS_PORT),
             "-d", f"projects/{PROJECT}/locations/{LOCATION}/queues/{NETSUITE_QUEUE}",
             "-d", f"projects/{PROJECT}/locations/{LOCATION}/queues/{HUBSPOT_QUEUE}",
             "-d", f"projects/{PROJECT}/locations/{LOCATION}/queues/{RECHARGE_QUEUE}"],
            (TASKS_PORT,),
        ),
        Service(
            "storage",
            [str(STACK_DIR / "storage" / "bin" / "gcp-storage-emulator"), "start", "--host", HOST,
             "--port", str(STORAGE_PORT), "--in-memory", "--quiet"],
            (STORAGE_PORT,),
            http_probe="/storage/v1/b?project=" + PROJECT,
        ),
    ]
    _key, certificate = NETSUITE_DIR / "private_key.pem", NETSUITE_DIR / "certificate.pem"
    result.append(
        Service(
            "netsuite",
            [str(PROJECT_VENV_BIN / "python"), str(ROOT / "tools" / "netsuite_standin.py"), "--host", HOST,
             "--port", str(NETSUITE_PORT), "--certificate", str(certificate), "--kid", NETSUITE_KID,
             "--client-id", NETSUITE_CLIENT_ID],
            (NETSUITE_PORT,),
            http_probe="/_control",
        )
    )
    result += [
        Service("sendgrid", [str(PROJECT_VENV_BIN / "python"), str(ROOT / "tools" / "sendgrid_standin.py"),
                             "--port", str(SENDGRID_PORT)], (SENDGRID_PORT,), http_probe="/_mails"),
        Service("hubspot", [str(PROJECT_VENV_BIN / "python"), str(ROOT / "tools" / "hubspot_standin.py"),
                            "--port", str(HUBSPOT_PORT), "--rate", str(HUBSPOT_STANDIN_RATE)],
                (HUBSPOT_PORT,), http_probe="/_stats"),
    ]
    for name, signature, port in (("crm_sync", "http", CRM_SYNC_PORT), ("notify", "cloudevent", NOTIFY_PORT)):
        if (ROOT / "functions" / name / "main.py").exists():
            result.append(Service(
                name,
                [str(functions_framework), "--target", name, "--source", str(ROOT / "functions" / name / "main.py"),
                 "--signature-type", signature, "--host", HOST, "--port", str(port)],
                (port,),
                env={"PYTHONPATH": str(ROOT / "shared")},
            ))
    result.append(
        Service(
            "authorize_net",
            [str(PROJECT_VENV_BIN / "python"), str(ROOT / "tools" / "authorize_net_standin.py"), "--host", HOST,
             "--port", str(AUTHORIZE_NET_PORT), "--signature-key", AUTHORIZE_NET_SIGNATURE_KEY,
             "--webhook-url", f"http://{HOST}:{WEBHOOKS_PORT}/authorize-net"],
            (AUTHORIZE_NET_PORT,),
            http_probe="/_control",
        )
    )
    if (ROOT / "functions" / "netsuite_sync" / "main.py").exists():
        result.append(
            Service(
                "netsuite_sync",
                [str(functions_framework), "--target", "netsuite_sync",
                 "--source", str(ROOT / "functions" / "netsuite_sync" / "main.py"),
                 "--signature-type", "http", "--host", HOST, "--port", str(NETSUITE_SYNC_PORT)],
                (NETSUITE_SYNC_PORT,),
                env={"PYTHONPATH": str(ROOT / "shared")},
            )
        )
    for name, target, port in FUNCTIONS:
        source = ROOT / "functions" / name / "main.py"
        if source.exists():
            result.append(
                Service(
                    name,
                    [str(functions_framework), "--target", target, "--source", str(source),
                     "--signature-type", "cloudevent", "--host", HOST, "--port", str(port)],
                    (port,),
                    env={"PYTHONPATH": str(ROOT / "shared")},
                )
            )
    for name, target, port in HTTP_FUNCTIONS:
        source = ROOT / "functions" / name / "main.py"
        if source.exists():
            result.append(
                Service(
                    name,
                    [str(functions_framework), "--target", target, "--source", str(source),
                     "--signature-type", "http", "--host", HOST, "--port", str(port)],
                    (port,),
                    env={"PYTHONPATH": str(ROOT / "shared")},
                )
            )
    return result


def _process_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return None


def _start_ticks(pid: int) -> str | None:
    fields = _process_stat(pid)
    return fields[19] if fields else None  # field 22 of stat: start time since boot, in clock ticks


def _is_ours(service: Service) -> int | None:
    """The recorded pid of ``service`` if that very process (same start time) is alive, else None.

    The pid file holds "PID START_TICKS": a pid reused by another process after a reboot or a
    crash has another start time and is never signalled.
    """
    try:
        pid_text, ticks = service.pid_file.read_text().split()[:2]
        pid = int(pid_text)
    except (FileNotFoundError, ValueError):
        return None
    fields = _process_stat(pid)
    if fields is None or fields[0] == "Z" or fields[19] != ticks:
        return None
    return pid


def _group_members(pgid: int, *, zombies: bool = False) -> list[int]:
    """Processes whose process group is ``pgid`` (exited-but-unreaped ones only if ``zombies``)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _process_stat(int(entry.name))
        if fields is not None and int(fields[2]) == pgid and (zombies or fields[0] != "Z"):
            members.append(int(entry.name))
    return members


def _port_open(port: int, timeout: float = 0.3) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((HOST, port)) == 0


def _http_ok(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=2) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError):
        return False


def _ready(service: Service) -> bool:
    if not all(_port_open(port) for port in service.ports):
        return False
    return service.http_probe is None or _http_ok(service.ports[0], service.http_probe)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _start(service: Service, env: dict[str, str]) -> int:
    executable = service.command[0]
    if os.sep in executable and not Path(executable).exists():
        hint = "run `make venv`" if executable.startswith(str(PROJECT_VENV_BIN)) else "run `make stack-install`"
        raise StackError(f"{service.name}: {executable} not found; {hint}")
    log = service.log_file.open("a")
    log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(service.command)}\n")
    log.flush()
    process_env = {**os.environ, **env, **service.env}
    try:
        process = subprocess.Popen(
            service.command, cwd=ROOT, env=process_env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    except FileNotFoundError:
        raise StackError(f"{service.name}: {executable} not found on PATH") from None
    finally:
        log.close()
    service.pid_file.write_text(f"{process.pid} {_start_ticks(process.pid)}\n")
    return process.pid


def _wait_ready(pending: list[tuple[Service, int, float]], timeout: float) -> None:
    """Poll every starting service until all answer; report each one's start time as it does."""
    deadline = time.monotonic() + timeout
    pending = list(pending)
    while pending:
        for item in list(pending):
            service, pid, t0 = item
            if _is_ours(service) != pid:
                raise StackError(f"{service.name} exited during start-up; last lines of "
                                 f"{service.log_file}:\n{_tail(service.log_file)}")
            if _ready(service):
                pending.remove(item)
                if t0 >= 0:
                    print(f"  {service.name:<10} up on {','.join(map(str, service.ports))} (pid {pid}) "
                          f"in {time.monotonic() - t0:.1f}s", flush=True)
        if pending and time.monotonic() > deadline:
            service = pending[0][0]
            raise StackError(
                f"{', '.join(s.name for s, _p, _t in pending)} did not answer within {timeout:.0f}s; "
                f"last lines of {service.log_file}:\n{_tail(service.log_file)}")
        if pending:
            time.sleep(0.05)


def _provision() -> None:
    """Create the BigQuery dataset and tables the functions write to (idempotent)."""
    sys.path.insert(0, str(ROOT / "shared"))
    from warp_billing.adapters.bigquery_usage import BigQueryUsageStore, bigquery_client

    env = stack_env()
    project, endpoint = env["WARP_BIGQUERY_PROJECT"], env["WARP_BIGQUERY_ENDPOINT"]
    store = BigQueryUsageStore(lambda: bigquery_client(project, endpoint), project=project,
                               dataset=env["WARP_BIGQUERY_DATASET"], deadline_s=30)
    store.ensure_schema()
    _create_buckets(env)


def _create_buckets(env: dict[str, str]) -> None:
    """The buckets the close and the reconciliation use (idempotent: 409 = already there)."""
    endpoint = env["WARP_STORAGE_ENDPOINT"]
    for bucket in (env["WARP_DOCUMENTS_BUCKET"], env["WARP_VENDOR_CDR_BUCKET"]):
        request = urllib.request.Request(
            f"{endpoint}/storage/v1/b?project={PROJECT}", data=json.dumps({"name": bucket}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except urllib.error.HTTPError as error:
            if error.code != 409:
                raise StackError(f"storage: cannot create bucket {bucket}: HTTP {error.code}") from None


def up(args: argparse.Namespace) -> int:
    """Start every service that is not running yet and wait until all answer."""
    started_at = time.monotonic()
    missing = [c.name for c in COMPONENTS if not c.is_installed()]
    if missing:
        raise StackError(f"not installed: {', '.join(missing)}; run `make stack-install` first")
    for directory in (PID_DIR, LOG_DIR):
        directory.mkdir(parents=True, exist_ok=True)
    env = stack_env()
    netsuite_test_credentials()
    ENV_FILE.write_text("".join(f"export {key}={value}\n" for key, value in env.items()))

    started: list[tuple[Service, int, float]] = []
    try:
        for service in services():
            pid = _is_ours(service)
            if pid is not None:
                print(f"  {service.name:<10} already running (pid {pid})", flush=True)
                started.append((service, pid, -1.0))
                continue
            service.pid_file.unlink(missing_ok=True)
            busy = [port for port in service.ports if _port_open(port)]
            if busy:
                raise StackError(
                    f"{service.name}: port {busy[0]} is already in use by a process this stack did not start; "
                    f"stop it (see `ss -ltnp | grep {busy[0]}`) and run `make stack-up` again"
                )
            started.append((service, _start(service, env), time.monotonic()))
        _wait_ready(started, args.timeout)
        _provision()
    except BaseException:
        # Leave nothing half-started by this call; services that were already up stay up.
        _stop([s for s, _pid, t0 in started if t0 >= 0])
        raise
    print(f"stack up in {time.monotonic() - started_at:.1f}s (settings in {ENV_FILE.relative_to(ROOT)})")
    return 0


def _stop(to_stop: list[Service], timeout: float = STOP_TIMEOUT_S) -> list[str]:
    """SIGTERM each recorded process group, wait for every member to exit, SIGKILL stragglers."""
    groups: dict[str, int] = {}
    for service in to_stop:
        pid = _is_ours(service)
        if pid is not None:
            groups[service.name] = pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_group_members(pgid) for pgid in groups.values()):
        time.sleep(0.05)
    killed = []
    for name, pgid in groups.items():
        if _group_members(pgid):
            killed.append(name)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
    # Our services outlive the `up` that started them, so once they exit their parent is init,
    # which reaps them a moment later; wait for that too, so `ps` shows nothing of the stack.
    end = time.monotonic() + 5
    while time.monotonic() < end and any(_group_members(pgid, zombies=True) for pgid in groups.values()):
        time.sleep(0.05)
    for service in to_stop:
        service.pid_file.unlink(missing_ok=True)
    return killed


def _all_known_services() -> list[Service]:
    """Services with a pid file, including functions whose main.py has since disappeared."""
    known = {s.name: s for s in services()}
    if PID_DIR.exists():
        for pid_file in PID_DIR.glob("*.pid"):
            known.setdefault(pid_file.stem, Service(pid_file.stem, [], ()))
    return list(known.values())


def down(args: argparse.Namespace) -> int:
    """Stop every service this stack started (by recorded pid) and wait until they have exited."""
    t0 = time.monotonic()
    to_stop = _all_known_services()
    running = [s.name for s in to_stop if _is_ours(s) is not None]
    killed = _stop(to_stop, timeout=args.timeout)
    if killed:
        print(f"  forced (SIGKILL after {args.timeout:.0f}s): {', '.join(killed)}")
    print(f"stack down: stopped {', '.join(running) or 'nothing (not running)'} in {time.monotonic() - t0:.1f}s")
    return 0


def status(args: argparse.Namespace) -> int:
    """Print each service's pid, liveness and port; exit 1 when something expected is not up."""
    problems = 0
    for service in _all_known_services():
        pid = _is_ours(service)
        alive = pid is not None
        answering = alive and bool(service.ports) and _ready(service)
        if answering:
            state = "up"
        else:
            state = "starting/unhealthy" if alive else "stale pid" if service.pid_file.exists() else "stopped"
        problems += state != "up"
        ports = ",".join(map(str, service.ports)) or "-"
        print(f"  {service.name:<10} {state:<18} pid {pid or '-':<8} port {ports}")
    return 0 if problems == 0 else 1


def print_env(args: argparse.Namespace) -> int:
    for key, value in stack_env().items():
        print(f"export {key}={value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("install", help="install the emulators under .local-stack/ (idempotent)")
    p.add_argument("--force", action="store_true", help="reinstall even where stamps say installed")
    p.set_defaults(func=install)
    p = commands.add_parser("up", help="start the stack (a second call leaves running services alone)")
    p.add_argument("--timeout", type=float, default=START_TIMEOUT_S, help="seconds to wait for all ports")
    p.set_defaults(func=up)
    p = commands.add_parser("down", help="stop everything this stack started")
    p.add_argument("--timeout", type=float, default=STOP_TIMEOUT_S, help="seconds before SIGKILL")
    p.set_defaults(func=down)
    commands.add_parser("status", help="show what runs").set_defaults(func=status)
    commands.add_parser("env", help="print the settings the functions get").set_defaults(func=print_env)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except StackError as exc:
        print(f"local-stack {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
