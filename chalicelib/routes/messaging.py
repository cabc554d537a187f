"""Text, read receipts and presence: `/send/text`, `/message/markread`, `/message/presence`,
`/user/presence` (and the additive `/user/presence/subscribe`).

Each is a command to the session's host (chalicelib/bus.py); the answer comes once WhatsApp accepted
it, as in WaGo. Media sends, reactions, edits and the other `/send/*` kinds build on the same path.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, StringConstraints

from chalicelib.bus import get_bus
from chalicelib.routes.fields import Text
from chalicelib.routing import Auth, Call, Router
from chalicelib.validation import WagoModel

router = Router(__name__, tag="Messaging")

Body = Annotated[str, StringConstraints(min_length=1, max_length=65536)]


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _id_list(value: object) -> object:
    """WaGo's `Id` is a list of message ids; a single string is accepted as a list of one."""
    return [value] if isinstance(value, str) else value


class SendTextRequest(WagoModel):
    phone: Text = Field(alias="Phone", description="Recipient: phone number with country code, or a JID.")
    body: Body = Field(alias="Body", description="The text.")


class SendResponse(WagoModel):
    details: str = Field(alias="Details")
    timestamp: str = Field(alias="Timestamp", description="When WhatsApp accepted it (RFC 3339).")
    id: str = Field(alias="Id", description="The message id (keep it for receipts, reactions, edits).")


class MarkReadRequest(WagoModel):
    id: Annotated[list[Text], BeforeValidator(_id_list), Field(min_length=1, max_length=100)] = Field(
        alias="Id", description="Message ids to mark as read (a list, or one id).")
    chat: Text = Field(alias="Chat", description="The chat the messages are in (phone number or JID).")
    sender: str = Field("", alias="Sender", description="In groups: the author of the messages.")


class ChatPresenceRequest(WagoModel):
    phone: Text = Field(alias="Phone", description="The chat (phone number or JID).")
    state: Annotated[Literal["composing", "paused"], BeforeValidator(_lower)] = Field(
        alias="State", description="`composing` (typing) or `paused`.")
    media: Annotated[Literal["", "audio"], BeforeValidator(_lower)] = Field(
        "", alias="Media", description="`audio` with `composing` shows recording.")


class PresenceRequest(WagoModel):
    type: Annotated[Literal["available", "unavailable"], BeforeValidator(_lower)] = Field(
        alias="Type", description="`available` (online) or `unavailable`.")


class SubscribePresenceRequest(WagoModel):
    phone: Text = Field(alias="Phone", description="Whose presence to follow (phone number or JID).")


class DetailsResponse(WagoModel):
    details: str = Field(alias="Details")


@router.route(
    "POST", "/send/text", auth=Auth.SESSION, body=SendTextRequest, response=SendResponse,
    summary="Send a text message; answers once WhatsApp accepted it.",
)
def send_text(call: Call) -> SendResponse:
    body: SendTextRequest = call.body
    sent = get_bus().command(call.session, "send_text", {"to": body.phone, "body": body.body})
    return SendResponse(details="Sent", timestamp=sent["Timestamp"], id=sent["Id"])


@router.route(
    "POST", "/message/markread", auth=Auth.SESSION, body=MarkReadRequest, response=DetailsResponse,
    summary="Mark messages as read (the sender gets a Read receipt).",
)
def mark_read(call: Call) -> DetailsResponse:
    body: MarkReadRequest = call.body
    data = get_bus().command(call.session, "mark_read", {"ids": body.id, "chat": body.chat, "sender": body.sender})
    return DetailsResponse(details=data["Details"])


@router.route(
    "POST", "/message/presence", auth=Auth.SESSION, body=ChatPresenceRequest, response=DetailsResponse,
    summary="Show typing or recording in a chat, or stop it.",
)
def chat_presence(call: Call) -> DetailsResponse:
    body: ChatPresenceRequest = call.body
    data = get_bus().command(call.session, "chat_presence",
                             {"to": body.phone, "state": body.state, "media": body.media})
    return DetailsResponse(details=data["Details"])


@router.route(
    "POST", "/user/presence", auth=Auth.SESSION, body=PresenceRequest, response=DetailsResponse,
    summary="Show this account online (`available`) or offline (`unavailable`).",
)
def presence(call: Call) -> DetailsResponse:
    data = get_bus().command(call.session, "presence", {"available": call.body.type == "available"})
    return DetailsResponse(details=data["Details"])


@router.route(
    "POST", "/user/presence/subscribe", auth=Auth.SESSION, body=SubscribePresenceRequest, response=DetailsResponse,
    summary="Addition: follow a contact's presence (Presence webhooks follow).",
)
def subscribe_presence(call: Call) -> DetailsResponse:
    data = get_bus().command(call.session, "subscribe_presence", {"jid": call.body.phone})
    return DetailsResponse(details=data["Details"])
