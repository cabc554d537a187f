"""WaGo's subscription rule: an event goes out if its type, or `All`, is subscribed."""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.core.contract import ALL_EVENTS, EVENT_TYPES

_CANONICAL = {name.lower(): name for name in (*EVENT_TYPES, ALL_EVENTS)}


def normalize_subscription(values: Iterable[str]) -> list[str]:
    """Known names in WaGo's casing, de-duplicated in order; unknown names are dropped; empty -> All."""
    seen: list[str] = []
    for value in values:
        name = _CANONICAL.get(value.strip().lower())
        if name and name not in seen:
            seen.append(name)
    return seen or [ALL_EVENTS]


def is_subscribed(subscription: Iterable[str], event_type: str) -> bool:
    names = set(subscription)
    return ALL_EVENTS in names or event_type in names
