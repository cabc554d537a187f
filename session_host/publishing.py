"""Event publishing from the host: WhatsApp events to the events queue, with the call registry following
Call events and async sends reported as MessageStatus events.

Built before the driver (the driver's callbacks publish through it), so it holds no driver.
"""

from __future__ import annotations

from typing import Any

from chalicelib.core import outbox
from chalicelib.core.calls.registry import CallRegistry
from chalicelib.core.contract import Command, Reply
from chalicelib.core.events import EventPublisher
from session_host.calls.tracker import CallTracker


class EventSink:
    def __init__(self, settings: Any, sqs: Any, events_queue_url: str = ""):
        self.publisher = EventPublisher(settings, sqs, events_queue_url)
        self.call_registry = CallRegistry(settings.call_ttl_seconds)
        self.call_tracker = CallTracker(self.call_registry, self.publisher.publish)

    def publish(self, token: str, type: str, event: dict[str, Any], extra: dict[str, Any] | None = None,
                media_key: str | None = None, condition: Any = None) -> None:
        """One event, with the session's next sequence number (an atomic counter on its row), taken only
        if `condition` (the host's fencing condition, for a session it holds) still holds."""
        if type == "Call":
            extra = self.call_tracker.on_driver_event(token, event, extra)  # the call registry follows
        self.publisher.publish(token, type, event, extra, media_key, condition=condition)

    def report_async_send(self, command: Command, reply: Reply) -> None:
        """Nobody waits for an async send: its record and a MessageStatus webhook tell the outcome.
        Called for every command the host answers (others are ignored here), and by the command loop
        for one it did not run (expired): a claim is never left `queued`."""
        if command.reply_to != "discard" or not command.args.get("id"):
            return
        message_id = str(command.args["id"])
        if reply.ok:
            event = {"Id": reply.data["Id"], "ClientId": message_id, "Status": "sent",
                     "Timestamp": reply.data["Timestamp"]}
        else:
            outbox.mark_failed(command.token, message_id, reply.error or "")
            event = {"Id": message_id, "ClientId": message_id, "Status": "failed", "Error": reply.error or ""}
        self.publish(command.token, "MessageStatus", event)
