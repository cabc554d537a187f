"""The sim driver's shared "WhatsApp network": accounts and linked devices, visible to every host.

One table holds both kinds of item (key prefixes `acct#` and `dev#`). A linked device is the sim's
counterpart of whatsmeow's device store: a host that restores a session finds it here, so no new
QR is needed; logging out removes it.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import table_meta
from chalicelib.settings import get_settings

_settings = get_settings()

ACCOUNT_PREFIX = "acct#"
DEVICE_PREFIX = "dev#"


class SimAccountModel(Model):
    """A simulated WhatsApp account (a phone number)."""

    Meta = table_meta(_settings.sim_table_name)

    pk = UnicodeAttribute(hash_key=True)  # acct#<digits>
    phone = UnicodeAttribute()
    jid = UnicodeAttribute()
    push_name = UnicodeAttribute(default="")
    created_at = NumberAttribute(default=0)

    @staticmethod
    def key(phone: str) -> str:
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
        return DEVICE_PREFIX + token
