"""The host's session and messaging operations (WaGo's /session/*, /send/*, /message/*, /user/presence*;
the simulator's are in session_host/sim/operations.py), each bound to its declaration in `chalicelib/core/ops.py`.

Sends are idempotent by the client's `Id` (`chalicelib/core/outbox.py`): a repeated Id answers the first
result and never sends twice; the Id reused for a different request (the API's fingerprint in the
command's args) is refused with 409 and nothing is sent. Messaging needs the running client: WaGo's
`No session` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from chalicelib.core import ops, outbox
from chalicelib.core.errors import DomainError
from chalicelib.core.media import MediaStore, kind_for
from chalicelib.core.message_content import kind_of
from session_host.dispatch import handles
from session_host.drivers.base import Driver, OutboundMedia
from session_host.lifecycle import SessionLifecycle
from session_host.live_state import OwnershipLost
from session_host.media_fetch import fetch_media


class SessionOps:
    """Connect, pair, disconnect, logout, forget."""

    def __init__(self, lifecycle: SessionLifecycle, driver: Driver):
        self.lifecycle = lifecycle
        self.driver = driver

    @handles(ops.CONNECT)
    def connect(self, token: str, args: ops.Connect) -> ops.Connected:
        state, already = self.lifecycle.connect(token, args.events)
        return ops.Connected(jid=state.jid or "", connected=state.connected, logged_in=state.logged_in,
                             already_connected=already)

    @handles(ops.PAIR)
    def pair(self, token: str, args: ops.Pair) -> ops.LinkingCode:
        return ops.LinkingCode(linking_code=self.lifecycle.pair(token, args.phone, args.events))

    @handles(ops.DISCONNECT)
    def disconnect(self, token: str, args: ops.NoArgs) -> ops.Details:
        self.lifecycle.disconnect(token)
        return ops.Details(details="Disconnected")

    @handles(ops.LOGOUT)
    def logout(self, token: str, args: ops.NoArgs) -> ops.Details:
        self.lifecycle.logout(token)
        return ops.Details(details="Logged out")

    @handles(ops.FORGET)
    def forget(self, token: str, args: ops.NoArgs) -> ops.Details:
        self.lifecycle.forget(token)
        return ops.Details(details="Forgotten")


class MessagingOps:
    """Sends, downloads, read receipts and presence, through the running client."""

    def __init__(self, lifecycle: SessionLifecycle, driver: Driver, media: MediaStore, settings: Any):
        self.lifecycle = lifecycle
        self.driver = driver
        self.media = media
        self.settings = settings

    def _send_once(self, token: str, args: ops.Send, kind: str, send: Callable[[str | None], dict[str, Any]]) -> Any:
        """One send, at most once per client `Id` (chalicelib/core/outbox.py): the claim is written under
        this host's fencing condition, and the lease is checked again right before the driver call.
        DomainError(409) when the Id is being sent right now, or was used for another request
        (`args.fingerprint` differs from the claim's)."""
        self.lifecycle.running(token)
        holdings = self.lifecycle.holdings
        try:
            return outbox.send_once(token, args.id, kind, args.to, lambda: send(args.id),
                                    epoch=holdings.check(token), host_id=self.lifecycle.host_id,
                                    fence=holdings.condition(token), reuses_id=self.driver.reuses_message_ids,
                                    before_send=lambda: holdings.check(token), fingerprint=args.fingerprint)
        except outbox.SendInProgress:
            raise DomainError(409, f"message {args.id} is already being sent") from None
        except outbox.OutcomeUnknown:
            raise DomainError(500, outbox.OUTCOME_UNKNOWN.format(id=args.id)) from None
        except outbox.ClaimFenced:
            raise OwnershipLost(token) from None

    @handles(ops.SEND_TEXT)
    def send_text(self, token: str, args: ops.SendText) -> Any:
        return self._send_once(token, args, "text", lambda mid: self.driver.send_text(token, args.to, args.body, mid))

    @handles(ops.SEND_CONTENT)
    def send_content(self, token: str, args: ops.SendContent) -> Any:
        return self._send_once(token, args, kind_of(args.content),
                               lambda mid: self.driver.send_content(token, args.to, dict(args.content), mid))

    @handles(ops.SEND_MEDIA)
    def send_media(self, token: str, args: ops.SendMedia) -> Any:
        def send(message_id: str | None) -> dict[str, Any]:
            data, mimetype = self.media.get(args.media_key)
            media = OutboundMedia(kind=args.kind, data=data, mimetype=args.mimetype or mimetype,
                                  media_key=args.media_key, sha256=args.sha256, caption=args.caption,
                                  file_name=args.file_name, context_info=args.context_info)
            return self.driver.send_media(token, args.to, media, message_id)

        return self._send_once(token, args, args.kind, send)

    @handles(ops.SEND_MEDIAURL)
    def send_mediaurl(self, token: str, args: ops.SendMediaUrl) -> Any:
        """WaGo's /send/mediaurl: this host downloads the URL (SSRF-guarded, capped), then sends it."""
        self.lifecycle.running(token)
        data, mimetype = fetch_media(args.url, self.settings.media_max_bytes, self.settings.media_fetch_timeout_seconds)
        stored = self.media.put_outbound(token, data, mimetype)
        return self.send_media(token, ops.SendMedia(
            # the API accepts only WhatsApp's kinds in Type (and SendMedia validates it again)
            to=args.to, id=args.id, fingerprint=args.fingerprint,
            kind=cast(ops.SendMediaKind, args.kind or kind_for(mimetype)), media_key=stored.key, mimetype=mimetype,
            sha256=stored.sha256, caption=args.caption, file_name=args.file_name, context_info=args.context_info))

    @handles(ops.DOWNLOAD)
    def download(self, token: str, args: ops.Download) -> ops.Downloaded:
        """Download a received file into S3; the reply carries its key (replies stay small)."""
        self.lifecycle.running(token)
        data = self.driver.download_media(token, args.kind, dict(args.ref))
        mimetype = str(args.ref.get("mimetype") or "application/octet-stream").split(";", 1)[0].strip()
        stored = self.media.put_download(token, data, mimetype)
        return ops.Downloaded(key=stored.key, mimetype=mimetype, size=stored.size)

    @handles(ops.MARK_READ)
    def mark_read(self, token: str, args: ops.MarkRead) -> ops.Details:
        self.lifecycle.running(token)
        self.driver.mark_read(token, list(args.ids), args.chat, args.sender or None)
        return ops.Details(details="Message(s) marked as read")

    @handles(ops.CHAT_PRESENCE)
    def chat_presence(self, token: str, args: ops.ChatPresence) -> ops.Details:
        self.lifecycle.running(token)
        self.driver.send_chat_presence(token, args.to, args.state, args.media)
        return ops.Details(details="Chat presence set successfuly")  # sic: WaGo's text

    @handles(ops.PRESENCE)
    def presence(self, token: str, args: ops.Presence) -> ops.Details:
        self.lifecycle.running(token)
        self.driver.send_presence(token, args.available)
        return ops.Details(details="Presence set successfully")

    @handles(ops.SUBSCRIBE_PRESENCE)
    def subscribe_presence(self, token: str, args: ops.SubscribePresence) -> ops.Details:
        self.lifecycle.running(token)
        self.driver.subscribe_presence(token, args.jid)
        return ops.Details(details="Subscribed to presence")
