"""Every class of bad input gets WaGo's envelope, a 4xx and a precise message."""

from __future__ import annotations

import json

import pytest

from chalicelib.core.models import SessionModel
from tests.conftest import ADMIN


@pytest.mark.parametrize(
    ("raw", "status", "error"),
    [
        ("{not json", 400, "Could not decode Payload"),
        ('["Name"]', 400, "Could not decode Payload: expected a JSON object"),
        ('"text"', 400, "Could not decode Payload: expected a JSON object"),
        ("", 400, "Missing Name in Payload"),
        ('{"Token":"t","Os":"x"}', 400, "Missing Name in Payload"),
        ('{"Name":"","Token":"t","Os":"x"}', 400, "Missing Name in Payload"),
        ('{"Name":"   ","Token":"t","Os":"x"}', 400, "Missing Name in Payload"),
        ('{"Name":"n","Os":"x"}', 400, "Missing Token in Payload"),
        ('{"Name":"n","Token":"t"}', 400, "Missing Os in Payload"),
        ('{"Name":5,"Token":"t","Os":"x"}', 400, "Could not decode Payload: Name must be a string"),
        ('{"Name":"n","Token":["t"],"Os":"x"}', 400, "Could not decode Payload: Token must be a string"),
        ('{"Name":"n","Token":"   ","Os":"x"}', 400, "Invalid Token in Payload: must not be blank"),
        ('{"Name":"a\\u0000b","Token":"t","Os":"x"}', 400,
         "Invalid Name in Payload: must not contain control characters"),
        ('{"Name":"' + "n" * 300 + '","Token":"t","Os":"x"}', 400,
         "Invalid Name in Payload: String should have at most 256 characters"),
    ],
)
def test_bad_init_bodies(client, raw, status, error):
    response = client.post("/session/init", raw=raw, headers=ADMIN)
    assert response.status_code == status
    assert response.json_body == {"code": status, "error": error, "success": False}
    assert SessionModel.count() == 0  # nothing half-written


def test_oversized_body_is_413(client):
    raw = json.dumps({"Name": "n", "Token": "t", "Os": "x", "pad": "x" * (1 << 20)})
    response = client.post("/session/init", raw=raw, headers=ADMIN)
    assert response.status_code == 413
    assert response.json_body["error"].startswith("Payload too large: ")
    assert SessionModel.count() == 0


def test_invalid_utf8_is_400(client):
    response = client.post("/session/init", raw=b'{"Name":"\xff"}', headers=ADMIN)
    assert response.status_code == 400
    assert response.json_body["error"] == "Could not decode Payload: body is not UTF-8"


def test_unsupported_method_is_405_envelope(client):
    response = client.request("DELETE", "/server/ok")
    assert response.status_code == 405
    assert response.json_body == {"code": 405, "error": "Method Not Allowed: use GET", "success": False}
    assert response.headers["Allow"] == "GET"


def test_exact_key_wins_over_other_casing(client):
    response = client.post("/session/init", raw='{"name":"lower","Name":"Exact","Token":"t","Os":"x"}', headers=ADMIN)
    assert response.json_body["data"]["name"] == "Exact"


def test_unknown_keys_are_ignored(client):
    response = client.post("/session/init", {"Name": "n", "Token": "t", "Os": "x", "Extra": {"a": 1}}, headers=ADMIN)
    assert response.status_code == 200


WRONG_VALUES = ({}, [1], [{}], 1, 1.5, True, "x", {"a": [1]})


def test_messages_name_the_fields_as_the_client_wrote_them_on_every_route():
    """A field that takes several types (`Subscribe`: a list or a comma string) reported pydantic's
    union member names (`Subscribe.list[str].0`); every message names body keys and list indexes only."""
    import re

    from pydantic import ValidationError

    from app import ROUTES
    from chalicelib.validation import describe

    member = re.compile(r"\[|\b(str|int|list|dict|bool|float|none)\b")
    checked = 0
    for spec in ROUTES:
        if spec.body is None:
            continue
        for name, field in spec.body.model_fields.items():
            for value in WRONG_VALUES:
                try:
                    spec.body.model_validate({field.alias or name: value})
                except ValidationError as exc:
                    message = describe(exc)
                    where = message.split(" must be ")[0].split(" in Payload")[0]
                    assert not member.search(where), (spec.path, value, message)
                    checked += 1
    assert checked > 500


@pytest.mark.parametrize(("value", "error"), [
    ({}, "Could not decode Payload: Subscribe must be a list or a string"),
    (5, "Could not decode Payload: Subscribe must be a list or a string"),
    ([1], "Could not decode Payload: Subscribe.0 must be a string"),
])
def test_a_field_of_several_types_names_them_all(client, value, error):
    client.init("subs", "subs-token")
    response = client.post("/session/connect", {"Subscribe": value}, headers={"token": "subs-token"})
    assert (response.status_code, response.json_body["error"]) == (400, error)
