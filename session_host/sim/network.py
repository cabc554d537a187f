"""The simulated WhatsApp network's traffic: messages, receipts, presence and chat presence.

Only session hosts write it: the sim driver (a linked device sends, reads, types) and the phone-side
operations (session_host/sim/operations.py: the phone of a sim account sends, reads, types, goes
online), which the API's admin-only `/sim/*` controls send to any live sim host. Accounts and devices
are in the sim table (chalicelib/core/models/sim.py); what a linked device receives is published as
WaGo events for its session token. A device whose session is not connected gets it later: the sim
driver delivers its inbox when the session logs in, as WhatsApp delivers offline messages.

A send is accepted synchronously, as WhatsApp's server acks it: one batch read of both accounts
(the recipient must exist) and, for a client's id, of an earlier message with it. Delivery to the
recipient's devices (the message record, one batch read of the devices and their sessions, the events
or inbox entries, the Delivered receipt) runs afterwards through `background(key, task)`, which the
host runs in order per sending session (the phone side runs it at once), so a sender's messages reach
each device in the order they were sent.

Event bodies are built by chalicelib/core/shapes.py, as the neonize driver's are (whatsmeow's structs
through Go's encoding/json), so a webhook receiver cannot tell the two drivers apart: an edit carries
`Info.Edit:"1"`, a sender's revoke `Info.Edit:"7"`, as whatsmeow's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError
from pynamodb.expressions.condition import size

from chalicelib.core import jid, shapes
from chalicelib.core.errors import DomainError
from chalicelib.core.media import MediaStore
from chalicelib.core.message_content import new_message_id
from chalicelib.core.models import (
    SessionModel,
    SimAccountModel,
    SimDeviceModel,
    SimInboxModel,
    SimMediaGrantModel,
    SimMessageModel,
    SimPresenceWatchModel,
)
from chalicelib.core.models.base import batch_get
from chalicelib.core.shapes import rfc3339

SERVER = jid.USER_SERVER
INBOUND_PREFIX = "media/in/"
MEDIA_PREFIX = "media/"
Publish = Callable[..., Any]  # (token, type, event, extra, media_key=None)




def parse_phone(value: str) -> str:
    """A phone number (`+1 555-000 1111`) or a user JID (`15550001111[:7]@s.whatsapp.net`) -> digits
    (chalicelib/core/jid.py's rules, as for every driver)."""
    return jid.phone(value)


def user_jid(phone: str) -> str:
    """A phone's user JID as WhatsApp writes it: `<digits>@s.whatsapp.net`."""
    return f"{phone}@{SERVER}"


def _b64_hex(hex_digest: str) -> str:
    """A hex digest as WhatsApp's JSON has it: base64 of the raw bytes."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode() if hex_digest else ""


def message_event(sender: SimAccountModel, message_id: str, content: dict[str, Any], sent_at: float) -> dict[str, Any]:
    """events.Message as a whatsmeow receiver gets it: `Info.Edit` from the content (`1` edit, `7` sender's
    revoke); content wrapped in `editedMessage` is unwrapped into `Message` with `IsEdit`, as whatsmeow's
    UnwrapRaw does, and `RawMessage` keeps it as sent."""
    inner = (content.get("editedMessage") or {}).get("message")
    info = shapes.message_info(
        shapes.message_source(sender.jid, sender.jid), message_id, rfc3339(sent_at),
        type=shapes.message_type(inner or content), push_name=sender.push_name,
        media_type=shapes.media_type(inner or content), edit=shapes.edit_attribute(content))
    return shapes.message(info, inner or content, raw=content, is_edit=inner is not None)


def receipt_event(reader_jid: str, ids: list[str], read: bool, at: float) -> tuple[dict, dict]:
    return shapes.receipt(shapes.message_source(reader_jid, reader_jid), ids, rfc3339(at), "read" if read else "")


class SimNetwork:
    """Traffic between sim accounts; `publish(token, type, event, extra)` hands an event to one session."""

    def __init__(self, publish: Publish, clock: Callable[[], float] = time.time, media: MediaStore | None = None,
                 later: Callable[[Callable[[], None]], None] | None = None,
                 background: Callable[[str, Callable[[], None]], None] | None = None):
        self.publish = publish
        self.clock = clock
        self._media = media
        # How receipts travel back: after the send call returned, as on WhatsApp (a session host passes
        # a short timer); the API's phone-side controls deliver them at once.
        self.later = later or (lambda task: task())
        # How a sent message reaches its recipients: after the send was accepted, in order per key (the
        # sending session); at once where nobody waits on a send (the API's phone side).
        self.background = background or (lambda key, task: task())

    @property
    def media(self) -> MediaStore:
        """The media bucket (a MediaStore made on first use unless one was injected)."""
        if self._media is None:
            self._media = MediaStore()
        return self._media

    # -- directory -------------------------------------------------------------------------------

    def account(self, phone: str, push_name: str = "", create: bool = False) -> SimAccountModel:
        """The sim account of `phone` (digits); created with `push_name` (default "Sim <last 4>")
        when `create`, else DomainError 404 "<phone> is not on WhatsApp"."""
        try:
            return SimAccountModel.get(SimAccountModel.key(phone), consistent_read=True)
        except DoesNotExist:
            if not create:
                raise DomainError(404, f"{phone} is not on WhatsApp") from None
        account = SimAccountModel(SimAccountModel.key(phone), phone=phone, jid=user_jid(phone),
                                  push_name=push_name or f"Sim {phone[-4:]}", created_at=self.clock())
        try:
            account.save(condition=SimAccountModel.pk.does_not_exist())
        except Exception:  # created concurrently: use theirs
            return SimAccountModel.get(SimAccountModel.key(phone), consistent_read=True)
        return account

    def device_of(self, token: str) -> SimDeviceModel | None:
        """The device this session linked, or None."""
        try:
            return SimDeviceModel.get(SimDeviceModel.key(token), consistent_read=True)
        except DoesNotExist:
            return None

    def devices_of(self, phone: str) -> list[SimDeviceModel]:
        """The devices linked to an account: its device set, then one batch read (no table scan: the
        sim table also holds every message sent, and this runs on every send)."""
        try:
            account = SimAccountModel.get(SimAccountModel.key(phone), consistent_read=True)
        except DoesNotExist:
            return []
        keys = [SimDeviceModel.key(token) for token in sorted(account.device_tokens or ())]
        return sorted(SimDeviceModel.batch_get(keys, consistent_read=True), key=lambda d: d.token) if keys else []

    def link_device(self, token: str, account: SimAccountModel, jid: str) -> SimDeviceModel:
        """Link this session to `account` as companion `jid` (<phone>:<device>@s.whatsapp.net);
        the device is what a host restores the session from."""
        device = SimDeviceModel(SimDeviceModel.key(token), token=token, phone=account.phone, jid=jid,
                                push_name=account.push_name, linked_at=self.clock())
        device.save()
        SimAccountModel(account.pk).update(actions=[SimAccountModel.device_tokens.add({token})])
        return device

    def unlink_device(self, token: str) -> bool:
        """Remove a session's linked device (logout, deletion); False if it had none."""
        drop_inbox(token)
        try:
            device = SimDeviceModel.get(SimDeviceModel.key(token), consistent_read=True)
        except DoesNotExist:
            return False
        device.delete()
        SimAccountModel(SimAccountModel.key(device.phone)).update(
            actions=[SimAccountModel.device_tokens.delete({token})])
        return True

    # -- delivery --------------------------------------------------------------------------------

    @staticmethod
    def _online(token: str) -> bool:
        try:
            session = SessionModel.get(token, consistent_read=True)
        except DoesNotExist:
            return False
        return bool(session.connected and session.logged_in and session.owner_host)

    def _deliver(self, token: str, type: str, event: dict[str, Any], extra: dict[str, Any],
                 media_key: str | None = None, online: bool | None = None) -> bool:
        """Publish now if the session is online (`online`: already read; else read now); otherwise keep
        it in the device's inbox. True if live."""
        if self._online(token) if online is None else online:
            self.publish(token, type, event, extra, media_key)
            return True
        item = json.dumps([type, event, extra, media_key])
        SimInboxModel(SimInboxModel.key(token)).update(
            actions=[SimInboxModel.items.set((SimInboxModel.items | []).append([item]))])
        return False

    def flush_inbox(self, token: str) -> int:
        """The session just logged in: hand it what arrived while it was away, in order."""
        try:
            inbox = SimInboxModel.get(SimInboxModel.key(token), consistent_read=True)
        except DoesNotExist:
            return 0
        items = list(inbox.items or [])
        try:  # only if nothing was appended meanwhile; otherwise the next flush takes all of it
            inbox.delete(condition=size(SimInboxModel.items) == len(items))
        except DeleteError:
            return 0
        for item in items:
            type, event, extra, media_key = json.loads(str(item))
            self.publish(token, type, event, extra, media_key)
        return len(items)

    # -- traffic ---------------------------------------------------------------------------------

    def send_text(self, sender_phone: str, to: str, body: str, sender_token: str | None = None,
                  message_id: str | None = None) -> dict[str, Any]:
        """A text (WhatsApp's `conversation`) to `to` (phone or JID); returns {Id, Timestamp}.
        DomainError 400/404 as send_message."""
        return self.send_message(sender_phone, to, {"conversation": body}, sender_token=sender_token,
                                 message_id=message_id)

    def send_media(self, sender_phone: str, to: str, kind: str, media_key: str, mimetype: str, size: int,
                   sha256_hex: str, caption: str = "", file_name: str = "", sender_token: str | None = None,
                   message_id: str | None = None, context_info: dict[str, Any] | None = None) -> dict[str, Any]:
        """Media as WhatsApp describes it (`imageMessage`, ...); each receiving device gets its own copy of
        the file in S3, attached to its webhook as WaGo's multipart `file`."""
        # The file stays where the API stored it; its key is the directPath /message/download/* takes.
        content: dict[str, Any] = {"URL": "", "mimetype": mimetype, "fileSHA256": _b64_hex(sha256_hex),
                                   "fileLength": size, "mediaKey": "", "directPath": media_key}
        if caption and kind != "sticker":
            content["caption"] = caption
        if kind == "document":
            content["fileName"] = file_name
            content["title"] = file_name
        if kind == "audio":
            content["PTT"] = True
        if context_info:
            content["contextInfo"] = context_info
        return self.send_message(sender_phone, to, {f"{kind}Message": content}, media_key=media_key,
                                 sender_token=sender_token, message_id=message_id)

    def send_message(self, sender_phone: str, to: str, content: dict[str, Any], media_key: str | None = None,
                     sender_token: str | None = None, message_id: str | None = None) -> dict[str, Any]:
        """A message from `sender_phone` to every device of `to`: accepted now (one batch read of both
        accounts and, for a client's id, of an earlier message with it; 404 if `to` is not on WhatsApp),
        delivered in the background (see the module doc); Delivered receipts go back to the sender's
        sessions for devices that were online. Returns WaGo's send answer fields."""
        recipient_phone = parse_phone(to)
        account_keys = list(dict.fromkeys([SimAccountModel.key(recipient_phone), SimAccountModel.key(sender_phone)]))
        message_keys = [SimMessageModel.key(message_id)] if message_id else []  # a resend of a client's id?
        found, earlier = batch_get((SimAccountModel, account_keys), (SimMessageModel, message_keys))
        accounts = {a.phone: a for a in found}
        recipient, sender = accounts.get(recipient_phone), accounts.get(sender_phone)
        if recipient is None:
            raise DomainError(404, f"{recipient_phone} is not on WhatsApp")
        if sender is None:
            raise DomainError(404, f"{sender_phone} is not on WhatsApp")
        for first in earlier:
            if (first.from_phone, first.to_phone) == (sender.phone, recipient.phone):
                # The same sender sent this id to this chat before: WhatsApp keeps one message per id,
                # so a resend (a new host finishing a dead host's send) delivers nothing new.
                return {"Id": message_id, "Timestamp": rfc3339(first.sent_at), "To": recipient.jid}
        sent_at = self.clock()
        message_id = message_id or new_message_id()
        self.background(sender_token or sender.phone, lambda: self._fan_out(
            sender, recipient, message_id, content, sent_at, media_key, sender_token))
        return {"Id": message_id, "Timestamp": rfc3339(sent_at), "To": recipient.jid}

    def _fan_out(self, sender: SimAccountModel, recipient: SimAccountModel, message_id: str, content: dict[str, Any],
                 sent_at: float, media_key: str | None, sender_token: str | None) -> None:
        """Deliver an accepted message: its record (receipts and reads find it; an id this sender already
        sent to this chat is not delivered again), its media grant, then one batch read of the recipient's
        devices and their sessions, then an event (online) or an inbox entry per device."""
        record = SimMessageModel(SimMessageModel.key(message_id), from_phone=sender.phone, to_phone=recipient.phone,
                                 sent_at=sent_at)
        try:
            record.save(condition=SimMessageModel.pk.does_not_exist())
        except PutError:
            first = SimMessageModel.get(SimMessageModel.key(message_id), consistent_read=True)
            if (first.from_phone, first.to_phone) == (sender.phone, recipient.phone):
                # The same sender sent this id to this chat before: WhatsApp keeps one message per id,
                # so a resend (a new host finishing a dead host's send) delivers nothing new.
                return
            record.save()  # another chat's id: a different message (ids are unique per chat)
        if media_key:
            SimMediaGrantModel(SimMediaGrantModel.key(media_key)).update(
                actions=[SimMediaGrantModel.phones.add({sender.phone, recipient.phone})])
        event = message_event(sender, message_id, content, sent_at)
        delivered = []
        for device, online in self._linked(recipient, exclude=sender_token):
            inbound = None
            if media_key:
                inbound = f"{INBOUND_PREFIX}{hashlib.sha256(device.token.encode()).hexdigest()[:32]}/{message_id}"
                self.media.copy(media_key, inbound)
            delivered.append(self._deliver(device.token, "Message", event, {}, inbound, online=online))
        if any(delivered):
            self.later(lambda: self._delivered(recipient.jid, sender.phone, message_id, sender))

    def download(self, direct_path: str, caller_phone: str) -> bytes:
        """A file of a message sent to or by `caller_phone`; any other path is the same 404, whether or not
        it exists (a session cannot probe or read another tenant's media)."""
        try:
            grant = SimMediaGrantModel.get(SimMediaGrantModel.key(direct_path), consistent_read=True)
        except DoesNotExist:
            grant = None
        if not direct_path.startswith(MEDIA_PREFIX) or grant is None or caller_phone not in (grant.phones or set()):
            raise DomainError(404, "media not found")
        try:
            return self.media.get(direct_path)[0]
        except Exception:
            raise DomainError(404, "media not found") from None

    def _linked(self, account: SimAccountModel, exclude: str | None = None) -> list[tuple[SimDeviceModel, bool]]:
        """The account's linked devices (but `exclude`), each with whether its session is online: one
        batch read of the devices and their sessions, from the account's device set."""
        tokens = sorted(t for t in (account.device_tokens or ()) if t != exclude)
        if not tokens:
            return []
        devices, sessions = batch_get((SimDeviceModel, [SimDeviceModel.key(t) for t in tokens]),
                                      (SessionModel, tokens))
        online = {s.token for s in sessions if s.connected and s.logged_in and s.owner_host}
        return [(device, device.token in online) for device in sorted(devices, key=lambda d: d.token)]

    def _delivered(self, recipient_jid: str, sender_phone: str, message_id: str,
                   sender: SimAccountModel | None = None) -> None:
        receipt, extra = receipt_event(recipient_jid, [message_id], read=False, at=self.clock())
        if sender is None:
            try:
                sender = SimAccountModel.get(SimAccountModel.key(sender_phone), consistent_read=True)
            except DoesNotExist:
                return
        for device, online in self._linked(sender):
            self._deliver(device.token, "ReadReceipt", receipt, extra, online=online)

    def mark_read(self, reader_phone: str, ids: list[str], reader_token: str | None = None) -> int:
        """`reader_phone` read these messages: each sender's sessions get a Read receipt."""
        reader = self.account(reader_phone)
        by_sender: dict[str, list[str]] = {}
        for message_id in ids:
            try:
                message = SimMessageModel.get(SimMessageModel.key(message_id), consistent_read=True)
            except DoesNotExist:
                continue
            if message.to_phone == reader.phone:
                by_sender.setdefault(message.from_phone, []).append(message_id)
        for sender_phone, read_ids in by_sender.items():
            receipt, extra = receipt_event(reader.jid, read_ids, read=True, at=self.clock())
            for device in self.devices_of(sender_phone):
                if device.token != reader_token:
                    self._deliver(device.token, "ReadReceipt", receipt, extra)
        return sum(len(v) for v in by_sender.values())

    def chat_presence(self, sender_phone: str, to: str, state: str, media: str = "",
                      sender_token: str | None = None) -> None:
        """Typing (`composing`), recording (`composing` + `audio`) or `paused`, shown to the other side
        only while it is online (WhatsApp does not queue chat presence)."""
        recipient = self.account(parse_phone(to))
        sender = self.account(sender_phone)
        body = shapes.chat_presence(shapes.message_source(sender.jid, sender.jid), state, media)
        for device in self.devices_of(recipient.phone):
            if device.token != sender_token and self._online(device.token):
                self.publish(device.token, "ChatPresence", body, {})

    def subscribe_presence(self, token: str, target: str) -> str:
        """Deliver `target`'s presence changes to this session (whatsmeow's
        SubscribePresence); returns the target's JID. DomainError 400/404 for a bad or
        unknown number."""
        phone = self.account(parse_phone(target)).phone
        SimPresenceWatchModel(SimPresenceWatchModel.key(phone)).update(
            actions=[SimPresenceWatchModel.tokens.add({token})])
        return user_jid(phone)

    def presence(self, phone: str, available: bool) -> int:
        """The account goes online/offline: online subscribers get a Presence event."""
        account = self.account(phone)
        try:
            watchers = SimPresenceWatchModel.get(SimPresenceWatchModel.key(phone), consistent_read=True).tokens or set()
        except DoesNotExist:
            return 0
        now = self.clock()
        body, extra = shapes.presence(account.jid, not available, rfc3339(now) if not available else shapes.ZERO_TIME)
        told = 0
        for token in sorted(watchers):
            if self._online(token):
                self.publish(token, "Presence", body, extra)
                told += 1
        return told


def drop_inbox(token: str) -> None:
    """Logged out or deleted: undelivered events for this device are gone with it."""
    try:
        SimInboxModel(SimInboxModel.key(token)).delete()
    except Exception:
        pass


__all__ = ["SimNetwork", "drop_inbox", "parse_phone", "rfc3339", "user_jid"]
