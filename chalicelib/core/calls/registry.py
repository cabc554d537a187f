"""The call registry: one CallModel item per (session token, call id), moved through the state
machine by conditional writes, so two concurrent updates of one call cannot both win.

Used by session hosts (they see the driver's call events and run call commands) and read by the API
(`/call/status`, and the call checks before a command is sent).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.core.calls import states
from chalicelib.core.calls.states import InvalidTransition
from chalicelib.core.models import CallModel
from chalicelib.core.models.base import condition_failed

MAX_RACES = 5


class CallNotFound(LookupError):
    """No call with this id for this session (a call route answers 404)."""



class CallRegistry:
    """The calls table's item per (session token, call id); expires_at is set `ttl_seconds` after the
    call opens (DynamoDB TTL, 7 days by default). `clock` gives epoch seconds."""

    def __init__(self, ttl_seconds: int = 7 * 86400, clock: Callable[[], float] = time.time):
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def get(self, token: str, call_id: str) -> CallModel | None:
        """The call, read consistently; None when this session has no such call."""
        try:
            return CallModel.get(token, call_id, consistent_read=True)
        except CallModel.DoesNotExist:
            return None

    def require(self, token: str, call_id: str) -> CallModel:
        """The call, or CallNotFound."""
        call = self.get(token, call_id)
        if call is None:
            raise CallNotFound(call_id)
        return call

    def list(self, token: str) -> list[CallModel]:
        """This session's calls, newest first (by created_at epoch seconds, then call id)."""
        calls = list(CallModel.query(token, consistent_read=True))
        return sorted(calls, key=lambda c: (c.created_at or 0, c.call_id), reverse=True)

    def open(self, token: str, call_id: str, peer: str, direction: str, *, link_token: str | None = None,
             ring_tokens: builtins.list[str] | None = None) -> CallModel | None:
        """A new ringing call; None if this session already tracks this call id (a repeated offer)."""
        now = self.clock()
        call = CallModel(token, call_id, peer=peer, direction=direction, state=states.RINGING, created_at=now,
                         updated_at=now, link_token=link_token, ring_tokens=list(ring_tokens or []),
                         expires_at=datetime.fromtimestamp(now, UTC) + timedelta(seconds=self.ttl_seconds))
        try:
            call.save(condition=CallModel.call_id.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                return None
            raise
        return call

    def move(self, token: str, call_id: str, action: str, reason: str | None = None,
             link_token: str | None = None) -> tuple[str, CallModel]:
        """Apply `action`; returns (previous state, the updated call). CallNotFound, InvalidTransition."""
        for _ in range(MAX_RACES):
            call = self.require(token, call_id)
            previous = call.state
            new = states.next_state(previous, action)
            now = self.clock()
            actions: builtins.list[Action] = [CallModel.state.set(new), CallModel.updated_at.set(now)]
            if new == states.ACTIVE:
                actions.append(CallModel.answered_at.set(now))
            if states.is_terminal(new):
                actions.append(CallModel.ended_at.set(now))
            if reason:
                actions.append(CallModel.reason.set(reason))
            if link_token:
                actions.append(CallModel.link_token.set(link_token))
            try:
                call.update(actions=actions, condition=CallModel.state == previous)
            except UpdateError as exc:
                if condition_failed(exc):
                    continue  # moved meanwhile: decide again on the new state
                raise
            return previous, call
        raise InvalidTransition(call.state, action)

    def set_leg(self, token: str, call_id: str, leg_state: str, host_id: str | None = None) -> None:
        """The browser leg's WebRTC state (no webhook: it is not a call transition)."""
        if leg_state not in states.LEG_STATES:
            raise ValueError(f"unknown WebRTC leg state {leg_state!r}")
        actions: builtins.list[Action] = [CallModel.webrtc.set(leg_state),
                                          CallModel.webrtc_updated_at.set(self.clock())]
        if host_id:
            actions.append(CallModel.host_id.set(host_id))
        try:
            CallModel(token, call_id).update(actions=actions, condition=CallModel.call_id.exists())
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
