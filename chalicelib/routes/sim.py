"""Admin-only controls of the simulated WhatsApp network: the "phone" side of pairing and logout, and
sim accounts that message, read, type and go online (what a real contact's phone would do).

Installed only when WHATSAPP_DRIVER=sim (chalicelib/api.py); with the real driver these paths answer 404
with `chalicelib.api.unavailable_message`, saying why.
The sim network lives on the session hosts (session_host/sim/): each control is a `sim.*` operation
(chalicelib/core/ops.py), sent to the host holding the session (`/sim/scan`, `/sim/logout`) or to any
live sim host (the phone-side ones, and `/sim/logout` when no host holds the session). The API never
writes the sim table.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chalicelib.bus import get_bus
from chalicelib.core import jid, ops
from chalicelib.core.errors import DomainError
from chalicelib.core.models import SessionModel
from chalicelib.routes.fields import PhoneAddress, Token, UserAddress
from chalicelib.routes.messaging import ChatPresenceRequest, MarkReadRequest, PresenceRequest
from chalicelib.routes.send import Body, SendResponse
from chalicelib.routing import Auth, Call, Router
from chalicelib.validation import WagoModel

router = Router(__name__, tag="Simulator")

SIM = "sim"  # the driver that carries the sim network (HostModel.driver)


class ScanRequest(WagoModel):
    token: Token = Field(alias="Token", description="Session whose QR (or pairing code) the phone scans.")
    phone: PhoneAddress = Field(alias="Phone", description="The sim account's phone number (created on first use).")
    code: str = Field("", alias="Code", description="Pairing code typed on the phone (pair-code flow).")
    push_name: str = Field("", alias="PushName", description="Display name of a new sim account.")


class ScanResponse(WagoModel):
    details: str = Field(alias="Details")
    jid: str = Field(alias="Jid")


class PhoneLogoutRequest(WagoModel):
    token: Token = Field(alias="Token", description="Session whose linked device the phone removes.")


class DetailsResponse(WagoModel):
    details: str = Field(alias="Details")


def _session(token: str) -> SessionModel:
    try:
        return SessionModel.get(token, consistent_read=True)
    except SessionModel.DoesNotExist:
        raise DomainError(404, "invalid token") from None


@router.route(
    "POST", "/sim/scan", auth=Auth.ADMIN, sends=(ops.SIM_SCAN,), body=ScanRequest, response=ScanResponse,
    summary="Simulator: the phone scans this session's QR (or enters its pairing code).",
)
def sim_scan(call: Call) -> ScanResponse:
    body: ScanRequest = call.body
    data = get_bus().command(
        _session(body.token), ops.SIM_SCAN, ops.SimScan(phone=body.phone, code=body.code, push_name=body.push_name))
    return ScanResponse(details="Scanned", jid=data.get("jid", ""))


@router.route(
    "POST", "/sim/logout", auth=Auth.ADMIN, sends=(ops.SIM_LOGOUT, ops.SIM_UNLINK),
    body=PhoneLogoutRequest, response=DetailsResponse,
    summary="Simulator: the phone removes this session's linked device (a LoggedOut event follows).",
)
def sim_logout(call: Call) -> DetailsResponse:
    session = _session(call.body.token)
    if get_bus().live_owner(session) is not None:
        get_bus().command(session, ops.SIM_LOGOUT)
    else:  # no host holds the session: the phone still unlinks the device; nothing is connected to tell
        get_bus().run_anywhere(SIM, session.token, ops.SIM_UNLINK)
    return DetailsResponse(details="Logged out")


class PhoneMessageRequest(WagoModel):
    from_: PhoneAddress = Field(alias="From", description="The sending sim account's phone (created on first use).")
    to: UserAddress = Field(alias="To", description="Recipient account: phone number or JID.")
    body: Body = Field(alias="Body")
    push_name: str = Field("", alias="PushName", description="Display name of a new sim account.")


class PhoneReadRequest(MarkReadRequest):
    phone: PhoneAddress = Field(alias="Phone", description="The reading sim account's phone.")
    chat: str = Field("", alias="Chat", description="Unused: the message ids say whose they are.")


class PhoneChatPresenceRequest(ChatPresenceRequest):
    from_: PhoneAddress = Field(alias="From", description="The typing sim account's phone.")


class PhonePresenceRequest(PresenceRequest):
    phone: PhoneAddress = Field(alias="Phone", description="The sim account going online or offline.")


def _phone_side(phone: str, op: ops.Operation[Any, Any], args: ops.Args) -> dict[str, Any]:
    """Run a sim account's phone-side operation on any live sim host (ordered per phone)."""
    data: dict[str, Any] = get_bus().run_anywhere(SIM, ops.sim_phone_key(phone), op, args)
    return data


@router.route(
    "POST", "/sim/message", auth=Auth.ADMIN, sends=(ops.SIM_MESSAGE,), body=PhoneMessageRequest, response=SendResponse,
    summary="Simulator: a sim account's phone sends a text (to a session's account, or any sim account).",
)
def sim_message(call: Call) -> SendResponse:
    body: PhoneMessageRequest = call.body
    phone = jid.phone(body.from_, "From")
    sent = _phone_side(phone, ops.SIM_MESSAGE, ops.SimPhoneMessage(
        phone=phone, to=jid.user(body.to, "To"), body=body.body, push_name=body.push_name))
    return SendResponse(details="Sent", timestamp=sent["Timestamp"], id=sent["Id"])


@router.route(
    "POST", "/sim/read", auth=Auth.ADMIN, sends=(ops.SIM_READ,), body=PhoneReadRequest, response=DetailsResponse,
    summary="Simulator: a sim account's phone reads messages it received (senders get Read receipts).",
)
def sim_read(call: Call) -> DetailsResponse:
    body: PhoneReadRequest = call.body
    phone = jid.phone(body.phone)
    done = _phone_side(phone, ops.SIM_READ, ops.SimPhoneRead(phone=phone, ids=body.id))
    return DetailsResponse(details=done["Details"])


@router.route(
    "POST", "/sim/chatpresence", auth=Auth.ADMIN, sends=(ops.SIM_CHAT_PRESENCE,),
    body=PhoneChatPresenceRequest, response=DetailsResponse,
    summary="Simulator: a sim account types, records or pauses in its chat with `Phone`.",
)
def sim_chat_presence(call: Call) -> DetailsResponse:
    body: PhoneChatPresenceRequest = call.body
    phone = jid.phone(body.from_, "From")
    done = _phone_side(phone, ops.SIM_CHAT_PRESENCE, ops.SimPhoneChatPresence(
        phone=phone, to=jid.chat(body.phone), state=body.state, media=body.media))
    return DetailsResponse(details=done["Details"])


@router.route(
    "POST", "/sim/presence", auth=Auth.ADMIN, sends=(ops.SIM_PRESENCE,),
    body=PhonePresenceRequest, response=DetailsResponse,
    summary="Simulator: a sim account goes online or offline (subscribed sessions get Presence).",
)
def sim_presence(call: Call) -> DetailsResponse:
    body: PhonePresenceRequest = call.body
    phone = jid.phone(body.phone)
    done = _phone_side(phone, ops.SIM_PRESENCE, ops.SimPhonePresence(phone=phone, available=body.type == "available"))
    return DetailsResponse(details=done["Details"])
