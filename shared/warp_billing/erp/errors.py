"""Named errors of the ERP sync: transient (retry later) versus permanent (record and stop)."""

from __future__ import annotations


class ErpError(Exception):
    """Base of the ERP sync's errors."""


class ErpTransient(ErpError):
    """Try again later: throttled (429, SSS_REQUEST_LIMIT_EXCEEDED), 5xx, timeout, auth hiccup.

    ``retry_after_s`` is the server's Retry-After when it gave one.
    """

    def __init__(self, message: str, *, retry_after_s: int | None = None, code: str = "TRANSIENT"):
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.code = code


class ErpRejected(ErpError):
    """The ERP refused the record (a validation error with ``o:errorDetails``): permanent."""

    def __init__(self, code: str, detail: str, path: str = "", status: int = 400):
        super().__init__(f"{code}: {detail}" + (f" (at {path})" if path else ""))
        self.code = code
        self.detail = detail
        self.path = path
        self.status = status


class MappingError(ErpError):
    """A document names something the mapping does not map (a SKU, a fee, an account ...): permanent.

    The message names the missing key, the document and the mapping file and version.
    """

    def __init__(self, code: str, detail: str, path: str = ""):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.path = path


class MappingFileError(ErpError):
    """The mapping file itself cannot be used (missing, not YAML, unknown keys, no version)."""
