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
