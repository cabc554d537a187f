"""Event publishing from the host: WhatsApp events to the events queue, with the call registry following
Call events and async sends reported as MessageStatus events.

Built before the driver (the driver's callbacks publish through it), so it holds no driver. Like every
other effect of the host, a MessageStatus is published only under the session's fencing condition
(session_host/fencing.py): a host that lost the session (lease lapsed, or another host adopted it)
publishes none.
"""

from __future__ import annotations

from typing import Any

from chalicelib.core import outbox
from chalicelib.core.calls.registry import CallRegistry
from chalicelib.core.contract import Command, Reply
from chalicelib.core.events import EventPublisher
from chalicelib.core.models import SessionModel
from chalicelib.core.observability import logger
from session_host.calls.tracker import CallTracker
from session_host.fencing import Fenced, Holdings


class EventSink:
    def __init__(self, settings: Any, sqs: Any, events_queue_url: str = "", holdings: Holdings | None = None):
        self.holdings = holdings  # None: no fencing (tools and tests without a host)
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
        for one it did not run (expired): a claim is never left `queued`. The record is marked failed
        whoever holds the session (the send did not happen; `mark_failed` never demotes a later status),
        but the MessageStatus goes out only under the fencing condition: for a session this host holds,
        still the owner under the held epoch (dropped if the lease lapsed or the epoch moved on); for one
        it does not hold (released, or fenced and dropped), only while no host owns it."""
        if command.reply_to != "discard" or not command.args.get("id"):
            return
        message_id = str(command.args["id"])
        if reply.ok:
            event = {"Id": reply.data["Id"], "ClientId": message_id, "Status": "sent",
                     "Timestamp": reply.data["Timestamp"]}
        else:
            outbox.mark_failed(command.token, message_id, reply.error or "")
            event = {"Id": message_id, "ClientId": message_id, "Status": "failed", "Error": reply.error or ""}
        condition = None
        if self.holdings is not None:
            if not self.holdings.held(command.token):
                condition = SessionModel.owner_host.does_not_exist()  # another owner reports its own sends
            else:
                try:
                    condition = self.holdings.condition(command.token)
                except Fenced:
                    logger.info("MessageStatus of a session this host no longer holds dropped",
                                extra={"token": command.token, "id": message_id, "status": event["Status"]})
                    return
        self.publish(command.token, "MessageStatus", event, condition=condition)
