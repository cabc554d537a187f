"""The host's call tracker: keeps the call registry in step with what happens, and tells webhooks.

- Driver events of type `Call` (neonize's CallOffer/CallAccept/CallTerminate..., the sim network's
  same-shaped events) pass through `on_driver_event`: an offer opens a ringing call, an accept,
  reject or terminate moves it; the webhook then carries, beside whatsmeow's `callEvent`, which
  transition happened: `state`, `previousState` and `transition` (e.g. `ringing->active`).
- Actions this session takes itself (make, accept, reject, end) are recorded with `placed` and
  `act`, which publish the same kind of `Call` webhook.
- A call that reaches a terminal state closes this host's browser legs of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalicelib.core.calls import states
from chalicelib.core.calls.registry import CallNotFound, CallRegistry
from chalicelib.core.calls.states import InvalidTransition
from chalicelib.core.observability import logger

Publish = Callable[[str, str, dict, dict], Any]
#: private keys a driver may put beside a Call event: not published.
LINK_KEY = "simLinkToken"
RING_KEY = "simRingTokens"
PLACED = "CallPlaced"  # ours: this session placed a call (whatsmeow has no event for it)


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


class CallTracker:
    def __init__(self, registry: CallRegistry, publish: Publish):
        self.registry = registry
        self.publish = publish
        #: (token, call_id) -> None, called when a call ends: the host's call media closes its leg.
        self.terminal_listeners: list[Callable[[str, str], None]] = []

    def on_terminal(self, token: str, call_id: str) -> None:
        for listener in self.terminal_listeners:
            listener(token, call_id)

    @staticmethod
    def body(call_id: str, peer: str, creator: str, reason: str | None = None) -> dict[str, Any]:
        body = {"From": peer, "Timestamp": _rfc3339(time.time()), "CallCreator": creator, "CallCreatorAlt": "",
                "CallID": call_id, "GroupJID": ""}
        if reason:
            body["Reason"] = reason
        return body

    def on_driver_event(self, token: str, event: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
        """Update the registry for one driver Call event; returns the keys to publish beside `event`."""
        extra = dict(extra or {})
        link = extra.pop(LINK_KEY, None)
        ring = extra.pop(RING_KEY, None)
        kind = extra.get("callEvent", "")
        call_id = str(event.get("CallID") or "")
        if not call_id:
            return extra
        try:
            if kind == PLACED:  # the driver placed this session's own call
                peer = str(event.get("From") or "")
                if self.registry.open(token, call_id, peer, "outgoing", ring_tokens=ring):
                    extra.update(state=states.RINGING, previousState="", transition="->ringing")
            elif kind in states.OFFER_EVENTS:
                peer = str(event.get("CallCreator") or event.get("From") or "")
                if self.registry.open(token, call_id, peer, "incoming", link_token=link, ring_tokens=ring):
                    extra.update(state=states.RINGING, previousState="", transition="->ringing")
            elif kind in states.DRIVER_EVENT_ACTIONS:
                reason = str(event.get("Reason") or "") or None
                previous, call = self.registry.move(token, call_id, states.DRIVER_EVENT_ACTIONS[kind], reason, link)
                extra.update(state=call.state, previousState=previous, transition=f"{previous}->{call.state}")
                if states.is_terminal(call.state):
                    self.on_terminal(token, call_id)
        except (CallNotFound, InvalidTransition) as exc:
            current = self.registry.get(token, call_id)
            if current is not None:
                extra["state"] = current.state  # no transition: e.g. a terminate after our own reject
            logger.info("call event without a transition", extra={"token": token, "call_id": call_id,
                                                                   "kind": kind, "why": str(exc)})
        return extra

    def act(self, token: str, call_id: str, action: str, kind: str, reason: str | None = None) -> tuple[str, Any]:
        """This session moved its own call (accept, reject, end): record it and publish the transition."""
        previous, call = self.registry.move(token, call_id, action, reason)
        creator = call.peer if call.direction == "incoming" else ""
        self.publish(token, "Call", self.body(call_id, call.peer, creator, reason),
                     {"callEvent": kind, "state": call.state, "previousState": previous,
                      "transition": f"{previous}->{call.state}"})
        if states.is_terminal(call.state):
            self.on_terminal(token, call_id)
        return previous, call
