"""The sim driver's shared "WhatsApp network": accounts, linked devices, messages, offline inboxes and
presence subscriptions, visible to every host (written by hosts only: session_host/sim/).

One table holds every kind of item (key prefixes `acct#`, `dev#`, `msg#`, `inbox#`, `presub#`, `mgrant#`). A
linked device is the sim's counterpart of whatsmeow's device store: a host that restores a session finds it
here, so no new QR is needed; logging out removes it.
"""

from __future__ import annotations

from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.models import Model

from chalicelib.core.models.base import table_meta
from chalicelib.core.settings import get_settings

_settings = get_settings()

ACCOUNT_PREFIX = "acct#"
DEVICE_PREFIX = "dev#"
MESSAGE_PREFIX = "msg#"
INBOX_PREFIX = "inbox#"
WATCH_PREFIX = "presub#"
MEDIA_GRANT_PREFIX = "mgrant#"


class SimAccountModel(Model):
    """A simulated WhatsApp account (a phone number)."""

    Meta = table_meta(_settings.sim_table_name)

    pk = UnicodeAttribute(hash_key=True)  # acct#<digits>
    phone = UnicodeAttribute()
    jid = UnicodeAttribute()
    push_name = UnicodeAttribute(default="")
    created_at = NumberAttribute(default=0)
    device_tokens = UnicodeSetAttribute(null=True)  # sessions linked to this account (SimDeviceModel keys)

    @staticmethod
    def key(phone: str) -> str:
        """`acct#<digits>`: the item of the account with this phone number."""
        return ACCOUNT_PREFIX + phone


class SimDeviceModel(Model):
    """A companion device linked to a sim account: one per session token."""

    Meta = table_meta(_settings.sim_table_name)

    pk = UnicodeAttribute(hash_key=True)  # dev#<token>
    token = UnicodeAttribute()
    phone = UnicodeAttribute()
    jid = UnicodeAttribute()  # <phone>:<device>@s.whatsapp.net, as whatsmeow names a companion
    push_name = UnicodeAttribute(default="")
    linked_at = NumberAttribute(default=0)

    @staticmethod
    def key(token: str) -> str:
        """`dev#<token>`: the item of the device linked by this session."""
        return DEVICE_PREFIX + token


class SimMessageModel(Model):
    """A message sent on the sim network, remembered so a read receipt finds its sender."""

    Meta = table_meta(_settings.sim_table_name)

    pk = UnicodeAttribute(hash_key=True)  # msg#<id>
    from_phone = UnicodeAttribute()
    to_phone = UnicodeAttribute()
    sent_at = NumberAttribute(default=0)

    @staticmethod
    def key(message_id: str) -> str:
        """`msg#<message id>`: the item of this message."""
        return MESSAGE_PREFIX + message_id


class SimMediaGrantModel(Model):
    """Who may download one sim media file: the accounts it was sent from and to (WhatsApp hands a media
    key only to a message's parties; here the directPath is an S3 key, so the host checks this)."""

    Meta = table_meta(_settings.sim_table_name)

    pk = UnicodeAttribute(hash_key=True)  # mgrant#<S3 key>
    phones = UnicodeSetAttribute(default=set)

    @staticmethod
    def key(media_key: str) -> str:
        """`mgrant#<S3 key>`: who may download the sim media file stored under this media-bucket key."""
        return MEDIA_GRANT_PREFIX + media_key


class SimInboxModel(Model):
    """Events for a linked device whose session was offline: delivered when it connects (as WhatsApp does)."""

    Meta = table_meta(_settings.sim_table_name)

    pk = UnicodeAttribute(hash_key=True)  # inbox#<token>
    # JSON [type, event, extra] strings (pynamodb types the elements as the attribute class)
    items: ListAttribute[str] = ListAttribute(of=UnicodeAttribute, default=list)  # type: ignore[arg-type]

    @staticmethod
    def key(token: str) -> str:
        """`inbox#<token>`: the offline inbox of this session's device."""
        return INBOX_PREFIX + token


class SimPresenceWatchModel(Model):
    """Sessions that subscribed to one account's presence (whatsmeow's SubscribePresence)."""

    Meta = table_meta(_settings.sim_table_name)

    pk = UnicodeAttribute(hash_key=True)  # presub#<phone>
    tokens = UnicodeSetAttribute(default=set)

    @staticmethod
    def key(phone: str) -> str:
        """`presub#<digits>`: who watches this account's presence."""
        return WATCH_PREFIX + phone
