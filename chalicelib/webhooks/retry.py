"""Retry policy: which outcomes are retried, and after how long.

- 2xx: delivered;
- 408, 429, 5xx and network errors (connect, read timeout, DNS): retried with exponential backoff
  and jitter, through the SQS message's visibility timeout;
- any other status (3xx, since redirects are not followed, and 4xx): the receiver refused the
  event; retrying will not help, so it goes to the DLQ at once.
"""

from __future__ import annotations

import enum
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: SQS's longest visibility timeout.
MAX_VISIBILITY_SECONDS = 43200
RETRYABLE_STATUSES = frozenset({408, 429})


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REJECTED = "rejected"


def classify(status: int | None) -> Verdict:
    """`None` means there was no HTTP answer (network error, timeout)."""
    if status is None:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status in RETRYABLE_STATUSES or 500 <= status < 600:
        return Verdict.RETRY
    return Verdict.REJECTED


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before attempt `attempt + 1`: `min(cap, base * 2**(attempt-1))`, half of it jittered."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header (seconds or HTTP date) in seconds, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # RFC 9110 §10.2.3: delay-seconds = 1*DIGIT (ASCII; "²" is not one)
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def visibility_for(attempt: int, base: float, cap: float, retry_after: float | None = None,
                   rng: random.Random | None = None) -> int:
    """Whole seconds the failed message stays hidden (a receiver's Retry-After is honoured up to the cap)."""
    delay = backoff_seconds(attempt, base, cap, rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return max(0, min(MAX_VISIBILITY_SECONDS, int(round(delay))))
