"""`/webhook`: the session's webhook URL, signing secret and subscribed types; its delivery log;
the admin DLQ redrive."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from chalicelib.core.errors import DomainError
from chalicelib.routes.fields import OptionalHttpUrl, Token
from chalicelib.routing import Auth, Call, Router
from chalicelib.validation import WagoModel, query_int
from chalicelib.webhooks import config, dlq, log
from chalicelib.webhooks.signing import MIN_SECRET_LENGTH, secret_hint

router = Router(__name__, tag="Webhook")
MAX_PAGE = 200
#: A delivery log sort key (chalicelib/core/models/deliveries.py: `<ms, 15 digits>#<event id>`), as `next` gives it.
_CURSOR = re.compile(r"[0-9]{15}(#[!-~]{1,128})?")


def _secret(value: str) -> str:
    if value and (len(value) < MIN_SECRET_LENGTH or len(value) > 256):
        raise ValueError(f"must be {MIN_SECRET_LENGTH} to 256 characters (empty switches signing off)")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters")
    return value


class _Sparse(WagoModel):
    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class SetWebhookRequest(WagoModel):
    webhook_url: OptionalHttpUrl = Field(
        alias="WebhookURL",
        description="Where events are POSTed; an empty string removes the webhook (events are then not sent), "
                    "as WaGo stores what it is given.",
    )
    secret: Annotated[str, AfterValidator(_secret)] | None = Field(
        None, alias="Secret",
        description="Addition: HMAC-SHA256 key of X-Webhook-Signature and webhook-signature; omitted: kept; "
                    "empty: removed.",
    )


class SetWebhookResponse(_Sparse):
    webhook: str
    secret: str | None = Field(None, description="Last characters of the signing secret, when one is set.")


class WebhookSettings(_Sparse):
    webhook: str
    subscribe: list[str]
    secret: str | None = Field(None, description="Last characters of the signing secret, when one is set.")


class Delivery(WagoModel):
    event_id: str = Field(alias="eventId")
    type: str
    state: str = Field(description="delivered; retrying; failed (in the DLQ: POST /webhook/redrive); dropped "
                                   "(final: not delivered, see dropReason).")
    drop_reason: str | None = Field(
        None, alias="dropReason",
        description="For state dropped: no-session (session deleted), no-webhook (webhook URL removed) or "
                    "not-subscribed (type no longer subscribed); null otherwise.",
    )
    attempts: int
    last_status: int = Field(alias="lastStatus", description="HTTP status of the last attempt; 0: no answer.")
    last_error: str | None = Field(alias="lastError")
    latency_ms: float = Field(alias="latencyMs")
    next_retry_seconds: int | None = Field(alias="nextRetrySeconds")
    delivered_at: str | None = Field(alias="deliveredAt")
    updated_at: str | None = Field(alias="updatedAt")


class DeliveryPage(WagoModel):
    deliveries: list[Delivery]
    next: str | None = Field(description="Pass as ?before= for the next (older) page; null on the last one.")


class RedriveRequest(WagoModel):
    token: Token | None = Field(None, alias="Token", description="Only this session's events; all when omitted.")
    max: int | None = Field(None, alias="Max", ge=1, le=10000, description="At most this many (default 1000).")


class RedriveResponse(WagoModel):
    redriven: int
    skipped: int = Field(description="Other sessions' events left in the DLQ.")
    sessions: dict[str, int] = Field(description="Events redriven per session token.")


@router.route(
    "POST", "/webhook", auth=Auth.SESSION, body=SetWebhookRequest, response=SetWebhookResponse,
    summary="Set the webhook URL (and, as an addition, the signing secret) of this session.",
)
def set_webhook(call: Call) -> SetWebhookResponse:
    if call.body.webhook_url:
        config.check_url(call.body.webhook_url)
    secret = config.KEEP if call.body.secret is None else call.body.secret
    config.set_webhook(call.session, call.body.webhook_url, secret)
    current = call.session.webhook_secret if call.body.secret is None else call.body.secret
    return SetWebhookResponse(webhook=call.body.webhook_url, secret=secret_hint(current))


@router.route("GET", "/webhook", auth=Auth.SESSION, response=WebhookSettings, summary="This session's webhook.")
def get_webhook(call: Call) -> WebhookSettings:
    return WebhookSettings(webhook=call.session.webhook or "", subscribe=list(call.session.events or []),
                           secret=secret_hint(call.session.webhook_secret))


@router.route(
    "GET", "/webhook/deliveries", auth=Auth.SESSION, response=DeliveryPage,
    summary="Addition: this session's webhook delivery log, newest first (?limit=1..200, ?before=cursor).",
)
def list_deliveries(call: Call) -> DeliveryPage:
    limit = query_int(call.query, "limit", 50, 1, MAX_PAGE)
    before = call.query.get("before") or None
    if before is not None and not _CURSOR.fullmatch(before):
        # Only a `next` this route answered (DynamoDB would refuse a range key over 1024 bytes: a 500).
        raise DomainError(400, "Invalid before: not a cursor from a previous page's next")
    items, cursor = log.recent(call.session.token, limit, before)
    return DeliveryPage(deliveries=[Delivery.model_validate(log.to_dict(i)) for i in items], next=cursor)


@router.route(
    "POST", "/webhook/redrive", auth=Auth.ADMIN, body=RedriveRequest, response=RedriveResponse,
    summary="Addition: send events from the webhook DLQ back for delivery (all, or one session's).",
)
def redrive(call: Call) -> RedriveResponse:
    result = dlq.redrive(token=call.body.token, max_messages=call.body.max or 1000)
    return RedriveResponse(redriven=result.redriven, skipped=result.skipped, sessions=result.by_token)
