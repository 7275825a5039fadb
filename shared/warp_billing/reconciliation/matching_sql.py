"""The matching and classification query, written once for every engine.

One SQL text (DuckDB dialect, transpiled to BigQuery by the adapter with sqlglot) pairs the
vendor's CDRs with ours one to one and classifies every record. Both sides come in the same
normalised shape (``NORMALISED_COLUMNS``): start times as UTC epoch milliseconds, numbers as
E.164 digits without ``+``, durations in milliseconds, money as exact decimals. Keeping the
query on integers and decimals is what lets the two engines agree to the last row.

Steps:

1. Vendor duplicates: rows with the same call id (or, without one, the same calling, called,
   start and duration) are one call billed more than once; the first row in file order is the
   call, every further copy is ``vendor_duplicate``.
2. Candidates: same call id where both sides carry one; otherwise same calling and called
   numbers with starts at most ``tolerance_ms`` apart.
3. One to one: a pair is taken when each side is the other's best candidate (call id first,
   then the closest start, then the closest duration, then the ids for a stable order); the
   remaining candidates of still unpaired records get further rounds (``ROUNDS``).
4. Classes: ``exact`` (durations within the same second, equal cost and rate), ``partial``
   (duration within ``duration_ms``, cost within ``cost``, rate within ``rate``),
   ``mismatch`` (anything else paired), ``vendor_only``, ``ours_only``, ``vendor_duplicate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

EXACT = "exact"
PARTIAL = "partial"
MISMATCH = "mismatch"
VENDOR_ONLY = "vendor_only"
OURS_ONLY = "ours_only"
VENDOR_DUPLICATE = "vendor_duplicate"
CLASSES = (EXACT, PARTIAL, MISMATCH, VENDOR_ONLY, OURS_ONLY, VENDOR_DUPLICATE)

ROUNDS = 3
OFFSET_MIN_MS = 450_000  # half the quarter hour the offset hint rounds to

# Both sides of the match, normalised (the vendor side adds its file and line).
NORMALISED_COLUMNS = (
    "record_id",
    "call_id",
    "start_ms",
    "calling",
    "called",
    "duration_ms",
    "billed_s",
    "rate",
    "cost",
    "jurisdiction",
    "dest",
)

ITEM_COLUMNS = (
    "class",
    "match_by",
    "event_id",
    "vendor_record",
    "duplicate_of",
    "their_call_id",
    "our_call_id",
    "calling",
    "called",
    "dest",
    "our_jurisdiction",
    "their_jurisdiction",
    "our_start_ms",
    "their_start_ms",
    "our_duration_ms",
    "their_duration_ms",
    "our_billed_s",
    "their_billed_s",
    "our_rate",
    "their_rate",
    "our_cost",
    "their_cost",
)


@dataclass(frozen=True)
class Tolerances:
    """How far apart two records of one call may be.

    Attributes:
        start_s: the most two start times of one call may differ when matched by numbers.
        duration_s: the most two durations may differ for ``partial`` (more is ``mismatch``).
        cost: the most two costs may differ for ``partial``.
        rate: the most two per-minute rates may differ for ``partial``.
    """

    start_s: int = 60
    duration_s: int = 2
    cost: Decimal = Decimal("0.0001")
    rate: Decimal = Decimal("0.000001")


def _decimal_literal(value: Decimal) -> str:
    # An exact decimal, never a float literal: BigQuery reads a bare 0.0001 as FLOAT64.
    return f"CAST('{format(value, 'f')}' AS DECIMAL(38, 9))"


def matching_query(
    vendor: str,
    ours: str,
    tolerances: Tolerances,
    rounds: int = ROUNDS,
    materialized: bool = False,
    fingerprint: str | None = None,
) -> str:
    """The query returning one row per item (``ITEM_COLUMNS``) for two normalised relations.

    ``vendor`` and ``ours`` are relation texts (a table name or a parenthesised subquery) with
    the ``NORMALISED_COLUMNS`` and ``record_key``, an integer unique per record of its side (a
    row number, a fingerprint of the id): candidates, pairs and the one-to-one rounds join and
    group on it instead of on the long record ids; the vendor relation adds ``source_file`` and
    ``source_line``.
    ``materialized`` marks the narrow CTEs read more than once ``AS MATERIALIZED`` (DuckDB computes
    them once instead of once per reader) and the two views of the whole vendor side ``NOT
    MATERIALIZED`` (re-read, only the columns needed); BigQuery has no such hints and decides itself.
    ``fingerprint`` (an engine hint, e.g. DuckDB's ``hash({})``) finds the identities billed
    more than once by grouping one integer instead of the key columns; a collision only lets
    a few more records into the ranking, which still partitions by the key columns themselves.
    """
    m = "MATERIALIZED " if materialized else ""
    # the vendor side is read again rather than copied: a materialized copy of ten million wide
    # rows is held uncompressed (and spills), while a re-read of the table reads only the columns
    # each reader needs
    n = "NOT MATERIALIZED " if materialized else ""
    tolerance_ms = int(tolerances.start_s) * 1000
    duration_ms = int(tolerances.duration_s) * 1000
    cost = _decimal_literal(tolerances.cost)
    rate = _decimal_literal(tolerances.rate)
    # A call's identity: its call id, else (calling, called, start, duration); a missing calling
    # number (no ANI) is the empty string (NULL would swallow the key). Kept as separate non-NULL
    # columns: grouping and joining on them needs no string building.
    key_expressions = {
        "k_call": "COALESCE(v.call_id, '')",
        "k_calling": "CASE WHEN v.call_id IS NULL THEN COALESCE(v.calling, '') ELSE '' END",
        "k_called": "CASE WHEN v.call_id IS NULL THEN v.called ELSE '' END",
        "k_start": "CASE WHEN v.call_id IS NULL THEN v.start_ms ELSE 0 END",
        "k_duration": "CASE WHEN v.call_id IS NULL THEN v.duration_ms ELSE 0 END",
    }
    key_columns = tuple(key_expressions)
    keys = ", ".join(f"{expression} AS {name}" for name, expression in key_expressions.items())
    grouped = key_columns
    if fingerprint:
        keys += f", {fingerprint.format(', '.join(key_expressions.values()))} AS k_hash"
        grouped = ("k_hash",)
    same_key = " AND ".join(f"d.{k} = v.{k}" for k in grouped)
    order = "v.source_file, v.source_line, v.record_id"
    # Duplicates are rare: only the records whose identity is billed more than once are ranked
    # (a window over every record would sort the whole file).
    parts = [
        f"""
vendor_keyed AS {n}(SELECT v.*, {keys} FROM {vendor} AS v),
duplicate_keys AS {m}(
  SELECT {", ".join(grouped)} FROM vendor_keyed GROUP BY {", ".join(grouped)} HAVING COUNT(*) > 1
),
vendor_copies AS {m}(
  SELECT v.*,
    ROW_NUMBER() OVER (PARTITION BY {", ".join(f"v.{k}" for k in key_columns)} ORDER BY {order}) AS copy_number,
    FIRST_VALUE(v.record_id) OVER (PARTITION BY {", ".join(f"v.{k}" for k in key_columns)} ORDER BY {order}
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS original_record
  FROM vendor_keyed AS v JOIN duplicate_keys AS d ON {same_key}
),
vendor_first AS {n}(
  SELECT v.* FROM {vendor} AS v
  LEFT JOIN (SELECT record_key FROM vendor_copies WHERE copy_number > 1) AS c ON c.record_key = v.record_key
  WHERE c.record_key IS NULL
),
ours AS {n}(SELECT * FROM {ours} AS o),
candidates AS {m}(
  SELECT v.record_key AS vkey, o.record_key AS okey, 0 AS by_numbers,
         ABS(v.start_ms - o.start_ms) AS start_gap, ABS(v.duration_ms - o.duration_ms) AS duration_gap
  FROM vendor_first AS v JOIN ours AS o ON v.call_id = o.call_id
  UNION ALL
  SELECT v.record_key AS vkey, o.record_key AS okey, 1 AS by_numbers,
         ABS(v.start_ms - o.start_ms) AS start_gap, ABS(v.duration_ms - o.duration_ms) AS duration_gap
  FROM (SELECT * FROM vendor_first WHERE call_id IS NULL) AS v
  JOIN ours AS o ON COALESCE(v.calling, '') = COALESCE(o.calling, '') AND v.called = o.called
  WHERE ABS(v.start_ms - o.start_ms) <= {tolerance_ms}
  UNION ALL
  SELECT v.record_key AS vkey, o.record_key AS okey, 1 AS by_numbers,
         ABS(v.start_ms - o.start_ms) AS start_gap, ABS(v.duration_ms - o.duration_ms) AS duration_gap
  FROM (SELECT * FROM vendor_first WHERE call_id IS NOT NULL) AS v
  JOIN (SELECT * FROM ours WHERE call_id IS NULL) AS o
    ON COALESCE(v.calling, '') = COALESCE(o.calling, '') AND v.called = o.called
  WHERE ABS(v.start_ms - o.start_ms) <= {tolerance_ms}
),
shared_vendor AS {m}(SELECT vkey FROM candidates GROUP BY vkey HAVING COUNT(*) > 1),
shared_ours AS {m}(SELECT okey FROM candidates GROUP BY okey HAVING COUNT(*) > 1),
sole AS {m}(
  SELECT c.*, CASE WHEN sv.vkey IS NULL AND so.okey IS NULL THEN 1 ELSE 0 END AS is_sole
  FROM candidates AS c
  LEFT JOIN shared_vendor AS sv ON sv.vkey = c.vkey
  LEFT JOIN shared_ours AS so ON so.okey = c.okey
),
contested AS {m}(
  SELECT c.vkey, c.okey, v.record_id AS vendor_record, o.record_id AS event_id, c.by_numbers, c.start_gap,
         c.duration_gap
  FROM sole AS c JOIN vendor_first AS v ON v.record_key = c.vkey JOIN ours AS o ON o.record_key = c.okey
  WHERE c.is_sole = 0
)"""
    ]
    # A candidate that is the only one of its vendor record and of our event is a pair (each is
    # the other's best): only the contested rest goes through the rounds below.
    previous = "contested"
    pair_names: list[str] = ["sole_pairs"]
    parts.append("sole_pairs AS (SELECT vkey, okey, by_numbers FROM sole WHERE is_sole = 1)")
    for number in range(1, rounds + 1):
        source = f"open{number}"
        if number == 1:
            parts.append(f"{source} AS (SELECT * FROM contested)")
        else:
            taken = " UNION ALL ".join(f"SELECT vkey, okey FROM {name}" for name in pair_names[1:])
            parts.append(f"""taken{number} AS ({taken}),
{source} AS {m}(
  SELECT c.* FROM {previous} AS c
  LEFT JOIN taken{number} AS tv ON tv.vkey = c.vkey
  LEFT JOIN taken{number} AS te ON te.okey = c.okey
  WHERE tv.vkey IS NULL AND te.okey IS NULL
)""")
        parts.append(f"""ranked{number} AS (
  SELECT c.*,
    ROW_NUMBER() OVER (PARTITION BY c.vkey
                       ORDER BY c.by_numbers, c.start_gap, c.duration_gap, c.event_id) AS vendor_pick,
    ROW_NUMBER() OVER (PARTITION BY c.okey
                       ORDER BY c.by_numbers, c.start_gap, c.duration_gap, c.vendor_record) AS our_pick
  FROM {source} AS c
),
pairs{number} AS {m}(
  SELECT vkey, okey, by_numbers FROM ranked{number} WHERE vendor_pick = 1 AND our_pick = 1
)""")
        pair_names.append(f"pairs{number}")
        previous = source
    all_pairs = " UNION ALL ".join(f"SELECT * FROM {name}" for name in pair_names)
    parts.append(f"pairs AS ({all_pairs})")  # read once: a materialised copy would be held to the end
    duration_gap = "ABS(v.duration_ms - o.duration_ms)"
    rates_agree = "(v.rate IS NULL OR o.rate IS NULL OR v.rate = o.rate)"
    rates_near = f"(v.rate IS NULL OR o.rate IS NULL OR ABS(v.rate - o.rate) <= {rate})"
    our_cols = (
        "o.record_id",
        "o.call_id",
        "o.jurisdiction",
        "o.start_ms",
        "o.duration_ms",
        "o.billed_s",
        "o.rate",
        "o.cost",
    )
    their_cols = (
        "v.record_id",
        "v.call_id",
        "v.jurisdiction",
        "v.start_ms",
        "v.duration_ms",
        "v.billed_s",
        "v.rate",
        "v.cost",
    )

    def select(
        klass: str, match_by: str, duplicate_of: str, ours_on: bool, theirs_on: bool, numbers: str, dest: str
    ) -> str:
        o = (
            our_cols
            if ours_on
            else ("CAST(NULL AS VARCHAR)",) * 3 + ("CAST(NULL AS BIGINT)",) * 3 + ("CAST(NULL AS DECIMAL(38, 9))",) * 2
        )
        t = (
            their_cols
            if theirs_on
            else ("CAST(NULL AS VARCHAR)",) * 3 + ("CAST(NULL AS BIGINT)",) * 3 + ("CAST(NULL AS DECIMAL(38, 9))",) * 2
        )
        return (
            f"SELECT {klass} AS class, {match_by} AS match_by, {o[0]} AS event_id, {t[0]} AS vendor_record, "
            f"{duplicate_of} AS duplicate_of, {t[1]} AS their_call_id, {o[1]} AS our_call_id, {numbers}, "
            f"{dest} AS dest, {o[2]} AS our_jurisdiction, {t[2]} AS their_jurisdiction, "
            f"{o[3]} AS our_start_ms, {t[3]} AS their_start_ms, {o[4]} AS our_duration_ms, "
            f"{t[4]} AS their_duration_ms, {o[5]} AS our_billed_s, {t[5]} AS their_billed_s, "
            f"{o[6]} AS our_rate, {t[6]} AS their_rate, {o[7]} AS our_cost, {t[7]} AS their_cost"
        )

    none = "CAST(NULL AS VARCHAR)"
    klass = (
        f"CASE WHEN o.record_key IS NULL THEN '{VENDOR_ONLY}' WHEN v.record_key IS NULL THEN '{OURS_ONLY}' "
        f"WHEN {duration_gap} < 1000 AND v.cost = o.cost AND {rates_agree} THEN '{EXACT}' "
        f"WHEN {duration_gap} <= {duration_ms} AND ABS(v.cost - o.cost) <= {cost} AND {rates_near} "
        f"THEN '{PARTIAL}' ELSE '{MISMATCH}' END"
    )
    match_by = "CASE WHEN p.by_numbers = 0 THEN 'call_id' WHEN p.by_numbers = 1 THEN 'numbers' END"
    # Pairs, vendor_only and ours_only in one pass: every pair's two records exist on their sides,
    # so the two outer joins leave a vendor record without a pair with no event (vendor_only) and an
    # event without a pair with no vendor record (ours_only); the absent side's columns are NULL.
    numbers = (
        "CASE WHEN o.record_key IS NULL THEN v.calling ELSE o.calling END AS calling, "
        "CASE WHEN o.record_key IS NULL THEN v.called ELSE o.called END AS called"
    )
    items = [
        select(klass, match_by, none, True, True, numbers, "COALESCE(o.dest, v.dest)")
        + " FROM vendor_first AS v FULL OUTER JOIN pairs AS p ON p.vkey = v.record_key"
        + " FULL OUTER JOIN ours AS o ON o.record_key = p.okey",
        select(
            f"'{VENDOR_DUPLICATE}'",
            none,
            "v.original_record",
            False,
            True,
            "v.calling AS calling, v.called AS called",
            "v.dest",
        )
        + " FROM vendor_copies AS v WHERE v.copy_number > 1",
    ]
    return "WITH " + ",\n".join(parts) + "\n" + "\nUNION ALL\n".join(items)


def offset_query(items: str, window_s: int = 26 * 3600) -> str:
    """The raw material of the time-offset hint (a vendor whose clock or zone is off by a constant):
    unpaired vendor and our records of the same numbers within ``window_s``, and records paired
    by call id whose starts are a quarter hour or more apart (``paired`` = 1)."""
    return f"""
SELECT i.vendor_record, i.event_id, i.dest, i.their_start_ms - i.our_start_ms AS offset_ms,
       i.their_duration_ms - i.our_duration_ms AS duration_gap_ms, 1 AS paired
FROM {items} AS i
WHERE i.event_id IS NOT NULL AND i.vendor_record IS NOT NULL
  AND ABS(i.their_start_ms - i.our_start_ms) >= {OFFSET_MIN_MS}
UNION ALL
SELECT v.vendor_record, o.event_id, COALESCE(o.dest, v.dest) AS dest,
       v.their_start_ms - o.our_start_ms AS offset_ms,
       v.their_duration_ms - o.our_duration_ms AS duration_gap_ms, 0 AS paired
FROM (SELECT * FROM {items} WHERE class = '{VENDOR_ONLY}') AS v
JOIN (SELECT * FROM {items} WHERE class = '{OURS_ONLY}') AS o
  ON COALESCE(v.calling, '') = COALESCE(o.calling, '') AND v.called = o.called
WHERE ABS(v.their_start_ms - o.our_start_ms) <= {int(window_s) * 1000}
"""
