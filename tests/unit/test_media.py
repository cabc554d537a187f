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
