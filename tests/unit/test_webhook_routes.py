"""/webhook secret handling, /webhook/deliveries, /webhook/redrive; retry policy and signing helpers."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from chalicelib.core.contract import WireEvent
from chalicelib.core.models import DeliveryModel, SessionModel
from chalicelib.webhooks import log, retry, signing
from tests.unit.webhook_helpers import wire_event

ADMIN = {"admintoken": "qwert"}
SECRET = "0123456789abcdef-secret"


def test_secret_is_stored_and_never_echoed_in_full(client):
    client.init("a", "t1")
    headers = {"token": "t1"}
    response = client.post("/webhook", {"WebhookURL": "https://example.test/h", "Secret": SECRET}, headers=headers)
    assert response.status_code == 200
    assert response.json_body["data"] == {"webhook": "https://example.test/h", "secret": "…cret"}
    assert SECRET not in response.body.decode()
    assert SessionModel.get("t1").webhook_secret == SECRET
    got = client.get("/webhook", headers=headers)
    assert got.json_body["data"] == {"webhook": "https://example.test/h", "subscribe": [], "secret": "…cret"}
    assert SECRET not in got.body.decode()
    listed = client.get("/session/all", headers=ADMIN)
    assert SECRET not in listed.body.decode()

    # Omitted: kept. Empty: removed.
    kept = client.post("/webhook", {"WebhookURL": "https://example.test/2"}, headers=headers)
    assert kept.json_body["data"]["secret"] == "…cret"
    assert SessionModel.get("t1").webhook_secret == SECRET
    removed = client.post("/webhook", {"WebhookURL": "https://example.test/2", "Secret": ""}, headers=headers)
    assert removed.json_body["data"] == {"webhook": "https://example.test/2"}
    assert SessionModel.get("t1").webhook_secret is None


def test_short_secret_is_refused(client):
    client.init("a", "t1")
    response = client.post("/webhook", {"WebhookURL": "https://example.test/h", "Secret": "short"},
                           headers={"token": "t1"})
    assert response.status_code == 400
    assert response.json_body["error"] == (
        "Invalid Secret in Payload: must be 16 to 256 characters (empty switches signing off)"
    )


def _event(token: str, ts: float) -> WireEvent:
    data = wire_event(token)
    data["ts"] = ts
    return WireEvent.model_validate(data)


def test_delivery_log_is_readable_newest_first_with_paging_and_ttl(client):
    client.init("a", "t1")
    now = time.time()
    events = [_event("t1", now - 100 + i) for i in range(5)]
    for i, event in enumerate(events):
        if i == 3:
            log.record(event, state=log.RETRYING, attempts=2, status=503, latency_ms=12.5,
                       error="receiver answered 503", next_retry_seconds=20)
        else:
            log.record(event, state=log.DELIVERED, attempts=1, status=200, latency_ms=3.25)
    log.record(_event("other", now), state=log.DELIVERED, attempts=1, status=200, latency_ms=1)

    first = client.get("/webhook/deliveries?limit=2", headers={"token": "t1"}).json_body["data"]
    assert [d["eventId"] for d in first["deliveries"]] == [events[4].event_id, events[3].event_id]
    retrying = first["deliveries"][1]
    assert retrying == {
        "eventId": events[3].event_id, "type": "Message", "state": "retrying", "dropReason": None, "attempts": 2,
        "lastStatus": 503,
        "lastError": "receiver answered 503", "latencyMs": 12.5, "nextRetrySeconds": 20, "deliveredAt": None,
        "updatedAt": retrying["updatedAt"],
    }
    assert first["deliveries"][0]["deliveredAt"].endswith("Z")
    rest = client.get(f"/webhook/deliveries?limit=10&before={first['next']}", headers={"token": "t1"})
    rest = rest.json_body["data"]
    assert [d["eventId"] for d in rest["deliveries"]] == [e.event_id for e in reversed(events[:3])]
    assert rest["next"] is None

    item = next(iter(DeliveryModel.query("t1")))
    assert item.expires_at > datetime.now(UTC) + timedelta(days=6)  # TTL: 7 days by default

    for bad in ("0", "201", "x", "-1"):
        response = client.get(f"/webhook/deliveries?limit={bad}", headers={"token": "t1"})
        assert response.status_code == 400
        assert response.json_body["error"] == "Invalid limit: must be an integer from 1 to 200"


def test_redrive_needs_the_admin_token(client):
    assert client.post("/webhook/redrive", {}).status_code == 401
    assert client.post("/webhook/redrive", {}, headers={"admintoken": "nope"}).status_code == 401
    empty = client.post("/webhook/redrive", {}, headers=ADMIN)
    assert empty.json_body == {"code": 200, "data": {"redriven": 0, "skipped": 0, "sessions": {}}, "success": True}
    bad = client.post("/webhook/redrive", {"Max": 0}, headers=ADMIN)
    assert bad.status_code == 400


def test_retry_classification():
    assert retry.classify(200) is retry.Verdict.DELIVERED
    assert retry.classify(204) is retry.Verdict.DELIVERED
    for status in (None, 408, 429, 500, 502, 503, 504):
        assert retry.classify(status) is retry.Verdict.RETRY, status
    for status in (301, 302, 400, 401, 403, 404, 410, 413, 422):
        assert retry.classify(status) is retry.Verdict.REJECTED, status


def test_backoff_grows_with_jitter_and_is_capped():
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(300, 5 * 2 ** (attempt - 1))
        values = [retry.backoff_seconds(attempt, 5, 300, rng) for _ in range(50)]
        assert all(ceiling / 2 <= v <= ceiling for v in values)
        assert len(set(values)) > 1  # jittered
    assert retry.visibility_for(20, 5, 300, rng=rng) <= 300
    assert retry.visibility_for(1, 5, 300, retry_after=120, rng=rng) == 120  # Retry-After honoured
    assert retry.visibility_for(1, 5, 300, retry_after=9999, rng=rng) == 300  # ... up to the cap
    assert retry.visibility_for(1, 0, 0) == 0
    assert retry.retry_after_seconds("30") == 30
    assert retry.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert retry.retry_after_seconds("soon") is None


def test_signing_reference_helpers():
    body = b"token=t&jsonData=%7B%7D"
    header = signing.signature(SECRET, "ev1", "1700000000", body)
    assert header.startswith("v2=")
    assert signing.verify(SECRET, "ev1", "1700000000", body, header, now=1700000010)
    assert not signing.verify(SECRET, "ev1", "1700000000", body + b"!", header, now=1700000010)
    assert not signing.verify(SECRET, "ev2", "1700000000", body, header, now=1700000010)  # another event id
    assert not signing.verify(SECRET, "ev1", "1700000000", body, header, now=1700009999)  # replay window
    assert not signing.verify(SECRET, "ev1", "\u0661700000000", body, header, now=1700000010)
    assert signing.secret_hint(None) is None and signing.secret_hint(SECRET) == "…cret"


def test_webhook_settings_defaults():
    from chalicelib.core.settings import Settings

    prod = Settings(stage="prod", admin_token="x")
    assert prod.deliveries_table_name == "wago-prod-deliveries"
    assert prod.webhook_loopback_allowed is False and Settings(stage="local").webhook_loopback_allowed is True
    assert Settings(stage="prod", webhook_allow_loopback=True).webhook_loopback_allowed is True
    assert (prod.webhook_max_attempts, prod.webhook_files, prod.delivery_log_ttl_seconds) == (8, True, 604800)
