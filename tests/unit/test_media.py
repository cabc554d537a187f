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
    ("image", "data:image/png;base64,iVBORw0KGgo%%%", 400, "Invalid Image in Payload: malformed or truncated base64"),
    ("image", "data:image/png;base64,iVBORw0KGg", 400, "Invalid Image in Payload: malformed or truncated base64"),
    ("image", "data:image/png;base64,", 400, "Missing Image in Payload"),
    ("audio", _url("data:audio/ogg;base64,", b"%PDF-1.4 not audio at all"), 400,
     "Invalid Audio in Payload: the data is application/pdf, not audio/"),
])
def test_bad_media_is_refused_precisely(kind, value, status, message):
    with pytest.raises(DomainError) as refused:
        decode_data_url(kind, value, 1 << 20)
    assert (refused.value.status, refused.value.message) == (status, message)


def test_oversized_media_is_413_before_decoding():
    with pytest.raises(DomainError) as refused:
        decode_data_url("image", _url("data:image/png;base64,", _png() * 50), 1000)
    assert refused.value.status == 413
    assert refused.value.message == "Payload too large: Image exceeds the limit of 1000 bytes"


def test_documents_take_any_bytes():
    data, mimetype = decode_data_url("document", _url("data:application/octet-stream;base64,", b"%PDF-1.4\n%..."),
                                     1 << 20)
    assert mimetype == "application/pdf" and data.startswith(b"%PDF")
