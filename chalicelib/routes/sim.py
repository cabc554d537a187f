"""Admin-only controls of the simulated WhatsApp network: the "phone" side of pairing and logout.

Installed only when WHATSAPP_DRIVER=sim (app.py); with the real driver these paths do not exist.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import Field

from chalicelib import contract
from chalicelib.bus import get_bus
from chalicelib.envelope import ApiError
from chalicelib.models import SessionModel, SimDeviceModel
from chalicelib.routes.fields import Text, Token
from chalicelib.routing import Auth, Call, Router
from chalicelib.validation import WagoModel

router = Router(__name__, tag="Simulator")


class ScanRequest(WagoModel):
    token: Token = Field(alias="Token", description="Session whose QR (or pairing code) the phone scans.")
    phone: Text = Field(alias="Phone", description="The sim account's phone number (created on first use).")
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
        raise ApiError(404, "invalid token") from None


@router.route(
    "POST", "/sim/scan", auth=Auth.ADMIN, body=ScanRequest, response=ScanResponse,
    summary="Simulator: the phone scans this session's QR (or enters its pairing code).",
)
def sim_scan(call: Call) -> ScanResponse:
    body: ScanRequest = call.body
    data = get_bus().command(
        _session(body.token), "sim.scan", {"phone": body.phone, "code": body.code, "push_name": body.push_name}
    ) or {}
    return ScanResponse(details="Scanned", jid=data.get("jid", ""))


@router.route(
    "POST", "/sim/logout", auth=Auth.ADMIN, body=PhoneLogoutRequest, response=DetailsResponse,
    summary="Simulator: the phone removes this session's linked device (a LoggedOut event follows).",
)
def sim_logout(call: Call) -> DetailsResponse:
    session = _session(call.body.token)
    if get_bus().live_owner(session) is not None:
        get_bus().command(session, "sim.logout")
        return DetailsResponse(details="Logged out")
    # No host holds the session: the phone still unlinks the device; nothing is connected to tell.
    try:
        SimDeviceModel.get(SimDeviceModel.key(session.token), consistent_read=True).delete()
    except SimDeviceModel.DoesNotExist:
        raise ApiError(500, contract.NOT_LOGGED_IN_LOGOUT) from None
    session.update(
        actions=[SessionModel.jid.remove(), SessionModel.logged_in.set(False),
                 SessionModel.updated_at.set(datetime.now(timezone.utc))],
        condition=SessionModel.token.exists(),
    )
    return DetailsResponse(details="Logged out")
