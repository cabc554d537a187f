"""GET /server/ok, token auth (header, query fallback, trimming), POST/GET /webhook."""

from __future__ import annotations

from chalicelib.core.models import SessionModel


def test_server_ok_needs_no_auth(client):
    response = client.get("/server/ok")
    assert response.status_code == 200
    assert response.json_body == {"code": 200, "data": {"status": "ok"}, "success": True}


def test_token_header_query_fallback_and_trimming(client):
    client.init("a", "t1")
    assert client.get("/webhook", headers={"token": "  t1  "}).status_code == 200
    assert client.get("/webhook?token=t1").status_code == 200
    assert client.get("/webhook", headers={"token": "t 1"}).status_code == 200  # spaces are not part of tokens


def test_missing_and_unknown_token(client):
    missing = client.get("/webhook")
    assert missing.status_code == 401
    assert missing.json_body == {"code": 401, "error": "Unauthorized", "success": False}
    unknown = client.get("/webhook", headers={"token": "nope"})
    assert unknown.status_code == 401
    assert unknown.json_body["error"] == "invalid token"


def test_set_and_get_webhook(client):
    client.init("a", "t1")
    set_response = client.post("/webhook", {"webhookurl": "https://example.test/hook"}, headers={"token": "t1"})
    assert set_response.status_code == 200
    assert set_response.json_body["data"] == {"webhook": "https://example.test/hook"}
    got = client.get("/webhook", headers={"token": "t1"}).json_body["data"]
    assert got == {"webhook": "https://example.test/hook", "subscribe": []}
    assert SessionModel.get("t1").webhook == "https://example.test/hook"


def test_bad_webhook_urls(client):
    client.init("a", "t1")
    cases = {
        "ftp://example.test/x": "Invalid WebhookURL in Payload: must be an absolute http:// or https:// URL",
        "/relative": "Invalid WebhookURL in Payload: must be an absolute http:// or https:// URL",
        "https://exa mple.test/": "Invalid WebhookURL in Payload: must not contain spaces or control characters",
    }
    for url, error in cases.items():
        response = client.post("/webhook", {"WebhookURL": url}, headers={"token": "t1"})
        assert response.status_code == 400, url
        assert response.json_body["error"] == error
    assert SessionModel.get("t1").webhook == ""


def test_an_empty_webhook_url_removes_the_webhook_and_an_absent_one_is_missing(client):
    """WaGo stores the URL it is given, "" included: that is how a client stops its webhook (the
    console's emptied URL field too). Before, "" was `Missing WebhookURL`: once set, a webhook could
    not be removed short of deleting the session."""
    client.init("a", "t1")
    headers = {"token": "t1"}
    client.post("/webhook", {"WebhookURL": "https://example.test/hook", "Secret": "s" * 16}, headers=headers)
    for empty in ("", "   "):
        response = client.post("/webhook", {"WebhookURL": empty}, headers=headers)
        assert response.status_code == 200, response.json_body
        assert response.json_body["data"]["webhook"] == ""
        assert SessionModel.get("t1").webhook == ""
        assert client.get("/webhook", headers=headers).json_body["data"]["webhook"] == ""
    for body in ({}, {"Secret": "s" * 16}):
        missing = client.post("/webhook", body, headers=headers)
        assert (missing.status_code, missing.json_body["error"]) == (400, "Missing WebhookURL in Payload")
