"""Session lifecycle: `/session/connect`, `/pair`, `/qr`, `/status`, `/disconnect`, `/logout`.

Reads (`status`, `qr`) are DynamoDB reads of the live state the owning host writes; commands go to
the owning host through the bus (chalicelib/bus.py) and wait for its reply.
"""

from __future__ import annotations

from pydantic import Field

from chalicelib.bus import get_bus
from chalicelib.core import contract, ops
from chalicelib.core.errors import DomainError
from chalicelib.core.jid import parse as parse_jid
from chalicelib.core.models import SessionModel
from chalicelib.core.subscriptions import parse_subscription, resolve_subscription
from chalicelib.routes.fields import PhoneAddress
from chalicelib.routing import Auth, Call, Router
from chalicelib.validation import WagoModel

router = Router(__name__, tag="Session")


class ConnectRequest(WagoModel):
    subscribe: list[str] | str | None = Field(
        None, alias="Subscribe",
        description="Event types to deliver (list, or a comma-separated string); empty means All.",
    )
    immediate: bool = Field(False, alias="Immediate", description="Answer without waiting for the connection.")
    phone: str = Field("", alias="Phone", description="Accepted for WaGo compatibility; unused by connect.")


class PairRequest(WagoModel):
    phone: PhoneAddress = Field(alias="Phone",
                                description="Phone number to link with a pairing code, e.g. +15551234567.")
    subscribe: list[str] | str | None = Field(
        None, alias="Subscribe", description="As for /session/connect; omitted keeps the stored one (All if none).")


class ConnectResponse(WagoModel):
    details: str = Field(description="`Connected!`, or `Already Connected` when the client was running already.")
    webhook: str
    jid: str
    events: str
    connected: bool = Field(False, description="Addition: the client's state now.")
    logged_in: bool = Field(False, alias="loggedIn", description="Addition: the client's state now.")


class PairResponse(WagoModel):
    linking_code: str = Field(alias="LinkingCode")


class QRResponse(WagoModel):
    qr_code: str = Field(alias="QRCode", description="PNG data URL; fetch again to follow rotations.")


class Jid(WagoModel):
    user: str = Field(alias="User")
    server: str = Field(alias="Server")


class StatusResponse(WagoModel):
    connected: bool = Field(alias="Connected")
    logged_in: bool = Field(alias="LoggedIn")
    jid: Jid = Field(alias="Jid")
    events: str = Field(alias="Events")
    push_name: str = Field("", alias="PushName", description="Addition: the account's display name.")
    last_error: str = Field("", alias="LastError", description="Addition: why the last connection ended.")


class DetailsResponse(WagoModel):
    details: str = Field(alias="Details")


def status_jid(jid: str | None) -> Jid:
    """The session's account JID as WaGo's status gives it: `5511999999999:12@s.whatsapp.net` ->
    {User: 5511999999999, Server: s.whatsapp.net} (agent and device dropped; chalicelib/core/jid.py
    parses it); empty parts before the first login. The host stores whatsmeow's JID, so it parses."""
    if not jid:
        return Jid(user="", server="")
    address = parse_jid(jid, "Jid")
    return Jid(user=address.user, server=address.server)


@router.route(
    "POST", "/session/connect", auth=Auth.SESSION, sends=(ops.CONNECT,), body=ConnectRequest, response=ConnectResponse,
    summary="Start or restore the WhatsApp client of this session (a restored session needs no new QR); on a "
            "running client (waiting for its QR, or logged in) it updates the subscription and answers the state.",
)
def session_connect(call: Call) -> ConnectResponse:
    session: SessionModel = call.session
    body: ConnectRequest = call.body
    events = parse_subscription(body.subscribe)
    # The host stores the subscription with starting the client, or on the client already running.
    data = get_bus().command(session, ops.CONNECT, ops.Connect(immediate=body.immediate, events=events),
                             place=True) or {}
    details = contract.ALREADY_CONNECTED if data.get("already_connected") else "Connected!"
    return ConnectResponse(details=details, webhook=session.webhook or "", jid=data.get("jid") or "",
                           events=",".join(events), connected=bool(data.get("connected")),
                           logged_in=bool(data.get("logged_in")))


@router.route(
    "POST", "/session/pair", auth=Auth.SESSION, sends=(ops.PAIR,), body=PairRequest, response=PairResponse,
    summary="Link this session with a phone number: returns the code to type on the phone.",
)
def session_pair(call: Call) -> PairResponse:
    session: SessionModel = call.session
    body: PairRequest = call.body
    events = resolve_subscription(body.subscribe, [str(e) for e in session.events or []])
    data = get_bus().command(session, ops.PAIR, ops.Pair(phone=body.phone, events=events), place=True)
    return PairResponse(linking_code=data["LinkingCode"])


@router.route(
    "GET", "/session/qr", auth=Auth.SESSION, response=QRResponse,
    summary="The current QR code to scan (errors: No session, Not connected, Already Logged in).",
)
def session_qr(call: Call) -> QRResponse:
    session: SessionModel = call.session
    if get_bus().live_owner(session) is None:
        raise DomainError(500, contract.NO_SESSION)
    if not session.connected:
        raise DomainError(500, contract.NOT_CONNECTED)
    if session.logged_in:
        raise DomainError(500, contract.ALREADY_LOGGED_IN)
    return QRResponse(qr_code=session.qr_code or "")


@router.route(
    "GET", "/session/status", auth=Auth.SESSION, response=StatusResponse,
    summary="Connected, LoggedIn, Jid and subscribed Events of this session (no host round trip).",
)
def session_status(call: Call) -> StatusResponse:
    session: SessionModel = call.session
    live = bool(session.connected) and get_bus().live_owner(session) is not None
    return StatusResponse(
        connected=live,
        logged_in=live and bool(session.logged_in),
        jid=status_jid(session.jid),
        events=",".join(session.events or []),
        push_name=session.push_name or "",
        last_error=session.last_error or "",
    )


@router.route(
    "POST", "/session/disconnect", auth=Auth.SESSION, sends=(ops.DISCONNECT,), response=DetailsResponse,
    summary="Drop the WhatsApp connection; the device stays linked (connect restores it).",
)
def session_disconnect(call: Call) -> DetailsResponse:
    get_bus().command(call.session, ops.DISCONNECT)
    return DetailsResponse(details="Disconnected")


@router.route(
    "POST", "/session/logout", auth=Auth.SESSION, sends=(ops.LOGOUT,), response=DetailsResponse,
    summary="Unlink the device; the next connect needs a new QR scan.",
)
def session_logout(call: Call) -> DetailsResponse:
    get_bus().command(call.session, ops.LOGOUT)
    return DetailsResponse(details="Logged out")
