"""A compiled module older than its source refuses to load instead of running stale code."""

import os

import pytest

import warp_billing


def test_a_compiled_module_older_than_its_source_is_refused(tmp_path):
    (tmp_path / "voice.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    (tmp_path / "voice.py").write_text("# edited after the build\n")
    os.utime(tmp_path / "voice.cpython-311-x86_64-linux-gnu.so", (1_000_000, 1_000_000))
    with pytest.raises(ImportError, match="make venv"):
        warp_billing._refuse_stale_compiled_modules((str(tmp_path),))


def test_a_fresh_compiled_module_is_accepted(tmp_path):
    (tmp_path / "voice.py").write_text("# source\n")
    (tmp_path / "voice.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    os.utime(tmp_path / "voice.py", (1_000_000, 1_000_000))
    warp_billing._refuse_stale_compiled_modules((str(tmp_path),))
