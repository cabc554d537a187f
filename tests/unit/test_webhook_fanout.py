"""The fan-out handler end to end on in-process moto: the events queue, the local poller (Lambda's
SQS trigger semantics), a real receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import boto3
import pytest

from chalicelib.core.models import DeliveryModel
from chalicelib.core.settings import get_settings
from tests.unit.webhook_helpers import Receiver, fail_first, make_session, pump, settings_env, stack, wire_event

__all__ = ["stack"]  # fixture


def test_form_delivery_in_wago_format(stack):
    with Receiver() as receiver:
        make_session("t1", receiver.url)
        event = wire_event("t1", "ReadReceipt", state="Read")
        stack.put(event)
        pump(lambda: receiver.delivered())
    [got] = receiver.received
    assert got.content_type == "application/x-www-form-urlencoded"
    form = got.form()
    assert set(form) == {"token", "jsonData"}
    assert form["token"] == "t1"
    assert json.loads(form["jsonData"]) == {"type": "ReadReceipt", "event": event["event"], "state": "Read"}
    assert got.headers["x-webhook-event-id"] == event["event_id"]
    assert got.headers["x-webhook-attempt"] == "1"
    assert abs(int(got.headers["x-webhook-timestamp"]) - time.time()) < 60
    assert "x-webhook-signature" not in got.headers  # no secret set
    assert stack.count(stack.events_url) == 0


def test_receiver_failing_for_a_while_gets_every_event_once(stack):
    """500 for the first 7 requests: all 5 events arrive afterwards, none lost, none duplicated."""
    with Receiver(fail_first(7)) as receiver:
        make_session("t1", receiver.url)
        for seq in range(5):
            stack.put(wire_event("t1", seq=seq))
        pump(lambda: len(receiver.delivered()) >= 5 and stack.count(stack.events_url) == 0, rounds=200)
    ids = [r.headers["x-webhook-event-id"] for r in receiver.delivered()]
    assert sorted(ids) == sorted(e["event_id"] for e in stack.sent)  # none lost, none twice
    assert len(receiver.received) == 12  # 7 failures + 5 successes
    retried = [r for r in receiver.delivered() if r.headers["x-webhook-attempt"] != "1"]
    assert retried  # attempts are counted by SQS's ApproximateReceiveCount
    assert stack.count(stack.dlq_url) == 0
    log = {item.event_id: item for item in DeliveryModel.query("t1")}
    assert {e["event_id"] for e in stack.sent} == set(log)
    assert all(item.state == "delivered" and item.last_status == 200 and item.delivered_at for item in log.values())


def test_redelivered_message_after_success_is_not_posted_again(stack):
    """SQS is at-least-once: the same message handed over twice is POSTed once (idempotency)."""
    from app import deliver_events
    from local_gateway.poller import LambdaContext, to_lambda_event

    with Receiver() as receiver:
        make_session("t1", receiver.url)
        event = wire_event("t1")
        stack.put(event)
        messages = stack.sqs.receive_message(QueueUrl=stack.events_url, AttributeNames=["All"])["Messages"]
        lambda_event = to_lambda_event(messages, "arn:aws:sqs:us-east-1:123456789012:wago-test-events", "us-east-1")
        assert deliver_events(lambda_event, LambdaContext("f")) == {"batchItemFailures": []}
        assert deliver_events(lambda_event, LambdaContext("f")) == {"batchItemFailures": []}
    assert len(receiver.received) == 1


def test_receiver_down_past_max_attempts_goes_to_dlq_then_redrive_delivers(stack, client):
    attempts = get_settings().webhook_max_attempts
    with Receiver(fail_first(attempts * 2, status=503)) as receiver:
        make_session("t1", receiver.url)
        make_session("t2", receiver.url)
        stack.put(wire_event("t1", seq=1))
        stack.put(wire_event("t2", seq=1))
        pump(lambda: stack.count(stack.dlq_url) == 2 and stack.count(stack.events_url) == 0, rounds=200)
        assert len(receiver.received) == attempts * 2 and not receiver.delivered()
        [entry] = list(DeliveryModel.query("t1"))
        assert (entry.state, entry.attempts, entry.last_status) == ("failed", attempts, 503)
        assert f"gave up after {attempts} attempts" in entry.last_error

        # Redrive one session first, then the rest.
        response = client.post("/webhook/redrive", {"Token": "t1"}, headers={"admintoken": "qwert"})
        assert response.status_code == 200, response.json_body
        assert response.json_body["data"] == {"redriven": 1, "skipped": 1, "sessions": {"t1": 1}}
        pump(lambda: len(receiver.delivered()) == 1 and stack.count(stack.events_url) == 0, rounds=100)
        assert [r.form()["token"] for r in receiver.delivered()] == ["t1"]
        response = client.post("/webhook/redrive", {}, headers={"admintoken": "qwert"})
        assert response.json_body["data"]["redriven"] == 1
        pump(lambda: len(receiver.delivered()) == 2 and stack.count(stack.events_url) == 0, rounds=100)
    ids = sorted(r.headers["x-webhook-event-id"] for r in receiver.delivered())
    assert ids == sorted(e["event_id"] for e in stack.sent)
    assert stack.count(stack.dlq_url) == 0
    [entry] = list(DeliveryModel.query("t1"))
    assert entry.state == "delivered"


def test_non_retryable_4xx_goes_straight_to_dlq(stack):
    with Receiver(lambda n, r: 404) as receiver:
        make_session("t1", receiver.url)
        stack.put(wire_event("t1"))
        pump(lambda: stack.count(stack.dlq_url) == 1, rounds=50)
    assert len(receiver.received) == 1
    [message] = stack.dlq_bodies()
    assert message["MessageAttributes"]["wago-reason"]["StringValue"] == "receiver answered 404"
    assert message["MessageAttributes"]["wago-token"]["StringValue"] == "t1"
    assert stack.count(stack.events_url) == 0


def test_408_and_429_are_retried(stack):
    statuses = iter([408, 429, 200])
    with Receiver(lambda n, r: next(statuses)) as receiver:
        make_session("t1", receiver.url)
        stack.put(wire_event("t1"))
        pump(lambda: receiver.delivered(), rounds=100)
    assert [r.status for r in receiver.received] == [408, 429, 200]
    assert [r.headers["x-webhook-attempt"] for r in receiver.received] == ["1", "2", "3"]


def test_signature_verifies_with_an_independent_hmac(stack):
    secret = "s3cr3t-for-this-session-0123"
    with Receiver() as receiver:
        make_session("t1", receiver.url, secret=secret)
        stack.put(wire_event("t1"))
        pump(lambda: receiver.delivered())
    [got] = receiver.received
    event_id, timestamp = got.headers["x-webhook-event-id"], got.headers["x-webhook-timestamp"]
    signed = f"{event_id}.{timestamp}.".encode() + got.body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert got.headers["x-webhook-signature"] == f"v2={expected}"
    tampered = hmac.new(secret.encode(), signed + b"x", hashlib.sha256).hexdigest()
    assert got.headers["x-webhook-signature"] != f"v2={tampered}"


def _standard_verify(secret: str, got) -> object:
    """What a receiver does with the Standard Webhooks reference library (package `standardwebhooks`)."""
    from standardwebhooks.webhooks import Webhook

    from chalicelib.webhooks.signing import standard_secret

    return Webhook(standard_secret(secret)).verify(got.body, dict(got.headers), json_parse=False)


def test_a_delivery_verifies_with_the_standard_webhooks_library_and_every_dedup_field_is_signed(stack):
    """Every header a receiver de-duplicates or orders on (event id, timestamp) and the body are under
    the signature: changing any one of them makes verification fail, in both header conventions."""
    from standardwebhooks.webhooks import WebhookVerificationError

    from chalicelib.webhooks import signing

    secret = "s3cr3t-for-this-session-0123"
    with Receiver() as receiver:
        make_session("t1", receiver.url, secret=secret)
        stack.put(wire_event("t1"))
        pump(lambda: receiver.delivered())
    [got] = receiver.received
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["webhook-id"] == headers["x-webhook-event-id"]
    assert headers["webhook-timestamp"] == headers["x-webhook-timestamp"]
    _standard_verify(secret, got)  # raises if it does not verify
    assert signing.verify(secret, headers["x-webhook-event-id"], headers["x-webhook-timestamp"], got.body,
                          headers["x-webhook-signature"])

    class Replayed:
        def __init__(self, body: bytes, changed: dict):
            self.body, self.headers = body, {**headers, **changed}

    other_id = "0" * 32
    later = str(int(headers["x-webhook-timestamp"]) + 1)
    for changed, body in [({"webhook-id": other_id}, got.body), ({"webhook-timestamp": later}, got.body),
                          ({}, got.body + b"&x=1")]:
        try:
            _standard_verify(secret, Replayed(body, changed))
        except WebhookVerificationError:
            pass
        else:
            raise AssertionError(f"verified although {changed or 'the body'} changed")
    assert not signing.verify(secret, other_id, headers["x-webhook-timestamp"], got.body,
                              headers["x-webhook-signature"])  # a replay under a new X-Webhook-Event-Id
    assert not signing.verify(secret, headers["x-webhook-event-id"], later, got.body, headers["x-webhook-signature"])


def test_no_secret_no_signature_headers_but_the_ids(stack):
    with Receiver() as receiver:
        make_session("t1", receiver.url)
        stack.put(wire_event("t1"))
        pump(lambda: receiver.delivered())
    headers = {k.lower(): v for k, v in receiver.received[0].headers.items()}
    assert "webhook-signature" not in headers and "x-webhook-signature" not in headers
    assert headers["webhook-id"] == headers["x-webhook-event-id"] and headers["webhook-timestamp"]


def test_media_goes_as_multipart_file(stack):
    media = bytes(range(256)) * 40 + b"\x00\xff end"
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_object(Bucket=get_settings().media_bucket_name, Key="in/t1/abc", Body=media, ContentType="image/jpeg")
    secret = "another-secret-0123456789"
    with Receiver() as receiver:
        make_session("t1", receiver.url, secret=secret)
        event = wire_event("t1", media_key="in/t1/abc")
        stack.put(event)
        pump(lambda: receiver.delivered())
    [got] = receiver.received
    assert got.content_type.startswith("multipart/form-data; boundary=")
    parts = got.parts()
    assert set(parts) == {"token", "jsonData", "file"}
    data, filename, content_type = parts["file"]
    assert data == media
    assert (filename, content_type) == ("MSG1.jpg", "image/jpeg")
    assert parts["token"][0] == "t1"
    assert json.loads(parts["jsonData"][0])["type"] == "Message"
    event_id, timestamp = got.headers["x-webhook-event-id"], got.headers["x-webhook-timestamp"]
    expected = hmac.new(secret.encode(), f"{event_id}.{timestamp}.".encode() + got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-webhook-signature"] == f"v2={expected}"  # signed over the multipart bytes


def test_media_forwarding_off_sends_the_form_only(stack, monkeypatch):
    settings_env(monkeypatch, WEBHOOK_FILES="false")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_object(Bucket=get_settings().media_bucket_name, Key="in/t1/abc", Body=b"img", ContentType="image/png")
    with Receiver() as receiver:
        make_session("t1", receiver.url)
        stack.put(wire_event("t1", media_key="in/t1/abc"))
        pump(lambda: receiver.delivered())
    [got] = receiver.received
    assert got.content_type == "application/x-www-form-urlencoded"


def test_unsubscribed_types_are_never_delivered(stack):
    with Receiver() as receiver:
        make_session("t1", receiver.url, events=["Message", "Call"])
        types = ["Message", "ReadReceipt", "Presence", "HistorySync", "ChatPresence", "Call", "LoggedOut",
                 "Newsletter"]
        for seq, type_ in enumerate(types):
            stack.put(wire_event("t1", type_, seq=seq))
        pump(lambda: stack.count(stack.events_url) == 0, rounds=50)
    assert sorted(r.event()["type"] for r in receiver.received) == ["Call", "Message"]
    assert {item.type for item in DeliveryModel.query("t1")} == {"Call", "Message"}


def test_all_subscription_gets_every_type_and_empty_gets_none(stack):
    with Receiver() as receiver:
        make_session("all", receiver.url, events=["All"])
        make_session("none", receiver.url, events=[])
        for seq, type_ in enumerate(["Message", "Presence", "LoggedOut", "Newsletter"]):
            stack.put(wire_event("all", type_, seq=seq))
            stack.put(wire_event("none", type_, seq=seq))
        pump(lambda: stack.count(stack.events_url) == 0, rounds=50)
    assert {r.form()["token"] for r in receiver.received} == {"all"}
    assert len(receiver.received) == 4


def test_slow_receiver_does_not_stall_the_batch(stack):
    from chalicelib.webhooks.fanout import handle_events
    from local_gateway.poller import LambdaContext, to_lambda_event

    with Receiver(delay=0.8) as slow, Receiver() as fast:
        make_session("slow", slow.url)
        make_session("fast", fast.url)
        for seq in range(4):
            stack.put(wire_event("slow", seq=seq))
            stack.put(wire_event("fast", seq=seq))
        messages = []
        for _ in range(5):
            messages += stack.sqs.receive_message(QueueUrl=stack.events_url, MaxNumberOfMessages=10,
                                                  AttributeNames=["All"]).get("Messages", [])
            if len(messages) == 8:
                break
        assert len(messages) == 8
        started = time.monotonic()
        result = handle_events(to_lambda_event(messages, "arn:aws:sqs:us-east-1:123456789012:wago-test-events",
                                               "us-east-1"), LambdaContext("f"))
        elapsed = time.monotonic() - started
    assert result == {"batchItemFailures": []}
    assert len(slow.delivered()) == 4 and len(fast.delivered()) == 4
    assert elapsed < 0.8 * 4 * 0.75, elapsed  # the four slow POSTs overlapped


def test_malformed_event_goes_to_dlq(stack):
    stack.put("{not json")
    pump(lambda: stack.count(stack.dlq_url) == 1, rounds=20)
    [message] = stack.dlq_bodies()
    assert message["Body"] == "{not json"
    assert message["MessageAttributes"]["wago-reason"]["StringValue"].startswith("malformed event")


def test_backoff_sets_the_visibility_of_failed_records(stack, monkeypatch):
    settings_env(monkeypatch, WEBHOOK_BACKOFF_BASE_SECONDS="40", WEBHOOK_BACKOFF_CAP_SECONDS="100")
    from app import deliver_events
    from local_gateway.poller import LambdaContext, to_lambda_event

    with Receiver(lambda n, r: 500) as receiver:
        make_session("t1", receiver.url)
        stack.put(wire_event("t1"))
        messages = stack.sqs.receive_message(QueueUrl=stack.events_url, AttributeNames=["All"])["Messages"]
        event = to_lambda_event(messages, "arn:aws:sqs:us-east-1:123456789012:wago-test-events", "us-east-1")
        result = deliver_events(event, LambdaContext("deliver_events"))
    assert result == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    [entry] = list(DeliveryModel.query("t1"))
    assert entry.state == "retrying" and entry.last_status == 500
    assert 20 <= entry.next_retry_seconds <= 40  # attempt 1: base 40, half of it jittered
    # Hidden for the backoff: not receivable now.
    assert not stack.sqs.receive_message(QueueUrl=stack.events_url, WaitTimeSeconds=0).get("Messages")


def test_read_timeout_is_bounded_and_retried(stack, monkeypatch):
    """A receiver that accepts and never answers costs one timeout, then the event is retried."""
    import socket

    settings_env(monkeypatch, WEBHOOK_TIMEOUT_SECONDS="0.5")
    from chalicelib.webhooks import fanout

    fanout.reset()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        make_session("t1", f"http://127.0.0.1:{silent.getsockname()[1]}/hook")
        stack.put(wire_event("t1"))
        from app import deliver_events
        from local_gateway.poller import LambdaContext, to_lambda_event

        messages = stack.sqs.receive_message(QueueUrl=stack.events_url, AttributeNames=["All"])["Messages"]
        started = time.monotonic()
        result = deliver_events(to_lambda_event(messages, "arn:aws:sqs:us-east-1:123456789012:wago-test-events",
                                                "us-east-1"), LambdaContext("deliver_events"))
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert result == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    assert elapsed < 3, elapsed
    [entry] = list(DeliveryModel.query("t1"))
    assert (entry.state, entry.last_status) == ("retrying", 0)
    assert entry.last_error.startswith("ReadTimeout")


def _batch_of(stack, n: int) -> dict:
    """Receive up to n queued messages as one Lambda SQS event."""
    from local_gateway.poller import to_lambda_event

    messages = []
    for _ in range(5 + n // 10):  # SQS hands over at most 10 per receive; Lambda's poller gathers more
        messages += stack.sqs.receive_message(QueueUrl=stack.events_url, AttributeNames=["All"],
                                              MaxNumberOfMessages=min(10, n - len(messages))).get("Messages", [])
        if len(messages) >= n:
            break
    assert len(messages) == n
    return to_lambda_event(messages, "arn:aws:sqs:us-east-1:123456789012:wago-test-events", "us-east-1")


def test_event_the_log_says_delivered_is_not_posted_again(stack):
    """The delivery-log item is the idempotency record: delivered there means no second POST."""
    from app import deliver_events
    from chalicelib.core.contract import WireEvent
    from chalicelib.webhooks import log
    from local_gateway.poller import LambdaContext

    with Receiver() as receiver:
        make_session("t1", receiver.url)
        done, fresh = wire_event("t1", seq=1), wire_event("t1", seq=2)
        log.record(WireEvent.model_validate(done), state=log.DELIVERED, attempts=1, status=200, latency_ms=1)
        stack.put(done)
        stack.put(fresh)
        assert deliver_events(_batch_of(stack, 2), LambdaContext("f")) == {"batchItemFailures": []}
    assert [r.headers["x-webhook-event-id"] for r in receiver.received] == [fresh["event_id"]]


def test_same_event_twice_in_one_batch_is_posted_once(stack):
    from app import deliver_events
    from local_gateway.poller import LambdaContext

    with Receiver() as receiver:
        make_session("t1", receiver.url)
        event = wire_event("t1")
        stack.put(event)
        stack.put(event)
        assert deliver_events(_batch_of(stack, 2), LambdaContext("f")) == {"batchItemFailures": []}
    assert len(receiver.received) == 1


@pytest.mark.parametrize(("size", "reads", "writes"), [(10, 1, 1), (25, 1, 1), (60, 2, 3)])
def test_a_batch_makes_one_read_and_one_write_call(stack, size, reads, writes):
    """Happy path, events of 3 sessions: one BatchGetItem (sessions + delivery log together, up to 50
    records) and one BatchWriteItem (the log, 25 items a call) per batch of the stack's 25, i.e. at
    most one AWS write per event; no per-event AWS call."""
    from app import deliver_events
    from local_gateway.aws_calls import count_aws_calls
    from local_gateway.poller import LambdaContext

    with Receiver() as receiver:
        for token in ("t1", "t2", "t3"):
            make_session(token, receiver.url)
        for seq in range(10):
            stack.put(wire_event(f"t{seq % 3 + 1}", seq=seq))
        event = _batch_of(stack, 10)
        deliver_events(event, LambdaContext("warm-up"))  # first batch: clients, models
        for seq in range(size):
            stack.put(wire_event(f"t{seq % 3 + 1}", seq=seq))
        event = _batch_of(stack, size)
        with count_aws_calls() as calls:
            assert deliver_events(event, LambdaContext("f")) == {"batchItemFailures": []}
    assert len(receiver.delivered()) == 10 + size
    assert dict(calls) == {("dynamodb", "BatchGetItem"): reads, ("dynamodb", "BatchWriteItem"): writes}
    assert calls.writes() / size <= 1
    assert len(list(DeliveryModel.query("t1"))) == 4 + len(range(0, size, 3))  # every event logged


def test_connections_are_kept_alive_and_bodies_read(stack):
    """30 events in 3 batches to one receiver that answers a body: connections are reused (at most
    one per concurrent POST), none opened per event."""
    from app import deliver_events
    from local_gateway.poller import LambdaContext

    with Receiver(answer=b"x" * 4096) as receiver:
        make_session("t1", receiver.url)
        for _ in range(3):
            for seq in range(10):
                stack.put(wire_event("t1", seq=seq))
            assert deliver_events(_batch_of(stack, 10), LambdaContext("f")) == {"batchItemFailures": []}
        first = receiver.connections
        for seq in range(10):
            stack.put(wire_event("t1", seq=seq))
        deliver_events(_batch_of(stack, 10), LambdaContext("f"))
    assert len(receiver.delivered()) == 40
    assert 1 <= first <= 10  # httpx pool: CONNECTIONS_PER_HOST
    assert receiver.connections == first  # the fourth batch reused them all
