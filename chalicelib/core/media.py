"""Outbound media: WaGo's base64 data URLs checked, decoded and stored in S3 by the Lambda.

A queue message never carries media (SQS's 256 KiB limit): the command carries the S3 key, and the
session host reads the object. Checks, in order, each a precise WaGo-style 4xx:
- the data URL prefix WaGo documents for the field (`/send/document` insists on
  `data:application/octet-stream;base64,`);
- base64 as common encoders emit it (`decode_base64`): line breaks and spaces, as `base64`, Python's
  `encodebytes` and MIME libraries wrap it (RFC 2045 §6.8), are skipped, and the URL-safe alphabet
  (RFC 4648 §5) is taken; a truncated payload (length not a multiple of 4) or a character outside
  the alphabet is refused with its position, never sent broken;
- the size limit (413);
- the real type, sniffed from the bytes (filetype), against what the field expects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import filetype
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core import aws
from chalicelib.core.errors import DomainError
from chalicelib.core.observability import logger
from chalicelib.core.settings import Settings, get_settings

OUTBOUND_PREFIX = "media/out/"
UPLOAD_PREFIX = "media/up/"  # presigned uploads: media/up/<token hash>/<uuid>
SNIFF_BYTES = 512
DOWNLOAD_PREFIX = "media/dl/"


@dataclass(frozen=True)
class MediaKind:
    """What WaGo accepts for one media kind: its body field, the data URL prefixes, and the sniffed
    MIME types (a prefix such as "audio/" matches a family; "" accepts any)."""

    field: str  # WaGo's body field (Image, Audio, ...)
    prefixes: tuple[str, ...]  # accepted data URL prefixes
    families: tuple[str, ...]  # accepted sniffed MIME families/types ("" accepts anything)


KINDS = {
    "image": MediaKind("Image", ("data:image/",), ("image/jpeg", "image/png", "image/webp", "image/gif")),
    "audio": MediaKind("Audio", ("data:audio/",), ("audio/",)),
    "video": MediaKind("Video", ("data:video/",), ("video/",)),
    "sticker": MediaKind("Sticker", ("data:image/",), ("image/webp", "image/png", "image/jpeg")),
    "document": MediaKind("Document", ("data:application/octet-stream;base64,",), ("",)),
}


_WHITESPACE = str.maketrans("", "", " \t\r\n")
_URLSAFE = str.maketrans("-_", "+/")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/=\-_ \t\r\n]")


def decode_base64(text: str, field: str) -> bytes:
    """Standard or URL-safe base64 (RFC 4648 §4/§5), padded, possibly wrapped in lines -> bytes.

    Raises DomainError(400, "Invalid <field> in Payload: ...") naming the problem: a character outside
    the alphabet (with its position in `text`), both alphabets mixed, or a truncated payload.
    One C-speed pass when the text is plain base64; the analysis runs only for the other forms."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    compact = text.translate(_WHITESPACE)
    mixed = ("-" in compact or "_" in compact) and ("+" in compact or "/" in compact)
    if not mixed:
        compact = compact.translate(_URLSAFE)
    if not len(compact) % 4:
        try:
            return base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            pass
    bad = _NOT_BASE64.search(text)
    if bad:
        raise DomainError(400, f"Invalid {field} in Payload: {bad.group()!r} at position {bad.start()} is not a "
                               "base64 character")
    if mixed:
        raise DomainError(400, f"Invalid {field} in Payload: base64 mixes the standard (+/) and URL-safe (-_) "
                               "alphabets")
    if len(compact) % 4:
        raise DomainError(400, f"Invalid {field} in Payload: truncated base64 ({len(compact)} characters, not a "
                               "multiple of 4)")
    raise DomainError(400, f"Invalid {field} in Payload: malformed base64 (padding '=' before the end)")


@dataclass(frozen=True)
class StoredMedia:
    """A file in the media bucket: S3 key, MIME type, size in bytes, SHA-256 as hex ("" when not
    computed, e.g. for a presigned upload)."""

    key: str
    mimetype: str
    size: int
    sha256: str


def decode_data_url(kind: str, value: str, max_bytes: int) -> tuple[bytes, str]:
    """`data:<type>;base64,<payload>` -> (bytes, sniffed or declared mimetype); DomainError when unusable."""
    spec = KINDS[kind]
    if not any(value.startswith(prefix) for prefix in spec.prefixes):
        expected = " or ".join(f"{p}..." if not p.endswith(",") else p for p in spec.prefixes)
        raise DomainError(400, f"{spec.field} data should start with {expected}")
    header, sep, payload = value.partition(",")
    if not sep or not header.endswith(";base64"):
        raise DomainError(400, f"Invalid {spec.field} in Payload: not a base64 data URL")
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise DomainError(413, f"Payload too large: {spec.field} exceeds the limit of {max_bytes} bytes")
    data = decode_base64(payload, spec.field)
    if not data:
        raise DomainError(400, f"Missing {spec.field} in Payload")
    if len(data) > max_bytes:
        raise DomainError(413, f"Payload too large: {spec.field} exceeds the limit of {max_bytes} bytes")
    return data, _sniff(spec, spec.field, data)


def _sniff(spec: MediaKind, field: str, head: bytes) -> str:
    """The type read from the file's first bytes; DomainError if the field cannot take it."""
    sniffed = filetype.guess_mime(head)
    if spec.families != ("",):
        if sniffed is None or not any(sniffed == f or (f.endswith("/") and sniffed.startswith(f))
                                      for f in spec.families):
            raise DomainError(400, f"Invalid {field} in Payload: the data is {sniffed or 'of an unknown type'}, "
                                f"not {' / '.join(spec.families)}")
    return sniffed or "application/octet-stream"


# What S3 answers for a key that is not there: 404 (HeadObject has no body, so no NoSuchKey code),
# NoSuchKey, or 403 where the caller may not list the bucket. The stack grants object actions only,
# so in AWS a missing key is AccessDenied ("If you don't have the s3:ListBucket permission, Amazon S3
# returns an HTTP status code 403", S3 API reference, GetObject and HeadObject); moto answers 404.
_MISSING_OBJECT = frozenset({"404", "NoSuchKey", "NotFound", "403", "AccessDenied", "Forbidden"})


def missing_object(exc: ClientError) -> bool:
    """Whether S3's error means the object is not there (or not visible to this role), rather than S3
    failing; see _MISSING_OBJECT."""
    return str(exc.response.get("Error", {}).get("Code", "")) in _MISSING_OBJECT


MEDIA_STORE_UNAVAILABLE = "media store unavailable: try again"


@contextmanager
def media_store_errors(field: str) -> Iterator[None]:
    """S3 failing or unreachable while reading or writing media: DomainError 503 MEDIA_STORE_UNAVAILABLE
    (not the client's mistake; worth a retry), logged with AWS's error code and `field` (what was being
    read). Other exceptions, DomainError among them, pass through."""
    try:
        yield
    except ClientError as exc:
        logger.warning("media store error", extra={"aws_error": exc.response.get("Error", {}).get("Code"),
                                                   "field": field})
        raise DomainError(503, MEDIA_STORE_UNAVAILABLE) from None
    except BotoCoreError as exc:  # no answer at all (connection, timeout)
        logger.warning("media store unreachable", extra={"aws_error": type(exc).__name__, "field": field})
        raise DomainError(503, MEDIA_STORE_UNAVAILABLE) from None


@contextmanager
def _reading_upload(field: str) -> Iterator[None]:
    """S3 errors of reading an upload as the client should see them: a key that is not there is its
    mistake (404), one rewritten under an ETag condition a 409; the rest is `media_store_errors` (503)."""
    with media_store_errors(field):
        try:
            yield
        except ClientError as exc:
            if missing_object(exc):
                raise DomainError(404, "MediaKey not found: upload the file first") from None
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):  # IfMatch: rewritten
                raise DomainError(409, "MediaKey changed while it was being checked: send again") from None
            raise


def _owner(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def kind_for(mimetype: str) -> str:
    """The send kind for a fetched file: image/video/audio by type, anything else a document."""
    family = mimetype.split("/", 1)[0]
    return family if family in ("image", "video", "audio") else "document"


class MediaStore:
    """The media bucket (S3): outbound files, presigned uploads, downloads. Keys are prefixed with a
    hash of the session token, never the token (tokens are secrets)."""

    def __init__(self, settings: Settings | None = None, s3: Any = None):
        self.settings = settings or get_settings()
        self.s3 = s3 or aws.client("s3")

    def put_outbound(self, token: str, data: bytes, mimetype: str) -> StoredMedia:
        """Store a file a session is about to send; keyed by a hash of the token (tokens are secrets)."""
        return self._put(OUTBOUND_PREFIX, token, data, mimetype)

    def put_download(self, token: str, data: bytes, mimetype: str) -> StoredMedia:
        """Store a file a session downloaded (the bucket's lifecycle rule expires it)."""
        return self._put(DOWNLOAD_PREFIX, token, data, mimetype)

    def presigned_upload(self, token: str, max_bytes: int, seconds: int = 900) -> tuple[str, dict[str, Any]]:
        """A presigned POST for one file of at most `max_bytes` under this session's upload prefix:
        large media goes straight to S3, never through the API body."""
        key = f"{UPLOAD_PREFIX}{_owner(token)}/{uuid.uuid4().hex}"
        post = self.s3.generate_presigned_post(self.settings.media_bucket_name, key, ExpiresIn=seconds,
                                               Conditions=[["content-length-range", 1, max_bytes]])
        return key, post

    def owns_upload(self, token: str, key: str) -> bool:
        """The key is under this session's upload prefix (another session's keys never are)."""
        return key.startswith(f"{UPLOAD_PREFIX}{_owner(token)}/") and ".." not in key

    def check_upload(self, token: str, key: str, kind: str, field: str, max_bytes: int,
                     sniff: bool = True) -> StoredMedia:
        """A presigned upload a request refers to: this session's, present, within the limit, the right type
        (`sniff=False`: any type, e.g. call playback, which the host decodes). DomainError 403 (another
        session's key), 404 (not there), 413, 400 (type), 503 (S3 failing)."""
        stored, _etag = self._check_upload(token, key, kind, field, max_bytes, sniff)
        return stored

    def take_upload(self, token: str, key: str, kind: str, field: str, max_bytes: int) -> StoredMedia:
        """The upload a send refers to, checked (`check_upload`) and copied to an outbound key, which is
        what the send carries: what is sent is what was checked, and stays so. The upload key itself can
        be written again until its form expires (a presigned POST is reusable), so sending it would let
        a file change after the check, past the type and size checks, and in already-sent messages.

        The copy is server-side (S3 CopyObject, one call, up to 5 GB), conditional on the ETag the check
        read (`CopySourceIfMatch`), and stores the sniffed type as the object's Content-Type (a presigned
        POST stores S3's default, binary/octet-stream). DomainError as `check_upload`, and 409 when the
        upload changed between the check and the copy."""
        checked, etag = self._check_upload(token, key, kind, field, max_bytes, sniff=True)
        bucket = self.settings.media_bucket_name
        target = f"{OUTBOUND_PREFIX}{_owner(token)}/{uuid.uuid4().hex}"
        with _reading_upload(field):
            self.s3.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": key},
                                CopySourceIfMatch=etag, MetadataDirective="REPLACE", ContentType=checked.mimetype)
        return StoredMedia(target, checked.mimetype, checked.size, "")

    def _check_upload(self, token: str, key: str, kind: str, field: str, max_bytes: int,
                      sniff: bool) -> tuple[StoredMedia, str]:
        """(the checked upload, the ETag its checks read)."""
        if not self.owns_upload(token, key):
            raise DomainError(403, "MediaKey does not belong to this session")
        bucket = self.settings.media_bucket_name
        with _reading_upload(field):
            head = self.s3.head_object(Bucket=bucket, Key=key)
        size, etag = int(head["ContentLength"]), str(head.get("ETag") or "")
        if size > max_bytes:
            raise DomainError(413, f"Payload too large: {field} exceeds the limit of {max_bytes} bytes")
        if not sniff:
            return StoredMedia(key, head.get("ContentType") or "application/octet-stream", size, ""), etag
        with _reading_upload(field):
            first = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{SNIFF_BYTES - 1}",
                                       IfMatch=etag)["Body"].read()
        return StoredMedia(key, _sniff(KINDS[kind], field, first), size, ""), etag

    def presigned_get(self, key: str, seconds: int = 900) -> str:
        """A presigned GET URL for `key`, valid for `seconds` (S3's limit: 7 days)."""
        return str(self.s3.generate_presigned_url("get_object", Params={"Bucket": self.settings.media_bucket_name,
                                                                       "Key": key}, ExpiresIn=seconds))

    def _put(self, prefix: str, token: str, data: bytes, mimetype: str) -> StoredMedia:
        key = f"{prefix}{_owner(token)}/{uuid.uuid4().hex}"
        self.s3.put_object(Bucket=self.settings.media_bucket_name, Key=key, Body=data, ContentType=mimetype)
        return StoredMedia(key, mimetype, len(data), hashlib.sha256(data).hexdigest())

    def get(self, key: str) -> tuple[bytes, str]:
        """(bytes, Content-Type) of `key`; the type defaults to application/octet-stream. Raises
        botocore's ClientError when S3 does not give it (`missing_object` tells an absent key)."""
        obj = self.s3.get_object(Bucket=self.settings.media_bucket_name, Key=key)
        return obj["Body"].read(), obj.get("ContentType") or "application/octet-stream"

    def copy(self, source_key: str, target_key: str) -> None:
        """Server-side copy of one object within the media bucket (S3 CopyObject, up to 5 GB)."""
        bucket = self.settings.media_bucket_name
        self.s3.copy_object(Bucket=bucket, Key=target_key, CopySource={"Bucket": bucket, "Key": source_key})
