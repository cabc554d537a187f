"""Publishing WhatsApp events to the events queue (session hosts: their drivers, the sim network included).

Each event gets the session's next sequence number from an atomic counter on the session row, so a
receiver can order one session's events; an event for a deleted session is dropped, and so is one a
session host publishes for a session it no longer holds (the counter update carries its fencing
condition).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.core import aws
from chalicelib.core.contract import WireEvent
from chalicelib.core.models import SessionModel
from chalicelib.core.observability import logger
from chalicelib.core.outbox import record_receipt
from chalicelib.core.settings import Settings, get_settings


class EventPublisher:
    """Hands WhatsApp events from a session host to the events queue (SQS) as WireEvents, for
    the webhook fan-out. `sqs` and `queue_url` may be injected; otherwise chalicelib.core.aws gives them."""

    def __init__(self, settings: Settings | None = None, sqs: Any = None, queue_url: str = ""):
        self.settings = settings or get_settings()
        self.sqs = sqs or aws.client("sqs")
        self._queue_url = queue_url

    @property
    def queue_url(self) -> str:
        """The events queue's URL: the one given, else looked up once per process."""
        return self._queue_url or aws.queue_url(self.settings.events_queue_name)

    def publish(self, token: str, type: str, event: dict[str, Any], extra: dict[str, Any] | None = None,
                media_key: str | None = None, condition: Any = None) -> WireEvent | None:
        """Returns the published event, or None when it was dropped: the session is gone, or `condition`
        (a session host's fencing condition: still the owner, same epoch) no longer holds."""
        counter = SessionModel(token)
        guard = SessionModel.token.exists() if condition is None else SessionModel.token.exists() & condition
        try:
            counter.update(actions=[SessionModel.event_seq.add(1)], condition=guard)
        except UpdateError:
            logger.info("event dropped: session deleted or no longer held by this host",
                        extra={"token": token, "type": type})
            return None
        wire = WireEvent(event_id=uuid.uuid4().hex, token=token, seq=int(counter.event_seq), ts=time.time(),
                         type=type, event=event, extra=extra or {}, media_key=media_key)
        if type == "ReadReceipt" and extra and not event.get("IsFromMe"):
            record_receipt(token, str(extra.get("state", "")), [str(i) for i in event.get("MessageIDs", [])])
        try:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=wire.model_dump_json())
        except Exception:
            logger.exception("event publish failed", extra={"token": token, "type": type, "seq": wire.seq})
            return None
        return wire
