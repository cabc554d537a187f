"""Admin session routes: `/session/init`, `/session/all`, `/session/scanned`, `/session/delete`."""

from __future__ import annotations

from pydantic import Field

from chalicelib import sessions
from chalicelib.bus import get_bus
from chalicelib.core import ops
from chalicelib.core.errors import DomainError
from chalicelib.core.models import SessionModel
from chalicelib.core.observability import logger
from chalicelib.routes.fields import Text, Token
from chalicelib.routing import Auth, Call, Router
from chalicelib.validation import WagoModel

router = Router(__name__, tag="Admin")


class InitRequest(WagoModel):
    name: Text = Field(alias="Name", description="Unique session name.")
    token: Token = Field(alias="Token", description="Unique session token (spaces are removed).")
    os: Text = Field(alias="Os", description="Device OS label shown on the phone, e.g. Chrome.")


class InitResponse(WagoModel):
    details: str
    id: int
    name: str
    token: str
    os_name: str = Field(alias="osName")


class SessionRow(WagoModel):
    id: int
    name: str
    token: str
    os_name: str = Field(alias="osName")
    webhook: str
    jid: str
    connected: bool
    logged_in: bool = Field(alias="loggedIn")
    events: str
    push_name: str = Field("", alias="pushName", description="Addition: the account's display name.")
    owner_host: str = Field("", alias="ownerHost", description="Addition: the session host holding the client.")
    last_error: str = Field("", alias="lastError", description="Addition: why the last connection ended.")


class DeleteResponse(WagoModel):
    details: str
    token: str


def _row(session: SessionModel) -> SessionRow:
    return SessionRow(
        id=int(session.id),
        name=session.name,
        token=session.token,
        os_name=session.os_name,
        webhook=session.webhook,
        jid=session.jid or "",
        connected=bool(session.connected),
        logged_in=bool(session.logged_in),
        events=",".join(session.events or []),
        push_name=session.push_name or "",
        owner_host=session.owner_host or "",
        last_error=session.last_error or "",
    )


@router.route(
    "POST", "/session/init", auth=Auth.ADMIN, body=InitRequest, response=InitResponse,
    summary="Create a session token (Name and Token must be unique).",
)
def session_init(call: Call) -> InitResponse:
    body: InitRequest = call.body
    session = sessions.create_session(body.name, body.token, body.os)
    return InitResponse(
        details="user created successfully", id=int(session.id), name=session.name,
        token=session.token, os_name=session.os_name,
    )


@router.route("GET", "/session/all", auth=Auth.ADMIN, response=list[SessionRow], summary="Every stored session.")
def session_all(call: Call) -> list[SessionRow]:
    return [_row(s) for s in sessions.list_sessions()]


@router.route(
    "POST", "/session/scanned", auth=Auth.ADMIN, response=list[SessionRow],
    summary="Sessions that completed the QR scan (have a JID).",
)
def session_scanned(call: Call) -> list[SessionRow]:
    return [_row(s) for s in sessions.list_sessions(scanned_only=True)]


@router.route(
    "POST", "/session/delete", auth=Auth.ADMIN_AND_SESSION, sends=(ops.FORGET,), response=DeleteResponse,
    summary="Delete the session named by the `token` header (needs the admin token too).",
)
def session_delete(call: Call) -> DeleteResponse:
    _forget_device(call.session)
    deleted = sessions.delete_session(call.session.token)
    return DeleteResponse(details="session deleted successfully", token=deleted.token)


def _forget_device(session: SessionModel) -> None:
    """Ask a session host to stop the client and remove the linked device before the row goes.

    Best effort: with no host reachable the row is still deleted (WaGo deletes the token either way);
    the device left in the store is then only reachable by its token, which no longer exists.
    """
    if not (session.owner_host or session.jid or session.auto_connect):
        return  # never connected: nothing on any host or in the device store
    try:
        get_bus().command(session, ops.FORGET, place=True)
    except DomainError as exc:
        logger.warning("device not forgotten before delete", extra={"token": session.token, "error": exc.message})
