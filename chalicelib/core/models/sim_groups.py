"""Sim groups: one item per group in the sim table (key prefix `grp#`), beside accounts and devices.

Participants and admins are phone numbers (digits). `version` makes every change a conditional write:
two concurrent edits of one group never overwrite each other (the loser re-reads and retries).
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.models import Model

from chalicelib.core.models.base import table_meta
from chalicelib.core.settings import get_settings

GROUP_PREFIX = "grp#"


class SimGroupModel(Model):
    """A group on the sim network: whatsmeow's GroupInfo, kept as the sim needs it."""

    Meta = table_meta(get_settings().sim_table_name)

    pk = UnicodeAttribute(hash_key=True)  # grp#<id>@g.us
    jid = UnicodeAttribute()
    owner = UnicodeAttribute()  # creator's phone (the super admin)
    name = UnicodeAttribute(default="")
    name_set_at = NumberAttribute(default=0)
    name_set_by = UnicodeAttribute(default="")
    topic = UnicodeAttribute(default="")
    topic_id = UnicodeAttribute(default="")
    topic_set_at = NumberAttribute(default=0)
    topic_set_by = UnicodeAttribute(default="")
    participants = UnicodeSetAttribute(default=set)
    admins = UnicodeSetAttribute(default=set)
    invite_code = UnicodeAttribute(default="")
    announce = BooleanAttribute(default=False)
    locked = BooleanAttribute(default=False)
    picture_id = UnicodeAttribute(default="")
    picture_key = UnicodeAttribute(default="")  # S3 key of the photo (media bucket)
    created_at = NumberAttribute(default=0)
    participant_version = NumberAttribute(default=0)
    version = VersionAttribute()

    @staticmethod
    def key(jid: str) -> str:
        """`grp#<jid>`: the item of the group with this JID (120363...@g.us)."""
        return GROUP_PREFIX + jid
