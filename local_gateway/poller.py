"""Feed the events queue to the fan-out handler, as Lambda's SQS event source mapping would.

Semantics kept: batches of up to 10 real SQS messages; records the handler reports in
`batchItemFailures` (or the whole batch, if the handler raises) are left in flight, so they become
visible again after the visibility timeout and reach the DLQ after maxReceiveCount.

Receiving: SQS long polls of POLL_WAIT_SECONDS. The events queue is a standard queue, so moto answers
a long poll as soon as a message arrives: no busy poll when idle, no added latency. Not SQS's 20 s
maximum: a poller killed mid-poll leaves its request running in the endpoint, and a message that
arrives before that request ends is taken by nobody and stays invisible for the visibility timeout
(60 s); 5 s bounds that window at a cost of one idle request per 5 s. A stop request during an idle long
poll ends the process at once (no message is held); one during a batch lets the batch finish and be
acknowledged first.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from chalicelib.core import aws
from chalicelib.core.settings import get_settings

STOP_GRACE_SECONDS = 5
POLL_WAIT_SECONDS = 5


def _exit_now(*_: object) -> None:
    raise SystemExit(1)


class LambdaContext:
    """The parts of Lambda's context object the handlers read."""

    def __init__(self, function_name: str, timeout_ms: int = 60_000):
        import time

        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        import time

        return max(0, int((self._deadline - time.monotonic()) * 1000))


def to_lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    records = []
    for m in messages:
        attrs = {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
            for name, value in (m.get("MessageAttributes") or {}).items()
        }
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes") or {}),
                "messageAttributes": attrs,
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


class QueuePoller:
    def __init__(self, queue_name: str, handler: Callable[[dict, Any], Any], function_name: str,
                 wait_seconds: int = 20, batch_size: int = 10):
        settings = get_settings()
        self.region = settings.region
        self.sqs = aws.client("sqs")  # the process's one SQS client (chalicelib/core/aws.py)
        self.queue_url = self.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.handler = handler
        self.function_name = function_name
        self.wait_seconds = wait_seconds
        self.batch_size = batch_size
        self.stopping = threading.Event()  # for other threads
        self._stop_requested = False  # for signal handlers: setting it takes no lock
        self._in_idle_receive = False  # in a receive call, holding no message: a stop may cut it short

    def request_stop(self, *_: object) -> None:
        """Safe in a signal handler. (Event.set() is not: it takes the Event's lock, which the main
        thread may be holding inside stopping.wait() when the signal arrives: a self-deadlock.)"""
        self._stop_requested = True

    def stop_from_signal(self, *_: object) -> None:
        """Signal handler of `python -m local_gateway.poller`: waiting in a long poll, leave now
        (nothing received is lost: a message it might return stays invisible for the visibility
        timeout, then is received again); otherwise finish the batch in hand first."""
        self._stop_requested = True
        if self._in_idle_receive:
            raise SystemExit(0)
        # The batch gets STOP_GRACE_SECONDS; with the endpoint gone (the launcher was killed) each AWS call
        # retries for seconds. Leaving mid-batch loses nothing: unacknowledged messages are received again.
        signal.signal(signal.SIGALRM, _exit_now)
        signal.alarm(STOP_GRACE_SECONDS)

    def stopped(self) -> bool:
        return self._stop_requested or self.stopping.is_set()

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopped() and time.monotonic() < deadline:
            time.sleep(0.05)

    def poll_once(self) -> tuple[int, int]:
        """One receive + invoke + acknowledge cycle; returns (delivered, failed)."""
        self._in_idle_receive = True
        try:
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                WaitTimeSeconds=self.wait_seconds,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        finally:
            self._in_idle_receive = False
        messages = response.get("Messages", [])
        if not messages:
            return 0, 0
        event = to_lambda_event(messages, self.queue_arn, self.region)
        try:
            result = self.handler(event, LambdaContext(self.function_name)) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception as exc:  # Lambda semantics: an error fails the whole batch
            print(f"poller: handler raised {type(exc).__name__}: {exc}", file=sys.stderr)
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        return len(done), len(failed)

    def run(self) -> None:
        while not self.stopped():
            try:
                self.poll_once()
            except Exception as exc:  # endpoint restarting, throttled: back off and go on
                print(f"poller: {type(exc).__name__}: {exc}", file=sys.stderr)
                self._pause(1.0)


def main() -> int:
    argparse.ArgumentParser(description=__doc__).parse_args()
    from app import app, deliver_events  # noqa: F401 - the same handler object Lambda runs

    poller = QueuePoller(get_settings().events_queue_name, deliver_events, "deliver_events",
                         wait_seconds=POLL_WAIT_SECONDS)
    signal.signal(signal.SIGTERM, poller.stop_from_signal)
    signal.signal(signal.SIGINT, poller.stop_from_signal)
    poller.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
