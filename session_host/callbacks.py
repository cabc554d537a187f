"""What a driver reports, turned into the host's effects: live state mirrored, events published, clients
that ended released, and sessions this host turns out not to own queued for fencing.

`Fences` is the one-way link back to the driver: the callbacks only record which tokens lost their
owner; the session lifecycle (which holds the driver) stops those clients.
"""

from __future__ import annotations

import queue
from typing import Any

from chalicelib.core.observability import logger
from session_host.drivers.base import ClientState
from session_host.fencing import Fenced, Holdings
from session_host.live_state import LiveState, OwnershipLost
from session_host.publishing import EventSink


class Fences:
    """Tokens whose local client must stop because another host owns the session now."""

    def __init__(self) -> None:
        self._tokens: queue.SimpleQueue[str] = queue.SimpleQueue()

    def put(self, token: str) -> None:
        self._tokens.put(token)

    def take(self, timeout: float) -> str | None:
        """The next token to fence, waiting up to `timeout` seconds; None if there is none."""
        try:
            return self._tokens.get(timeout=timeout)
        except queue.Empty:
            return None


class HostCallbacks:
    """The host's `DriverCallbacks`."""

    def __init__(self, live_state: LiveState, sink: EventSink, fences: Fences, holdings: Holdings):
        self.live_state = live_state
        self.sink = sink
        self.fences = fences
        self.holdings = holdings

    def on_state(self, token: str, state: ClientState) -> None:
        try:
            self.live_state.mirror(token, state)
        except OwnershipLost:
            self.fences.put(token)

    def on_event(self, token: str, type: str, event: dict[str, Any], extra: dict[str, Any] | None = None,
                 media_key: str | None = None) -> None:
        """For a session this host holds, the event's sequence number is taken under the held epoch: an
        event of a session this host lost is dropped. Events for sessions not held here come from the sim
        network (the simulated WhatsApp server delivering to another device) and are published as they are."""
        condition = None
        if self.holdings.held(token):
            try:
                condition = self.holdings.condition(token)
            except Fenced:
                logger.info("event of a session this host no longer holds dropped",
                            extra={"token": token, "type": type})
                return
        self.sink.publish(token, type, event, extra, media_key, condition=condition)

    def on_closed(self, token: str, reason: str, logged_out: bool) -> None:
        try:
            self.live_state.stopped(token, logged_out=logged_out, reason=reason)
        except OwnershipLost:
            pass
