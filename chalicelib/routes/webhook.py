"""`/webhook`: the session's webhook URL and subscribed event types."""

from __future__ import annotations

from pydantic import Field

from chalicelib import sessions
from chalicelib.routes.fields import HttpUrl
from chalicelib.routing import Auth, Call, Router
from chalicelib.validation import WagoModel

router = Router(__name__, tag="Webhook")


class SetWebhookRequest(WagoModel):
    webhook_url: HttpUrl = Field(alias="WebhookURL", description="Where events are POSTed.")


class SetWebhookResponse(WagoModel):
    webhook: str


class WebhookSettings(WagoModel):
    webhook: str
    subscribe: list[str]


@router.route(
    "POST", "/webhook", auth=Auth.SESSION, body=SetWebhookRequest, response=SetWebhookResponse,
    summary="Set the webhook URL of this session.",
)
def set_webhook(call: Call) -> SetWebhookResponse:
    sessions.set_webhook(call.session, call.body.webhook_url)
    return SetWebhookResponse(webhook=call.body.webhook_url)


@router.route("GET", "/webhook", auth=Auth.SESSION, response=WebhookSettings, summary="This session's webhook.")
def get_webhook(call: Call) -> WebhookSettings:
    return WebhookSettings(webhook=call.session.webhook or "", subscribe=list(call.session.events or []))
