"""Vendor reconciliation and disputes (pure core).

* ``mapping``: a vendor's CDR layout (YAML), validated.
* ``matching_sql``: the one matching and classification query both engines run.
* ``hints``: cause hints per vendor and destination (increment, time offset, rate change,
  jurisdiction, answer time, duplicates).
* ``variance``: minutes and cost ours vs theirs, and the dispute threshold.
* ``analysis`` / ``documents`` / ``service``: the reconciliation, its outputs, the run.
* ``customer_disputes``: a customer's dispute of an invoice line, open to credit note.

Engines (DuckDB, BigQuery), PDF rendering and storage are adapters; nothing here imports them.
"""
