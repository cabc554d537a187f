"""The host's session manager: runs commands against the driver and mirrors live state to DynamoDB.

Every live-state write is conditional on `owner_host == this host`: a host that lost a session (its
lease lapsed and another host took it) cannot overwrite the new owner's state; when such a write
fails, this host stops its own client for that session (fencing).
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.core import contract, outbox
from chalicelib.core.contract import Command, Reply
from chalicelib.core.errors import DomainError
from chalicelib.core.events import EventPublisher
from chalicelib.core.media import MediaStore, kind_for
from chalicelib.core.message_content import kind_of
from chalicelib.core.models import SessionModel
from chalicelib.core.observability import logger
from session_host.drivers.base import ClientState, Driver, OutboundMedia
from session_host.group_ops import group_ops
from session_host.media_fetch import fetch_media
from session_host.qr import qr_data_url

SESSION_MOVED = "the session is held by another session host"
HOST_FULL = "session host is full"


class OwnershipLost(Exception):
    pass


class SessionManager:
    def __init__(self, host_id: str, settings, sqs: Any, events_queue_url: str):
        self.host_id = host_id
        self.settings = settings
        self.sqs = sqs
        self.events = EventPublisher(settings, sqs, events_queue_url)
        self.media = MediaStore(settings)
        self.driver: Driver | None = None  # set by the host once the driver exists
        self._lock = threading.Lock()

    # -- bookkeeping -------------------------------------------------------------------------------

    def load(self) -> int:
        return len(self.driver.tokens()) if self.driver else 0

    def _owned(self) -> Any:
        return SessionModel.owner_host == self.host_id

    def write(self, token: str, actions: list, release: bool = False) -> None:
        actions = [*actions, SessionModel.updated_at.set(datetime.now(timezone.utc))]
        if release:
            actions.append(SessionModel.owner_host.remove())
        try:
            SessionModel(token).update(actions=actions, condition=self._owned())
        except UpdateError as exc:
            if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                raise OwnershipLost(token) from None
            raise

    def _state_actions(self, state: ClientState) -> list:
        actions = [
            SessionModel.connected.set(state.connected),
            SessionModel.logged_in.set(state.logged_in),
        ]
        if state.qr:
            actions += [SessionModel.qr_code.set(qr_data_url(state.qr)),
                        SessionModel.qr_expires_at.set(state.qr_expires_at or 0)]
        else:
            actions += [SessionModel.qr_code.remove(), SessionModel.qr_expires_at.remove()]
        actions.append(SessionModel.pair_code.set(state.pair_code) if state.pair_code
                       else SessionModel.pair_code.remove())
        if state.jid:
            actions.append(SessionModel.jid.set(state.jid))
        if state.push_name:
            actions.append(SessionModel.push_name.set(state.push_name))
        if state.last_error:
            actions.append(SessionModel.last_error.set(state.last_error))
        return actions

    def _fence(self, token: str) -> None:
        """Another host owns this session now: drop our client without touching shared state."""
        logger.warning("session owned elsewhere; stopping local client", extra={"token": token})
        try:
            self.driver.disconnect(token)
        except DomainError:
            pass

    # -- DriverCallbacks ---------------------------------------------------------------------------

    def on_state(self, token: str, state: ClientState) -> None:
        try:
            self.write(token, self._state_actions(state))
        except OwnershipLost:
            threading.Thread(target=self._fence, args=(token,), daemon=True).start()

    def on_event(self, token: str, type: str, event: dict[str, Any], extra: dict[str, Any] | None = None,
                 media_key: str | None = None) -> None:
        """Publish to the events queue with the session's next sequence number (atomic counter)."""
        if type == "Call":
            extra = self.call_tracker.on_driver_event(token, event, extra)  # the call registry follows
        self.events.publish(token, type, event, extra, media_key)

    def on_closed(self, token: str, reason: str, logged_out: bool) -> None:
        actions = [SessionModel.connected.set(False), SessionModel.logged_in.set(False),
                   SessionModel.qr_code.remove(), SessionModel.qr_expires_at.remove(),
                   SessionModel.pair_code.remove(), SessionModel.last_error.set(reason),
                   SessionModel.auto_connect.set(False)]
        if logged_out:
            actions.append(SessionModel.jid.remove())
        try:
            self.write(token, actions, release=True)
        except OwnershipLost:
            pass

    # -- commands ----------------------------------------------------------------------------------

    def handle(self, command: Command) -> Reply:
        op = {
            "connect": self.op_connect,
            "pair": self.op_pair,
            "disconnect": self.op_disconnect,
            "logout": self.op_logout,
            "forget": self.op_forget,
            "send_text": self.op_send_text,
            "send_media": self.op_send_media,
            "send_content": self.op_send_content,
            "send_mediaurl": self.op_send_mediaurl,
            "download": self.op_download,
            "mark_read": self.op_mark_read,
            "chat_presence": self.op_chat_presence,
            "presence": self.op_presence,
            "subscribe_presence": self.op_subscribe_presence,
            "sim.scan": self.op_sim_scan,
            "sim.logout": self.op_sim_logout,
            **group_ops(self),
        }.get(command.op)
        if op is None:
            op = self.call_ops().get(command.op)
        if op is None:
            return Reply.failure(command.command_id, f"unknown command {command.op!r}", 400)
        try:
            reply = Reply.success(command.command_id, op(command.token, command.args))
        except DomainError as exc:
            reply = Reply.failure(command.command_id, exc.message, exc.status)
        except OwnershipLost:
            self._fence(command.token)
            reply = Reply.failure(command.command_id, SESSION_MOVED, 409)
        if command.reply_to == "discard" and command.args.get("id"):
            self._report_async_send(command, reply)
        return reply

    def _report_async_send(self, command: Command, reply: Reply) -> None:
        """Nobody waits for an async send: its record and a MessageStatus webhook tell the outcome."""
        message_id = str(command.args["id"])
        if reply.ok:
            event = {"Id": reply.data["Id"], "ClientId": message_id, "Status": "sent",
                     "Timestamp": reply.data["Timestamp"]}
        else:
            outbox.mark_failed(command.token, message_id, reply.error or "")
            event = {"Id": message_id, "ClientId": message_id, "Status": "failed", "Error": reply.error or ""}
        self.on_event(command.token, "MessageStatus", event)

    def _claimed(self, token: str) -> SessionModel:
        try:
            session = SessionModel.get(token, consistent_read=True)
        except SessionModel.DoesNotExist:
            raise DomainError(401, "invalid token") from None
        if session.owner_host != self.host_id:
            raise OwnershipLost(token)  # handle() stops any local client and answers 409
        return session

    def _start(self, session: SessionModel, events: list[str] | None = None) -> ClientState:
        """Start the client of a session this host owns (connect, pair, restore)."""
        token = session.token
        if self.driver.state(token) is not None:
            raise DomainError(500, contract.ALREADY_CONNECTED)
        if self.load() >= self.settings.host_capacity:
            self.write(token, [], release=True)
            raise DomainError(503, HOST_FULL)
        actions = [SessionModel.auto_connect.set(True), SessionModel.last_error.remove()]
        if events is not None:
            actions.append(SessionModel.events.set([str(e) for e in events]))
        self.write(token, actions)
        return self.driver.connect(token, jid=session.jid, os_name=session.os_name)

    def op_connect(self, token: str, args: dict) -> dict:
        state = self._start(self._claimed(token), args.get("events"))
        return {"jid": state.jid or "", "connected": state.connected, "logged_in": state.logged_in}

    def op_pair(self, token: str, args: dict) -> dict:
        session = self._claimed(token)
        current = self.driver.state(token)
        if current is None:
            current = self._start(session, args.get("events"))
        elif args.get("events") is not None:
            self.write(token, [SessionModel.events.set([str(e) for e in args["events"]])])
        if current.logged_in:
            raise DomainError(500, contract.ALREADY_PAIRED)
        return {"LinkingCode": self.driver.pair_phone(token, str(args.get("phone", "")))}

    def op_disconnect(self, token: str, args: dict) -> dict:
        state = self.driver.state(token)
        if state is None:
            raise DomainError(500, contract.NO_SESSION)
        if not state.logged_in:
            raise DomainError(500, contract.NOT_LOGGED_IN_DISCONNECT)
        self.driver.disconnect(token)
        self.write(token, [SessionModel.connected.set(False), SessionModel.logged_in.set(False),
                           SessionModel.auto_connect.set(False)], release=True)
        return {"Details": "Disconnected"}

    def op_logout(self, token: str, args: dict) -> dict:
        state = self.driver.state(token)
        if state is None:
            raise DomainError(500, contract.NO_SESSION)
        self.driver.logout(token)
        self.write(token, [SessionModel.connected.set(False), SessionModel.logged_in.set(False),
                           SessionModel.auto_connect.set(False), SessionModel.jid.remove(),
                           SessionModel.push_name.remove(), SessionModel.qr_code.remove(),
                           SessionModel.pair_code.remove()], release=True)
        return {"Details": "Logged out"}

    def op_forget(self, token: str, args: dict) -> dict:
        self.driver.forget(token)
        try:
            self.write(token, [SessionModel.connected.set(False), SessionModel.logged_in.set(False),
                               SessionModel.auto_connect.set(False), SessionModel.jid.remove()], release=True)
        except OwnershipLost:
            pass  # never placed here, or the row is already gone
        return {"Details": "Forgotten"}

    # -- messaging: the running client does it; WaGo's `No session` when there is none ---------------

    def _running(self, token: str) -> None:
        if self.driver.state(token) is None:
            raise DomainError(500, contract.NO_SESSION)

    def _send_once(self, token: str, args: dict, kind: str, send) -> dict:
        self._running(token)
        message_id = args.get("id") or None
        try:
            return outbox.send_once(token, message_id, kind, str(args["to"]), lambda: send(message_id))
        except outbox.SendInProgress:
            raise DomainError(409, f"message {message_id} is already being sent") from None

    def op_send_text(self, token: str, args: dict) -> dict:
        return self._send_once(token, args, "text",
                               lambda mid: self.driver.send_text(token, str(args["to"]), str(args["body"]), mid))

    def op_send_content(self, token: str, args: dict) -> dict:
        content = args["content"]
        return self._send_once(token, args, kind_of(content),
                               lambda mid: self.driver.send_content(token, str(args["to"]), content, mid))

    def op_send_mediaurl(self, token: str, args: dict) -> dict:
        """WaGo's /send/mediaurl: this host downloads the URL (SSRF-guarded, capped), then sends it."""
        self._running(token)
        data, mimetype = fetch_media(str(args["url"]), self.settings.media_max_bytes,
                                     self.settings.media_fetch_timeout_seconds)
        kind = args.get("kind") or kind_for(mimetype)
        stored = self.media.put_outbound(token, data, mimetype)
        return self.op_send_media(token, {**args, "kind": kind, "media_key": stored.key, "mimetype": mimetype,
                                          "sha256": stored.sha256})

    def op_download(self, token: str, args: dict) -> dict:
        """Download a received file into S3; the reply carries its key (replies stay small)."""
        self._running(token)
        data = self.driver.download_media(token, str(args["kind"]), dict(args["ref"]))
        mimetype = str(args["ref"].get("mimetype") or "application/octet-stream").split(";", 1)[0].strip()
        stored = self.media.put_download(token, data, mimetype)
        return {"key": stored.key, "mimetype": mimetype, "size": stored.size}

    def op_send_media(self, token: str, args: dict) -> dict:
        def send(message_id: str | None) -> dict:
            data, mimetype = self.media.get(args["media_key"])
            media = OutboundMedia(kind=args["kind"], data=data, mimetype=args.get("mimetype") or mimetype,
                                  media_key=args["media_key"], sha256=args.get("sha256", ""),
                                  caption=args.get("caption", ""), file_name=args.get("file_name", ""))
            return self.driver.send_media(token, str(args["to"]), media, message_id)

        return self._send_once(token, args, str(args["kind"]), send)

    def op_mark_read(self, token: str, args: dict) -> dict:
        self._running(token)
        self.driver.mark_read(token, [str(i) for i in args["ids"]], str(args["chat"]), args.get("sender") or None)
        return {"Details": "Message(s) marked as read"}

    def op_chat_presence(self, token: str, args: dict) -> dict:
        self._running(token)
        self.driver.send_chat_presence(token, str(args["to"]), str(args["state"]), str(args.get("media") or ""))
        return {"Details": "Chat presence set successfuly"}  # sic: WaGo's text

    def op_presence(self, token: str, args: dict) -> dict:
        self._running(token)
        self.driver.send_presence(token, bool(args["available"]))
        return {"Details": "Presence set successfully"}

    def op_subscribe_presence(self, token: str, args: dict) -> dict:
        self._running(token)
        self.driver.subscribe_presence(token, str(args["jid"]))
        return {"Details": "Subscribed to presence"}

    def _sim(self, name: str):
        method = getattr(self.driver, name, None)
        if method is None:
            raise DomainError(400, f"the {self.driver.name} driver has no simulator controls")
        return method

    def op_sim_scan(self, token: str, args: dict) -> dict:
        jid = self._sim("scan")(token, str(args.get("phone", "")), str(args.get("code", "")),
                                str(args.get("push_name", "")))
        return {"jid": jid}

    def op_sim_logout(self, token: str, args: dict) -> dict:
        self._sim("phone_logout")(token)
        return {"Details": "Logged out"}

    # -- restore and release -----------------------------------------------------------------------

    def restore(self, token: str) -> None:
        """Start a session this host just adopted (failover or start-up); the device store decides QR."""
        if self.driver.state(token) is not None:
            return
        try:
            self._start(SessionModel.get(token, consistent_read=True))
            logger.info("session restored", extra={"token": token})
        except SessionModel.DoesNotExist:
            pass  # deleted meanwhile
        except (DomainError, OwnershipLost) as exc:
            logger.warning("session restore failed", extra={"token": token, "error": str(exc)})

    def release_all(self) -> int:
        """Shutdown: stop every client, keep devices linked and `auto_connect` so another host restores them."""
        released = 0
        for token in self.driver.tokens():
            try:
                self.driver.disconnect(token)
            except DomainError:
                continue
            try:
                self.write(token, [SessionModel.connected.set(False), SessionModel.logged_in.set(False),
                                   SessionModel.qr_code.remove(), SessionModel.pair_code.remove()], release=True)
                released += 1
            except OwnershipLost:
                pass
            except Exception as exc:
                logger.warning("session release failed", extra={"token": token, "error": str(exc)})
        return released


    # -- calls (session_host/calls): registry + webhooks through the tracker, audio through CallMedia ---

    NO_CALL_MEDIA = ("the {driver} driver cannot carry WhatsApp call audio: neonize exposes call events and "
                     "reject only, no media")

    @property
    def call_tracker(self):
        if getattr(self, "_call_tracker", None) is None:
            from chalicelib.core.calls.registry import CallRegistry
            from session_host.calls.tracker import CallTracker

            self.call_registry = CallRegistry(self.settings.call_ttl_seconds)
            self._call_tracker = CallTracker(self.call_registry, self.events.publish, self._call_over)
        return self._call_tracker

    @property
    def call_media(self):
        if getattr(self, "_call_media", None) is None:
            from session_host.calls.media import CallMedia

            self.call_tracker
            self._call_media = CallMedia(self.settings, self.call_registry, self.host_id,
                                         on_inactive=self._call_inactive)
        return self._call_media

    def call_ops(self) -> dict:
        return {"call.make": self.op_call_make, "call.accept": self.op_call_accept,
                "call.reject": self.op_call_reject, "call.end": self.op_call_end, "call.offer": self.op_call_offer,
                "call.play": self.op_call_play, "call.stop": self.op_call_stop}

    def close_calls(self) -> None:
        if getattr(self, "_call_media", None) is not None:
            self._call_media.shutdown()

    def _call_over(self, token: str, call_id: str) -> None:
        if getattr(self, "_call_media", None) is not None:
            self._call_media.close(token, call_id, "call over")

    def _tracked_call(self, token: str, args: dict):
        from chalicelib.core.calls import states

        self.call_tracker
        call = self.call_registry.get(token, str(args.get("call_id") or ""))
        if call is None:
            raise DomainError(404, "call not found")
        if states.is_terminal(call.state):
            raise DomainError(409, f"the call is {call.state}")
        return call

    def _call_act(self, token: str, call_id: str, action: str, kind: str, reason: str | None = None) -> dict:
        from chalicelib.core.calls.states import InvalidTransition

        try:
            _, call = self.call_tracker.act(token, call_id, action, kind, reason)
        except InvalidTransition as exc:
            raise DomainError(409, str(exc)) from None
        return {"CallID": call_id, "State": call.state}

    def op_call_make(self, token: str, args: dict) -> dict:
        self._running(token)
        self.call_tracker
        placed = self.driver.place_call(token, str(args.get("to", "")))
        timer = threading.Timer(self.settings.call_ring_seconds, self._call_ring_timeout, (token, placed["CallID"]))
        timer.daemon = True
        timer.start()
        return {"Details": "Calling", "CallID": placed["CallID"], "Peer": placed["Peer"], "State": "ringing"}

    def op_call_accept(self, token: str, args: dict) -> dict:
        self._running(token)
        call = self._tracked_call(token, args)
        if call.direction != "incoming" or call.state != "ringing":
            raise DomainError(409, "only a ringing incoming call can be accepted")
        self.driver.accept_call(token, call.call_id, call.peer, call.link_token)
        return {"Details": "Call accepted", **self._call_act(token, call.call_id, "accept", "CallAccept")}

    def op_call_reject(self, token: str, args: dict) -> dict:
        self._running(token)
        call = self._tracked_call(token, args)
        if call.direction != "incoming" or call.state != "ringing":
            raise DomainError(409, "only a ringing incoming call can be rejected")
        self.driver.reject_call(token, call.call_id, call.peer, call.link_token)
        return {"Details": "Call rejected", **self._call_act(token, call.call_id, "reject", "CallReject")}

    def op_call_end(self, token: str, args: dict) -> dict:
        self._running(token)
        call = self._tracked_call(token, args)
        if call.direction == "incoming" and call.state == "ringing":
            return self.op_call_reject(token, args)  # hanging up a ringing incoming call declines it
        reason = "hangup" if call.state == "active" else "cancelled"
        self.driver.end_call(token, call.call_id, call.peer, call.link_token, list(call.ring_tokens or []), reason)
        return {"Details": "Call ended", **self._call_act(token, call.call_id, "end", "CallTerminate", reason)}

    def op_call_offer(self, token: str, args: dict) -> dict:
        self._running(token)
        call = self._tracked_call(token, args)
        if not self.driver.carries_call_media:
            raise DomainError(501, self.NO_CALL_MEDIA.format(driver=self.driver.name))
        sdp = self.call_media.offer(token, call.call_id, str(args.get("sdp") or ""), call.link_token, call.state)
        return {"sdp": sdp}

    def op_call_play(self, token: str, args: dict) -> dict:
        self._running(token)
        call = self._tracked_call(token, args)
        if not self.driver.carries_call_media:
            raise DomainError(501, self.NO_CALL_MEDIA.format(driver=self.driver.name))
        if call.state != "active":
            raise DomainError(409, "audio can be played into an active call only")
        path = str(args.get("path") or "")
        self.call_media.play(token, call.call_id, path)
        return {"Details": "Playing", "CallID": call.call_id, "AudioFile": path}

    def op_call_stop(self, token: str, args: dict) -> dict:
        self.call_tracker
        call_id = str(args.get("call_id") or "")
        if self.call_registry.get(token, call_id) is None:
            raise DomainError(404, "call not found")
        self.call_media.stop(token, call_id)
        return {"Details": "Stopped", "CallID": call_id}

    def _call_end_quietly(self, token: str, call_id: str, reason: str, ringing_only: bool = False) -> None:
        from chalicelib.core.calls import states

        try:
            call = self.call_registry.get(token, call_id)
            if call is None or states.is_terminal(call.state) or (ringing_only and call.state != states.RINGING):
                return
            try:
                self.driver.end_call(token, call_id, call.peer, call.link_token, list(call.ring_tokens or []), reason)
            except DomainError as exc:
                logger.info("could not end the call on WhatsApp", extra={"call_id": call_id, "error": exc.message})
            self.call_tracker.act(token, call_id, "end", "CallTerminate", reason)
        except Exception as exc:
            logger.warning("ending a call failed", extra={"call_id": call_id, "error": str(exc)})

    def _call_ring_timeout(self, token: str, call_id: str) -> None:
        self._call_end_quietly(token, call_id, "timeout", ringing_only=True)

    def _call_inactive(self, token: str, call_id: str) -> None:
        self._call_end_quietly(token, call_id, "inactivity")
