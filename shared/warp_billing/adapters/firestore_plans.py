"""Customer plans and rate decks on Firestore (``PlanStore``), versioned by content.

Layout::

    plans/{customer_id}                       current_version, previous_version, updated_at
    plans/{customer_id}/versions/{version}    plan_yaml (the text as written), decks {name: deck_id}
    decks/{deck_id}                           manifest: sha256, size, encoding, chunk_count [, inline]
    decks/{deck_id}/chunks/{00000..}          the zlib-compressed deck text in pieces of <= 1 MB

A version is ``v`` + a digest of the plan text and of its decks' contents, so ``put_plan`` of
the same plan and decks is the same version (idempotent), and any change is a new one. A deck
id is the name the plan uses plus a digest of its content (``acme-voice.csv@<sha256 prefix>``):
versions never change under a reader, and ``plan_document`` returns the plan with each deck
name replaced by that id, which ``deck_text`` answers (the port's convention).

A 300k-row deck is about 15 MB, over Firestore's 1 MiB document limit (which the local
emulator does not enforce), so decks are compressed and split across chunk documents written
before their manifest: a manifest that exists always has all its chunks. Reading reassembles
the chunks and checks length and sha256, so the text comes back byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import yaml

from ..plan import PlanError, parse_plan
from ..rating.rater import deck_paths
from .firestore_ledger import FirestoreLedgerStore  # noqa: F401  (bootstrap looks for it here)
from .lazy_client import LazyClient

CHUNK_BYTES = 1_000_000  # stored bytes per chunk document: under 1 MiB with the name and fields
CHUNKS_PER_COMMIT = 3  # ~3 MB per commit: under Firestore's 10 MiB request and the emulator's 4 MiB
VERSION_DIGITS = 20
DECK_DIGITS = 24


class PlanNotFound(LookupError):
    """No such customer plan or plan version."""


class DeckNotFound(LookupError):
    """No deck with that id."""


class DeckIntegrityError(ValueError):
    """A stored deck whose chunks do not reassemble to the recorded length and sha256."""


def firestore_client(project: str, emulator_host: str | None = None, database: str = "(default)"):
    """A Firestore client: the real API, or the emulator at ``emulator_host`` (host:port)."""
    from google.cloud import firestore

    if not emulator_host:
        return firestore.Client(project=project, database=database)
    from google.auth.credentials import AnonymousCredentials

    client = firestore.Client(project=project, credentials=AnonymousCredentials(), database=database)
    # The client reads FIRESTORE_EMULATOR_HOST once, in __init__, into this attribute, and builds
    # its insecure channel from it on first use: setting it here reaches the emulator without
    # changing the process environment for every other client.
    client._emulator_host = emulator_host
    return client


def deck_id_for(name: str, text: str) -> str:
    """The id a deck is stored under: its name (escaped for a document id) and a content digest."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:DECK_DIGITS]
    return f"{quote(name, safe='')}@{digest}"


def plan_version_for(plan_yaml: str, deck_ids: Mapping[str, str]) -> str:
    """The version of a plan text with these decks (same inputs, same version)."""
    canonical = json.dumps({"plan_yaml": plan_yaml, "decks": dict(sorted(deck_ids.items()))},
                           sort_keys=True, ensure_ascii=False)
    return "v" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:VERSION_DIGITS]


def _check_document_id(kind: str, value: str) -> str:
    if (not isinstance(value, str) or not value or "/" in value or value in (".", "..")
            or (value.startswith("__") and value.endswith("__")) or len(value.encode("utf-8")) > 1500):
        raise PlanError(f"{kind} {value!r} cannot be a Firestore document id")
    return value


class FirestorePlanStore:
    """``PlanStore`` on Firestore (see the module docstring for the layout)."""

    def __init__(self, client: Any, settings: Any = None, *, collection_prefix: str = "",
                 chunk_bytes: int = CHUNK_BYTES, timeout_s: float = 60.0):
        """``client``: a ``firestore.Client`` or a zero-argument callable building one on first use.

        ``collection_prefix`` puts the collections under other names (tests, tenants).
        ``settings`` is accepted for the composition root's uniform call and not otherwise needed.
        """
        self._client = LazyClient(client)
        self.plans_collection = f"{collection_prefix}plans"
        self.decks_collection = f"{collection_prefix}decks"
        if not 1024 <= chunk_bytes <= CHUNK_BYTES:
            raise ValueError(f"chunk_bytes must be 1024..{CHUNK_BYTES}")
        self.chunk_bytes = chunk_bytes
        self.timeout_s = timeout_s

    @property
    def client(self):
        return self._client.get()

    # -------------------------------------------------------------------- PlanStore

    def current_version(self, customer_id: str) -> str | None:
        snapshot = self._plan_ref(customer_id).get(timeout=self.timeout_s)
        return snapshot.get("current_version") if snapshot.exists else None

    def plan_document(self, customer_id: str, version: str) -> Mapping:
        """The plan of ``version`` as a mapping, deck names replaced by their deck ids."""
        stored = self.version_record(customer_id, version)
        document = yaml.safe_load(stored["plan_yaml"])
        if not isinstance(document, dict):
            raise PlanError(f"plan {customer_id}@{version}: a plan is a YAML mapping")
        return _with_deck_ids(document, stored.get("decks") or {})

    def deck_text(self, deck_id: str) -> str:
        _check_document_id("deck id", deck_id)
        deck_ref = self.client.collection(self.decks_collection).document(deck_id)
        manifest = deck_ref.get(timeout=self.timeout_s)
        if not manifest.exists:
            raise DeckNotFound(f"no deck {deck_id!r}")
        meta = manifest.to_dict()
        if meta.get("inline") is not None:
            stored = bytes(meta["inline"])
        else:
            refs = [deck_ref.collection("chunks").document(f"{i:05d}") for i in range(meta["chunk_count"])]
            parts: dict[int, bytes] = {}
            for snapshot in self.client.get_all(refs, timeout=self.timeout_s):
                if snapshot.exists:
                    parts[snapshot.get("index")] = bytes(snapshot.get("data"))
            missing = [i for i in range(meta["chunk_count"]) if i not in parts]
            if missing:
                raise DeckIntegrityError(f"deck {deck_id}: chunk(s) {missing} missing")
            stored = b"".join(parts[i] for i in range(meta["chunk_count"]))
        try:
            data = zlib.decompress(stored) if meta.get("encoding") == "zlib" else stored
        except zlib.error as exc:
            raise DeckIntegrityError(f"deck {deck_id}: stored chunks do not decompress ({exc})") from None
        if len(data) != meta["size_bytes"] or hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise DeckIntegrityError(f"deck {deck_id}: reassembled content does not match its sha256")
        return data.decode("utf-8")

    def put_plan(self, customer_id: str, plan_yaml: str, decks: Mapping[str, str]) -> str:
        """Store the decks (by the names the plan uses) and the plan; point the customer at it.

        Returns the version. Idempotent: the same plan and decks give the same version and
        write nothing new. A plan that does not parse, is another customer's, or names a deck
        that is not given raises ``PlanError`` before anything is written.
        """
        _check_document_id("customer id", customer_id)
        try:
            raw = yaml.safe_load(plan_yaml)
        except yaml.YAMLError as exc:
            raise PlanError(f"plan of {customer_id}: not YAML: {exc}") from None
        plan = parse_plan(raw, f"plan of {customer_id}")
        if plan.customer_id != customer_id:
            raise PlanError(f"plan of {customer_id}: its customer_id is {plan.customer_id!r}")
        referenced = set(deck_paths(plan))
        if plan.voice is not None and plan.voice.npa_nxx:
            referenced.add(plan.voice.npa_nxx)
        missing = sorted(referenced - set(decks))
        if missing:
            raise PlanError(f"plan of {customer_id}: deck(s) {missing} named by the plan were not given")
        deck_ids = {name: self._store_deck(name, text) for name, text in sorted(decks.items())}
        version = plan_version_for(plan_yaml, deck_ids)
        version_ref = self._plan_ref(customer_id).collection("versions").document(version)
        if not version_ref.get(timeout=self.timeout_s).exists:
            version_ref.set({"customer_id": customer_id, "version": version, "plan_yaml": plan_yaml,
                             "decks": deck_ids, "created_at": _now()}, timeout=self.timeout_s)
        self._point_to(customer_id, version)
        return version

    # -------------------------------------------------------------------- beyond the port

    def customers(self) -> list[str]:
        """Every customer with a current plan (the cycle close's list)."""
        found = self.client.collection(self.plans_collection).stream(timeout=self.timeout_s)
        return sorted(snapshot.id for snapshot in found if (snapshot.to_dict() or {}).get("current_version"))

    def version_record(self, customer_id: str, version: str) -> dict:
        """The stored version document (plan_yaml, decks, created_at)."""
        _check_document_id("customer id", customer_id)
        _check_document_id("version", version)
        snapshot = self._plan_ref(customer_id).collection("versions").document(version).get(timeout=self.timeout_s)
        if not snapshot.exists:
            raise PlanNotFound(f"no plan version {customer_id}@{version}")
        return snapshot.to_dict()

    def deck_manifest(self, deck_id: str) -> dict:
        """A deck's manifest (sha256, size_bytes, stored_bytes, chunk_count, encoding)."""
        _check_document_id("deck id", deck_id)
        snapshot = self.client.collection(self.decks_collection).document(deck_id).get(timeout=self.timeout_s)
        if not snapshot.exists:
            raise DeckNotFound(f"no deck {deck_id!r}")
        return {key: value for key, value in snapshot.to_dict().items() if key != "inline"}

    # -------------------------------------------------------------------- internals

    def _plan_ref(self, customer_id: str):
        return self.client.collection(self.plans_collection).document(_check_document_id("customer id", customer_id))

    def _store_deck(self, name: str, text: str) -> str:
        deck_id = deck_id_for(name, text)
        deck_ref = self.client.collection(self.decks_collection).document(deck_id)
        if deck_ref.get(timeout=self.timeout_s).exists:
            return deck_id  # content-addressed: already complete
        data = text.encode("utf-8")
        stored = zlib.compress(data, 6)
        manifest = {"deck_id": deck_id, "name": name, "sha256": hashlib.sha256(data).hexdigest(),
                    "size_bytes": len(data), "encoding": "zlib", "stored_bytes": len(stored),
                    "created_at": _now()}
        if len(stored) <= self.chunk_bytes:
            manifest.update(chunk_count=0, inline=stored)
        else:
            pieces = [stored[i:i + self.chunk_bytes] for i in range(0, len(stored), self.chunk_bytes)]
            for first in range(0, len(pieces), CHUNKS_PER_COMMIT):
                batch = self.client.batch()
                for index in range(first, min(first + CHUNKS_PER_COMMIT, len(pieces))):
                    batch.set(deck_ref.collection("chunks").document(f"{index:05d}"),
                              {"index": index, "data": pieces[index]})
                batch.commit(timeout=self.timeout_s)
            manifest.update(chunk_count=len(pieces), inline=None)
        deck_ref.set(manifest, timeout=self.timeout_s)  # last: its presence means every chunk is there
        return deck_id

    def _point_to(self, customer_id: str, version: str) -> None:
        from google.cloud import firestore

        plan_ref = self._plan_ref(customer_id)

        @firestore.transactional
        def move(transaction) -> None:
            snapshot = plan_ref.get(transaction=transaction)
            current = snapshot.get("current_version") if snapshot.exists else None
            if current == version:
                return
            transaction.set(plan_ref, {"customer_id": customer_id, "current_version": version,
                                       "previous_version": current, "updated_at": _now()})

        move(self.client.transaction())


def _with_deck_ids(document: Any, deck_ids: Mapping[str, str]) -> Any:
    """The plan mapping with every string value that names a stored deck replaced by its id."""
    if isinstance(document, dict):
        return {key: _with_deck_ids(value, deck_ids) for key, value in document.items()}
    if isinstance(document, list):
        return [_with_deck_ids(value, deck_ids) for value in document]
    if isinstance(document, str) and document in deck_ids:
        return deck_ids[document]
    return document


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
