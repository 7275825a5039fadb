"""The rating core also passes its tests as pure Python.

`make venv` compiles the rating hot path with mypyc, but Cloud Functions deploy the pure
source (tools/function_bundles.py leaves the .so files out). This runs the rating tests again
against a copy of the package without compiled modules, so both builds are checked.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RATING_TESTS = [
    "tests/unit/test_money.py", "tests/unit/rating/test_rate_deck.py", "tests/unit/rating/test_jurisdiction.py",
    "tests/unit/rating/test_voice_rating.py", "tests/unit/rating/test_time_of_day.py",
    "tests/unit/rating/test_messaging_and_api_rating.py", "tests/unit/rating/test_rater_input_handling.py",
    "tests/unit/rating/test_rating_properties.py", "tests/unit/rating/test_event_check.py",
]


def test_rating_tests_pass_on_the_pure_python_package(tmp_path):
    shutil.copytree(ROOT / "shared" / "warp_billing", tmp_path / "warp_billing",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    probe = subprocess.run([sys.executable, "-c", "import warp_billing.rating.voice as v; print(v.__file__)"],
                           env=env, capture_output=True, text=True, timeout=60, check=True)
    assert probe.stdout.strip() == str(tmp_path / "warp_billing" / "rating" / "voice.py")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *RATING_TESTS],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]
