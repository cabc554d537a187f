"""The WhatsApp driver interface the session host talks to (research/DESIGN.md §4).

A driver holds the WhatsApp clients of one host process, keyed by session token. It reports back
through `DriverCallbacks`: live-state changes (written to SessionModel by the host), events (published
to the events queue), and clients that ended on their own (QR timeout, logged out from the phone).
Errors meant for the API caller are `DomainError(status, WaGo error text)`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.core import jid
from chalicelib.core.errors import DomainError


@dataclass
class ClientState:
    """What the host mirrors into SessionModel."""

    connected: bool = False
    logged_in: bool = False
    jid: str | None = None
    push_name: str | None = None
    qr: str | None = None  # raw QR payload; the host renders the PNG data URL
    qr_expires_at: float | None = None
    pair_code: str | None = None
    last_error: str | None = None


@dataclass
class OutboundMedia:
    """A file to send: its bytes (read from S3 by the host), and what WaGo's request said about it."""

    kind: str  # image | audio | video | document | sticker
    data: bytes
    mimetype: str
    media_key: str  # the S3 key the API stored it under
    sha256: str = ""
    caption: str = ""
    file_name: str = ""
    context_info: dict[str, Any] | None = None  # waE2E.ContextInfo JSON: reply/quote, mentions, forwarded


class DriverCallbacks(Protocol):
    def on_state(self, token: str, state: ClientState) -> None:
        """The client's live state changed (called with the whole new state)."""

    def on_event(self, token: str, type: str, event: dict[str, Any], extra: dict[str, Any] | None = None,
                 media_key: str | None = None) -> None:
        """A WhatsApp event in WaGo's shape (`type`, `event`, keys beside `event`); `media_key` is an S3
        key of the message's file, attached to the webhook."""

    def on_closed(self, token: str, reason: str, logged_out: bool) -> None:
        """The client ended without being asked to (QR timeout, unlinked from the phone)."""


class Driver(abc.ABC):
    name: str = ""
    #: Sends use the caller's message id as WhatsApp's message id (WaGo's `Id`), so sending again with
    #: the same id is the same WhatsApp message, which recipients keep once. neonize cannot choose ids.
    reuses_message_ids: bool = False

    def __init__(self, callbacks: DriverCallbacks):
        self.callbacks = callbacks

    @abc.abstractmethod
    def connect(self, token: str, jid: str | None = None, os_name: str | None = None) -> ClientState:
        """Start the client: restore a linked device, or begin QR pairing. DomainError if already running.

        `jid` is the device the session was last logged in as (a shared store finds it by JID);
        `os_name` is the session's `Os`, shown in the phone's list of linked devices.
        """

    @abc.abstractmethod
    def pair_phone(self, token: str, phone: str) -> str:
        """Ask for a pairing code for `phone` on a running, unpaired client; returns `ABCD-EFGH`."""

    @abc.abstractmethod
    def disconnect(self, token: str) -> None:
        """Stop the client; the device stays linked (a later connect restores it)."""

    @abc.abstractmethod
    def logout(self, token: str) -> None:
        """Unlink the device and stop the client."""

    @abc.abstractmethod
    def forget(self, token: str) -> None:
        """Stop the client if any and remove its device from the store (session deleted)."""

    # -- messaging (a running, logged-in client; DomainError otherwise) ------------------------------

    @abc.abstractmethod
    def send_text(self, token: str, to: str, body: str, message_id: str | None = None) -> dict[str, Any]:
        """Send a text to a phone number or JID; returns {"Id", "Timestamp"} once WhatsApp accepted it.
        `message_id` is used as the WhatsApp id where the driver can choose it."""

    @abc.abstractmethod
    def send_media(self, token: str, to: str, media: OutboundMedia, message_id: str | None = None) -> dict[str, Any]:
        """Upload and send an image, voice note, video, document or sticker; as send_text."""

    @abc.abstractmethod
    def send_content(self, token: str, to: str, content: dict[str, Any],
                     message_id: str | None = None) -> dict[str, Any]:
        """Send a message given as WhatsApp's protobuf JSON (chalicelib/core/message_content.py: location,
        contact, poll, reaction, edit, revoke); as send_text."""

    @abc.abstractmethod
    def download_media(self, token: str, kind: str, ref: dict[str, Any]) -> bytes:
        """The decrypted file of a received media message; `ref` holds the webhook's media fields
        (URL, directPath, mediaKey, fileEncSHA256, fileSHA256 as base64, fileLength, mimetype)."""

    @abc.abstractmethod
    def mark_read(self, token: str, ids: list[str], chat: str, sender: str | None = None) -> None:
        """Send read receipts for messages of `chat` (`sender` is the author in groups)."""

    @abc.abstractmethod
    def send_chat_presence(self, token: str, to: str, state: str, media: str = "") -> None:
        """`composing` (typing; recording with media `audio`) or `paused`, in the chat with `to`."""

    @abc.abstractmethod
    def send_presence(self, token: str, available: bool) -> None:
        """Show this account online or offline (needed before presence and chat presence flow)."""

    @abc.abstractmethod
    def subscribe_presence(self, token: str, jid: str) -> None:
        """Ask WhatsApp for `jid`'s presence updates (Presence events follow)."""

    @abc.abstractmethod
    def state(self, token: str) -> ClientState | None:
        """The running client's state, or None when this host has no client for `token`."""

    @abc.abstractmethod
    def tokens(self) -> list[str]:
        """Tokens with a running client."""

    def close(self) -> None:  # noqa: B027 - an optional hook: a driver that holds nothing keeps this no-op
        """Release what the driver itself holds (worker processes); after stop_all, at host exit."""

    def stop_all(self) -> None:
        """Stop every client, keeping devices linked (shutdown, fencing)."""
        for token in self.tokens():
            try:
                self.disconnect(token)
            except DomainError:
                pass

    # -- calls (session_host/calls): a driver supports what WhatsApp lets it do; the rest is a clear 501 --

    #: True where the driver carries call audio, so browser legs (/call/webrtc/offer) can attach to calls.
    carries_call_media: bool = False

    def place_call(self, token: str, to: str) -> dict[str, Any]:
        """Ring `to`; returns {"CallID", "Peer"}. The driver reports the call as a `CallPlaced` Call event."""
        raise DomainError(501, f"the {self.name} driver cannot place WhatsApp calls")

    def accept_call(self, token: str, call_id: str, peer: str, link_token: str | None) -> None:
        raise DomainError(501, f"the {self.name} driver cannot accept WhatsApp calls")

    def reject_call(self, token: str, call_id: str, peer: str, link_token: str | None) -> None:
        raise DomainError(501, f"the {self.name} driver cannot reject WhatsApp calls")

    def end_call(self, token: str, call_id: str, peer: str, link_token: str | None, ring_tokens: list[str],
                 reason: str) -> None:
        raise DomainError(501, f"the {self.name} driver cannot end an answered WhatsApp call")

    # -- users and groups (a running, logged-in client; DomainError otherwise). Results are WaGo's JSON:
    # whatsmeow's structs as Go's encoding/json writes them (GroupInfo flattened, JIDs as strings). --

    def parse_user(self, value: str) -> str:
        """A phone number (or user JID) of a batch -> its digits, by the one address parser both drivers
        use (chalicelib/core/jid.py); JidError (400, WaGo's text) when it cannot. Batch operations check
        each item with it first, so one bad item gets its own error instead of sinking the batch
        (session_host/group_ops.py)."""
        return jid.phone(value)

    @abc.abstractmethod
    def check_users(self, token: str, phones: list[str]) -> list[dict[str, Any]]:
        """IsOnWhatsApp: [{"Query", "IsInWhatsapp", "JID", "VerifiedName"}], one per phone, in order."""

    @abc.abstractmethod
    def user_info(self, token: str, phones: list[str]) -> dict[str, dict[str, Any]]:
        """GetUserInfo: {jid: {"VerifiedName", "Status", "PictureID", "Devices", "LID"}}."""

    @abc.abstractmethod
    def user_avatar(self, token: str, phone: str, preview: bool) -> dict[str, Any]:
        """ProfilePictureInfo {"url", "id", "type", "direct_path", "hash"}; DomainError 404 `No avatar found`."""

    @abc.abstractmethod
    def contacts(self, token: str) -> dict[str, dict[str, Any]]:
        """The contact store: {jid: {"Found", "FirstName", "FullName", "PushName", "BusinessName"}}."""

    @abc.abstractmethod
    def list_groups(self, token: str) -> list[dict[str, Any]]:
        """The groups this account is in, as GroupInfo."""

    @abc.abstractmethod
    def group_info(self, token: str, group: str) -> dict[str, Any]:
        """One group's GroupInfo."""

    @abc.abstractmethod
    def create_group(self, token: str, name: str, participants: list[str]) -> dict[str, Any]:
        """Create a group with these participants (phone numbers or JIDs); returns its GroupInfo."""

    @abc.abstractmethod
    def update_group_participants(self, token: str, group: str, phones: list[str], action: str) -> list[dict[str, Any]]:
        """`add` / `remove` / `promote` / `demote`; one GroupParticipant per phone, `Error` set where it failed."""

    @abc.abstractmethod
    def group_invite_link(self, token: str, group: str, reset: bool) -> str:
        """The group's invite link (`https://chat.whatsapp.com/...`); `reset` revokes the old one first."""

    @abc.abstractmethod
    def join_group(self, token: str, code: str) -> str:
        """Join with an invite link or code; returns the group JID."""

    @abc.abstractmethod
    def leave_group(self, token: str, group: str) -> None:
        """Leave the group."""

    @abc.abstractmethod
    def set_group_name(self, token: str, group: str, name: str) -> None:
        """Rename the group."""

    @abc.abstractmethod
    def set_group_topic(self, token: str, group: str, topic: str) -> None:
        """Set (or, with "", remove) the group's description."""

    @abc.abstractmethod
    def set_group_photo(self, token: str, group: str, data: bytes, media_key: str, sha256: str) -> str:
        """Set the group's photo (JPEG bytes; `media_key` is where the API stored them); returns the picture id."""

    @abc.abstractmethod
    def set_group_announce(self, token: str, group: str, value: bool) -> None:
        """Only admins may send messages (True) or everyone (False)."""

    @abc.abstractmethod
    def set_group_locked(self, token: str, group: str, value: bool) -> None:
        """Only admins may edit the group's info (True) or everyone (False)."""
