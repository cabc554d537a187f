"""Webhook signatures: HMAC-SHA256 with the session's secret over `<event id>.<timestamp>.<body>`.

Everything a receiver de-duplicates or orders on is under the signature: the event id (the same on
every attempt), the timestamp of the attempt, and the exact body bytes. A captured delivery replayed
under another event id, or with another timestamp, no longer verifies.

Headers (additive; a WaGo receiver may ignore them):

- `X-Webhook-Event-Id`: the event id: de-duplicate on it;
- `X-Webhook-Timestamp`: Unix seconds when this attempt was sent;
- `X-Webhook-Attempt`: 1 for the first POST of an event, then 2, 3, ... (not signed: a receiver must
  not act on it);
- `X-Webhook-Signature`: `v2=<hex>` when the session has a secret, `<hex> = HMAC-SHA256(secret,
  event_id + "." + timestamp + "." + raw body)`. (`v1=`, over timestamp and body only, left the
  event id unsigned and is no longer sent.)
- the Standard Webhooks headers (https://www.standardwebhooks.com, spec v1): `webhook-id` (the
  event id), `webhook-timestamp`, and, with a secret, `webhook-signature: v1,<base64>` over the same
  `id.timestamp.body` with the same key. A receiver using a Standard Webhooks library passes it the
  secret as `whsec_` + base64(secret bytes) (`standard_secret`).

The fan-out signs with the standard library's hmac (the Lambda package stays lean); the tests verify
deliveries with the `standardwebhooks` package, as a receiver would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

EVENT_ID_HEADER = "X-Webhook-Event-Id"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
ATTEMPT_HEADER = "X-Webhook-Attempt"
SIGNATURE_HEADER = "X-Webhook-Signature"
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
SCHEME = "v2"
MIN_SECRET_LENGTH = 16


def _digest(secret: str, event_id: str, timestamp: str, body: bytes) -> bytes:
    signed = event_id.encode() + b"." + timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).digest()


def signature(secret: str, event_id: str, timestamp: str, body: bytes) -> str:
    """`X-Webhook-Signature`'s value: `v2=<hex HMAC-SHA256(secret, event_id.timestamp.body)>`."""
    return f"{SCHEME}={_digest(secret, event_id, timestamp, body).hex()}"


def standard_signature(secret: str, event_id: str, timestamp: str, body: bytes) -> str:
    """`webhook-signature`'s value (Standard Webhooks): `v1,<base64 of the same HMAC>`."""
    return "v1," + base64.b64encode(_digest(secret, event_id, timestamp, body)).decode()


def standard_secret(secret: str) -> str:
    """The secret in Standard Webhooks' form (`whsec_<base64>`), for a receiver's library."""
    return "whsec_" + base64.b64encode(secret.encode()).decode()


def headers(secret: str | None, event_id: str, timestamp: str, body: bytes) -> dict[str, str]:
    """The timestamp, id and (with a secret) signature headers of one attempt, both conventions."""
    out = {TIMESTAMP_HEADER: timestamp, STANDARD_ID_HEADER: event_id, STANDARD_TIMESTAMP_HEADER: timestamp}
    if secret:
        out[SIGNATURE_HEADER] = signature(secret, event_id, timestamp, body)
        out[STANDARD_SIGNATURE_HEADER] = standard_signature(secret, event_id, timestamp, body)
    return out


def verify(secret: str, event_id: str, timestamp: str, body: bytes, header: str, tolerance: float = 300,
           now: float | None = None) -> bool:
    """Reference check of `X-Webhook-Signature`, as a receiver would do it."""
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    expected = signature(secret, event_id, timestamp, body)
    return any(hmac.compare_digest(expected, part.strip()) for part in header.split(","))


def secret_hint(secret: str | None) -> str | None:
    """What the API shows of a secret: its last four characters."""
    if not secret:
        return None
    return "…" + secret[-4:]
