"""Webhook signatures: HMAC-SHA256 over `<timestamp>.<body>` with the session's secret.

Headers (additive; a WaGo receiver may ignore them):

- `X-Webhook-Event-Id`: the event id (the same on every attempt: de-duplicate on it);
- `X-Webhook-Timestamp`: Unix seconds when this attempt was sent;
- `X-Webhook-Attempt`: 1 for the first POST of an event, then 2, 3, ...;
- `X-Webhook-Signature`: `v1=<hex>`, present when the session has a secret, where
  `<hex> = HMAC-SHA256(secret, timestamp + "." + raw request body)`.

A receiver recomputes the HMAC over the exact bytes it received, compares in constant time and
refuses timestamps too far from its clock (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time

EVENT_ID_HEADER = "X-Webhook-Event-Id"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
ATTEMPT_HEADER = "X-Webhook-Attempt"
SIGNATURE_HEADER = "X-Webhook-Signature"
SCHEME = "v1"
MIN_SECRET_LENGTH = 16


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def verify(secret: str, timestamp: str, body: bytes, header: str, tolerance: float = 300,
           now: float | None = None) -> bool:
    """Reference check, as a receiver would do it."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return any(hmac.compare_digest(signature(secret, timestamp, body), part.strip()) for part in header.split(","))


def secret_hint(secret: str | None) -> str | None:
    """What the API shows of a secret: its last four characters."""
    if not secret:
        return None
    return "…" + secret[-4:]
