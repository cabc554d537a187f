"""WhatsApp message protobufs for media sends, built from an upload (research/neonize.md §6.2).

We upload with `client.upload` and fill the message ourselves instead of neonize's `build_*_message`
helpers: those need ffmpeg/Pillow, fetch URLs given as strings, and guess the mimetype; here the
mimetype, caption and voice-note flag are exactly what the request said.
"""

from __future__ import annotations

from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as E
from neonize.utils.enum import MediaType

from chalicelib.core.errors import DomainError
from session_host.drivers.base import OutboundMedia

#: WhatsApp wants OGG/Opus voice notes labelled exactly so, or they do not play inline.
VOICE_NOTE_MIMETYPE = "audio/ogg; codecs=opus"

UPLOAD_TYPES = {
    "image": MediaType.MediaImage,
    "sticker": MediaType.MediaImage,
    "audio": MediaType.MediaAudio,
    "video": MediaType.MediaVideo,
    "document": MediaType.MediaDocument,
}


def media_message(media: OutboundMedia, upload) -> E.Message:
    """`upload` is neonize's UploadResponse (url, DirectPath, MediaKey, FileEncSHA256, FileSHA256, FileLength).
    The request's ContextInfo (reply, mentions, forwarded) goes on the media message itself."""
    message = _media_message(media, upload)
    if media.context_info:
        from google.protobuf import json_format

        body = getattr(message, f"{media.kind}Message")
        try:
            json_format.ParseDict(media.context_info, body.contextInfo)
        except json_format.ParseError as exc:  # e.g. a QuotedMessage that is not WhatsApp JSON
            raise DomainError(400, f"Invalid message content: {exc}") from None
    return message


def _media_message(media: OutboundMedia, upload) -> E.Message:
    common = dict(URL=upload.url, directPath=upload.DirectPath, mediaKey=upload.MediaKey,
                  fileEncSHA256=upload.FileEncSHA256, fileSHA256=upload.FileSHA256, fileLength=upload.FileLength)
    if media.kind == "image":
        return E.Message(imageMessage=E.ImageMessage(mimetype=media.mimetype, caption=media.caption, **common))
    if media.kind == "sticker":
        return E.Message(stickerMessage=E.StickerMessage(mimetype=media.mimetype, **common))
    if media.kind == "audio":
        mimetype = VOICE_NOTE_MIMETYPE if media.mimetype.startswith("audio/ogg") else media.mimetype
        return E.Message(audioMessage=E.AudioMessage(mimetype=mimetype, PTT=mimetype == VOICE_NOTE_MIMETYPE, **common))
    if media.kind == "video":
        return E.Message(videoMessage=E.VideoMessage(mimetype=media.mimetype, caption=media.caption, **common))
    if media.kind == "document":
        return E.Message(documentMessage=E.DocumentMessage(
            mimetype=media.mimetype, fileName=media.file_name, title=media.file_name, caption=media.caption, **common))
    raise ValueError(f"unknown media kind {media.kind!r}")
