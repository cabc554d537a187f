"""Lambda's 6 MB request/response caps, enforced by the app with the deployed stages' settings.

The limits are computed in chalicelib/core/limits.py from AWS's quotas (API Gateway 10 MB, Lambda 6 MB
synchronous request and response, the event's JSON overhead and base64's 4/3). `dev` and `prod` turn
them on (`enforce_lambda_limits`); here the test app's settings are switched the same way, so a
request that would fail in AWS fails here with WaGo's 413 envelope and the presigned-upload hint.
"""

from __future__ import annotations

import base64
import json

import pytest

from chalicelib.core import limits
from chalicelib.core.settings import Settings, get_settings
from tests.conftest import ADMIN

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_data_url(decoded_bytes: int) -> str:
    data = PNG_MAGIC + b"\0" * (decoded_bytes - len(PNG_MAGIC))
    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.fixture
def deployed_limits(monkeypatch):
    """The test app's settings with Lambda's caps on, as dev and prod have them by default."""
    monkeypatch.setenv("LAMBDA_PAYLOAD_LIMITS", "true")
    get_settings.cache_clear()
    assert get_settings().enforce_lambda_limits
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_limits_follow_from_the_aws_caps():
    assert limits.LAMBDA_SYNC_PAYLOAD_BYTES == 6_291_456 < limits.API_GATEWAY_PAYLOAD_BYTES == 10_485_760
    assert limits.REQUEST_BODY_MAX_BYTES == 6_291_456 - limits.EVENT_OVERHEAD_BYTES
    # The largest data URL's base64 plus the rest of a send still fits the request cap.
    assert (limits.DATA_URL_MAX_DECODED_BYTES * 4 // 3 + limits.DATA_URL_SEND_FIELDS_BYTES
            <= limits.REQUEST_BODY_MAX_BYTES)
    assert 4_600_000 < limits.DATA_URL_MAX_DECODED_BYTES < 4_700_000  # ~4.45 MiB decoded
    for stage in ("dev", "prod"):
        settings = Settings(stage=stage)
        assert settings.enforce_lambda_limits
        assert settings.data_url_max_bytes == limits.DATA_URL_MAX_DECODED_BYTES < settings.media_max_bytes
    for stage in ("local", "test"):
        assert not Settings(stage=stage).enforce_lambda_limits
        assert Settings(stage=stage).data_url_max_bytes == Settings(stage=stage).media_max_bytes
    assert Settings(stage="local", lambda_payload_limits=True).enforce_lambda_limits
    # JSON escaping counts: a quote or backslash costs two bytes in the event, a control character six.
    body = '{"a":"b\\\\"}'  # four quotes, two backslashes
    assert limits.escaped_size(body) == len(body) + 6
    assert limits.escaped_size(b"\x01") == 6


def test_a_5mb_data_url_answers_413_pointing_to_the_presigned_upload(client, deployed_limits):
    client.init("big", "big-token")
    body = {"Phone": "15550001234", "Image": _png_data_url(5_000_000)}
    response = client.post("/send/image", body, headers={"token": "big-token"})
    assert response.status_code == 413, response.body
    answer = json.loads(response.body)
    assert (answer["code"], answer["success"]) == (413, False)
    assert answer["error"].startswith(f"Payload too large: {limits.escaped_size(json.dumps(body))} bytes exceeds the "
                                      f"limit of {limits.REQUEST_BODY_MAX_BYTES} bytes (Lambda's 6 MB request cap)")
    assert "POST /media/upload" in answer["error"] and "MediaKey" in answer["error"]


def test_a_data_url_over_the_decoded_limit_but_within_the_request_cap_answers_413_too(client, deployed_limits):
    client.init("edge", "edge-token")
    over = limits.DATA_URL_MAX_DECODED_BYTES + 3
    response = client.post("/send/image", {"Phone": "15550001234", "Image": _png_data_url(over)},
                           headers={"token": "edge-token"})
    assert response.status_code == 413, response.body
    error = json.loads(response.body)["error"]
    assert error == (f"Payload too large: Image exceeds the limit of {limits.DATA_URL_MAX_DECODED_BYTES} bytes; "
                     f"{limits.UPLOAD_HINT}")


def test_a_data_url_at_the_limit_passes_the_size_checks(client, deployed_limits):
    client.init("fits", "fits-token")
    response = client.post("/send/image", {"Phone": "15550001234",
                                           "Image": _png_data_url(limits.DATA_URL_MAX_DECODED_BYTES)},
                           headers={"token": "fits-token"})
    # Stored and handed to the bus; this session was never connected, so WaGo's "No session".
    assert response.status_code != 413, response.body
    assert json.loads(response.body)["error"] == "No session"


def test_local_stage_keeps_media_max_bytes_for_data_urls(client):
    client.init("local", "local-token")
    response = client.post("/send/image", {"Phone": "15550001234", "Image": _png_data_url(5_000_000)},
                           headers={"token": "local-token"})
    assert json.loads(response.body)["error"] == "No session"  # not a 413: no Lambda on this path


def test_an_oversized_list_answers_a_500_envelope_instead_of_lambdas_bare_502(client, deployed_limits, monkeypatch):
    for i in range(8):
        client.init(f"many{i}", f"many-token-{i}")
    fits = client.get("/session/all", headers=ADMIN)
    assert fits.status_code == 200
    size = limits.escaped_size(fits.body)
    monkeypatch.setattr(limits, "RESPONSE_BODY_MAX_BYTES", size - 1)  # the same list, one byte over the cap
    monkeypatch.setattr(limits, "LAMBDA_SYNC_PAYLOAD_BYTES", size)
    too_big = client.get("/session/all", headers=ADMIN)
    assert too_big.status_code == 500
    assert json.loads(too_big.body) == {
        "code": 500, "success": False,
        "error": f"Response too large: {size} bytes exceeds the limit of {size - 1} bytes (Lambda's 6 MB response cap)"}


def test_the_largest_inline_download_fits_the_response_cap(deployed_limits):
    from chalicelib.routes.message_ops import INLINE_DOWNLOAD_BYTES, DownloadResponse
    from chalicelib.routing import RouteSpec, _fit_response, _render

    spec = RouteSpec("POST", "/message/download/image", "download_image", None, "", "", None, DownloadResponse,
                     True, 200)
    data = "data:application/octet-stream;base64," + base64.b64encode(b"\xff" * INLINE_DOWNLOAD_BYTES).decode()
    url = "https://bucket.s3.amazonaws.com/in/x/" + "k" * 64 + "?X-Amz-Signature=" + "f" * 1900  # a long presign
    response = _fit_response(_render(DownloadResponse(mimetype="image/png", data=data, url=url,
                                                      size=INLINE_DOWNLOAD_BYTES), spec), spec)
    assert response.status_code == 200
    assert limits.escaped_size(response.body) <= limits.RESPONSE_BODY_MAX_BYTES
