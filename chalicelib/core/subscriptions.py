"""WaGo's subscriptions: which event types go to a session's webhook (an event goes out if its type,
or `All`, is subscribed).

One parser and one default for every path that sets them: `/session/connect` (WaGo: an empty or
missing `Subscribe` means All), `/session/pair` (a missing `Subscribe` keeps what is stored, and a
session with nothing stored gets the default), and a host starting a session whose row has none (a
restore). Before this rule a session paired by code had `[]`: no webhook at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.core.contract import ALL_EVENTS, EVENT_TYPES

#: What a session gets when nothing (or nothing known) was asked for: WaGo's `All`.
DEFAULT: tuple[str, ...] = (ALL_EVENTS,)
_CANONICAL = {name.lower(): name for name in (*EVENT_TYPES, ALL_EVENTS)}


def normalize_subscription(values: Iterable[str]) -> list[str]:
    """Known names in WaGo's casing, de-duplicated in order; unknown names are dropped; empty -> All."""
    seen: list[str] = []
    for value in values:
        name = _CANONICAL.get(value.strip().lower())
        if name and name not in seen:
            seen.append(name)
    return seen or list(DEFAULT)


def parse_subscription(value: list[str] | str | None) -> list[str]:
    """WaGo's `Subscribe`: a list, or one comma-separated string; None or empty -> All."""
    if value is None:
        return list(DEFAULT)
    if isinstance(value, str):
        value = value.split(",")
    return normalize_subscription(value)


def resolve_subscription(given: list[str] | str | None, stored: Iterable[str] | None) -> list[str]:
    """A path that may leave the subscription as it is: `given` when present, else what is stored, else
    the default (never the empty subscription)."""
    if given is not None:
        return parse_subscription(given)
    kept = [str(name) for name in stored or ()]
    return kept or list(DEFAULT)


def is_subscribed(subscription: Iterable[str], event_type: str) -> bool:
    """Whether a session with this subscription (WaGo event type names, as stored) gets an event of
    `event_type` (`Message`, `ReadReceipt`, ...) on its webhook: its type or `All` is in it (WaGo)."""
    names = set(subscription)
    return ALL_EVENTS in names or event_type in names
