"""Read receipts, presence and message status: `/message/markread`, `/message/presence`,
`/message/status`, `/user/presence` (and the additive `/user/presence/subscribe`).

Each command goes to the session's host (chalicelib/bus.py); `/message/status` is a DynamoDB read.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from chalicelib.bus import get_bus
from chalicelib.core import ops, outbox
from chalicelib.core.errors import DomainError
from chalicelib.routes.fields import (
    BatchError,
    BatchItem,
    ChatAddress,
    OptionalUserAddress,
    Text,
    UserAddress,
    message_id_problem,
    split_batch,
)
from chalicelib.routing import Auth, Call, Router
from chalicelib.validation import WagoModel

router = Router(__name__, tag="Messaging")

def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _id_list(value: object) -> object:
    """WaGo's `Id` is a list of message ids; a single string is accepted as a list of one."""
    return [value] if isinstance(value, str) else value


class MarkReadRequest(WagoModel):
    id: Annotated[list[BatchItem], BeforeValidator(_id_list), Field(min_length=1, max_length=100)] = Field(
        alias="Id", description="Message ids to mark as read (a list, or one id); an unusable id is reported in "
                                "`Errors` and the others are marked.")
    chat: ChatAddress = Field(alias="Chat", description="The chat the messages are in (phone number or JID).")
    sender: OptionalUserAddress = Field("", alias="Sender", description="In groups: the author of the messages.")


class ChatPresenceRequest(WagoModel):
    phone: ChatAddress = Field(alias="Phone", description="The chat (phone number or JID).")
    state: Annotated[Literal["composing", "paused"], BeforeValidator(_lower)] = Field(
        alias="State", description="`composing` (typing) or `paused`.")
    media: Annotated[Literal["", "audio"], BeforeValidator(_lower)] = Field(
        "", alias="Media", description="`audio` with `composing` shows recording.")


class PresenceRequest(WagoModel):
    type: Annotated[Literal["available", "unavailable"], BeforeValidator(_lower)] = Field(
        alias="Type", description="`available` (online) or `unavailable`.")


class SubscribePresenceRequest(WagoModel):
    phone: UserAddress = Field(alias="Phone", description="Whose presence to follow (phone number or JID).")


class DetailsResponse(WagoModel):
    details: str = Field(alias="Details")


class MarkReadResponse(DetailsResponse):
    errors: list[BatchError] | None = Field(None, alias="Errors",
                                            description="Addition: the ids that were not marked, and why.")

    def dump(self) -> dict:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


@router.route(
    "POST", "/message/markread", auth=Auth.SESSION, sends=(ops.MARK_READ,),
    body=MarkReadRequest, response=MarkReadResponse,
    summary="Mark messages as read (the sender gets a Read receipt); unusable ids are listed in `Errors`.",
)
def mark_read(call: Call) -> MarkReadResponse:
    body: MarkReadRequest = call.body
    good, errors = split_batch(body.id, message_id_problem)
    if not good:
        raise DomainError(400, f"Invalid Id in Payload: {errors[0].error}")
    data = get_bus().command(call.session, ops.MARK_READ, ops.MarkRead(ids=good, chat=body.chat, sender=body.sender))
    return MarkReadResponse(details=data["Details"], errors=errors or None)


@router.route(
    "POST", "/message/presence", auth=Auth.SESSION, sends=(ops.CHAT_PRESENCE,),
    body=ChatPresenceRequest, response=DetailsResponse,
    summary="Show typing or recording in a chat, or stop it.",
)
def chat_presence(call: Call) -> DetailsResponse:
    body: ChatPresenceRequest = call.body
    data = get_bus().command(call.session, ops.CHAT_PRESENCE,
                             ops.ChatPresence(to=body.phone, state=body.state, media=body.media))
    return DetailsResponse(details=data["Details"])


@router.route(
    "POST", "/user/presence", auth=Auth.SESSION, sends=(ops.PRESENCE,), body=PresenceRequest, response=DetailsResponse,
    summary="Show this account online (`available`) or offline (`unavailable`).",
)
def presence(call: Call) -> DetailsResponse:
    data = get_bus().command(call.session, ops.PRESENCE, ops.Presence(available=call.body.type == "available"))
    return DetailsResponse(details=data["Details"])


@router.route(
    "POST", "/user/presence/subscribe", auth=Auth.SESSION, sends=(ops.SUBSCRIBE_PRESENCE,),
    body=SubscribePresenceRequest, response=DetailsResponse,
    summary="Addition: follow a contact's presence (Presence webhooks follow).",
)
def subscribe_presence(call: Call) -> DetailsResponse:
    data = get_bus().command(call.session, ops.SUBSCRIBE_PRESENCE, ops.SubscribePresence(jid=call.body.phone))
    return DetailsResponse(details=data["Details"])


class StatusRequest(WagoModel):
    id: Text = Field(alias="Id", description="A message id a send returned (or the Id the client chose).")


class StatusResponse(WagoModel):
    id: str = Field(alias="Id")
    status: str = Field(alias="Status", description="sending, sent, delivered, read or failed.")
    to: str = Field(alias="To")
    kind: str = Field(alias="Kind", description="text, image, audio, video, document or sticker.")
    timestamp: str = Field(alias="Timestamp", description="When it was sent.")
    error: str = Field("", alias="Error", description="Why it failed, if it did.")


@router.route(
    "POST", "/message/status", auth=Auth.SESSION, body=StatusRequest, response=StatusResponse,
    summary="Delivery state of a message this session sent, kept from receipts (no host visit).",
)
def message_status(call: Call) -> StatusResponse:
    record = outbox.status_of(call.session.token, call.body.id)
    if record is None:
        raise DomainError(404, f"message {call.body.id} not found")
    return StatusResponse(id=record.whatsapp_id or record.message_id, status=record.status, to=record.to,
                          kind=record.kind, timestamp=record.sent_at or "", error=record.error or "")
