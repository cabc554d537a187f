"""The per-session delivery log: what happened to each event sent to the session's webhook.

One item per event (`DeliveryModel`), overwritten by each attempt; its `state`:

- `retrying`: the last POST failed (408, 429, 5xx, network); SQS hands the event back after
  `next_retry_seconds`.
- `delivered` (final): the receiver answered 2xx.
- `failed`: the event is in the DLQ (refused status, SSRF guard, or the last allowed attempt);
  `POST /webhook/redrive` puts it back on the events queue, where its state moves on again.
- `dropped` (final): the fan-out decided not to deliver an event the log already showed (retrying,
  or failed and then redriven), with `drop_reason`: `no-session` (the session was deleted),
  `no-webhook` (its webhook URL was removed) or `not-subscribed` (its type is no longer subscribed).
  WaGo sends nothing without a URL or a subscription; the event is then in no queue and no DLQ.

An event dropped on its first attempt is not logged: the log shows what was sent to the webhook,
and a write per filtered event would double the fan-out's writes for a narrow subscription.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from chalicelib.core.contract import WireEvent
from chalicelib.core.models import DeliveryModel
from chalicelib.core.models.base import condition_failed
from chalicelib.core.models.deliveries import delivery_sort_key
from chalicelib.core.observability import logger
from chalicelib.core.settings import get_settings

DELIVERED, RETRYING, FAILED, DROPPED = "delivered", "retrying", "failed", "dropped"
#: States no later decision of the fan-out changes.
FINAL = frozenset({DELIVERED, DROPPED})
#: Why the fan-out drops an event (`drop_reason`; the outcome `dropped:<reason>` in metrics).
NO_SESSION, NO_WEBHOOK, NOT_SUBSCRIBED = "no-session", "no-webhook", "not-subscribed"


def entry(event: WireEvent, *, state: str, attempts: int, status: int | None, latency_ms: float,
          error: str | None = None, next_retry_seconds: int | None = None) -> DeliveryModel:
    """The event's log item as of this attempt (one item per event: each attempt overwrites it)."""
    now = time.time()
    return DeliveryModel(
        event.token,
        delivery_sort_key(event.ts, event.event_id),
        event_id=event.event_id,
        type=event.type,
        state=state,
        attempts=attempts,
        last_status=status or 0,
        last_error=error,
        latency_ms=latency_ms,
        next_retry_seconds=next_retry_seconds,
        delivered_at=now if state == DELIVERED else None,
        updated_at=now,
        expires_at=_expiry(now),
    )


def _expiry(now: float) -> datetime:
    return datetime.fromtimestamp(now + get_settings().delivery_log_ttl_seconds, UTC)


def dropped(prior: DeliveryModel, reason: str) -> DeliveryModel | None:
    """`prior` (the event's log item) closed as `dropped` for `reason` (NO_SESSION, NO_WEBHOOK,
    NOT_SUBSCRIBED), keeping its attempts and its last attempt's status, error and latency; None when
    there is nothing to close (the event was delivered, or is dropped already)."""
    if prior.state in FINAL:
        return None
    now = time.time()
    return DeliveryModel(
        prior.token,
        prior.sk,
        event_id=prior.event_id,
        type=prior.type,
        state=DROPPED,
        drop_reason=reason,
        attempts=prior.attempts,
        last_status=prior.last_status,
        last_error=prior.last_error,
        latency_ms=prior.latency_ms,
        next_retry_seconds=None,
        delivered_at=None,
        updated_at=now,
        expires_at=_expiry(now),
    )


def close_dropped(event: WireEvent, reason: str) -> bool:
    """Close the event's log item as `dropped` when its state is not at hand (the batch's prefetch
    failed): one conditional UpdateItem that changes an existing, not final item and creates none.
    True if it closed one; a log failure is logged, never raised (as `save_all`)."""
    now = time.time()
    item = DeliveryModel(event.token, delivery_sort_key(event.ts, event.event_id))
    try:
        item.update(
            actions=[
                DeliveryModel.state.set(DROPPED),
                DeliveryModel.drop_reason.set(reason),
                DeliveryModel.next_retry_seconds.remove(),
                DeliveryModel.updated_at.set(now),
                DeliveryModel.expires_at.set(_expiry(now)),
            ],
            condition=DeliveryModel.sk.exists() & ~DeliveryModel.state.is_in(*FINAL),
        )
    except Exception as exc:  # noqa: BLE001 - the log is best effort
        if not condition_failed(exc):  # not logged, or final already: nothing to close
            logger.exception("delivery log write failed", extra={"event_ids": [event.event_id]})
        return False
    return True


def record(event: WireEvent, **fields: Any) -> None:
    """Write one entry now."""
    save_all([entry(event, **fields)])


def save_all(items: list[DeliveryModel]) -> None:
    """Write entries in batches (one request per 25). A log failure never fails a delivery."""
    # One request may not name a key twice (SQS can hand the same event over twice in one batch).
    latest = {(item.token, item.sk): item for item in items}
    if not latest:
        return
    try:
        with DeliveryModel.batch_write() as batch:
            for item in latest.values():
                batch.save(item)
    except Exception:  # noqa: BLE001 - the log is best effort, the delivery outcome stands
        logger.exception("delivery log write failed", extra={"event_ids": [i.event_id for i in items]})


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(float(epoch), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_dict(item: DeliveryModel) -> dict[str, Any]:
    return {
        "eventId": item.event_id,
        "type": item.type,
        "state": item.state,
        "dropReason": item.drop_reason,
        "attempts": int(item.attempts or 0),
        "lastStatus": int(item.last_status or 0),
        "lastError": item.last_error,
        "latencyMs": float(item.latency_ms or 0),
        "nextRetrySeconds": None if item.next_retry_seconds is None else int(item.next_retry_seconds),
        "deliveredAt": _iso(item.delivered_at),
        "updatedAt": _iso(item.updated_at),
    }


def recent(token: str, limit: int = 50, before: str | None = None) -> tuple[list[DeliveryModel], str | None]:
    """Newest first; `before` is the cursor a previous page returned."""
    condition = DeliveryModel.sk < before if before else None
    query = DeliveryModel.query(token, range_key_condition=condition, scan_index_forward=False, limit=limit,
                                consistent_read=True)
    items = list(query)
    cursor = items[-1].sk if len(items) == limit and query.last_evaluated_key else None
    return items, cursor
