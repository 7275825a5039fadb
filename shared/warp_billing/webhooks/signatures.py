"""Signature checks of inbound webhooks, pure (no HTTP, no clock, no settings).

Authorize.Net: ``X-ANET-Signature: sha512=<hex>`` is HMAC-SHA512 of the raw body, the key being
the merchant's Signature Key string as-is (reference.md); the hex may come in either case.
NetSuite (our own scheme, sent by the SuiteScript User Event): ``X-Warp-Signature:
t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``, accepted within a tolerance of
the receiver's clock so a captured request cannot be replayed later. Every comparison is
constant-time (``hmac.compare_digest``) so timing reveals nothing about the expected value.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import Enum


class SignatureVerdict(str, Enum):
    """Why a request was accepted or refused (logged; the caller answers 401 unless VALID)."""

    VALID = "valid"
    MISSING = "signature_missing"
    MALFORMED = "signature_malformed"
    MISMATCH = "signature_mismatch"
    STALE = "signature_stale"
    NOT_CONFIGURED = "secret_not_configured"


def authorize_net_signature(body: bytes, signature_key: str) -> str:
    """The value Authorize.Net puts in ``X-ANET-Signature`` for ``body`` (uppercase hex, as it sends)."""
    digest = hmac.new(signature_key.encode("utf-8"), body, hashlib.sha512).hexdigest().upper()
    return f"sha512={digest}"


def verify_authorize_net(body: bytes, header: str | None, signature_key: str) -> SignatureVerdict:
    """Check an Authorize.Net notification's signature header against the raw body."""
    if not signature_key:
        return SignatureVerdict.NOT_CONFIGURED
    if not header:
        return SignatureVerdict.MISSING
    scheme, sep, given = header.strip().partition("=")
    if not sep or scheme.strip().lower() != "sha512" or not _is_hex(given, 128):
        return SignatureVerdict.MALFORMED
    expected = hmac.new(signature_key.encode("utf-8"), body, hashlib.sha512).hexdigest()
    if hmac.compare_digest(expected.encode("ascii"), given.lower().encode("ascii")):
        return SignatureVerdict.VALID
    return SignatureVerdict.MISMATCH


def netsuite_signature(body: bytes, secret: str, timestamp: int) -> str:
    """The ``X-Warp-Signature`` value for ``body`` sent at ``timestamp`` (what the SuiteScript computes)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_netsuite(
    body: bytes, header: str | None, secret: str, now_s: int, tolerance_s: int = 300
) -> SignatureVerdict:
    """Check a NetSuite event's signature header; ``now_s`` is the receiver's clock (unix seconds)."""
    if not secret:
        return SignatureVerdict.NOT_CONFIGURED
    if not header:
        return SignatureVerdict.MISSING
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            return SignatureVerdict.MALFORMED
        parts.setdefault(name, []).append(value)
    stamps, macs = parts.get("t", []), parts.get("v1", [])
    if len(stamps) != 1 or not stamps[0].isdigit() or len(stamps[0]) > 12 or not macs:
        return SignatureVerdict.MALFORMED
    timestamp = int(stamps[0])
    if abs(now_s - timestamp) > tolerance_s:
        return SignatureVerdict.STALE
    signed = stamps[0].encode("ascii") + b"." + body
    expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest().encode("ascii")
    # Several v1 values are allowed so the secret can be rotated without downtime.
    for given in macs:
        if _is_hex(given, 64) and hmac.compare_digest(expected, given.lower().encode("ascii")):
            return SignatureVerdict.VALID
    return SignatureVerdict.MISMATCH


def _is_hex(value: str, length: int) -> bool:
    return len(value) == length and all(ch in "0123456789abcdefABCDEF" for ch in value)
