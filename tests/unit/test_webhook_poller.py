"""The local events poller: Lambda-shaped records, and a stop signal that cannot deadlock."""

from __future__ import annotations

import threading

from chalicelib.core.settings import get_settings
from local_gateway.poller import QueuePoller


def test_stop_request_takes_no_lock_and_ends_a_failing_loop(aws):
    poller = QueuePoller(get_settings().events_queue_name, lambda event, context: {}, "f", wait_seconds=0)
    # The window that deadlocked: SIGTERM handled while the main thread holds the Event's lock
    # (inside stopping.wait()). A handler that calls Event.set() then blocks forever.
    with poller.stopping._cond:
        poller.request_stop()
    assert poller.stopped()

    failing = QueuePoller(get_settings().events_queue_name, lambda event, context: {}, "f", wait_seconds=0)

    def broken() -> tuple[int, int]:
        raise ConnectionError("endpoint gone")

    failing.poll_once = broken
    runner = threading.Thread(target=failing.run, daemon=True)
    runner.start()
    failing.request_stop()
    runner.join(timeout=3)
    assert not runner.is_alive()


def test_records_carry_receipt_handles_and_attributes_like_lambda(aws):
    import boto3

    from local_gateway.poller import to_lambda_event

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=get_settings().events_queue_name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    messages = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], MessageAttributeNames=["All"])["Messages"]
    [record] = to_lambda_event(messages, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")["Records"]
    assert record["receiptHandle"] == messages[0]["ReceiptHandle"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert (record["eventSource"], record["eventSourceARN"]) == ("aws:sqs", "arn:aws:sqs:us-east-1:123456789012:q")
