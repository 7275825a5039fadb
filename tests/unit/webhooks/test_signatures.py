"""Webhook signatures: Authorize.Net HMAC-SHA512 and our NetSuite t=/v1= scheme, against an
independent computation, with forged, missing, malformed and stale headers."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import example, given
from hypothesis import strategies as st

from warp_billing.webhooks.signatures import (
    SignatureVerdict,
    authorize_net_signature,
    netsuite_signature,
    verify_authorize_net,
    verify_netsuite,
)

KEY = "1F6A7C0E" * 16  # Authorize.Net signature keys are 128 hex characters, used as a string
SECRET = "ns-shared-secret"


def anet_reference(body: bytes, key: str) -> str:
    return "sha512=" + hmac.new(key.encode(), body, hashlib.sha512).hexdigest().upper()


@given(st.binary(max_size=2000))
@example(b"")
@example('{"notificationId":"é"}'.encode())
def test_authorize_net_accepts_its_own_signature_in_either_case(body):
    header = anet_reference(body, KEY)
    assert authorize_net_signature(body, KEY) == header
    assert verify_authorize_net(body, header, KEY) is SignatureVerdict.VALID
    assert verify_authorize_net(body, header.lower(), KEY) is SignatureVerdict.VALID
    assert verify_authorize_net(body, "SHA512=" + header[7:].lower(), KEY) is SignatureVerdict.VALID


@given(st.binary(min_size=1, max_size=500), st.integers(min_value=0, max_value=10_000))
def test_authorize_net_refuses_any_changed_byte(body, position):
    header = anet_reference(body, KEY)
    i = position % len(body)
    forged = body[:i] + bytes([body[i] ^ 1]) + body[i + 1:]
    assert verify_authorize_net(forged, header, KEY) is SignatureVerdict.MISMATCH


def test_authorize_net_refuses_missing_malformed_and_other_key():
    body = b'{"notificationId":"n1"}'
    assert verify_authorize_net(body, None, KEY) is SignatureVerdict.MISSING
    assert verify_authorize_net(body, "", KEY) is SignatureVerdict.MISSING
    assert verify_authorize_net(body, "sha256=" + "0" * 128, KEY) is SignatureVerdict.MALFORMED
    assert verify_authorize_net(body, "sha512=" + "g" * 128, KEY) is SignatureVerdict.MALFORMED
    assert verify_authorize_net(body, "sha512=abc", KEY) is SignatureVerdict.MALFORMED
    assert verify_authorize_net(body, anet_reference(body, KEY.lower()), KEY) is SignatureVerdict.MISMATCH
    # An unconfigured key must never make an empty-key HMAC acceptable.
    assert verify_authorize_net(body, anet_reference(body, ""), "") is SignatureVerdict.NOT_CONFIGURED


def ns_reference(body: bytes, secret: str, t: int) -> str:
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@given(st.binary(max_size=2000), st.integers(min_value=0, max_value=4_000_000_000), st.integers(-300, 300))
@example(b"{}", 1_700_000_000, 300)
@example(b"{}", 1_700_000_000, -300)
def test_netsuite_accepts_within_tolerance(body, t, skew):
    header = ns_reference(body, SECRET, t)
    assert netsuite_signature(body, SECRET, t) == header
    assert verify_netsuite(body, header, SECRET, now_s=t + skew) is SignatureVerdict.VALID


@given(st.integers(min_value=301, max_value=10**9))
@example(301)
def test_netsuite_refuses_stale_and_future(skew):
    t = 1_700_000_000
    header = ns_reference(b"{}", SECRET, t)
    assert verify_netsuite(b"{}", header, SECRET, now_s=t + skew) is SignatureVerdict.STALE
    assert verify_netsuite(b"{}", header, SECRET, now_s=t - skew) is SignatureVerdict.STALE


def test_netsuite_refuses_forged_missing_malformed():
    t, body = 1_700_000_000, b'{"id":"e1"}'
    good = ns_reference(body, SECRET, t)
    assert verify_netsuite(body, None, SECRET, t) is SignatureVerdict.MISSING
    assert verify_netsuite(body, "v1=" + "0" * 64, SECRET, t) is SignatureVerdict.MALFORMED
    assert verify_netsuite(body, f"t={t}", SECRET, t) is SignatureVerdict.MALFORMED
    assert verify_netsuite(body, f"t=-5,v1={'0' * 64}", SECRET, t) is SignatureVerdict.MALFORMED
    assert verify_netsuite(body, f"t={t},t={t},v1={'0' * 64}", SECRET, t) is SignatureVerdict.MALFORMED
    assert verify_netsuite(body + b" ", good, SECRET, t) is SignatureVerdict.MISMATCH
    # the timestamp is signed: moving it forward to pass the tolerance breaks the MAC
    moved = good.replace(f"t={t}", f"t={t + 1000}")
    assert verify_netsuite(body, moved, SECRET, t + 1000) is SignatureVerdict.MISMATCH
    assert verify_netsuite(body, ns_reference(body, "other", t), SECRET, t) is SignatureVerdict.MISMATCH
    assert verify_netsuite(body, ns_reference(body, "", t), "", t) is SignatureVerdict.NOT_CONFIGURED
    # rotation: any of several v1 values may match
    rotated = f"t={t},v1={'0' * 64},v1={good.split('v1=')[1]}"
    assert verify_netsuite(body, rotated, SECRET, t) is SignatureVerdict.VALID
