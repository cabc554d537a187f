"""`/send/mediaurl`: the session host downloads a tenant's URL before sending it.

The URL is the tenant's choice and the request leaves from inside our network, so it gets the same
SSRF guard as webhooks (chalicelib/core/ssrf.py: private, loopback, link-local and metadata
addresses refused unless allow-listed, checked after DNS resolution and pinned to the checked
address), no redirects, a size cap enforced while streaming, and a bounded timeout.
"""

from __future__ import annotations

import filetype
import httpx

from chalicelib.core.errors import DomainError
from chalicelib.core.ssrf import BlockedDestination, Guard
from chalicelib.core.urls import InvalidUrl, parse_http_url

CHUNK = 64 << 10


def fetch_media(url: str, max_bytes: int, timeout: float, guard: Guard | None = None) -> tuple[bytes, str]:
    """(bytes, mimetype sniffed from the bytes, else the server's Content-Type); DomainError otherwise."""
    try:
        url = parse_http_url(url).url  # the API parsed it already; a host never trusts that blindly
    except InvalidUrl as exc:
        raise DomainError(400, f"Invalid Url in Payload: {exc}") from None
    original = httpx.URL(url)
    try:
        target = (guard or Guard.from_settings()).resolve(url)
    except BlockedDestination as exc:
        raise DomainError(400, f"Invalid Url in Payload: {exc}") from None
    except OSError as exc:
        raise DomainError(502, f"Failed to download media: {exc}") from None
    headers = {"Host": original.netloc.decode("ascii"), "Accept": "*/*"}
    extensions = {"sni_hostname": target.host} if original.scheme == "https" else {}
    pinned = original.copy_with(host=target.address)
    body = bytearray()
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), follow_redirects=False) as client:
            request = client.build_request("GET", pinned, headers=headers, extensions=extensions)
            response = client.send(request, stream=True)
            try:
                if response.status_code != 200:
                    raise DomainError(502, f"Failed to download media: the server answered {response.status_code}")
                declared = response.headers.get("Content-Length") or "0"
                if not (declared.isascii() and declared.isdigit()):
                    raise DomainError(502, "Failed to download media: the server sent Content-Length "
                                           f"{declared[:40]!r}")
                if len(declared) > 19 or int(declared) > max_bytes:
                    raise DomainError(413, "Payload too large: the media at Url exceeds the limit of "
                                           f"{max_bytes} bytes")
                for chunk in response.iter_bytes(CHUNK):
                    body += chunk
                    if len(body) > max_bytes:
                        raise DomainError(413, "Payload too large: the media at Url exceeds the limit of "
                                               f"{max_bytes} bytes")
                content_type = response.headers.get("Content-Type", "")
            finally:
                response.close()
    except httpx.HTTPError as exc:
        raise DomainError(502, f"Failed to download media: {type(exc).__name__}: {exc}") from None
    if not body:
        raise DomainError(502, "Failed to download media: the server sent no bytes")
    data = bytes(body)
    mimetype = filetype.guess_mime(data) or content_type.split(";", 1)[0].strip() or "application/octet-stream"
    return data, mimetype
