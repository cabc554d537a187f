"""Values a request names a DynamoDB key with (the `token` header or `?token=`, `?callID=`, `?before=`)
are bounded before the read. DynamoDB refuses a GetItem or Query whose hash key exceeds 2048 bytes or
whose range key exceeds 1024 (ValidationException: a 500 in AWS); moto checks key sizes only on writes,
so here the reads are made to refuse such keys as DynamoDB does, and each answer must be the client's
4xx without the read."""

from __future__ import annotations

import pytest

from chalicelib.core.models import CallModel, DeliveryModel, SessionModel

HASH_KEY_MAX, RANGE_KEY_MAX = 2048, 1024


class KeyTooLarge(Exception):
    pass


def _size(value) -> int:
    return len(value.encode("utf-8")) if isinstance(value, str) else 0


@pytest.fixture
def dynamodb_key_limits(monkeypatch):
    """SessionModel.get, CallModel.get and DeliveryModel.query refuse oversized keys as DynamoDB does."""
    for model in (SessionModel, CallModel):
        original = model.get.__func__

        def get(cls, hash_key, range_key=None, *args, _original=original, **kwargs):
            if _size(hash_key) > HASH_KEY_MAX or _size(range_key) > RANGE_KEY_MAX:
                raise KeyTooLarge(cls.__name__)
            return _original(cls, hash_key, range_key, *args, **kwargs)

        monkeypatch.setattr(model, "get", classmethod(get))
    original_query = DeliveryModel.query.__func__

    def query(cls, hash_key, range_key_condition=None, *args, **kwargs):
        values = [getattr(v, "value", None) for v in getattr(range_key_condition, "values", ())]
        if any(isinstance(v, dict) and _size(v.get("S")) > RANGE_KEY_MAX for v in values):
            raise KeyTooLarge(cls.__name__)
        return original_query(cls, hash_key, range_key_condition, *args, **kwargs)

    monkeypatch.setattr(DeliveryModel, "query", classmethod(query))


def test_the_fixture_refuses_what_dynamodb_refuses(aws, dynamodb_key_limits):
    with pytest.raises(KeyTooLarge):
        SessionModel.get("t" * 3000)
    with pytest.raises(KeyTooLarge):
        CallModel.get("t", "c" * 1100)
    with pytest.raises(KeyTooLarge):
        list(DeliveryModel.query("t", DeliveryModel.sk < "9" * 1100))


@pytest.mark.parametrize("where", ["header", "query"])
def test_an_overlong_token_is_an_invalid_token(client, dynamodb_key_limits, where):
    token = "t" * 3000
    path = "/session/status" + (f"?token={token}" if where == "query" else "")
    response = client.get(path, headers={"token": token} if where == "header" else {})
    assert (response.status_code, response.json_body["error"]) == (401, "invalid token")


def test_the_longest_token_init_accepts_still_authenticates(client, dynamodb_key_limits):
    token = "é" * 256  # 512 bytes: the bound counts characters, as /session/init does
    assert client.init("long", token).status_code == 200
    assert client.get(f"/session/status?token={token}").status_code == 200
    assert client.init("longer", "t" * 257).status_code == 400


def test_an_overlong_call_id_is_not_found(client, dynamodb_key_limits):
    client.init("calls", "call-token")
    for call_id in ("c" * 129, "c" * 3000):
        response = client.get(f"/call/status?callID={call_id}", headers={"token": "call-token"})
        assert (response.status_code, response.json_body["error"]) == (404, "call not found"), call_id


@pytest.mark.parametrize("before", ["zzz", "9" * 3000, "123", "000000000000001%23" + "e" * 200,
                                    "000000000000001%23%20x", "%E2%91%A0" * 15])
def test_a_cursor_that_no_page_gave_is_a_400(client, dynamodb_key_limits, before):
    client.init("log", "log-token")
    response = client.get(f"/webhook/deliveries?before={before}", headers={"token": "log-token"})
    assert response.status_code == 400, response.json_body
    assert response.json_body["error"] == "Invalid before: not a cursor from a previous page's next"


@pytest.mark.parametrize("before", ["000000000000001%233f1a0c", "000000000000001"])
def test_a_cursor_with_or_without_its_event_id_is_taken(client, dynamodb_key_limits, before):
    # (a client that does not percent-encode `#` sends only the time part: still a page)
    client.init("log", "log-token")
    response = client.get(f"/webhook/deliveries?before={before}", headers={"token": "log-token"})
    assert response.status_code == 200, response.json_body
    assert response.json_body["data"] == {"deliveries": [], "next": None}
