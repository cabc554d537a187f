"""Every route that takes a body answers client mistakes with WaGo's envelope and a 4xx: malformed
JSON, a JSON value that is not an object, and wrongly typed fields. Nothing reaches a host."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ADMIN

MISTYPED = {"Phone": 5, "Id": [1], "CallID": 3, "GroupJID": {}, "Token": 1, "Body": 7, "Name": 3, "Chat": 1,
            "Participants": "x", "MessageID": 2, "Url": 9, "Value": "maybe", "Code": 4, "Question": 5}


def _body_routes():
    from app import ROUTES

    return [spec for spec in ROUTES if spec.body is not None]


@pytest.mark.parametrize("raw,expected", [("{", "Could not decode Payload"), ("[1, 2]", "Could not decode Payload"),
                                          (json.dumps(MISTYPED), None)])
def test_client_mistakes_get_a_4xx_envelope_on_every_route(client, raw, expected):
    client.init("bad", "bad-token")
    headers = {**ADMIN, "token": "bad-token"}
    checked = 0
    for spec in _body_routes():
        aliases = {(f.alias or name).lower() for name, f in spec.body.model_fields.items()}
        if expected is None and not aliases & {key.lower() for key in MISTYPED}:
            continue  # no field of this route is among the mistyped ones
        response = client.http.request(spec.method, spec.path, headers={"Content-Type": "application/json", **headers},
                                       body=raw)
        body = json.loads(response.body)
        assert 400 <= response.status_code < 500, (spec.path, response.status_code, body)
        assert body["success"] is False and body["code"] == response.status_code, (spec.path, body)
        if expected:
            assert body["error"].startswith(expected), (spec.path, body)
        checked += 1
    assert checked >= 30  # the sends, messages, users, groups, calls, webhook and admin routes


def test_download_fields_must_be_the_webhooks_base64(client):
    client.init("dl", "dl-token")
    response = client.post("/message/download/image", {"directPath": "/v/x", "mediaKey": "not base64!"},
                           headers={"token": "dl-token"})
    assert response.status_code == 400
    assert json.loads(response.body)["error"] == ("Invalid MediaKey in Payload: must be base64, as in the webhook: "
                                                  "'!' at position 10 is not a base64 character")
