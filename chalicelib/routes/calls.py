"""Calls: `/call/make`, `/call/accept`, `/call/reject`, `/call/end`, `/call/status`, the browser audio leg
(`/call/webrtc/config`, `/call/webrtc/offer`), playback (`/call/audio/play`, `/call/audio/stop`) and the
call page (`/call/page`).

Reads come from the call registry (DynamoDB); actions are commands to the session's host. A call id
this token does not track is a 404; a body without one is WaGo's `missing CallID in payload`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from chalice import Response
from pydantic import BeforeValidator, Field, StringConstraints

from chalicelib.bus import get_bus
from chalicelib.core import ops
from chalicelib.core.calls.registry import CallRegistry
from chalicelib.core.calls.turn import turn_status, webrtc_config
from chalicelib.core.errors import DomainError
from chalicelib.core.media import MediaStore
from chalicelib.core.settings import get_settings
from chalicelib.routes.fields import Text
from chalicelib.routing import Auth, Call, Router
from chalicelib.validation import WagoModel

router = Router(__name__, tag="Calls")

MISSING_CALL_ID = "missing CallID in payload"
CALL_NOT_FOUND = "call not found"
PAGE = Path(__file__).resolve().parent.parent / "static" / "call.html"
OFFER_SLACK_SECONDS = 10.0

MAX_CALL_ID_CHARS = 128
CallId = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_CALL_ID_CHARS)]
Sdp = Annotated[str, StringConstraints(min_length=1, max_length=65536)]


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


class CallIdRequest(WagoModel):
    call_id: CallId = Field("", alias="CallID",
                            description="The call (from /call/make, /call/status or a Call webhook).")


class MakeCallRequest(WagoModel):
    # Parsed on the host (the sim driver, with chalicelib/core/jid.py; neonize cannot place calls), so
    # the video check answers first, as tests/unit/test_call_routes.py pins.
    phone: Text = Field(alias="Phone", description="Whom to call: phone number with country code, or a JID.")
    video: bool = Field(False, alias="Video", description="Video calls are not supported (audio only).")


class OfferRequest(WagoModel):
    call_id: CallId = Field("", alias="callID", description="The call to attach the browser's audio to.")
    type: Annotated[Literal["offer"], BeforeValidator(_lower)] = Field(alias="type", description="Always `offer`.")
    sdp: Sdp = Field(alias="sdp", description="The browser's complete (non-trickle) SDP offer.")


class PlayRequest(WagoModel):
    call_id: CallId = Field("", alias="CallID", description="The call to play into.")
    audio_file: str = Field("", alias="AudioFile", description="A file in the host's CALL_AUDIO_DIR (relative "
                            "path; anything resolving outside it, missing or not, is the same 404). Off when unset.")
    media_key: str = Field("", alias="MediaKey", description="Addition: an audio file this session uploaded "
                           "with POST /media/upload (any format the host can decode).")


def _call_id(value: str) -> str:
    if not value:
        raise DomainError(400, MISSING_CALL_ID)
    return value


def _tracked(call: Call, call_id: str):
    if len(_call_id(call_id)) > MAX_CALL_ID_CHARS:  # (`?callID=` has no model) no such call, and DynamoDB
        raise DomainError(404, CALL_NOT_FOUND)     # refuses a range key over 1024 bytes (a 500)
    found = CallRegistry().get(call.session.token, call_id)
    if found is None:
        raise DomainError(404, CALL_NOT_FOUND)
    return found


@router.route("POST", "/call/make", auth=Auth.SESSION, sends=(ops.CALL_MAKE,), body=MakeCallRequest,
              summary="Place a voice call; answers the new call (ringing) with its CallID.")
def make_call(call: Call) -> dict:
    body: MakeCallRequest = call.body
    if body.video:
        raise DomainError(400, "video calls are not supported")
    return get_bus().command(call.session, ops.CALL_MAKE, ops.CallTo(to=body.phone))


def _action(op: ops.Operation):
    def handler(call: Call) -> dict:
        tracked = _tracked(call, call.body.call_id)
        return get_bus().command(call.session, op, ops.CallRef(call_id=tracked.call_id))

    return handler


for _op, _path, _summary in (
    (ops.CALL_ACCEPT, "/call/accept", "Answer a ringing incoming call."),
    (ops.CALL_REJECT, "/call/reject", "Decline a ringing incoming call."),
    (ops.CALL_END, "/call/end", "Hang up: cancel an outgoing call or end an active one."),
):
    _handler = _action(_op)
    _handler.__name__ = _op.name.replace(".", "_")
    router.route("POST", _path, auth=Auth.SESSION, sends=(_op,), body=CallIdRequest, summary=_summary)(_handler)


@router.route("GET", "/call/status", auth=Auth.SESSION,
              summary="Calls this session tracks, newest first (`?callID=` for one call).")
def call_status(call: Call) -> dict:
    wanted = (call.query.get("callID") or call.query.get("callid") or call.query.get("CallID") or "").strip()
    if wanted:
        return {"call": _tracked(call, wanted).public()}
    return {"calls": [c.public() for c in CallRegistry().list(call.session.token)]}


@router.route("GET", "/call/webrtc/config", auth=Auth.SESSION,
              summary="ICE servers for the browser leg, and whether TURN is configured.")
def webrtc_config_route(call: Call) -> dict:
    return webrtc_config(get_settings())


@router.route("POST", "/call/webrtc/offer", auth=Auth.SESSION, sends=(ops.CALL_OFFER,), body=OfferRequest,
              summary="Attach browser audio to a call: the browser's SDP offer in, the host's SDP answer out.")
def webrtc_offer(call: Call) -> dict:
    body: OfferRequest = call.body
    tracked = _tracked(call, body.call_id)
    settings = get_settings()
    data = get_bus().command(call.session, ops.CALL_OFFER, ops.CallOffer(call_id=tracked.call_id, sdp=body.sdp),
                             timeout=settings.command_timeout_seconds + OFFER_SLACK_SECONDS)
    return {"callID": tracked.call_id, "type": "answer", "sdp": data["sdp"], "turn": turn_status(settings)}


@router.route("POST", "/call/audio/play", auth=Auth.SESSION, sends=(ops.CALL_PLAY,), body=PlayRequest,
              summary="Play audio into a call (a file in the host's CALL_AUDIO_DIR, or an uploaded MediaKey); "
                      "the other party hears it.")
def audio_play(call: Call) -> dict:
    body: PlayRequest = call.body
    audio_file, media_key = body.audio_file.strip(), body.media_key.strip()
    if not audio_file and not media_key:
        raise DomainError(400, "Missing AudioFile in Payload")
    if audio_file and media_key:
        raise DomainError(400, "Invalid AudioFile in Payload: give AudioFile or MediaKey, not both")
    tracked = _tracked(call, body.call_id)
    if media_key:
        # This session's upload, present and within the size limit (the host checks the owner again).
        settings = get_settings()
        MediaStore(settings).check_upload(tracked.token, media_key, "audio", "MediaKey",
                                          settings.media_max_bytes, sniff=False)
    source = ops.CallPlay(call_id=tracked.call_id, media_key=media_key) if media_key else \
        ops.CallPlay(call_id=tracked.call_id, path=audio_file)
    return get_bus().command(call.session, ops.CALL_PLAY, source)


@router.route("POST", "/call/audio/stop", auth=Auth.SESSION, sends=(ops.CALL_STOP,), body=CallIdRequest,
              summary="Stop the playback of a call.")
def audio_stop(call: Call) -> dict:
    tracked = _tracked(call, call.body.call_id)
    return get_bus().command(call.session, ops.CALL_STOP, ops.CallRef(call_id=tracked.call_id))


@router.route("GET", "/call/page", auth=Auth.NONE, enveloped=False,
              summary="The call page: browser audio for a call (the user enters the session token).")
def call_page(call: Call) -> Response:
    return Response(body=PAGE.read_text(), status_code=200,
                    headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
                             "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                             "style-src 'unsafe-inline'; media-src * blob:; connect-src 'self'"})
