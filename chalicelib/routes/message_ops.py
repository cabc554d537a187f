"""Operations on existing messages: `/message/react`, `/message/edit`, `/message/delete`, and the
media downloads `/message/download/{image,video,document,audio,sticker}` (+ `/message/downloadimage`).

Reactions, edits and deletes are messages themselves (chalicelib/core/message_content.py), sent through
the session's host like any send. A download runs on the host (the client decrypts the file), lands
in S3, and comes back as WaGo's data URL plus an additive presigned `Url`.
"""

from __future__ import annotations

import base64

from pydantic import Field, ValidationInfo, field_validator

from chalicelib.bus import get_bus
from chalicelib.core import jid, message_content, ops
from chalicelib.core.errors import DomainError
from chalicelib.core.media import MediaStore, decode_base64, media_store_errors
from chalicelib.routes.fields import ChatAddress, OptionalHttpUrl, OptionalUserAddress, Text
from chalicelib.routes.send import SendResponse, _sent
from chalicelib.routing import Auth, Call, Router
from chalicelib.validation import WagoModel

router = Router(__name__, tag="Messages")

#: Downloads larger than this come back as a presigned `Url` only (Lambda answers are capped at 6 MB).
INLINE_DOWNLOAD_BYTES = 4 << 20


class ReactRequest(WagoModel):
    phone: ChatAddress = Field(alias="Phone", description="The chat (phone number or JID).")
    body: str = Field("", alias="Body", description="The emoji; empty or `remove` removes the reaction.")
    id: Text = Field(alias="Id", description="The message reacted to.")
    is_from_me: bool = Field(False, alias="IsFromMe", description="Whether that message was sent by this session.")
    participant: OptionalUserAddress = Field("", alias="Participant",
                                             description="In groups: the message's author (JID).")


class EditRequest(WagoModel):
    chat: ChatAddress = Field(alias="Chat")
    message: Text = Field(alias="Message", description="The new text.")
    message_id: Text = Field(alias="MessageID", description="A text message this session sent.")


class DeleteRequest(WagoModel):
    chat: ChatAddress = Field(alias="Chat")
    message_id: Text = Field(alias="MessageID", description="A message this session sent (revoked for everyone).")


class DownloadRequest(WagoModel):
    """The media fields exactly as the webhook's `imageMessage` (etc.) carries them."""

    url: OptionalHttpUrl = Field("", alias="URL")
    direct_path: Text = Field(alias="DirectPath")
    media_key: str = Field("", alias="MediaKey")
    mimetype: str = Field("", alias="Mimetype")
    file_enc_sha256: str = Field("", alias="FileEncSHA256")
    file_sha256: str = Field("", alias="FileSHA256")
    file_length: int = Field(0, alias="FileLength", ge=0)

    @field_validator("media_key", "file_enc_sha256", "file_sha256")
    @classmethod
    def _base64(cls, value: str, info: ValidationInfo) -> str:
        """Normalised to padded standard base64 (what the host's decoder and whatsmeow take)."""
        name = str(info.field_name)
        field = cls.model_fields[name].alias or name
        try:
            return base64.b64encode(decode_base64(value, field)).decode()
        except DomainError as exc:
            raise ValueError(f"must be base64, as in the webhook: {exc.message.split(': ', 1)[1]}") from None


class DownloadResponse(WagoModel):
    mimetype: str = Field(alias="Mimetype")
    data: str = Field(alias="Data", description="data:<mimetype>;base64,... ('' above 4 MiB: use Url).")
    url: str = Field(alias="Url", description="Addition: a presigned S3 link to the file (15 minutes).")
    size: int = Field(alias="Size", description="Addition: bytes.")


@router.route(
    "POST", "/message/react", auth=Auth.SESSION, sends=(ops.SEND_CONTENT,), body=ReactRequest, response=SendResponse,
    summary="React to a message with an emoji (empty Body or `remove` removes the reaction).",
)
def react(call: Call) -> SendResponse:
    body: ReactRequest = call.body
    emoji = "" if body.body.strip().lower() == "remove" else body.body.strip()
    chat = jid.chat(body.phone)
    participant = jid.user(body.participant, "Participant") if body.participant and jid.is_group(chat) else ""
    content = message_content.reaction(chat, body.id, emoji, body.is_from_me, participant)
    return _sent(get_bus().command(call.session, ops.SEND_CONTENT, ops.SendContent(to=chat, content=content)))


@router.route(
    "POST", "/message/edit", auth=Auth.SESSION, sends=(ops.SEND_CONTENT,), body=EditRequest, response=SendResponse,
    summary="Edit the text of a message this session sent.",
)
def edit(call: Call) -> SendResponse:
    body: EditRequest = call.body
    chat = jid.chat(body.chat, "Chat")
    content = message_content.edit(chat, body.message_id, body.message)
    return _sent(get_bus().command(call.session, ops.SEND_CONTENT, ops.SendContent(to=chat, content=content)))


@router.route(
    "POST", "/message/delete", auth=Auth.SESSION, sends=(ops.SEND_CONTENT,), body=DeleteRequest, response=SendResponse,
    summary="Delete (revoke) a message this session sent, for everyone.",
)
def delete(call: Call) -> SendResponse:
    body: DeleteRequest = call.body
    chat = jid.chat(body.chat, "Chat")
    data = get_bus().command(call.session, ops.SEND_CONTENT,
                             ops.SendContent(to=chat, content=message_content.revoke(chat, body.message_id)))
    return SendResponse(details="Deleted", timestamp=data["Timestamp"], id=data["Id"])


def _download(call: Call, kind: str) -> DownloadResponse:
    body: DownloadRequest = call.body
    ref = {"URL": body.url, "directPath": body.direct_path, "mediaKey": body.media_key, "mimetype": body.mimetype,
           "fileEncSHA256": body.file_enc_sha256, "fileSHA256": body.file_sha256, "fileLength": body.file_length}
    stored = get_bus().command(call.session, ops.DOWNLOAD, ops.Download(kind=kind, ref=ref))
    store = MediaStore()
    data = ""
    if stored["size"] <= INLINE_DOWNLOAD_BYTES:
        with media_store_errors("download"):  # the host just stored it: S3 failing is a 503, not a 500
            raw, _ = store.get(stored["key"])
        data = f"data:{stored['mimetype']};base64,{base64.b64encode(raw).decode()}"
    return DownloadResponse(mimetype=stored["mimetype"], data=data, url=store.presigned_get(stored["key"]),
                            size=stored["size"])


def _download_route(kind: str, path: str) -> None:
    def download(call: Call) -> DownloadResponse:
        return _download(call, kind)

    download.__name__ = f"download_{path.rsplit('/', 1)[-1]}"  # before registering: it names the route
    router.route("POST", path, auth=Auth.SESSION, sends=(ops.DOWNLOAD,), body=DownloadRequest,
                 response=DownloadResponse,
                 summary=f"Download a received {kind} (the media fields from its webhook).")(download)


for _kind in ("image", "video", "document", "audio", "sticker"):
    _download_route(_kind, f"/message/download/{_kind}")
_download_route("image", "/message/downloadimage")  # WaGo's older alias
