"""Calls on the sim network: a call between sim sessions rings, is answered, rejected or hung up, and
each step reaches the other side as the Call event whatsmeow would produce (CallOffer, CallAccept,
CallReject, CallTerminate). Audio is carried by the host's media bridge (session_host/calls/media.py).

Only sessions that are online ring (WhatsApp does not queue calls); an account with no online session
rings nowhere, and the caller's call ends after CALL_RING_SECONDS.
"""

from __future__ import annotations

import secrets

from chalicelib.core import shapes
from chalicelib.core.calls.registry import CallRegistry
from chalicelib.core.errors import DomainError
from chalicelib.core.shapes import rfc3339
from session_host.calls.tracker import LINK_KEY, PLACED, RING_KEY
from session_host.sim.network import SimNetwork, parse_phone


class SimCalls:
    def __init__(self, network: SimNetwork):
        self.network = network

    def _body(self, call_id: str, sender_jid: str, creator: str, reason: str | None = None, tag: str = "",
              remote: tuple[str, str] | None = None) -> dict:
        """The Call event whatsmeow gives (chalicelib/core/shapes.py), with the call node's tag as `Data`."""
        data = shapes.node(tag, {"call-id": call_id, "call-creator": creator}) if tag else None
        return shapes.call(sender_jid, rfc3339(self.network.clock()), creator, call_id, reason=reason or None,
                           remote=remote, data=data)

    def place(self, caller_phone: str, caller_token: str, to: str) -> dict:
        recipient = self.network.account(parse_phone(to))
        caller = self.network.account(caller_phone)
        if recipient.phone == caller.phone:
            raise DomainError(400, "cannot call your own number")
        call_id = secrets.token_hex(16).upper()
        ring = [d.token for d in self.network.devices_of(recipient.phone)
                if d.token != caller_token and self.network._online(d.token)]
        # The caller's own record first, so an immediate answer always finds it.
        self.network.publish(caller_token, "Call", self._body(call_id, recipient.jid, caller.jid),
                             {"callEvent": PLACED, RING_KEY: ring})
        offer = self._body(call_id, caller.jid, caller.jid, tag="offer", remote=("sim", ""))
        for token in ring:
            self.network.publish(token, "Call", offer, {"callEvent": "CallOffer", LINK_KEY: caller_token})
        return {"CallID": call_id, "Peer": recipient.jid}

    def _others(self, caller_token: str, call_id: str, but: str) -> list[str]:
        caller_call = CallRegistry().get(caller_token, call_id)
        return [str(t) for t in (caller_call.ring_tokens if caller_call else []) if t != but]

    def accept(self, phone: str, token: str, call_id: str, caller_token: str) -> None:
        me = self.network.account(phone)
        for other in self._others(caller_token, call_id, token):
            self.network.publish(other, "Call", self._body(call_id, me.jid, "", "accepted_elsewhere", "terminate"),
                                 {"callEvent": "CallTerminate"})
        self.network.publish(caller_token, "Call", self._body(call_id, me.jid, "", tag="accept", remote=("sim", "")),
                             {"callEvent": "CallAccept", LINK_KEY: token})

    def reject(self, phone: str, token: str, call_id: str, caller_token: str) -> None:
        me = self.network.account(phone)
        for other in self._others(caller_token, call_id, token):
            self.network.publish(other, "Call", self._body(call_id, me.jid, "", "rejected_elsewhere", "terminate"),
                                 {"callEvent": "CallTerminate"})
        self.network.publish(caller_token, "Call", self._body(call_id, me.jid, "", tag="reject"),
                             {"callEvent": "CallReject"})

    def end(self, phone: str, call_id: str, targets: list[str], reason: str) -> None:
        me = self.network.account(phone)
        for token in targets:
            self.network.publish(token, "Call", self._body(call_id, me.jid, "", reason, "terminate"),
                                 {"callEvent": "CallTerminate"})
