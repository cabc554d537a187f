"""One webhook POST in WaGo's format: form fields `token` and `jsonData`."""

from __future__ import annotations

import json

import httpx

from chalicelib.contract import WireEvent
from chalicelib.settings import get_settings


class DeliveryFailed(Exception):
    """The receiver did not take the event; the record is retried through the queue."""


def post_event(client: httpx.Client, url: str, event: WireEvent) -> int:
    form = {"token": event.token, "jsonData": json.dumps(event.wago_json(), separators=(",", ":"))}
    try:
        response = client.post(url, data=form, headers={"X-Webhook-Event-Id": event.event_id})
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"receiver answered {response.status_code}")
    return response.status_code


def new_client() -> httpx.Client:
    timeout = get_settings().webhook_timeout_seconds
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), follow_redirects=False)
