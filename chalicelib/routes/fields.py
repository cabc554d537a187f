"""Field types shared by request models."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, StringConstraints


def _printable(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _token(value: str) -> str:
    value = "".join(value.split())
    if not value:
        raise ValueError("must not be blank")
    return value


def _http_url(value: str) -> str:
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain spaces")
    return value


#: A non-empty, single-line text field (trimmed).
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256), AfterValidator(_printable)]
#: A session token: every space removed, printable, non-empty.
Token = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(_printable), AfterValidator(_token)]
#: A webhook target.
HttpUrl = Annotated[str, StringConstraints(min_length=1, max_length=2048), AfterValidator(_http_url)]
