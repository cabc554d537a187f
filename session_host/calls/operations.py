"""The host's call operations (WaGo's /call/*): WhatsApp's side through the driver, the registry and
webhooks through the tracker (built with the event sink), browser audio legs through CallMedia.

neonize exposes call events and reject only: operations it cannot do answer 501 with the reason.
"""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.core import ops
from chalicelib.core.calls import states
from chalicelib.core.calls.states import InvalidTransition
from chalicelib.core.errors import DomainError
from chalicelib.core.observability import logger
from session_host.dispatch import handles
from session_host.drivers.base import Driver
from session_host.lifecycle import SessionLifecycle
from session_host.publishing import EventSink

NO_CALL_MEDIA = ("the {driver} driver cannot carry WhatsApp call audio: neonize exposes call events and "
                 "reject only, no media")


class CallOps:
    def __init__(self, settings: Any, host_id: str, lifecycle: SessionLifecycle, driver: Driver, sink: EventSink):
        self.settings = settings
        self.host_id = host_id
        self.lifecycle = lifecycle
        self.driver = driver
        self.registry = sink.call_registry
        self.tracker = sink.call_tracker
        self.tracker.terminal_listeners.append(self._call_over)
        self._media: Any = None
        self._media_lock = threading.Lock()

    @property
    def media(self) -> Any:
        """The aiortc bridge, started on first use (a host with no browser leg never loads aiortc)."""
        with self._media_lock:
            if self._media is None:
                from session_host.calls.media import CallMedia

                self._media = CallMedia(self.settings, self.registry, self.host_id, on_inactive=self._call_inactive)
            return self._media

    def close(self) -> None:
        if self._media is not None:
            self._media.shutdown()

    def _call_over(self, token: str, call_id: str) -> None:
        if self._media is not None:
            self._media.close(token, call_id, "call over")

    def _tracked(self, token: str, call_id: str) -> Any:
        call = self.registry.get(token, call_id)
        if call is None:
            raise DomainError(404, "call not found")
        if states.is_terminal(call.state):
            raise DomainError(409, f"the call is {call.state}")
        return call

    def _act(self, token: str, call_id: str, action: str, kind: str, details: str,
             reason: str | None = None) -> ops.CallState:
        try:
            _, call = self.tracker.act(token, call_id, action, kind, reason)
        except InvalidTransition as exc:
            raise DomainError(409, str(exc)) from None
        return ops.CallState(details=details, call_id=call_id, state=call.state)

    def _needs_media(self) -> None:
        if not self.driver.carries_call_media:
            raise DomainError(501, NO_CALL_MEDIA.format(driver=self.driver.name))

    @handles(ops.CALL_MAKE)
    def make(self, token: str, args: ops.CallTo) -> ops.CallPlaced:
        self.lifecycle.running(token)
        placed = self.driver.place_call(token, args.to)
        timer = threading.Timer(self.settings.call_ring_seconds, self._ring_timeout, (token, placed["CallID"]))
        timer.daemon = True
        timer.start()
        return ops.CallPlaced(details="Calling", call_id=placed["CallID"], peer=placed["Peer"], state="ringing")

    @handles(ops.CALL_ACCEPT)
    def accept(self, token: str, args: ops.CallRef) -> ops.CallState:
        self.lifecycle.running(token)
        call = self._tracked(token, args.call_id)
        if call.direction != "incoming" or call.state != "ringing":
            raise DomainError(409, "only a ringing incoming call can be accepted")
        self.driver.accept_call(token, call.call_id, call.peer, call.link_token)
        return self._act(token, call.call_id, "accept", "CallAccept", "Call accepted")

    @handles(ops.CALL_REJECT)
    def reject(self, token: str, args: ops.CallRef) -> ops.CallState:
        self.lifecycle.running(token)
        call = self._tracked(token, args.call_id)
        if call.direction != "incoming" or call.state != "ringing":
            raise DomainError(409, "only a ringing incoming call can be rejected")
        self.driver.reject_call(token, call.call_id, call.peer, call.link_token)
        return self._act(token, call.call_id, "reject", "CallReject", "Call rejected")

    @handles(ops.CALL_END)
    def end(self, token: str, args: ops.CallRef) -> ops.CallState:
        self.lifecycle.running(token)
        call = self._tracked(token, args.call_id)
        if call.direction == "incoming" and call.state == "ringing":
            return self.reject(token, args)  # hanging up a ringing incoming call declines it
        reason = "hangup" if call.state == "active" else "cancelled"
        self.driver.end_call(token, call.call_id, call.peer, call.link_token, list(call.ring_tokens or []), reason)
        return self._act(token, call.call_id, "end", "CallTerminate", "Call ended", reason)

    @handles(ops.CALL_OFFER)
    def offer(self, token: str, args: ops.CallOffer) -> ops.Answer:
        self.lifecycle.running(token)
        call = self._tracked(token, args.call_id)
        self._needs_media()
        return ops.Answer(sdp=self.media.offer(token, call.call_id, args.sdp, call.link_token, call.state))

    @handles(ops.CALL_PLAY)
    def play(self, token: str, args: ops.CallPlay) -> ops.Playing:
        self.lifecycle.running(token)
        call = self._tracked(token, args.call_id)
        self._needs_media()
        if call.state != "active":
            raise DomainError(409, "audio can be played into an active call only")
        self.media.play(token, call.call_id, path=args.path, media_key=args.media_key)
        if args.media_key:
            return ops.Playing(details="Playing", call_id=call.call_id, media_key=args.media_key)
        return ops.Playing(details="Playing", call_id=call.call_id, audio_file=args.path)

    @handles(ops.CALL_STOP)
    def stop(self, token: str, args: ops.CallRef) -> ops.Stopped:
        if self.registry.get(token, args.call_id) is None:
            raise DomainError(404, "call not found")
        self.media.stop(token, args.call_id)
        return ops.Stopped(details="Stopped", call_id=args.call_id)

    def _end_quietly(self, token: str, call_id: str, reason: str, ringing_only: bool = False) -> None:
        try:
            call = self.registry.get(token, call_id)
            if call is None or states.is_terminal(call.state) or (ringing_only and call.state != states.RINGING):
                return
            try:
                self.driver.end_call(token, call_id, call.peer, call.link_token, list(call.ring_tokens or []), reason)
            except DomainError as exc:
                logger.info("could not end the call on WhatsApp", extra={"call_id": call_id, "error": exc.message})
            self.tracker.act(token, call_id, "end", "CallTerminate", reason)
        except Exception as exc:
            logger.warning("ending a call failed", extra={"call_id": call_id, "error": str(exc)})

    def _ring_timeout(self, token: str, call_id: str) -> None:
        self._end_quietly(token, call_id, "timeout", ringing_only=True)

    def _call_inactive(self, token: str, call_id: str) -> None:
        self._end_quietly(token, call_id, "inactivity")
