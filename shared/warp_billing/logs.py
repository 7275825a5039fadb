"""Structured logs for Cloud Logging: one JSON object per line on stdout.

Cloud Functions (gen2) and Cloud Run read ``severity`` and ``message`` from each stdout
line; every other key becomes part of ``jsonPayload`` and can be filtered on
(``jsonPayload.event_id="..."``). Modules log through the standard ``logging`` module and
pass their identifiers as ``extra``::

    log = logging.getLogger(__name__)
    log.info("event charged", extra={"event_id": ..., "customer_id": ...})

``configure()`` is called once per instance by the composition root; it is idempotent.
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime

import orjson

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_SEVERITY = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARNING", "ERROR": "ERROR", "CRITICAL": "CRITICAL"}
_HANDLER_MARK = "_warp_cloud_logging"


class CloudLoggingFormatter(logging.Formatter):
    """Formats a record as the JSON line Cloud Logging parses (severity, message, fields)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": _SEVERITY.get(record.levelname, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            # Error Reporting picks up a stack trace that is part of the message.
            entry["message"] += "\n" + "".join(traceback.format_exception(*record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure(level: str = "INFO", stream=None) -> None:
    """Send the root logger's records to stdout as Cloud Logging JSON lines (once)."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if getattr(handler, _HANDLER_MARK, False):
            handler.setLevel(level)
            return
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
