"""Fixtures of the billing tests."""

from __future__ import annotations

import pytest
from tests.unit.billing.billing_builders import write_rated


@pytest.fixture
def rated_file(tmp_path):
    """Write records to a rated JSONL file; returns its path."""
    counter = iter(range(1_000_000))

    def write(*records: dict) -> str:
        return write_rated(tmp_path / f"rated-{next(counter)}.jsonl", *records)

    return write
