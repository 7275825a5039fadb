"""Rated usage from a `warp rate` JSONL file (``RatedUsageSource``): today's streaming scan.

One pass over the file for every customer of the close (``billing.rated_file``). A file has
no write times, so it has no late usage: the windows' watermarks are not used and nothing is
billed as prior-period. The conservation check needs a second, independent sum, which a
single pass does not give: ``rated_amount`` stays None (reported "not checked").
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..billing.close_usage import CloseUsage, CloseWindow, UsageBatch
from ..billing.rated_file import scan_rated_file
from ..billing.usage_lines import UsageWindow


class RatedFileSource:
    """``RatedUsageSource`` on one rated JSONL file."""

    def __init__(self, path: str | os.PathLike[str], jobs: int | None = None):
        self.path = str(path)
        self.jobs = jobs

    def close_usage(self, windows: Sequence[CloseWindow]) -> UsageBatch:
        scan = scan_rated_file(self.path, {w.customer_id: UsageWindow.for_cycle(w.customer_id, w.cycle)
                                           for w in windows}, self.jobs)
        usage = {customer: CloseUsage(customer, found) for customer, found in scan.usage.items()}
        rows = sum(len(found.current.groups) for found in usage.values())
        return UsageBatch(usage, rows_returned=rows, report=scan.report)
