"""The per-session delivery log: what happened to each event sent to the session's webhook."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from chalicelib.core.contract import WireEvent
from chalicelib.core.models import DeliveryModel
from chalicelib.core.models.deliveries import delivery_sort_key
from chalicelib.core.observability import logger
from chalicelib.core.settings import get_settings

DELIVERED, RETRYING, FAILED = "delivered", "retrying", "failed"


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
        expires_at=datetime.fromtimestamp(now + get_settings().delivery_log_ttl_seconds, UTC),
    )


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
