"""WaGo's credentials: the `token` header (or `?token=`) for a session, `admintoken` for admin routes."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from chalice.app import Request

from chalicelib.core.errors import DomainError
from chalicelib.core.models import SessionModel
from chalicelib.core.settings import get_settings

UNAUTHORIZED = "Unauthorized"
INVALID_TOKEN = "invalid token"
_NONE: Mapping[str, str] = {}  # Chalice gives None for a request without query parameters
INVALID_ADMIN_TOKEN = "invalid admin token"
#: Longest session token `/session/init` accepts. A longer `token` header matches no session, and is
#: answered without a lookup: DynamoDB refuses a GetItem whose hash key exceeds 2048 bytes
#: (ValidationException, which would be a 500; moto does not check keys on reads).
MAX_TOKEN_CHARS = 256


def normalize_token(value: str) -> str:
    """Tokens are stored and compared with every space removed (WaGo strips them)."""
    return "".join(value.split())


def request_token(request: Request) -> str:
    """The session token from the `token` header, else the `?token=` query parameter."""
    value = (request.headers or _NONE).get("token") or ""
    if not value.strip():
        value = (request.query_params or _NONE).get("token") or ""
    return normalize_token(value)


def require_session(request: Request) -> SessionModel:
    token = request_token(request)
    if not token:
        raise DomainError(401, UNAUTHORIZED)
    if len(token) > MAX_TOKEN_CHARS:
        raise DomainError(401, INVALID_TOKEN)
    try:
        return SessionModel.get(token, consistent_read=True)
    except SessionModel.DoesNotExist:
        raise DomainError(401, INVALID_TOKEN) from None


def require_admin(request: Request) -> None:
    supplied = ((request.headers or _NONE).get("admintoken") or "").strip()
    expected = get_settings().require_admin_token()
    if not supplied or not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise DomainError(401, INVALID_ADMIN_TOKEN)
