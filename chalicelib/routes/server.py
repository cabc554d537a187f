"""`/server/*`: liveness."""

from __future__ import annotations

from chalicelib.routing import Auth, Call, Router
from chalicelib.validation import WagoModel

router = Router(__name__, tag="Server")


class ServerOk(WagoModel):
    status: str


@router.route("GET", "/server/ok", auth=Auth.NONE, response=ServerOk, summary="Liveness check (no auth).")
def server_ok(call: Call) -> ServerOk:
    return ServerOk(status="ok")
