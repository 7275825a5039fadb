"""Plans and decks against the local Firestore stand-in (@firestore-emulator/server).

The emulator does not enforce Firestore's 1 MiB document limit, so the large-deck test also
checks that no stored document approaches it: the adapter, not the emulator, keeps us honest.
"""

from __future__ import annotations

import random
import time

import pytest

from warp_billing.adapters.firestore_plans import (
    CHUNK_BYTES,
    DeckIntegrityError,
    DeckNotFound,
    FirestorePlanStore,
    PlanNotFound,
    deck_id_for,
)
from warp_billing.charging.plan_catalog import PlanCatalog
from warp_billing.plan import PlanError, parse_plan

pytestmark = pytest.mark.integration

FIRESTORE_DOCUMENT_LIMIT = 1_048_576

VOICE_DECK = """prefix,destination,rate,interstate_rate,intrastate_rate,effective_date
1,US,0.010000,0.010000,0.008000,2020-01-01
44,UNITED KINGDOM,0.050000,,,2020-01-01
"""
VENDOR_DECK = """prefix,destination,rate,interstate_rate,intrastate_rate,effective_date
1,US,0.009900,0.009900,0.007000,2020-01-01
44,UNITED KINGDOM,0.010000,,,2020-01-01
"""


def plan_yaml(customer_id: str, deck: str = "acme-voice.csv", note: str = "") -> str:
    return f"""# {note}
customer_id: {customer_id}
timezone: UTC
billing: prepaid
currency: USD
voice:
  deck: {deck}
  vendor_decks: {{V1: vendor1-voice.csv}}
  increments: "6/6"
prepaid: {{low_balance_threshold: "1.00"}}
"""


def decks(voice: str = VOICE_DECK) -> dict[str, str]:
    return {"acme-voice.csv": voice, "vendor1-voice.csv": VENDOR_DECK}


def big_deck(rows: int = 300_000) -> str:
    """A deck of realistic size (~15 MB): varied prefixes and rates, CRLF lines, non-ASCII names."""
    generator = random.Random(20261126)
    lines = ["prefix,destination,rate,interstate_rate,intrastate_rate,effective_date,end_date"]
    names = ["US - NEW YORK", "CÔTE D'IVOIRE - ABIDJAN", "UNITED KINGDOM - LONDON", "MÉXICO - CDMX"]
    for i in range(rows):
        rate = f"0.{generator.randrange(10**7):07d}"
        lines.append(f"{1000000 + i * 7},{names[i % len(names)]},{rate},{rate},0.{generator.randrange(10**6):06d},"
                     f"2026-0{1 + i % 9}-01,")
    return "\r\n".join(lines) + "\r\n"


def test_put_plan_then_read_it_back_through_the_port(plan_store):
    version = plan_store.put_plan("GET1", plan_yaml("GET1"), decks())
    assert plan_store.current_version("GET1") == version
    document = plan_store.plan_document("GET1", version)
    plan = parse_plan(dict(document))
    assert plan.customer_id == "GET1"
    assert plan.voice.deck == deck_id_for("acme-voice.csv", VOICE_DECK)
    assert plan_store.deck_text(plan.voice.deck) == VOICE_DECK
    assert plan_store.deck_text(plan.voice.vendor_decks["V1"]) == VENDOR_DECK
    assert plan_store.version_record("GET1", version)["plan_yaml"] == plan_yaml("GET1")


def test_the_charging_plan_catalog_compiles_a_plan_from_firestore(plan_store):
    version = plan_store.put_plan("CAT1", plan_yaml("CAT1"), decks())
    compiled = PlanCatalog(plan_store, refresh_s=0).current("CAT1")
    assert compiled is not None and compiled.version == version
    assert compiled.prepaid is not None


def test_a_new_plan_moves_the_pointer_and_earlier_versions_keep_their_decks(plan_store):
    first = plan_store.put_plan("MOV1", plan_yaml("MOV1"), decks())
    cheaper = VOICE_DECK.replace("0.050000", "0.040000")
    second = plan_store.put_plan("MOV1", plan_yaml("MOV1"), decks(cheaper))
    assert second != first
    assert plan_store.current_version("MOV1") == second
    old = parse_plan(dict(plan_store.plan_document("MOV1", first)))
    new = parse_plan(dict(plan_store.plan_document("MOV1", second)))
    assert plan_store.deck_text(old.voice.deck) == VOICE_DECK
    assert plan_store.deck_text(new.voice.deck) == cheaper
    pointer = plan_store.client.collection(plan_store.plans_collection).document("MOV1").get().to_dict()
    assert pointer["previous_version"] == first
    # Going back to the first content is the first version again, pointed at once more.
    assert plan_store.put_plan("MOV1", plan_yaml("MOV1"), decks()) == first
    assert plan_store.current_version("MOV1") == first


def test_put_plan_is_idempotent(plan_store):
    first = plan_store.put_plan("IDEM1", plan_yaml("IDEM1"), decks())
    pointer_ref = plan_store.client.collection(plan_store.plans_collection).document("IDEM1")
    before = pointer_ref.get().to_dict()
    again = plan_store.put_plan("IDEM1", plan_yaml("IDEM1"), decks())
    assert again == first
    assert pointer_ref.get().to_dict() == before  # not even updated_at moved
    versions = list(pointer_ref.collection("versions").stream())
    assert [v.id for v in versions] == [first]


def test_a_large_deck_is_chunked_and_reassembled_byte_for_byte(plan_store):
    text = big_deck()
    assert len(text.encode("utf-8")) > 14_000_000
    t0 = time.monotonic()
    version = plan_store.put_plan("BIG1", plan_yaml("BIG1", deck="big.csv"), {"big.csv": text,
                                                                              "vendor1-voice.csv": VENDOR_DECK})
    wrote = time.monotonic() - t0
    deck_id = parse_plan(dict(plan_store.plan_document("BIG1", version))).voice.deck
    manifest = plan_store.deck_manifest(deck_id)
    assert manifest["chunk_count"] > 1
    assert manifest["size_bytes"] == len(text.encode("utf-8"))
    t0 = time.monotonic()
    back = plan_store.deck_text(deck_id)
    read = time.monotonic() - t0
    assert back.encode("utf-8") == text.encode("utf-8")
    chunks = plan_store.client.collection(plan_store.decks_collection).document(deck_id).collection("chunks")
    sizes = [len(doc.get("data")) for doc in chunks.stream()]
    assert len(sizes) == manifest["chunk_count"] and max(sizes) <= CHUNK_BYTES < FIRESTORE_DOCUMENT_LIMIT
    print(f"300k-row deck: {len(text) / 1e6:.1f} MB -> {manifest['stored_bytes'] / 1e6:.1f} MB in "
          f"{manifest['chunk_count']} chunks; write {wrote:.2f}s, read {read:.2f}s")


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_chunk_is_detected_not_returned(plan_store, damage):
    small_chunks = FirestorePlanStore(plan_store.client, collection_prefix=plan_store.plans_collection[:-len("plans")],
                                      chunk_bytes=4096)
    text = big_deck(5_000) + f"# {damage}\r\n"
    version = small_chunks.put_plan("DMG1", plan_yaml("DMG1", deck="dmg.csv"),
                                    {"dmg.csv": text, "vendor1-voice.csv": VENDOR_DECK})
    deck_id = parse_plan(dict(small_chunks.plan_document("DMG1", version))).voice.deck
    assert small_chunks.deck_manifest(deck_id)["chunk_count"] > 1
    assert small_chunks.deck_text(deck_id) == text
    deck = small_chunks.client.collection(small_chunks.decks_collection).document(deck_id)
    chunk = deck.collection("chunks").document("00001")
    data = bytearray(chunk.get().get("data"))
    if damage == "truncate":
        del data[-1]
    else:
        data[100] ^= 0x01
    chunk.update({"data": bytes(data)})
    with pytest.raises(DeckIntegrityError, match=deck_id.replace("@", ".")):
        small_chunks.deck_text(deck_id)


def test_bad_input_is_refused_before_anything_is_written(plan_store):
    with pytest.raises(PlanError, match="were not given"):
        plan_store.put_plan("BAD1", plan_yaml("BAD1"), {"acme-voice.csv": VOICE_DECK})
    with pytest.raises(PlanError, match="customer_id is 'OTHER'"):
        plan_store.put_plan("BAD1", plan_yaml("OTHER"), decks())
    with pytest.raises(PlanError, match="document id"):
        plan_store.put_plan("BAD/1", plan_yaml("BAD/1"), decks())
    with pytest.raises(PlanError, match="float"):
        plan_store.put_plan("BAD1", plan_yaml("BAD1").replace('"1.00"', "1.00"), decks())
    assert plan_store.current_version("BAD1") is None


def test_unknown_versions_and_decks_are_lookup_errors(plan_store):
    assert plan_store.current_version("NOBODY") is None
    with pytest.raises(PlanNotFound):
        plan_store.plan_document("NOBODY", "v0")
    with pytest.raises(DeckNotFound):
        plan_store.deck_text("missing.csv@0000")


# -- the ledger on Firestore (WARP_LEDGER_STORE=firestore) ---------------------------------------

def ledger_entry(entry_id: str, amount: int, after: int, at: str, customer_id: str, kind: str = "debit"):
    from warp_billing.ports import LedgerEntry

    return LedgerEntry(entry_id, customer_id, kind, amount, after, at, reference=f"ref {entry_id}")


@pytest.fixture()
def firestore_ledger(plan_store):
    from warp_billing.adapters.firestore_ledger import FirestoreLedgerStore

    return FirestoreLedgerStore(plan_store.client, collection=plan_store.plans_collection.replace("plans", "ledger"))


def test_the_firestore_ledger_keeps_the_first_write_and_the_append_order(firestore_ledger):
    first = [ledger_entry("top/1", 10_000_000, 10_000_000, "2026-03-01T09:00:00.000+00:00", "FL1", "topup"),
             ledger_entry("ev-1", -50_000, 9_950_000, "2026-03-01T09:00:01.000+00:00", "FL1"),
             ledger_entry("ev-2", -50_000, 9_900_000, "2026-03-01T09:00:01.000+00:00", "FL1"),
             ledger_entry("auto-1", 5_000_000, 14_900_000, "2026-03-01T09:00:01.000+00:00", "FL1", "auto_recharge")]
    firestore_ledger.append(first)
    firestore_ledger.append(first[1:3] + [ledger_entry("ev-3", -1, 14_899_999, "2026-03-02T00:00:00.000+00:00", "FL1")])
    firestore_ledger.append([ledger_entry("ev-1", -999, 0, "2026-03-05T00:00:00.000+00:00", "FL1")])  # reused id
    firestore_ledger.append([ledger_entry("x-1", 7, 7, "2026-03-01T08:00:00.000+00:00", "FL2")])
    got = list(firestore_ledger.entries("FL1"))
    assert [e.entry_id for e in got] == ["top/1", "ev-1", "ev-2", "auto-1", "ev-3"]
    assert got[:4] == first and got[1].amount_micros == -50_000
    assert [e.entry_id for e in firestore_ledger.entries(None)] == ["x-1", "top/1", "ev-1", "ev-2", "auto-1", "ev-3"]


def test_the_composition_root_finds_the_firestore_ledger():
    from warp_billing.adapters import firestore_plans
    from warp_billing.adapters.firestore_ledger import FirestoreLedgerStore

    assert firestore_plans.FirestoreLedgerStore is FirestoreLedgerStore
