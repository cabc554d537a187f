"""Numbers and nesting, by kind (issue 14, items 8 and 9).

- every number in every body (under a known or an unknown key) goes through one strict parser:
  bounded length, 64-bit integers, finite floats; 400 with WaGo's `Could not decode Payload` text;
- every number in a query string is ASCII digits only and bounded;
- every body nests at most MAX_JSON_DEPTH levels, and the refusal comes before any state is written.
Each test walks every body route of the app (`app.ROUTES`), not one example.
"""

from __future__ import annotations

import json

import pytest

from chalicelib.validation import INT64_MAX, MAX_JSON_DEPTH
from tests.conftest import ADMIN

TOKEN = "num-token"


def _body_routes():
    from app import ROUTES

    return [spec for spec in ROUTES if spec.body is not None]


def _send_everywhere(client, raw: str) -> list[tuple[str, int, dict]]:
    client.init("num", TOKEN)
    headers = {**ADMIN, "token": TOKEN, "Content-Type": "application/json"}
    answers = []
    for spec in _body_routes():
        response = client.http.request(spec.method, spec.path, headers=headers, body=raw)
        answers.append((spec.path, response.status_code, json.loads(response.body)))
    assert len(answers) >= 50  # every body route: sends, messages, users, groups, calls, webhook, admin
    return answers


BAD_NUMBERS = {
    "a few thousand digits under an unknown key": ('{"Unknown": %s}' % ("9" * 5000), "number 99999999999999999999..."),
    "a few thousand digits in a list": ('{"Phone": ["1"], "X": [1, %s]}' % ("7" * 4400), "number 777777777777..."),
    "one past int64": (f'{{"Zzz": {INT64_MAX + 1}}}', f"number {INT64_MAX + 1} does not fit in a 64-bit integer"),
    "below int64": (f'{{"Zzz": {-INT64_MAX - 2}}}', f"number {-INT64_MAX - 2} does not fit in a 64-bit integer"),
    "an overflowing float": ('{"Latitude": 1e999}', "number 1e999 is out of range"),
    "a long float": ('{"Zzz": 0.%s}' % ("1" * 400), "number 0.111111111111111111... (402 characters) is longer"),
    "NaN": ('{"Zzz": NaN}', "NaN is not a JSON number"),
    "Infinity": ('{"Zzz": -Infinity}', "-Infinity is not a JSON number"),
}


@pytest.mark.parametrize("case", BAD_NUMBERS)
def test_every_body_route_refuses_unparseable_numbers_with_400(client, case):
    raw, expected = BAD_NUMBERS[case]
    for path, status, body in _send_everywhere(client, raw):
        assert (status, body["success"], body["code"]) == (400, False, 400), (path, status, body)
        assert body["error"].startswith("Could not decode Payload: "), (path, body)
        assert expected.split("...")[0] in body["error"], (path, body["error"])


def test_numbers_within_bounds_still_decode(client):
    from chalicelib.validation import decode_json

    assert decode_json(b'{"a": 9223372036854775807, "b": -9223372036854775808, "c": 1.5e308, "d": -0.0}', 1 << 20) \
        == {"a": INT64_MAX, "b": -INT64_MAX - 1, "c": 1.5e308, "d": -0.0}


@pytest.mark.parametrize("value", ["", "٣", "²", "１", "-1", "+5", " 5", "5 ", "0", "201", "1e2", "0x10",
                                   "9" * 5000])
def test_every_numeric_query_parameter_is_ascii_and_bounded(client, value):
    """Query numbers today: `/webhook/deliveries?limit=` (the only route reading a number from the query;
    found by grepping every `call.query` read)."""
    from urllib.parse import quote

    client.init("q", TOKEN)
    response = client.get(f"/webhook/deliveries?limit={quote(value)}", headers={"token": TOKEN})
    assert response.status_code == 400, (value, response.body)
    assert response.json_body == {"code": 400, "error": "Invalid limit: must be an integer from 1 to 200",
                                  "success": False}


def test_a_numeric_query_parameter_in_range_works(client):
    client.init("q", TOKEN)
    response = client.get("/webhook/deliveries?limit=200", headers={"token": TOKEN})
    assert response.status_code == 200 and response.json_body["data"]["deliveries"] == []


def _nested(depth: int) -> dict:
    """A ContextInfo whose QuotedMessage quotes a reply that quotes a reply ... `depth` JSON levels in all."""
    inner: dict = {"conversation": "hi"}
    levels = 4  # body -> ContextInfo -> QuotedMessage -> {conversation}
    while levels < depth:
        inner = {"extendedTextMessage": {"text": "re", "contextInfo": {"quotedMessage": inner}}}
        levels += 3
    context = {"StanzaID": "A", "Participant": "15550001111@s.whatsapp.net", "QuotedMessage": inner}
    return {"Phone": "15550002222", "Body": "x", "ContextInfo": context}


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 3, 300, 5000])
def test_every_body_route_refuses_deep_nesting_before_writing_anything(client, depth):
    from chalicelib.core.models import MessageModel

    raw = json.dumps(_nested(depth)) if depth < 900 else '{"Phone": "1", "X": ' + "[" * depth + "]" * depth + "}"
    for path, status, body in _send_everywhere(client, raw):
        assert (status, body["code"]) == (400, 400), (path, status, body)
        assert body["error"] == f"Could not decode Payload: nested deeper than {MAX_JSON_DEPTH} levels", (path, body)
    assert list(MessageModel.scan()) == []  # no async claim, no record: nothing was written


def test_async_send_with_deep_nesting_leaves_no_claim_and_a_fixed_retry_is_accepted(client):
    """The field report: a 300-level QuotedMessage in async mode left its record `queued` for good."""
    from chalicelib.core.models import MessageModel

    client.init("deep", TOKEN)
    body = {**_nested(300), "Id": "DEEP1"}
    refused = client.post("/send/text?async=true", body, headers={"token": TOKEN})
    assert refused.status_code == 400
    assert list(MessageModel.scan()) == []
    reasonable = {**_nested(MAX_JSON_DEPTH - 2), "Id": "DEEP1"}
    accepted = client.post("/send/text?async=true", reasonable, headers={"token": TOKEN})
    # No host runs in unit tests: the dispatch fails with WaGo's `No session`, and the record says so.
    assert accepted.status_code == 500 and accepted.json_body["error"] == "No session"
    record = MessageModel.get(TOKEN, "DEEP1")
    assert record.status == "failed" and record.error == "No session"
