"""Events the fan-out decides not to deliver (WaGo: no session, no webhook URL, type not subscribed)
after the delivery log already shows them end `dropped` with the reason, in one batched write; events
dropped on their first attempt stay unlogged; nothing is POSTed twice. In-process moto, the local
poller (Lambda's SQS trigger semantics) and a real receiver on 127.0.0.1."""

from __future__ import annotations

import pytest

from chalicelib.core.models import DeliveryModel, SessionModel
from chalicelib.core.settings import get_settings
from tests.unit.webhook_helpers import Receiver, fail_first, make_session, pump, stack, wire_event

__all__ = ["stack"]  # fixture

ARN = "arn:aws:sqs:us-east-1:123456789012:wago-test-events"
ADMIN = {"admintoken": "qwert"}


def _batch_of(stack, n: int) -> dict:
    """Receive n queued messages as one Lambda SQS event."""
    from local_gateway.poller import to_lambda_event

    messages: list[dict] = []
    for _ in range(5 + n // 10):
        messages += stack.sqs.receive_message(QueueUrl=stack.events_url, AttributeNames=["All"],
                                              MaxNumberOfMessages=min(10, n - len(messages))).get("Messages", [])
        if len(messages) >= n:
            break
    assert len(messages) == n
    return to_lambda_event(messages, ARN, "us-east-1")


def _run(stack, n: int) -> dict:
    from app import deliver_events
    from local_gateway.poller import LambdaContext

    return deliver_events(_batch_of(stack, n), LambdaContext("deliver_events"))


def _entry(token: str, event_id: str) -> DeliveryModel:
    [entry] = [item for item in DeliveryModel.query(token, consistent_read=True) if item.event_id == event_id]
    return entry


def _remove_webhook(client, token: str) -> None:
    response = client.post("/webhook", {"WebhookURL": ""}, headers={"token": token})
    assert response.status_code == 200, response.json_body


def _narrow_subscription(client, token: str) -> None:
    SessionModel(token).update(actions=[SessionModel.events.set(["Call"])])


def _delete_session(client, token: str) -> None:
    response = client.post("/session/delete", headers={**ADMIN, "token": token})
    assert response.status_code == 200, response.json_body
    assert SessionModel.count(token) == 0


@pytest.mark.parametrize(("change", "reason"), [
    (_remove_webhook, "no-webhook"),
    (_narrow_subscription, "not-subscribed"),
    (_delete_session, "no-session"),
])
def test_an_event_logged_as_retrying_then_dropped_ends_dropped_with_the_reason(stack, client, change, reason):
    """The tester's case: 500, then the webhook removed (or the subscription narrowed, or the session
    deleted) while the event waits for its retry: the log says dropped, not retrying for ever."""
    with Receiver(fail_first(1)) as receiver:
        client.init("t1", "t1")
        response = client.post("/webhook", {"WebhookURL": receiver.url}, headers={"token": "t1"})
        assert response.status_code == 200, response.json_body
        SessionModel("t1").update(actions=[SessionModel.events.set(["Message"])])
        event = wire_event("t1")
        stack.put(event)
        assert len(_run(stack, 1)["batchItemFailures"]) == 1
        assert _entry("t1", event["event_id"]).state == "retrying"

        change(client, "t1")
        pump(lambda: stack.count(stack.events_url) == 0, rounds=40)
        entry = _entry("t1", event["event_id"])
        assert (entry.state, entry.drop_reason) == ("dropped", reason)
        assert (entry.attempts, entry.last_status, entry.next_retry_seconds) == (1, 500, None)  # the POST it had
        assert len(receiver.received) == 1 and not receiver.delivered()
        assert stack.count(stack.dlq_url) == 0  # dropped is not failed: nothing to redrive
    if reason != "no-session":  # the session's own view of its log
        page = client.get("/webhook/deliveries", headers={"token": "t1"}).json_body["data"]
        [shown] = page["deliveries"]
        assert (shown["state"], shown["dropReason"], shown["nextRetrySeconds"]) == ("dropped", reason, None)


def test_the_testers_sequence_delivers_nothing_twice_and_the_log_ends_dropped(stack, client):
    """500; webhook removed while the event retries; receiver fixed and webhook set again: the dropped
    event stays dropped (not sent later), the next event is delivered once."""
    status = {"code": 500}
    with Receiver(lambda n, r: status["code"]) as receiver:
        client.init("b", "tokB")
        client.post("/webhook", {"WebhookURL": receiver.url}, headers={"token": "tokB"})
        SessionModel("tokB").update(actions=[SessionModel.events.set(["All"])])  # as /session/connect does
        first = wire_event("tokB", seq=1)
        stack.put(first)
        assert len(_run(stack, 1)["batchItemFailures"]) == 1
        _remove_webhook(client, "tokB")
        pump(lambda: stack.count(stack.events_url) == 0, rounds=40)
        status["code"] = 200
        client.post("/webhook", {"WebhookURL": receiver.url}, headers={"token": "tokB"})
        second = wire_event("tokB", seq=2)
        stack.put(second)
        pump(lambda: receiver.delivered() and stack.count(stack.events_url) == 0, rounds=40)
        pump(lambda: False, rounds=3)  # nothing else comes back
    assert [r.headers["x-webhook-event-id"] for r in receiver.delivered()] == [second["event_id"]]
    assert len(receiver.received) == 2  # the first event's one failed POST, the second's one success
    page = client.get("/webhook/deliveries", headers={"token": "tokB"}).json_body["data"]["deliveries"]
    assert [(d["eventId"], d["state"], d["dropReason"]) for d in page] == [
        (second["event_id"], "delivered", None), (first["event_id"], "dropped", "no-webhook")]


def test_a_drop_on_the_first_attempt_is_not_logged_and_costs_no_write(stack, client):
    """The log shows what was sent: an event filtered out before any POST writes nothing (one
    BatchGetItem for the batch, no BatchWriteItem)."""
    from app import deliver_events
    from local_gateway.aws_calls import count_aws_calls
    from local_gateway.poller import LambdaContext

    make_session("none", "")
    make_session("calls", "http://127.0.0.1:9/hook", events=["Call"])
    for seq in range(5):
        stack.put(wire_event("none", seq=seq))
        stack.put(wire_event("calls", "Message", seq=seq))
    stack.put(wire_event("gone", seq=1))
    event = _batch_of(stack, 11)
    with count_aws_calls() as calls:
        assert deliver_events(event, LambdaContext("f")) == {"batchItemFailures": []}
    assert dict(calls) == {("dynamodb", "BatchGetItem"): 1}
    assert not list(DeliveryModel.scan())
    assert stack.count(stack.dlq_url) == 0  # dropped, not failed (Lambda then deletes the messages)


def test_drops_of_logged_events_are_one_batched_write(stack, client):
    """A batch of 10: 4 retrying events whose webhook is gone, 3 never logged (no write), 3 delivered
    to another session: one BatchGetItem and one BatchWriteItem in all (7 items)."""
    from app import deliver_events
    from chalicelib.core.contract import WireEvent
    from chalicelib.webhooks import log
    from local_gateway.aws_calls import count_aws_calls
    from local_gateway.poller import LambdaContext

    with Receiver() as receiver:
        make_session("gone", "")
        make_session("ok", receiver.url)
        logged = [wire_event("gone", seq=seq) for seq in range(4)]
        for event in logged:
            log.record(WireEvent.model_validate(event), state=log.RETRYING, attempts=2, status=503, latency_ms=4,
                       error="receiver answered 503", next_retry_seconds=10)
            stack.put(event)
        for seq in range(3):
            stack.put(wire_event("gone", seq=10 + seq))
            stack.put(wire_event("ok", seq=seq))
        event = _batch_of(stack, 10)
        with count_aws_calls() as calls:
            assert deliver_events(event, LambdaContext("f")) == {"batchItemFailures": []}
    assert dict(calls) == {("dynamodb", "BatchGetItem"): 1, ("dynamodb", "BatchWriteItem"): 1}
    gone = {item.event_id: item for item in DeliveryModel.query("gone")}
    assert set(gone) == {e["event_id"] for e in logged}
    assert {(i.state, i.drop_reason, i.attempts, i.last_status, i.last_error) for i in gone.values()} == {
        ("dropped", "no-webhook", 2, 503, "receiver answered 503")}
    assert len(receiver.delivered()) == 3 and len(list(DeliveryModel.query("ok"))) == 3


def test_a_delivered_event_handed_over_again_after_the_webhook_is_removed_stays_delivered(stack, client):
    """SQS hands a delivered event over again, the webhook is gone by then: not POSTed, and the log
    keeps `delivered` (the event did arrive)."""
    from app import deliver_events
    from local_gateway.poller import LambdaContext

    with Receiver() as receiver:
        make_session("t1", receiver.url)
        stack.put(wire_event("t1"))
        event = _batch_of(stack, 1)
        assert deliver_events(event, LambdaContext("f")) == {"batchItemFailures": []}
        SessionModel("t1").update(actions=[SessionModel.webhook.set("")])
        assert deliver_events(event, LambdaContext("f")) == {"batchItemFailures": []}
    assert len(receiver.received) == 1
    [entry] = list(DeliveryModel.query("t1"))
    assert (entry.state, entry.drop_reason) == ("delivered", None)


def test_redrive_of_a_failed_event_whose_webhook_is_gone_drops_it_and_a_dropped_one_is_not_redriven(stack, client):
    """failed (in the DLQ) -> webhook removed -> redrive: the event comes back, is dropped (no-webhook),
    and leaves the DLQ; a second redrive finds nothing (dropped events are in no queue)."""
    attempts = get_settings().webhook_max_attempts
    with Receiver(lambda n, r: 503) as receiver:
        client.init("t1", "t1")
        client.post("/webhook", {"WebhookURL": receiver.url}, headers={"token": "t1"})
        SessionModel("t1").update(actions=[SessionModel.events.set(["All"])])
        event = wire_event("t1")
        stack.put(event)
        pump(lambda: stack.count(stack.dlq_url) == 1 and stack.count(stack.events_url) == 0, rounds=100)
        assert _entry("t1", event["event_id"]).state == "failed"
        _remove_webhook(client, "t1")
        response = client.post("/webhook/redrive", {"Token": "t1"}, headers=ADMIN)
        assert response.json_body["data"] == {"redriven": 1, "skipped": 0, "sessions": {"t1": 1}}
        pump(lambda: stack.count(stack.events_url) == 0, rounds=40)
        entry = _entry("t1", event["event_id"])
        assert (entry.state, entry.drop_reason, entry.attempts) == ("dropped", "no-webhook", attempts)
        assert stack.count(stack.dlq_url) == 0
        again = client.post("/webhook/redrive", {"Token": "t1"}, headers=ADMIN)
        assert again.json_body["data"]["redriven"] == 0
    assert len(receiver.received) == attempts and not receiver.delivered()


def test_without_the_prefetch_a_drop_closes_the_logged_item_with_one_conditional_update(stack, client, monkeypatch):
    """The batch's BatchGetItem failed: each dropped event costs one conditional UpdateItem that closes
    a retrying item, leaves a delivered one as it is and creates no item for an unlogged event."""
    from app import deliver_events
    from chalicelib.core.contract import WireEvent
    from chalicelib.webhooks import fanout, log
    from local_gateway.aws_calls import count_aws_calls
    from local_gateway.poller import LambdaContext

    def unavailable(*groups):
        raise RuntimeError("BatchGetItem left keys unprocessed (throttled)")

    monkeypatch.setattr(fanout, "batch_get", unavailable)
    make_session("t1", "")
    retrying, delivered, fresh = (wire_event("t1", seq=seq) for seq in range(3))
    log.record(WireEvent.model_validate(retrying), state=log.RETRYING, attempts=1, status=500, latency_ms=1,
               next_retry_seconds=5)
    log.record(WireEvent.model_validate(delivered), state=log.DELIVERED, attempts=1, status=200, latency_ms=1)
    for event in (retrying, delivered, fresh):
        stack.put(event)
    batch = _batch_of(stack, 3)
    with count_aws_calls() as calls:
        assert deliver_events(batch, LambdaContext("f")) == {"batchItemFailures": []}
    dynamodb = calls.of("dynamodb")
    assert dynamodb.pop("UpdateItem") == 3  # one per dropped record, nothing batched
    assert set(dynamodb) == {"GetItem"}  # the session, per record (the fallback's own reads)
    closed = _entry("t1", retrying["event_id"])
    assert (closed.state, closed.drop_reason, closed.next_retry_seconds, closed.attempts) == (
        "dropped", "no-webhook", None, 1)
    assert _entry("t1", delivered["event_id"]).state == "delivered"
    assert {item.event_id for item in DeliveryModel.query("t1")} == {retrying["event_id"], delivered["event_id"]}
