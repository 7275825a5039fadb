"""Optional mypyc build of the rating hot path.

WARP_COMPILE=1 pip install [-e] .   -> compiled extension modules (mypyc)
pip install [-e] .                  -> pure Python (default)
Metadata stays in pyproject.toml; this file only adds ext_modules.
"""

import os
from pathlib import Path

from setuptools import setup

# Every rating module is on the hot path except these (the package marker and the cold deck
# report); a new kind's rater module under rating/ is compiled without editing this list.
COLD_RATING_MODULES = {"__init__", "deck_report"}
HOT_MODULES = [
    "shared/warp_billing/money.py",
    "shared/warp_billing/timeutil.py",
    *sorted(
        f"shared/warp_billing/rating/{path.name}"
        for path in Path(__file__).resolve().parent.joinpath("shared", "warp_billing", "rating").glob("*.py")
        if path.stem not in COLD_RATING_MODULES
    ),
]

ext_modules = []
if os.environ.get("WARP_COMPILE") == "1":
    from mypyc.build import mypycify

    ext_modules = mypycify(
        HOT_MODULES,
        opt_level=os.environ.get("MYPYC_OPT_LEVEL", "3"),
        # plan.py (pydantic) and everything else stay interpreted; mypyc only needs their types.
    )

setup(ext_modules=ext_modules)
