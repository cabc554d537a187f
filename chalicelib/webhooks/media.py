"""Inbound media for the multipart `file` part: read from S3 by the event's media_key."""

from __future__ import annotations

import mimetypes
import posixpath
from dataclasses import dataclass

from botocore.exceptions import ClientError

from chalicelib.core.aws import client
from chalicelib.core.contract import WireEvent
from chalicelib.core.media import missing_object
from chalicelib.core.settings import get_settings


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


def _message_id(event: WireEvent) -> str | None:
    info = event.event.get("Info")
    if isinstance(info, dict) and isinstance(info.get("ID"), str) and info["ID"]:
        return info["ID"]
    return None


def fetch(event: WireEvent) -> Attachment | None:
    """The event's media, or None when it has none or the object is gone (the event still goes out)."""
    if not event.media_key:
        return None
    try:
        obj = client("s3").get_object(Bucket=get_settings().media_bucket_name, Key=event.media_key)
    except ClientError as exc:
        if missing_object(exc):  # expired or deleted: in AWS an AccessDenied (the role cannot list the bucket)
            return None
        raise
    data = obj["Body"].read()
    content_type = (obj.get("ContentType") or "application/octet-stream").split(";")[0].strip()
    # wuzapi's naming: the WhatsApp message id plus an extension guessed from the mimetype.
    base = _message_id(event) or posixpath.basename(event.media_key) or event.event_id
    if not posixpath.splitext(base)[1]:
        base += mimetypes.guess_extension(content_type) or ""
    return Attachment(base, content_type, data)
