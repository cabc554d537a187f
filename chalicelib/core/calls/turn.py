"""ICE servers for the browser (/call/webrtc/config) and the host's WebRTC legs.

WaGo hard-codes Google's STUN server and answers TURN as `coming_soon`. Here both come from settings:
- `ICE_STUN_URLS`: STUN servers (none by default: an unreachable server stalls ICE gathering, 5 s in
  aiortc and up to 40 s in Chromium, so there is no built-in public default);
- `TURN_URLS` with either static credentials (`TURN_USERNAME` + `TURN_CREDENTIAL`) or coturn's REST-API
  scheme (`TURN_SHARED_SECRET`): username `<expiry epoch>:<TURN_USER>`, password
  base64(HMAC-SHA1(secret, username)), valid for `TURN_TTL_SECONDS`.

`turn.status` is `disabled` (no TURN URLs), `enabled` (URLs and credentials) or `misconfigured`
(URLs without any credentials: those servers are left out).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.core.settings import Settings

DISABLED = "disabled"
ENABLED = "enabled"
MISCONFIGURED = "misconfigured"


def split_urls(value: str) -> list[str]:
    """A comma-separated setting -> its non-empty, trimmed parts ("a, ,b" -> ["a", "b"])."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def rest_credentials(secret: str, user: str, ttl_seconds: int, now: float) -> tuple[str, str]:
    """coturn's TURN REST API: (username, password) valid until now + ttl."""
    username = f"{int(now) + int(ttl_seconds)}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def turn_status(settings: Settings) -> dict[str, Any]:
    """`/call/webrtc/config`'s `turn` object: {enabled, status: disabled|enabled|misconfigured,
    credentials?: ephemeral|static, ttl?: seconds}. WaGo answers `coming_soon` here; the states are ours."""
    urls = split_urls(settings.turn_urls)
    if not urls:
        return {"enabled": False, "status": DISABLED}
    if settings.turn_shared_secret:
        return {"enabled": True, "status": ENABLED, "credentials": "ephemeral", "ttl": settings.turn_ttl_seconds}
    if settings.turn_username and settings.turn_credential:
        return {"enabled": True, "status": ENABLED, "credentials": "static"}
    return {"enabled": False, "status": MISCONFIGURED}


def ice_servers(settings: Settings, now: float | None = None) -> list[dict[str, Any]]:
    """RTCIceServer dicts ({urls, username?, credential?}); empty when nothing is configured."""
    servers: list[dict[str, Any]] = []
    stun = split_urls(settings.ice_stun_urls)
    if stun:
        servers.append({"urls": stun})
    turn = split_urls(settings.turn_urls)
    if turn:
        if settings.turn_shared_secret:
            username, credential = rest_credentials(settings.turn_shared_secret, settings.turn_user,
                                                    settings.turn_ttl_seconds, time.time() if now is None else now)
            servers.append({"urls": turn, "username": username, "credential": credential})
        elif settings.turn_username and settings.turn_credential:
            servers.append({"urls": turn, "username": settings.turn_username, "credential": settings.turn_credential})
    return servers


def webrtc_config(settings: Settings, now: float | None = None) -> dict[str, Any]:
    """`/call/webrtc/config`'s data: {iceServers (RTCIceServer dicts), turn (turn_status),
    gatherTimeoutMs: ICE_GATHER_TIMEOUT_SECONDS in milliseconds}."""
    return {"iceServers": ice_servers(settings, now), "turn": turn_status(settings),
            "gatherTimeoutMs": int(settings.ice_gather_timeout_seconds * 1000)}
