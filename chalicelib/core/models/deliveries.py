"""The per-session webhook delivery log: one item per event, updated on every attempt, expired by TTL."""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.core.models.base import table_meta
from chalicelib.core.settings import get_settings

_settings = get_settings()


def delivery_sort_key(event_ts: float, event_id: str) -> str:
    """`<event time in ms, zero-padded>#<event id>`: newest-first queries are a reverse range read."""
    return f"{int(event_ts * 1000):015d}#{event_id}"


class DeliveryModel(Model):
    """One webhook delivery of one event to one session's webhook: its state and last attempt
    (`GET /webhook/deliveries`); keyed by (token, delivery_sort_key), expired by DynamoDB TTL."""

    Meta = table_meta(_settings.deliveries_table_name)

    token = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)  # delivery_sort_key(event.ts, event.event_id)
    event_id = UnicodeAttribute()
    type = UnicodeAttribute(default="")
    state = UnicodeAttribute(default="pending")  # delivered | retrying | failed | dropped
    drop_reason = UnicodeAttribute(null=True)  # state dropped: no-session | no-webhook | not-subscribed
    attempts = NumberAttribute(default=0)
    last_status = NumberAttribute(default=0)  # HTTP status of the last attempt; 0 = no HTTP answer
    last_error = UnicodeAttribute(null=True)
    latency_ms = NumberAttribute(default=0)  # of the last attempt
    next_retry_seconds = NumberAttribute(null=True)
    delivered_at = NumberAttribute(null=True)  # epoch seconds
    updated_at = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)
