"""Sent messages: idempotent sends (a repeated `Id` never sends twice) and status from receipts.

Used by the session host around every send, and by the event publisher for receipts:
- a send with the client's `Id` first claims `(token, Id)` with a conditional write; a repeat (a
  client retry, or SQS redelivering the command) finds the claim and returns the first result;
- every sent message gets a record keyed by WhatsApp's id, whose status only moves forward:
  sending -> sent -> delivered -> read (or failed), from the ReadReceipt events of its chat.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from chalicelib.core.models import MessageModel
from chalicelib.core.models.messages import STATUS_ORDER
from chalicelib.core.settings import get_settings

STALE_CLAIM_SECONDS = 120  # a claim this old without a result is a send that died with its host
RECEIPT_STATUS = {"Delivered": "delivered", "Read": "read"}


class SendInProgress(Exception):
    """The same Id is being sent right now (a concurrent duplicate request)."""


def _expiry() -> datetime:
    return datetime.now(timezone.utc) + timedelta(days=get_settings().message_ttl_days)


def _result(record: MessageModel) -> dict[str, Any]:
    return {"Id": record.whatsapp_id or record.message_id, "Timestamp": record.sent_at or ""}


def queue(token: str, message_id: str, kind: str, to: str) -> bool:
    """Async mode: record the message as queued before its command leaves. False if that Id exists
    already (a repeated request): nothing is dispatched twice."""
    record = MessageModel(token, message_id, kind=kind, to=to, status="queued", rank=STATUS_ORDER["queued"],
                          updated_at=time.time(), expires_at=_expiry())
    try:
        record.save(condition=MessageModel.message_id.does_not_exist())
    except PutError:
        return False
    return True


def mark_failed(token: str, message_id: str, error: str) -> None:
    """A send that never got as far as send_once (no session, not logged in): say so on its record."""
    try:
        MessageModel(token, message_id).update(
            actions=[MessageModel.status.set("failed"), MessageModel.rank.set(STATUS_ORDER["failed"]),
                     MessageModel.error.set(error[:500]), MessageModel.updated_at.set(time.time())],
            condition=MessageModel.message_id.exists() & (MessageModel.rank < STATUS_ORDER["failed"]))
    except UpdateError:
        pass


def send_once(token: str, message_id: str | None, kind: str, to: str, send: Callable[[], dict]) -> dict[str, Any]:
    """Run `send` (returns {"Id", "Timestamp"}) at most once per (token, message_id)."""
    now = time.time()
    if message_id:
        claim = MessageModel(token, message_id, kind=kind, to=to, status="sending", rank=0, updated_at=now,
                             expires_at=_expiry())
        try:
            claim.save(condition=MessageModel.message_id.does_not_exist())
        except PutError:
            existing = MessageModel.get(token, message_id, consistent_read=True)
            if existing.rank >= STATUS_ORDER["sent"]:
                return _result(existing)
            if existing.status == "sending" and now - float(existing.updated_at or 0) < STALE_CLAIM_SECONDS:
                raise SendInProgress(message_id) from None
            existing.update(actions=[MessageModel.status.set("sending"), MessageModel.updated_at.set(now)])
    try:
        sent = send()
    except Exception as exc:
        if message_id:
            MessageModel(token, message_id).update(actions=[
                MessageModel.status.set("failed"), MessageModel.rank.set(STATUS_ORDER["failed"]),
                MessageModel.error.set(str(getattr(exc, "message", exc))[:500]), MessageModel.updated_at.set(time.time())])
        raise
    whatsapp_id = sent["Id"]
    for key in {whatsapp_id, message_id or whatsapp_id}:  # neonize cannot choose ids: the claim points to WhatsApp's
        _record_sent(token, key, kind, to, whatsapp_id, sent["Timestamp"])
    return {"Id": whatsapp_id, "Timestamp": sent["Timestamp"]}


def _record_sent(token: str, key: str, kind: str, to: str, whatsapp_id: str, sent_at: str) -> None:
    """Upsert the record, then move it to `sent` unless a receipt already moved it further (the sim
    network, for one, delivers before the send call returns)."""
    record = MessageModel(token, key)
    record.update(actions=[MessageModel.kind.set(kind), MessageModel.to.set(to), MessageModel.sent_at.set(sent_at),
                           MessageModel.whatsapp_id.set(whatsapp_id), MessageModel.updated_at.set(time.time()),
                           MessageModel.expires_at.set(_expiry()),
                           MessageModel.rank.set(MessageModel.rank | STATUS_ORDER["sending"]),
                           MessageModel.status.set(MessageModel.status | "sending")])
    try:
        record.update(actions=[MessageModel.status.set("sent"), MessageModel.rank.set(STATUS_ORDER["sent"])],
                      condition=MessageModel.rank < STATUS_ORDER["sent"])
    except UpdateError:
        pass


def record_receipt(token: str, state: str, message_ids: list[str]) -> None:
    """A Delivered/Read receipt for messages this session sent: move their status forward."""
    status = RECEIPT_STATUS.get(state)
    if status is None:
        return
    rank = STATUS_ORDER[status]
    for message_id in message_ids:
        try:
            MessageModel(token, message_id).update(
                actions=[MessageModel.status.set(status), MessageModel.rank.set(rank),
                         MessageModel.updated_at.set(time.time())],
                condition=MessageModel.message_id.exists() & (MessageModel.rank < rank))
        except UpdateError:
            pass  # not ours (a received message), or already further along


def status_of(token: str, message_id: str) -> MessageModel | None:
    try:
        record = MessageModel.get(token, message_id, consistent_read=True)
    except DoesNotExist:
        return None
    if record.whatsapp_id and record.whatsapp_id != message_id:
        return status_of(token, record.whatsapp_id) or record
    return record
