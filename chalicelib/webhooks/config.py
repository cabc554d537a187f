"""A session's webhook settings: URL (SSRF-checked when set) and signing secret."""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.expressions.update import Action

from chalicelib.core.errors import DomainError
from chalicelib.core.models import SessionModel
from chalicelib.core.ssrf import BlockedDestination, Guard

KEEP = object()


def check_url(url: str) -> None:
    """400 with WaGo's wording when the URL targets an address the fan-out would refuse."""
    try:
        Guard.from_settings().check_url(url)
    except BlockedDestination as exc:
        raise DomainError(400, f"Invalid WebhookURL in Payload: {exc}; webhooks may not target it") from None


def set_webhook(session: SessionModel, url: str, secret: str | None | object = KEEP) -> None:
    """Store the URL and, unless KEEP, the secret (an empty or None secret switches signing off)."""
    actions: list[Action] = [SessionModel.webhook.set(url), SessionModel.updated_at.set(datetime.now(UTC))]
    if isinstance(secret, str) or secret is None:  # not KEEP
        actions.append(SessionModel.webhook_secret.set(secret) if secret else SessionModel.webhook_secret.remove())
    session.update(actions=actions, condition=SessionModel.token.exists())
