"""The events DLQ: moving an event there on purpose, and redriving it back to the events queue."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from chalicelib.core.aws import client, queue_url
from chalicelib.core.settings import get_settings

#: Message attributes set when the fan-out moves an event (SQS's own redrive sets none).
TOKEN_ATTR = "wago-token"
REASON_ATTR = "wago-reason"
ATTEMPTS_ATTR = "wago-attempts"
_REDRIVE_HIDE_SECONDS = 60


def move(body: str, *, token: str | None, reason: str, attempts: int) -> None:
    attributes = {
        REASON_ATTR: {"DataType": "String", "StringValue": reason[:1000] or "-"},
        ATTEMPTS_ATTR: {"DataType": "Number", "StringValue": str(attempts)},
    }
    if token:
        attributes[TOKEN_ATTR] = {"DataType": "String", "StringValue": token}
    client("sqs").send_message(QueueUrl=queue_url(get_settings().events_dlq_name), MessageBody=body,
                               MessageAttributes=attributes)


def _token_of(message: dict) -> str | None:
    attr = (message.get("MessageAttributes") or {}).get(TOKEN_ATTR)
    if attr:
        return attr.get("StringValue")
    try:
        return json.loads(message["Body"]).get("token")
    except (ValueError, AttributeError):
        return None


@dataclass
class RedriveResult:
    redriven: int = 0
    skipped: int = 0  # other sessions' events looked at and left in the DLQ
    by_token: dict[str, int] = field(default_factory=dict)


def redrive(token: str | None = None, max_messages: int = 1000, time_budget: float = 20.0) -> RedriveResult:
    """Send DLQ events back to the events queue (all, or one session's), as fresh messages (so their
    attempt count starts again). Bounded by `max_messages` and `time_budget` seconds (API Gateway
    stops waiting at 29 s): call again until `redriven` is 0."""
    settings = get_settings()
    sqs = client("sqs")
    dlq_url = queue_url(settings.events_dlq_name)
    events_url = queue_url(settings.events_queue_name)
    result = RedriveResult()
    held: list[str] = []  # receipt handles of messages kept in flight while scanning, released at the end
    deadline = time.monotonic() + time_budget
    try:
        while result.redriven < max_messages and time.monotonic() < deadline:
            batch = sqs.receive_message(
                QueueUrl=dlq_url, MaxNumberOfMessages=min(10, max_messages - result.redriven),
                VisibilityTimeout=_REDRIVE_HIDE_SECONDS, MessageAttributeNames=["All"],
                WaitTimeSeconds=1,  # long polling asks every SQS server: an empty answer means empty
            ).get("Messages", [])
            if not batch:
                break
            matching = []
            for message in batch:
                owner = _token_of(message)
                if token is None or owner == token:
                    matching.append((message, owner))
                else:
                    held.append(message["ReceiptHandle"])
                    result.skipped += 1
            if not matching:
                continue
            sent = sqs.send_message_batch(
                QueueUrl=events_url,
                Entries=[{"Id": str(i), "MessageBody": m["Body"]} for i, (m, _) in enumerate(matching)],
            )
            ok = {entry["Id"] for entry in sent.get("Successful", [])}
            done = [(m, owner) for i, (m, owner) in enumerate(matching) if str(i) in ok]
            held.extend(m["ReceiptHandle"] for i, (m, _) in enumerate(matching) if str(i) not in ok)
            if done:
                sqs.delete_message_batch(
                    QueueUrl=dlq_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, (m, _) in enumerate(done)],
                )
            for _, owner in done:
                result.redriven += 1
                result.by_token[owner or ""] = result.by_token.get(owner or "", 0) + 1
    finally:
        for start in range(0, len(held), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                         for i, h in enumerate(held[start:start + 10])],
            )
    return result


def depth() -> int:
    """Approximate number of events in the DLQ."""
    attrs = client("sqs").get_queue_attributes(
        QueueUrl=queue_url(get_settings().events_dlq_name), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0))
