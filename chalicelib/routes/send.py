"""Sending: `/send/text`, the media kinds `/send/image`, `/send/audio`, `/send/video`, `/send/document`,
`/send/sticker`, `/send/mediaurl` (the host downloads it), `/send/location`, `/send/contact`,
`/send/poll`, the link previews `/send/preview` and `/send/preview2`, and `/send/groupinvite`.

Media arrives as WaGo's base64 data URLs; the Lambda checks and stores it in S3 (chalicelib/core/media.py)
and the command carries the S3 key. The answer comes once WhatsApp accepted the message, as WaGo's;
a repeated `Id` returns the first result and never sends twice (chalicelib/core/outbox.py), and the
same `Id` on a different request (`Send.fingerprint`) answers 409 and sends nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import replace
from typing import Annotated, Any, Literal

from chalice import Response
from pydantic import Field, StringConstraints, field_validator, model_validator

from chalicelib import envelope
from chalicelib.bus import get_bus
from chalicelib.core import jid, limits, message_content, ops, outbox
from chalicelib.core.errors import DomainError
from chalicelib.core.media import KINDS, MediaStore, decode_data_url
from chalicelib.core.models import SessionModel
from chalicelib.core.models.messages import STATUS_ORDER
from chalicelib.core.settings import get_settings
from chalicelib.core.ssrf import BlockedDestination, Guard
from chalicelib.core.urls import MAX_URL_LENGTH, InvalidUrl, parse_http_url
from chalicelib.routes.fields import ChatAddress, HttpUrl, OptionalHttpUrl, OptionalUserAddress, Text, UserAddress
from chalicelib.routing import Auth, Call, Router
from chalicelib.validation import WagoModel

router = Router(__name__, tag="Send")

Body = Annotated[str, StringConstraints(min_length=1, max_length=65536)]
MessageId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128,
                                             pattern=r"^[A-Za-z0-9._:-]+$")]
Caption = Annotated[str, StringConstraints(max_length=4096)]
#: A mention list names group members: WhatsApp groups hold at most 1024 participants.
MAX_MENTIONS = 1024
#: A quoted message is a copy of an earlier message's content (text up to 65,536 characters, a small
#: thumbnail): anything larger is not one, and would not fit the records it travels in (SQS, DynamoDB).
QUOTED_MAX_BYTES = 128 * 1024
#: A request fingerprint keeps 32 hex digits (128 bits) of SHA-256: no two requests of one session's Id
#: collide by chance.
FINGERPRINT_HEX_DIGITS = 32


def _media_body_limit() -> int:
    """A data URL is base64: 4/3 of the file, plus the JSON around it (where Lambda's 6 MB cap applies,
    the routing layer refuses a body beyond it first: chalicelib/core/limits.py)."""
    return get_settings().data_url_max_bytes * 4 // 3 + (64 << 10)


class ContextInfo(WagoModel):
    """whatsmeow's ContextInfo as WaGo takes it: a reply needs StanzaID and Participant together, and a
    QuotedMessage is the content of that reply's target (so it needs them too)."""

    stanza_id: str = Field("", alias="StanzaID", max_length=128, description="The quoted message's id.")
    participant: OptionalUserAddress = Field("", alias="Participant", description="The quoted message's sender (JID).")
    quoted_message: dict | None = Field(None, alias="QuotedMessage",
                                        description='The quoted content as WhatsApp JSON, e.g. {"conversation": "hi"} '
                                                    f"(at most {QUOTED_MAX_BYTES // 1024} KiB as JSON).")
    mentioned_jid: list[UserAddress] = Field(default_factory=list, alias="MentionedJID", max_length=MAX_MENTIONS,
                                             description=f"JIDs mentioned in the text (at most {MAX_MENTIONS}).")

    @field_validator("quoted_message")
    @classmethod
    def _quoted_message_fits(cls, value: dict | None) -> dict | None:
        if value is not None and len(json.dumps(value, ensure_ascii=False).encode()) > QUOTED_MAX_BYTES:
            raise ValueError(f"must be at most {QUOTED_MAX_BYTES // 1024} KiB as JSON")
        return value

    @model_validator(mode="after")
    def _a_reply_is_whole(self) -> ContextInfo:
        if bool(self.stanza_id) != bool(self.participant):
            raise ValueError("StanzaID and Participant go together")
        if self.quoted_message is not None and not self.stanza_id:
            raise ValueError("QuotedMessage needs the StanzaID and Participant of the message it quotes")
        return self


class Send(WagoModel):
    """WaGo's fields common to every /send/* route, declared once: each route applies them the same way
    (WhatsApp carries a ContextInfo on every message kind these routes send)."""

    phone: ChatAddress = Field(alias="Phone", description="Recipient: phone number with country code, or a JID.")
    id: MessageId | None = Field(None, alias="Id", description="Optional message id: a repeat never sends twice.")
    context_info: ContextInfo | None = Field(None, alias="ContextInfo", description="Reply/quote and mentions.")
    forward: bool = Field(False, alias="Forward", description="Mark as forwarded.")

    def context(self) -> dict | None:
        """The message's contextInfo as WhatsApp JSON, or None when the request sets none. Participant
        and mentions go through the one address parser (a user's device part dropped)."""
        info = self.context_info
        return message_content.context_info(
            quoted_id=info.stanza_id if info else "",
            quoted_sender=jid.user(info.participant, "Participant") if info and info.participant else "",
            quoted=info.quoted_message if info else None,
            mentions=[jid.user(m, "MentionedJID") for m in info.mentioned_jid] if info else (),
            forwarded=self.forward) or None

    def fingerprint(self, path: str) -> str:
        """What identifies this request as a message, for `Id` idempotency (ops.Send.fingerprint): the
        first FINGERPRINT_HEX_DIGITS hex digits of SHA-256 over the route's `path` (e.g. `/send/text`) and
        the canonical JSON (sorted keys, no spaces, ASCII) of this validated body without `Id`.

        Computed from what the client sent, never from what the API derives per request (S3 keys of the
        stored media, generated ids, default timestamps), so a genuine retry (the same data URL, the same
        MediaKey) matches and any other recipient, text, kind or media does not. Validation folds key case
        and fills defaults, so keys cased differently or a default written out are the same request (a
        recipient written another way, a number for a JID, is not). Rule: the IETF
        httpapi Idempotency-Key draft (a key reused with another payload is refused)."""
        body = self.model_dump(mode="json", by_alias=True, exclude={"id"})
        canonical = json.dumps([path, body], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:FINGERPRINT_HEX_DIGITS]


class SendTextRequest(Send):
    body: Body = Field(alias="Body", description="The text.")


class MediaSend(Send):
    media_key: str = Field("", alias="MediaKey",
                           description="Addition: a file uploaded through POST /media/upload, instead of the data URL.")


class SendImageRequest(MediaSend):
    image: str = Field("", alias="Image", description="data:image/...;base64,...")
    caption: Caption = Field("", alias="Caption")


class SendAudioRequest(MediaSend):
    audio: str = Field("", alias="Audio", description="data:audio/ogg;base64,... (OGG/Opus: a voice note)")


class SendVideoRequest(MediaSend):
    video: str = Field("", alias="Video", description="data:video/mp4;base64,...")
    caption: Caption = Field("", alias="Caption")


class SendDocumentRequest(MediaSend):
    document: str = Field("", alias="Document", description="data:application/octet-stream;base64,... (WaGo's rule)")
    file_name: Text = Field(alias="FileName", description="Name shown to the recipient, e.g. invoice.pdf.")
    mimetype: str = Field("", alias="Mimetype", description="e.g. application/pdf (default: sniffed from the bytes).")
    caption: Caption = Field("", alias="Caption")


class SendStickerRequest(MediaSend):
    sticker: str = Field("", alias="Sticker", description="data:image/webp;base64,... (or png/jpeg)")


class SendResponse(WagoModel):
    details: str = Field(alias="Details")
    timestamp: str = Field(alias="Timestamp", description="When WhatsApp accepted it (RFC 3339).")
    id: str = Field(alias="Id", description="The message id (keep it for receipts, reactions, edits, status).")


def _already_sent(session: SessionModel, message_id: str | None, fingerprint: str) -> SendResponse | None:
    """A repeated Id whose first send completed: answer from the record, touch nothing. DomainError(409)
    when the Id's record is of another request (`fingerprint`, outbox.check_request), whatever its status.

    Checked up front only where a send does heavy work before the host (media: S3 writes, a download);
    text and content sends leave repeats to the host's outbox (one read fewer per send) and look here only
    when the host cannot answer (no live session, timeout), so a repeat still gets its first result."""
    record = outbox.status_of(session.token, message_id) if message_id else None
    if record is None or not message_id:
        return None
    outbox.check_request(record, message_id, fingerprint)
    if record.rank >= STATUS_ORDER["sent"]:
        return SendResponse(details="Sent", timestamp=record.sent_at or "", id=record.whatsapp_id or record.message_id)
    return None


def _sent(data: dict) -> SendResponse:
    return SendResponse(details="Sent", timestamp=data["Timestamp"], id=data["Id"])


def wants_async(call: Call) -> bool:
    """Addition: `?async=true` or `Prefer: respond-async` answers 202 at once (WaGo answers when sent)."""
    flag = str(call.query.get("async", "")).lower() in ("1", "true", "yes")
    return flag or "respond-async" in (call.request.headers.get("prefer") or "").lower()


def _run_send(call: Call, op: ops.Operation, args: ops.Send, kind: str,
              fingerprint: str | None = None) -> Response | SendResponse:
    """The send, synchronously (WaGo's meaning) or, on request, queued: 202 with the message Id, the
    outcome in /message/status and a MessageStatus webhook. The command carries the Id and the request's
    `fingerprint` (computed here unless the route already did); the Id reused for another request is
    409, by the host's outbox or, async, by `outbox.queue`."""
    body = call.body
    fingerprint = fingerprint or body.fingerprint(call.path)
    if not wants_async(call):
        try:
            return _sent(get_bus().command(call.session, op,
                                           args.model_copy(update={"id": body.id, "fingerprint": fingerprint})))
        except DomainError:
            done = _already_sent(call.session, body.id, fingerprint)
            if done is not None:
                return done
            raise
    message_id = body.id or message_content.new_message_id()
    if outbox.queue(call.session.token, message_id, kind, body.phone, fingerprint):
        try:
            get_bus().dispatch(call.session, op,
                               args.model_copy(update={"id": message_id, "fingerprint": fingerprint}))
        except DomainError as exc:
            outbox.mark_failed(call.session.token, message_id, exc.message)
            raise
    return envelope.success({"Details": "Queued", "Timestamp": "", "Id": message_id}, status=202)


@router.route(
    "POST", "/send/text", auth=Auth.SESSION, sends=(ops.SEND_CONTENT, ops.SEND_TEXT),
    body=SendTextRequest, response=SendResponse,
    summary="Send a text message; answers once WhatsApp accepted it.",
)
def send_text(call: Call) -> Response | SendResponse:
    body: SendTextRequest = call.body
    context = body.context()
    if context is None:
        return _run_send(call, ops.SEND_TEXT, ops.SendText(to=body.phone, body=body.body), "text")
    content = message_content.with_context(message_content.text(body.body), context)
    return _run_send(call, ops.SEND_CONTENT, ops.SendContent(to=body.phone, content=content), "text")


def _send_media(call: Call, kind: ops.SendMediaKind, data_url: str, caption: str = "", file_name: str = "",
                mimetype: str = "") -> Response | SendResponse:
    body = call.body
    field = KINDS[kind].field
    if body.media_key and data_url:
        raise DomainError(400, f"Give either {field} or MediaKey, not both")
    if not body.media_key and not data_url:
        raise DomainError(400, f"Missing {field} in Payload")
    fingerprint = body.fingerprint(call.path)
    done = _already_sent(call.session, body.id, fingerprint)  # before any S3 work: a retry, or another request
    if done is not None:
        return done
    settings = get_settings()
    store = MediaStore(settings)
    if body.media_key:
        stored = store.take_upload(call.session.token, body.media_key.strip(), kind, field, settings.media_max_bytes)
    else:
        # data_url_max_bytes: MEDIA_MAX_BYTES, or less where Lambda's 6 MB request cap applies; a file
        # between the two fits a presigned upload.
        try:
            data, sniffed = decode_data_url(kind, data_url, settings.data_url_max_bytes)
        except DomainError as exc:
            if exc.status == 413 and settings.data_url_max_bytes < settings.media_max_bytes:
                raise DomainError(413, f"{exc.message}; {limits.UPLOAD_HINT}") from None
            raise
        stored = store.put_outbound(call.session.token, data, mimetype or sniffed)
    if mimetype:
        stored = replace(stored, mimetype=mimetype)
    return _run_send(call, ops.SEND_MEDIA, ops.SendMedia(
        to=body.phone, kind=kind, media_key=stored.key, mimetype=stored.mimetype, sha256=stored.sha256,
        caption=caption, file_name=file_name, context_info=body.context()), kind, fingerprint)


@router.route(
    "POST", "/send/image", auth=Auth.SESSION, sends=(ops.SEND_MEDIA,), body=SendImageRequest, response=SendResponse,
    summary="Send an image (JPEG, PNG, WebP or GIF data URL) with an optional caption.",
    max_body_bytes=_media_body_limit(), too_large_hint=limits.UPLOAD_HINT,
)
def send_image(call: Call) -> Response | SendResponse:
    return _send_media(call, "image", call.body.image, caption=call.body.caption)


@router.route(
    "POST", "/send/audio", auth=Auth.SESSION, sends=(ops.SEND_MEDIA,), body=SendAudioRequest, response=SendResponse,
    summary="Send audio; OGG/Opus goes out as a voice note (audio/ogg; codecs=opus).",
    max_body_bytes=_media_body_limit(), too_large_hint=limits.UPLOAD_HINT,
)
def send_audio(call: Call) -> Response | SendResponse:
    return _send_media(call, "audio", call.body.audio)


@router.route(
    "POST", "/send/video", auth=Auth.SESSION, sends=(ops.SEND_MEDIA,), body=SendVideoRequest, response=SendResponse,
    summary="Send a video (MP4 data URL) with an optional caption.",
    max_body_bytes=_media_body_limit(), too_large_hint=limits.UPLOAD_HINT,
)
def send_video(call: Call) -> Response | SendResponse:
    return _send_media(call, "video", call.body.video, caption=call.body.caption)


@router.route(
    "POST", "/send/document", auth=Auth.SESSION, sends=(ops.SEND_MEDIA,),
    body=SendDocumentRequest, response=SendResponse,
    summary="Send a document (data:application/octet-stream;base64,...) with its file name.",
    max_body_bytes=_media_body_limit(), too_large_hint=limits.UPLOAD_HINT,
)
def send_document(call: Call) -> Response | SendResponse:
    body: SendDocumentRequest = call.body
    return _send_media(call, "document", body.document, caption=body.caption, file_name=body.file_name,
                       mimetype=body.mimetype.strip())


@router.route(
    "POST", "/send/sticker", auth=Auth.SESSION, sends=(ops.SEND_MEDIA,), body=SendStickerRequest, response=SendResponse,
    summary="Send a sticker (WebP preferred).",
    max_body_bytes=_media_body_limit(), too_large_hint=limits.UPLOAD_HINT,
)
def send_sticker(call: Call) -> Response | SendResponse:
    return _send_media(call, "sticker", call.body.sticker)


class SendMediaUrlRequest(Send):
    url: HttpUrl = Field(alias="Url", description="Where the session host downloads the file (SSRF-guarded).")
    type: Literal["", "image", "audio", "video", "document", "sticker"] = Field(
        "", alias="Type", description="Send kind; default from the downloaded bytes' type.")
    caption: Caption = Field("", alias="Caption")
    file_name: str = Field("", alias="FileName", description="For documents (default: the URL's last segment).")


class SendLocationRequest(Send):
    latitude: float = Field(alias="Latitude", ge=-90, le=90)
    longitude: float = Field(alias="Longitude", ge=-180, le=180)
    name: str = Field("", alias="Name", max_length=256)
    address: str = Field("", alias="Address", max_length=1024)


class SendContactRequest(Send):
    name: Text = Field(alias="Name", description="Name shown on the contact card.")
    vcard: Annotated[str, StringConstraints(min_length=1, max_length=65536)] = Field(
        alias="Vcard", description="The vCard (BEGIN:VCARD ... END:VCARD).")

    @field_validator("vcard")
    @classmethod
    def _is_vcard(cls, value: str) -> str:
        if not value.lstrip().upper().startswith("BEGIN:VCARD") or "END:VCARD" not in value.upper():
            raise ValueError("must be a vCard (BEGIN:VCARD ... END:VCARD)")
        return value


class SendPollRequest(Send):
    question: Text = Field(alias="Question")
    options: Annotated[list[Text], Field(min_length=2, max_length=12)] = Field(
        alias="Options", description="2 to 12 answers.")
    max_answer: int = Field(1, alias="MaxAnswer", ge=0, le=12,
                            description="1: single choice; 0 (or the number of options): any number.")


@router.route(
    "POST", "/send/mediaurl", auth=Auth.SESSION, sends=(ops.SEND_MEDIAURL,),
    body=SendMediaUrlRequest, response=SendResponse,
    summary="Send a file the session host downloads from Url (size-capped, SSRF-guarded, no redirects).",
)
def send_mediaurl(call: Call) -> Response | SendResponse:
    body: SendMediaUrlRequest = call.body
    try:  # literal addresses and local names at once, as for webhooks; the host checks again after DNS
        Guard.from_settings().check_url(body.url)
    except BlockedDestination as exc:
        raise DomainError(400, f"Invalid Url in Payload: {exc}; the gateway may not fetch it") from None
    file_name = body.file_name or body.url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    fingerprint = body.fingerprint(call.path)
    return _already_sent(call.session, body.id, fingerprint) or _run_send(call, ops.SEND_MEDIAURL, ops.SendMediaUrl(
        to=body.phone, url=body.url, kind=body.type, caption=body.caption, file_name=file_name,
        context_info=body.context()), body.type or "media", fingerprint)


def _send_content(call: Call, content: dict[str, Any]) -> Response | SendResponse:
    body = call.body
    content = message_content.with_context(content, body.context())
    return _run_send(call, ops.SEND_CONTENT, ops.SendContent(to=body.phone, content=content),
                     message_content.kind_of(content))


@router.route(
    "POST", "/send/location", auth=Auth.SESSION, sends=(ops.SEND_CONTENT,),
    body=SendLocationRequest, response=SendResponse,
    summary="Send a (static) location.",
)
def send_location(call: Call) -> Response | SendResponse:
    body: SendLocationRequest = call.body
    return _send_content(call, message_content.location(body.latitude, body.longitude, body.name, body.address))


@router.route(
    "POST", "/send/contact", auth=Auth.SESSION, sends=(ops.SEND_CONTENT,),
    body=SendContactRequest, response=SendResponse,
    summary="Send a contact card (vCard).",
)
def send_contact(call: Call) -> Response | SendResponse:
    return _send_content(call, message_content.contact(call.body.name, call.body.vcard))


@router.route(
    "POST", "/send/poll", auth=Auth.SESSION, sends=(ops.SEND_CONTENT,), body=SendPollRequest, response=SendResponse,
    summary="Send a poll (Options: at least 2; MaxAnswer 1 = single choice).",
)
def send_poll(call: Call) -> Response | SendResponse:
    body: SendPollRequest = call.body
    if len(set(body.options)) != len(body.options):
        raise DomainError(400, "Invalid Options in Payload: options must differ")
    return _send_content(call, message_content.poll(body.question, body.options, body.max_answer))


class UploadRequest(WagoModel):
    expires_in: int = Field(900, alias="ExpiresIn", ge=60, le=3600, description="Seconds the upload form is valid.")


class UploadResponse(WagoModel):
    media_key: str = Field(alias="MediaKey", description="Pass it as MediaKey to /send/image, /audio, ...")
    url: str = Field(alias="Url", description="POST the file here (multipart/form-data)...")
    fields: dict[str, str] = Field(alias="Fields", description="...with these form fields first, then `file`.")
    max_bytes: int = Field(alias="MaxBytes")
    expires_in: int = Field(alias="ExpiresIn")


@router.route(
    "POST", "/media/upload", auth=Auth.SESSION, body=UploadRequest, response=UploadResponse,
    summary="Addition: a presigned S3 upload for one file, so large media never passes through the API.",
)
def media_upload(call: Call) -> UploadResponse:
    settings = get_settings()
    key, post = MediaStore(settings).presigned_upload(call.session.token, settings.media_max_bytes,
                                                      call.body.expires_in)
    return UploadResponse(media_key=key, url=post["url"], fields=post["fields"], max_bytes=settings.media_max_bytes,
                          expires_in=call.body.expires_in)


URL_IN_TEXT = re.compile(r"https?://\S+")
THUMBNAIL_MAX_BYTES = 100 << 10


class SendPreviewRequest(Send):
    body: Body = Field(alias="Body", description="The text, containing the link.")
    url: str = Field("", alias="Url", max_length=MAX_URL_LENGTH,
                     description="The link the card is for (default: the first one in Body).")
    title: str = Field("", alias="Title", max_length=512)
    description: str = Field("", alias="Description", max_length=2048)
    thumbnail: str = Field("", alias="Thumbnail", description="Optional data:image/jpeg;base64,... (≤ 100 KiB).")


class SendPreview2Request(Send):
    body: Body = Field(alias="Body")
    title: Text = Field(alias="Title")
    description: str = Field("", alias="Description", max_length=2048)
    source_url: HttpUrl = Field(alias="SourceUrl", description="Where tapping the card leads.")
    thumbnail_url: OptionalHttpUrl = Field("", alias="ThumbnailUrl", description="Image shown on the card (URL).")


class SendGroupInviteRequest(Send):
    group_jid: Text = Field(alias="GroupJID", description="…@g.us")
    code: Text = Field(alias="Code", description="The group's invite code (from /group/invitelink).")
    group_name: Text = Field(alias="GroupName")
    caption: str = Field("", alias="Caption", max_length=1024)
    expiration: int = Field(0, alias="Expiration", ge=0, description="Unix seconds; default three days from now.")


@router.route(
    "POST", "/send/preview", auth=Auth.SESSION, sends=(ops.SEND_CONTENT,),
    body=SendPreviewRequest, response=SendResponse,
    summary="Send a text with a link preview card built from the given metadata (the link is not fetched).",
)
def send_preview(call: Call) -> Response | SendResponse:
    body: SendPreviewRequest = call.body
    url = body.url.strip() or next(iter(URL_IN_TEXT.findall(body.body)), "")
    if not url:
        raise DomainError(400, "Missing Url in Payload: no link in Body either")
    try:
        parse_http_url(url)  # checked like every URL; kept as written: WhatsApp matches it in the text
    except InvalidUrl as exc:
        raise DomainError(400, f"Invalid Url in Payload: {exc}") from None
    thumbnail = ""
    if body.thumbnail:
        data, _ = decode_data_url("image", body.thumbnail, THUMBNAIL_MAX_BYTES)
        thumbnail = base64.b64encode(data).decode()
    return _send_content(call, message_content.link_preview(body.body, url, body.title, body.description, thumbnail))


@router.route(
    "POST", "/send/preview2", auth=Auth.SESSION, sends=(ops.SEND_CONTENT,),
    body=SendPreview2Request, response=SendResponse,
    summary="Send a text with an external-ad-reply style card (title, description, image, target link).",
)
def send_preview2(call: Call) -> Response | SendResponse:
    body: SendPreview2Request = call.body
    return _send_content(call, message_content.ad_reply_preview(body.body, body.title, body.description,
                                                                body.source_url, body.thumbnail_url))


@router.route(
    "POST", "/send/groupinvite", auth=Auth.SESSION, sends=(ops.SEND_CONTENT,),
    body=SendGroupInviteRequest, response=SendResponse,
    summary="Send a group invite as a message (the recipient can join with one tap).",
)
def send_group_invite(call: Call) -> Response | SendResponse:
    body: SendGroupInviteRequest = call.body
    if not jid.is_group(body.group_jid):
        raise DomainError(400, "Invalid GroupJID in Payload: must end with @g.us")
    jid.group(body.group_jid)
    expiration = body.expiration or int(time.time()) + 3 * 24 * 3600
    return _send_content(call, message_content.group_invite(body.group_jid, body.code, body.group_name, expiration,
                                                            body.caption))
