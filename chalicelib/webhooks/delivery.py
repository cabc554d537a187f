"""One webhook POST in WaGo's format, with the additive headers, pinned to an SSRF-checked address.

Body: form fields `token` and `jsonData` (`application/x-www-form-urlencoded`), or the same fields
plus a `file` part (`multipart/form-data`) when the event carries media and forwarding is on.

Connections are kept alive across events and invocations: every response body is read (up to
DRAIN_LIMIT bytes; a longer one closes its connection instead), so the connection goes back to the
pool. HTTPS receivers that offer HTTP/2 in ALPN get one multiplexed connection (httpx + h2).
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

#: Connections to one receiver host at most (the fan-out POSTs up to 10 records of a batch at once).
CONNECTIONS_PER_HOST = 10
#: An idle connection is closed after this (receivers commonly time out idle keep-alives at 60-75 s).
KEEPALIVE_SECONDS = 50.0


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


#: Bytes of a receiver's answer read to keep its connection; a longer body closes the connection.
DRAIN_LIMIT = 64 << 10


def post_event(client: httpx.Client | ClientPool, url: str, event: WireEvent, *, attempt: int = 1,
               secret: str | None = None, attachment: Attachment | None = None,
               guard: Guard | None = None, target: Target | None = None) -> AttemptResult:
    """POST once, to `target` if given (an address the guard checked for this URL), else to the
    address the guard resolves now. Raises ssrf.BlockedDestination if the URL may not be contacted;
    never raises for network errors (they come back as status None)."""
    started = time.perf_counter()
    try:
        if target is None:
            target = (guard or Guard.from_settings()).resolve(url)
        if isinstance(client, ClientPool):
            client = client.get(target.host)
        request = build_request(client, url, event, attempt=attempt, secret=secret, attachment=attachment,
                                target=target)
        response = client.send(request, stream=True)
        try:
            _drain(response)
        finally:
            response.close()  # after a full read: the connection returns to the pool
    except (httpx.HTTPError, OSError) as exc:
        return AttemptResult(None, _ms(started), f"{type(exc).__name__}: {exc}"[:500])
    error = None if 200 <= response.status_code < 300 else f"receiver answered {response.status_code}"
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    return AttemptResult(response.status_code, _ms(started), error, retry_after)


def _drain(response: httpx.Response) -> None:
    """Read the answer's body (discarded) so its keep-alive connection can carry the next POST."""
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > DRAIN_LIMIT:
        return  # not worth reading: close() drops the connection
    seen = 0
    for chunk in response.iter_raw():
        seen += len(chunk)
        if seen > DRAIN_LIMIT:
            return


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class ClientPool:
    """One keep-alive client per webhook host name (its connections are reused across events).

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
        http2=True,  # negotiated by ALPN on https: one multiplexed connection where the receiver offers it
        # HTTP/1.1: at most one connection per concurrent POST of a batch, all kept alive between them.
        limits=httpx.Limits(max_connections=CONNECTIONS_PER_HOST, max_keepalive_connections=CONNECTIONS_PER_HOST,
                            keepalive_expiry=KEEPALIVE_SECONDS),
    )
