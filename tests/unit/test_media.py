"""Outbound media checks: WaGo's data URL prefixes, strict base64, size limit, type sniffed from bytes."""

from __future__ import annotations

import base64
import io

import pytest
import segno

from chalicelib.core.errors import DomainError
from chalicelib.core.media import decode_data_url


def _png() -> bytes:
    buffer = io.BytesIO()
    segno.make_qr("wago").save(buffer, kind="png")
    return buffer.getvalue()


def _url(prefix: str, data: bytes) -> str:
    return prefix + base64.b64encode(data).decode()


def test_a_real_png_is_accepted_with_its_sniffed_type():
    png = _png()
    data, mimetype = decode_data_url("image", _url("data:image/png;base64,", png), 1 << 20)
    assert (data, mimetype) == (png, "image/png")


@pytest.mark.parametrize("kind,value,status,message", [
    ("image", "data:video/mp4;base64,AAAA", 400, "Image data should start with data:image/..."),
    ("document", "data:application/pdf;base64,JVBERi0=", 400,
     "Document data should start with data:application/octet-stream;base64,"),
    ("image", "data:image/png,notbase64", 400, "Invalid Image in Payload: not a base64 data URL"),
    ("image", "data:image/png;base64,iVBORw0KGgo%%%", 400,
     "Invalid Image in Payload: '%' at position 11 is not a base64 character"),
    ("image", "data:image/png;base64,iVBORw0KGg", 400,
     "Invalid Image in Payload: truncated base64 (10 characters, not a multiple of 4)"),
    ("image", "data:image/png;base64,iVBO\nRw0K\nG", 400,
     "Invalid Image in Payload: truncated base64 (9 characters, not a multiple of 4)"),
    ("image", "data:image/png;base64,iVBO+w0K_g==", 400,
     "Invalid Image in Payload: base64 mixes the standard (+/) and URL-safe (-_) alphabets"),
    ("image", "data:image/png;base64,iVBO=w0KGgo=", 400,
     "Invalid Image in Payload: malformed base64 (padding '=' before the end)"),
    ("image", "data:image/png;base64,iVBORw0KGgo\u00e9", 400,
     "Invalid Image in Payload: 'é' at position 11 is not a base64 character"),
    ("image", "data:image/png;base64,", 400, "Missing Image in Payload"),
    ("audio", _url("data:audio/ogg;base64,", b"%PDF-1.4 not audio at all"), 400,
     "Invalid Audio in Payload: the data is application/pdf, not audio/"),
])
def test_bad_media_is_refused_precisely(kind, value, status, message):
    with pytest.raises(DomainError) as refused:
        decode_data_url(kind, value, 1 << 20)
    assert (refused.value.status, refused.value.message) == (status, message)


#: What common encoders emit for the same bytes: one line (btoa, Buffer, b64encode), 76-character lines
#: with \n (base64(1), encodebytes, MIME) or \r\n (RFC 2045 mail), 64-character PEM-style lines, a
#: trailing newline (`base64 file`), and the URL-safe alphabet (RFC 4648 §5, base64url with padding).
ENCODERS = {
    "one line": lambda b: base64.b64encode(b).decode(),
    "encodebytes (76 + \\n)": lambda b: base64.encodebytes(b).decode(),
    "MIME (76 + \\r\\n)": lambda b: base64.encodebytes(b).decode().replace("\n", "\r\n"),
    "PEM (64 + \\n)": lambda b: "\n".join(base64.b64encode(b).decode()[i:i + 64]
                                          for i in range(0, len(base64.b64encode(b)), 64)),
    "base64(1) + newline": lambda b: base64.b64encode(b).decode() + "\n",
    "URL-safe": lambda b: base64.urlsafe_b64encode(b).decode(),
}


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("kind,prefix", [("image", "data:image/png;base64,"), ("sticker", "data:image/png;base64,"),
                                         ("document", "data:application/octet-stream;base64,")])
def test_every_common_base64_encoding_is_accepted_for_every_media_kind(encoder, kind, prefix):
    png = _png() + b"\xfb\xff"  # bytes that need '+' and '/' (or '-' and '_')
    data, _ = decode_data_url(kind, prefix + ENCODERS[encoder](png), 1 << 20)
    assert data == png


@pytest.mark.parametrize("encoder", ENCODERS)
def test_truncating_any_encoding_is_still_refused(encoder):
    encoded = ENCODERS[encoder](_png()).rstrip()
    with pytest.raises(DomainError) as refused:
        decode_data_url("image", "data:image/png;base64," + encoded[:-3], 1 << 20)
    assert refused.value.status == 400
    assert "truncated base64" in refused.value.message


def test_oversized_media_is_413_before_decoding():
    with pytest.raises(DomainError) as refused:
        decode_data_url("image", _url("data:image/png;base64,", _png() * 50), 1000)
    assert refused.value.status == 413
    assert refused.value.message == "Payload too large: Image exceeds the limit of 1000 bytes"


def test_documents_take_any_bytes():
    data, mimetype = decode_data_url("document", _url("data:application/octet-stream;base64,", b"%PDF-1.4\n%..."),
                                     1 << 20)
    assert mimetype == "application/pdf" and data.startswith(b"%PDF")


@pytest.mark.parametrize("failure,status,message", [
    # S3's answers for a key that is not there: 404, or 403 without s3:ListBucket (the stack's case)
    ({"Error": {"Code": "404", "Message": "Not Found"}}, 404, "MediaKey not found: upload the file first"),
    ({"Error": {"Code": "403", "Message": "Forbidden"}}, 404, "MediaKey not found: upload the file first"),
    # S3 itself failing is not the client's mistake
    ({"Error": {"Code": "InternalError", "Message": "We encountered an internal error"}}, 503,
     "media store unavailable: try again"),
    ({"Error": {"Code": "SlowDown", "Message": "Reduce your request rate"}}, 503, "media store unavailable: try again"),
    ("connection", 503, "media store unavailable: try again"),
])
def test_an_upload_that_s3_cannot_read_is_a_404_only_when_the_key_is_missing(aws, failure, status, message,
                                                                             monkeypatch):
    from botocore.exceptions import ClientError, EndpointConnectionError

    from chalicelib.core import media
    from chalicelib.core.media import UPLOAD_PREFIX, MediaStore, _owner

    logged: list[tuple[str, dict]] = []
    monkeypatch.setattr(media.logger, "warning", lambda message, extra: logged.append((message, extra)))
    store = MediaStore()
    key = f"{UPLOAD_PREFIX}{_owner('atoken')}/0123"

    def head_object(**_kwargs):
        if failure == "connection":
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
        raise ClientError(failure, "HeadObject")

    store.s3 = type("FailingS3", (), {"head_object": staticmethod(head_object)})()
    with pytest.raises(DomainError) as raised:
        store.check_upload("atoken", key, "image", "Image", 1 << 20)
    assert (raised.value.status, raised.value.message) == (status, message)
    if status == 503:  # logged with S3's error code (or the exception's name), for the operator
        ((line, extra),) = logged
        assert line.startswith("media store") and extra["aws_error"] in ("InternalError", "SlowDown",
                                                                          "EndpointConnectionError")
    else:
        assert logged == []


@pytest.mark.parametrize("code,delivered_without_media", [("AccessDenied", True), ("NoSuchKey", True),
                                                         ("InternalError", False)])
def test_a_webhook_whose_media_is_gone_still_goes_out(aws, monkeypatch, code, delivered_without_media):
    """In AWS the fan-out's role may not list the bucket, so an expired object is AccessDenied, not
    NoSuchKey: the event goes out without its file rather than retrying into the DLQ. S3 failing is
    retried (the error propagates to the batch's item failure)."""
    from botocore.exceptions import ClientError

    from chalicelib.core.contract import WireEvent
    from chalicelib.webhooks import media as webhook_media

    class FailingS3:
        def get_object(self, **_kwargs):
            raise ClientError({"Error": {"Code": code, "Message": "no"}}, "GetObject")

    monkeypatch.setattr(webhook_media, "client", lambda service: FailingS3())
    event = WireEvent(event_id="e1", token="atoken", seq=1, ts=1.0, type="Message", event={},
                      media_key="media/in/abc/def")
    if delivered_without_media:
        assert webhook_media.fetch(event) is None
    else:
        with pytest.raises(ClientError):
            webhook_media.fetch(event)


def test_a_sent_upload_is_a_copy_of_what_was_checked(aws):
    """take_upload copies the checked object (its ETag) to an outbound key, typed as sniffed; an upload
    rewritten between the check and the copy is a 409, never sent."""
    from chalicelib.core.media import OUTBOUND_PREFIX, UPLOAD_PREFIX, MediaStore, _owner

    store = MediaStore()
    bucket = store.settings.media_bucket_name
    key = f"{UPLOAD_PREFIX}{_owner('atoken')}/0123"
    png = _png()
    store.s3.put_object(Bucket=bucket, Key=key, Body=png)  # as a presigned POST leaves it: S3's default type
    taken = store.take_upload("atoken", key, "image", "Image", 1 << 20)
    assert taken.key.startswith(f"{OUTBOUND_PREFIX}{_owner('atoken')}/") and (taken.mimetype, taken.size) == (
        "image/png", len(png))
    store.s3.put_object(Bucket=bucket, Key=key, Body=b"\0" * 100)  # the form posted again
    copied = store.s3.get_object(Bucket=bucket, Key=taken.key)
    assert (copied["Body"].read(), copied["ContentType"]) == (png, "image/png")

    store.s3.put_object(Bucket=bucket, Key=key, Body=png)
    real_head = store.s3.head_object

    def head_then_rewrite(**kwargs):  # the client posts the form again right after the check read it
        head = real_head(**kwargs)
        store.s3.put_object(Bucket=bucket, Key=key, Body=png + b"more")
        return head

    store.s3.head_object = head_then_rewrite
    with pytest.raises(DomainError) as raised:
        store.take_upload("atoken", key, "image", "Image", 1 << 20)
    assert (raised.value.status, raised.value.message) == (
        409, "MediaKey changed while it was being checked: send again")
