from __future__ import annotations

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.core.models.base import table_meta
from chalicelib.core.settings import get_settings

_settings = get_settings()


class ReplyModel(Model):
    """A session host's answer to one command (chalicelib.core.contract.Reply as JSON), keyed by command id.

    The waiting Lambda reads it with consistent reads; DynamoDB's TTL removes it after `expires_at`.
    """

    Meta = table_meta(_settings.replies_table_name)

    command_id = UnicodeAttribute(hash_key=True)
    token = UnicodeAttribute(default="")
    body = UnicodeAttribute()
    host_id = UnicodeAttribute(default="")
    created_at = NumberAttribute(default=0)  # the host's clock when it built the reply, epoch seconds
    # The host's recent median time to write a reply, seconds: the reply is readable at about
    # created_at + written_in (the waiting Lambda learns when to read from it; chalicelib/bus.py).
    written_in = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)
