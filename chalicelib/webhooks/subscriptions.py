"""WaGo's subscription rule for the fan-out; the rule itself lives in chalicelib/core/subscriptions.py
(the API and the session hosts set subscriptions through the same parser and default)."""

from __future__ import annotations

from chalicelib.core.subscriptions import is_subscribed, normalize_subscription

__all__ = ["is_subscribed", "normalize_subscription"]
