from __future__ import annotations

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.core.models.base import table_meta
from chalicelib.core.settings import get_settings

_settings = get_settings()

#: A message's status only moves forward (a late Delivered never overwrites Read).
STATUS_ORDER = {"queued": 0, "sending": 0, "failed": 1, "sent": 2, "delivered": 3, "read": 4}


class MessageModel(Model):
    """One message a session sent: the idempotency record of a send with an `Id`, and its status,
    kept from receipts (queued (async sends) -> sending -> sent -> delivered -> read, or failed)."""

    Meta = table_meta(_settings.messages_table_name)

    token = UnicodeAttribute(hash_key=True)
    message_id = UnicodeAttribute(range_key=True)  # the client's Id (idempotency key) or WhatsApp's
    whatsapp_id = UnicodeAttribute(null=True)  # what WhatsApp knows it as (neonize cannot choose ids)
    kind = UnicodeAttribute(default="text")
    to = UnicodeAttribute(default="")
    status = UnicodeAttribute(default="sending")
    rank = NumberAttribute(default=0)  # STATUS_ORDER[status]: conditions compare it
    sent_at = UnicodeAttribute(null=True)  # WaGo's Timestamp of the send answer
    error = UnicodeAttribute(null=True)
    claim_epoch = NumberAttribute(null=True)  # the session's epoch when the send was claimed (fencing)
    claim_host = UnicodeAttribute(null=True)  # the session host that claimed it
    # The request the Id was first used for (ops.Send.fingerprint); None on records of older releases and
    # host-internal sends, which match any request.
    fingerprint = UnicodeAttribute(null=True)
    updated_at = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)
