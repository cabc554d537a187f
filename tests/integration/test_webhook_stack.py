"""Webhooks over the launched local stack: an event on the events queue reaches a receiver on
127.0.0.1 through the poller (the same handler Lambda runs), with a retry on the way."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import boto3
import httpx
import pytest

from tests.conftest import ADMIN
from tests.integration.test_local_stack import Launcher
from tests.unit.webhook_helpers import Receiver, fail_first

pytestmark = pytest.mark.integration
SECRET = "integration-secret-0123456789"


@pytest.fixture
def fast_launcher():
    running = Launcher({"WEBHOOK_BACKOFF_BASE_SECONDS": "1", "WEBHOOK_BACKOFF_CAP_SECONDS": "1"})
    try:
        running.wait_ready()
        yield running
    finally:
        running.close()


def test_event_reaches_the_receiver_through_the_poller(fast_launcher):
    api = httpx.Client(base_url=fast_launcher.base, timeout=30)
    assert api.post("/session/init", headers=ADMIN, json={"Name": "w", "Token": "wtok", "Os": "Chrome"}).is_success
    with Receiver(fail_first(1)) as receiver:
        set_response = api.post("/webhook", headers={"token": "wtok"},
                                json={"WebhookURL": receiver.url, "Secret": SECRET})
        assert set_response.status_code == 200, set_response.text
        ddb = boto3.client("dynamodb", endpoint_url=fast_launcher.endpoint, region_name="us-east-1")
        # Subscriptions come from /session/connect; set them directly here.
        ddb.update_item(TableName="wago-local-sessions", Key={"token": {"S": "wtok"}},
                        UpdateExpression="SET events = :e", ExpressionAttributeValues={":e": {"L": [{"S": "All"}]}})
        sqs = boto3.client("sqs", endpoint_url=fast_launcher.endpoint, region_name="us-east-1")
        queue = sqs.get_queue_url(QueueName="wago-local-events")["QueueUrl"]
        event_id = uuid.uuid4().hex
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({
            "v": 1, "event_id": event_id, "token": "wtok", "seq": 1, "ts": time.time(), "type": "Presence",
            "event": {"From": "1555@s.whatsapp.net", "Unavailable": False}, "extra": {"state": "online"},
        }))
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not receiver.delivered():
            time.sleep(0.2)
        assert receiver.delivered(), f"nothing delivered; received {len(receiver.received)}"
    first, second = receiver.received
    assert (first.status, second.status) == (500, 200)
    assert second.headers["x-webhook-event-id"] == event_id
    assert second.headers["x-webhook-attempt"] == "2"
    assert json.loads(second.form()["jsonData"]) == {
        "type": "Presence", "event": {"From": "1555@s.whatsapp.net", "Unavailable": False}, "state": "online",
    }
    stamp = second.headers["x-webhook-timestamp"]
    digest = hmac.new(SECRET.encode(), f"{event_id}.{stamp}.".encode() + second.body, hashlib.sha256).hexdigest()
    assert second.headers["x-webhook-signature"] == f"v2={digest}"

    deadline = time.monotonic() + 10
    entries = []
    while time.monotonic() < deadline:
        entries = api.get("/webhook/deliveries", headers={"token": "wtok"}).json()["data"]["deliveries"]
        if entries and entries[0]["state"] == "delivered":
            break
        time.sleep(0.2)
    assert entries[0]["eventId"] == event_id
    assert (entries[0]["state"], entries[0]["attempts"], entries[0]["lastStatus"]) == ("delivered", 2, 200)


def test_event_whose_webhook_is_removed_while_it_retries_ends_dropped(fast_launcher):
    """The tester's case on the launched stack: the receiver answers 500 and, before answering, the
    webhook is removed; the retry finds no webhook, so the log ends `dropped` (`no-webhook`), not
    `retrying` for ever. With the webhook set again, the dropped event is not sent; a new one is, once."""
    api = httpx.Client(base_url=fast_launcher.base, timeout=30)
    assert api.post("/session/init", headers=ADMIN, json={"Name": "d", "Token": "dtok", "Os": "Chrome"}).is_success

    def remove_then_fail(n, received) -> int:
        if n == 1:
            assert api.post("/webhook", headers={"token": "dtok"}, json={"WebhookURL": ""}).is_success
            return 500
        return 200

    with Receiver(remove_then_fail) as receiver:
        assert api.post("/webhook", headers={"token": "dtok"}, json={"WebhookURL": receiver.url}).is_success
        ddb = boto3.client("dynamodb", endpoint_url=fast_launcher.endpoint, region_name="us-east-1")
        ddb.update_item(TableName="wago-local-sessions", Key={"token": {"S": "dtok"}},
                        UpdateExpression="SET events = :e", ExpressionAttributeValues={":e": {"L": [{"S": "All"}]}})
        sqs = boto3.client("sqs", endpoint_url=fast_launcher.endpoint, region_name="us-east-1")
        queue = sqs.get_queue_url(QueueName="wago-local-events")["QueueUrl"]

        def publish() -> str:
            event_id = uuid.uuid4().hex
            sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({
                "v": 1, "event_id": event_id, "token": "dtok", "seq": 1, "ts": time.time(), "type": "Message",
                "event": {"Info": {"ID": event_id[:16]}, "Message": {"conversation": "x"}}, "extra": {},
            }))
            return event_id

        def log_entry(event_id: str, state: str) -> dict:
            deadline = time.monotonic() + 30
            found: dict = {}
            while time.monotonic() < deadline:
                rows = api.get("/webhook/deliveries", headers={"token": "dtok"}).json()["data"]["deliveries"]
                found = next((row for row in rows if row["eventId"] == event_id), {})
                if found.get("state") == state:
                    break
                time.sleep(0.2)
            return found

        dropped_id = publish()
        dropped = log_entry(dropped_id, "dropped")
        assert (dropped.get("state"), dropped.get("dropReason"), dropped.get("attempts"),
                dropped.get("lastStatus"), dropped.get("nextRetrySeconds")) == ("dropped", "no-webhook", 1, 500, None)
        assert api.post("/webhook", headers={"token": "dtok"}, json={"WebhookURL": receiver.url}).is_success
        fresh_id = publish()
        assert log_entry(fresh_id, "delivered").get("state") == "delivered"
        time.sleep(3)  # three backoffs' worth: nothing else arrives
    assert [r.headers["x-webhook-event-id"] for r in receiver.received] == [dropped_id, fresh_id]
    assert [r.status for r in receiver.received] == [500, 200]
