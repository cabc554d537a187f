"""A `\\ud800` escape with no other half (a truncated emoji) is valid JSON that Python keeps as a
string UTF-8 cannot encode. Go's decoder turns it into U+FFFD; so does ours, for every key and value of
every body, before any model, queue or table sees it. Before, free-text fields (`/message/react`'s Body,
the download fields, `/sim/scan`'s PushName, a ContextInfo, ...) passed validation and failed when the
command was serialised for SQS: 500 `internal server error`.
"""

from __future__ import annotations

import json

import pytest

from chalicelib.core.errors import DomainError
from chalicelib.validation import decode_json
from tests.conftest import ADMIN

TOKEN = "surrogate-token"
LONE = "\\ud800"  # as it appears in the raw JSON


def test_lone_surrogates_become_the_replacement_character_in_keys_and_values():
    raw = '{"Body": "a\\ud800b", "K\\udfff": ["\\udc00", {"x": "\\ud83d"}], "Ok": "\\ud83c\\udf89"}'
    data = decode_json(raw, 1 << 20)
    assert data == {"Body": "a\ufffdb", "K\ufffd": ["\ufffd", {"x": "\ufffd"}], "Ok": "\U0001f389"}
    json.dumps(data, ensure_ascii=False).encode("utf-8")  # encodable now


def test_a_body_without_surrogate_escapes_is_returned_as_parsed():
    raw = '{"Body": "\\\\ud800 is literal text", "Emoji": "\U0001f389"}'
    assert decode_json(raw, 1 << 20) == {"Body": "\\ud800 is literal text", "Emoji": "\U0001f389"}


def _string_fields(model) -> list[str]:
    return [(field.alias or name) for name, field in model.model_fields.items()]


@pytest.fixture
def serialising_bus(monkeypatch):
    """The bus serialises each command's arguments for SQS, as the real one does, then stops."""
    from chalicelib import bus

    def command(self, session, op, args=None, **_kwargs):
        if args is not None:
            args.model_dump_json()  # what Bus.send puts on the queue
        raise DomainError(418, "reached the bus")

    monkeypatch.setattr(bus.Bus, "command", command)


def test_every_body_route_takes_a_lone_surrogate_in_every_field_without_a_500(client, serialising_bus):
    from app import ROUTES

    client.init("surrogates", TOKEN)
    headers = {**ADMIN, "token": TOKEN, "Content-Type": "application/json"}
    checked = 0
    for spec in ROUTES:
        if spec.body is None or spec.path == "/session/delete":
            continue
        fields = _string_fields(spec.body)
        raw = "{" + ", ".join(f'"{name}": "x{LONE}"' for name in fields) + f', "Unknown{LONE}": "{LONE}"' + "}"
        response = client.http.request(spec.method, spec.path, headers=headers, body=raw)
        body = json.loads(response.body)
        assert response.status_code < 500, (spec.path, response.status_code, body)
        assert body["code"] == response.status_code, (spec.path, body)
        checked += 1
    assert checked >= 50


def test_a_free_text_field_with_a_lone_surrogate_reaches_the_bus_as_replacement(client, monkeypatch):
    from chalicelib import bus

    seen = []

    def command(self, session, op, args=None, **_kwargs):
        seen.append(json.loads(args.model_dump_json()))
        raise DomainError(418, "reached the bus")

    monkeypatch.setattr(bus.Bus, "command", command)
    client.init("react", TOKEN)
    response = client.post("/message/react", raw='{"Phone": "15550002222", "Body": "\\ud83d", "Id": "3EB0X"}',
                           headers={"token": TOKEN})
    assert response.status_code == 418, response.json_body
    assert "\ufffd" in json.dumps(seen, ensure_ascii=False)
