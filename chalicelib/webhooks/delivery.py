"""One webhook POST in WaGo's format, with the additive headers, pinned to an SSRF-checked address.

Body: form fields `token` and `jsonData` (`application/x-www-form-urlencoded`), or the same fields
plus a `file` part (`multipart/form-data`) when the event carries media and forwarding is on.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import httpx

from chalicelib.core.contract import WireEvent
from chalicelib.core.settings import get_settings
from chalicelib.core.ssrf import Guard, Target
from chalicelib.webhooks import signing
from chalicelib.webhooks.media import Attachment
from chalicelib.webhooks.retry import retry_after_seconds


@dataclass(frozen=True)
class AttemptResult:
    status: int | None  # None: no HTTP answer
    latency_ms: float
    error: str | None = None
    retry_after: float | None = None


def form_fields(event: WireEvent) -> dict[str, str]:
    return {"token": event.token, "jsonData": json.dumps(event.wago_json(), separators=(",", ":"), ensure_ascii=False)}


def build_request(client: httpx.Client, url: str, event: WireEvent, *, attempt: int, secret: str | None,
                  attachment: Attachment | None = None, target: Target | None = None,
                  now: float | None = None) -> httpx.Request:
    """The exact request, signed over the bytes that will be sent."""
    original = httpx.URL(url)
    headers = {signing.EVENT_ID_HEADER: event.event_id, signing.ATTEMPT_HEADER: str(attempt)}
    extensions = {}
    if target is not None:  # connect to the checked address; keep the name for Host and TLS (SNI, cert)
        headers["Host"] = original.netloc.decode("ascii")
        if original.scheme == "https":
            extensions["sni_hostname"] = target.host
        original = original.copy_with(host=target.address)
    files = {"file": (attachment.filename, attachment.data, attachment.content_type)} if attachment else None
    request = client.build_request("POST", original, data=form_fields(event), files=files, headers=headers,
                                   extensions=extensions)
    body = request.read()
    timestamp = str(int(time.time() if now is None else now))
    request.headers.update(signing.headers(secret, event.event_id, timestamp, body))
    return request


def post_event(client: httpx.Client | ClientPool, url: str, event: WireEvent, *, attempt: int = 1,
               secret: str | None = None, attachment: Attachment | None = None,
               guard: Guard | None = None) -> AttemptResult:
    """POST once. Raises ssrf.BlockedDestination if the URL may not be contacted; never raises for
    network errors (they come back as status None)."""
    started = time.perf_counter()
    try:
        target = (guard or Guard.from_settings()).resolve(url)
        if isinstance(client, ClientPool):
            client = client.get(target.host)
        request = build_request(client, url, event, attempt=attempt, secret=secret, attachment=attachment,
                                target=target)
        response = client.send(request, stream=True)  # the receiver's body is never read
        response.close()
    except (httpx.HTTPError, OSError) as exc:
        return AttemptResult(None, _ms(started), f"{type(exc).__name__}: {exc}"[:500])
    error = None if 200 <= response.status_code < 300 else f"receiver answered {response.status_code}"
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    return AttemptResult(response.status_code, _ms(started), error, retry_after)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class ClientPool:
    """One keep-alive client per webhook host name.

    Requests go to a pinned address, and httpx pools connections by address: two names on one
    address (a CDN) would otherwise share a TLS connection made, and verified, for the other name.
    """

    def __init__(self, max_hosts: int = 64):
        self.max_hosts = max_hosts
        self._clients: OrderedDict[str, httpx.Client] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, host: str) -> httpx.Client:
        with self._lock:
            client = self._clients.pop(host, None) or new_client()
            self._clients[host] = client
            while len(self._clients) > self.max_hosts:
                _, old = self._clients.popitem(last=False)
                old.close()
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def new_client() -> httpx.Client:
    timeout = get_settings().webhook_timeout_seconds
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        follow_redirects=False,  # a redirect could lead past the SSRF guard
        trust_env=False,  # no proxy from the environment
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )
