"""Optional mypyc build of the rating hot path.

WARP_COMPILE=1 pip install [-e] .   -> compiled extension modules (mypyc)
pip install [-e] .                  -> pure Python (default)
Metadata stays in pyproject.toml; this file only adds ext_modules.
"""

import os

from setuptools import setup

HOT_MODULES = [
    "shared/warp_billing/money.py",
    "shared/warp_billing/timeutil.py",
    *(
        f"shared/warp_billing/rating/{name}.py"
        for name in (
            "deck", "jurisdiction", "numbering", "voice", "time_of_day", "events", "margin",
            "rater", "rated_event", "messaging", "api_queries", "rejections", "summary", "usage_file",
        )
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
