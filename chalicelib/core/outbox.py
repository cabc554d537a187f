"""Sent messages: idempotent sends (a repeated `Id` never sends twice) and status from receipts.

Used by the session host around every send, and by the event publisher for receipts:
- a send with the client's `Id` first claims `(token, Id)` with a conditional write, in one transaction
  with the host's fencing condition on the session row (owner and epoch) when it gives one; a repeat
  (a client retry, or SQS redelivering the command) finds the claim and returns the first result;
- the claim keeps the fingerprint of the request (computed by the API from what the client sent, without
  the Id): a repeat with another fingerprint is a different message reusing the Id, refused with 409 and
  nothing sent, the first record untouched (the IETF httpapi Idempotency-Key draft's rule). A record or a
  command without a fingerprint (an older release, a host-internal send) matches any request;
- a claim still `sending` that was made under an older epoch belongs to a host that lost the session
  (it died, or was fenced) between WhatsApp taking the message and the result being recorded. The
  new owner resolves it at once: if the driver sends with the client's `Id` as WhatsApp's message id
  (`reuses_id`), it sends again with that id, which WhatsApp (and the sim network) treats as the same
  message; otherwise (neonize cannot choose ids) it marks the send failed with `OUTCOME_UNKNOWN` and
  never sends it again: at most once;
- every sent message gets a record keyed by WhatsApp's id, whose status only moves forward:
  sending -> sent -> delivered -> read (or failed), from the ReadReceipt events of its chat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.core import aws
from chalicelib.core.errors import DomainError
from chalicelib.core.models import MessageModel, SessionModel
from chalicelib.core.models.base import cancelled_by_condition, condition_failed
from chalicelib.core.models.messages import STATUS_ORDER
from chalicelib.core.settings import get_settings

STALE_CLAIM_SECONDS = 120  # same epoch, this old and no result: the send died without a trace (fallback)
STALE_QUEUE_MARGIN_SECONDS = 60  # beyond its command's deadline: the clocks of the API and the host may differ
RECEIPT_STATUS = {"Delivered": "delivered", "Read": "read"}
ID_REUSED = "Id {id} was already used for a different message; send this one with a new Id"
OUTCOME_UNKNOWN = ("the session host sending message {id} stopped before WhatsApp's answer was recorded; WhatsApp "
                   "may have delivered it, so it is not sent again (send it with a new Id to send it anyway)")


class SendInProgress(Exception):
    """The same Id is being sent right now (a concurrent duplicate request)."""


class OutcomeUnknown(Exception):
    """A dead host's send may or may not have reached WhatsApp, and the driver cannot resend it safely."""


class ClaimFenced(Exception):
    """The fencing condition on the session row failed: this host no longer holds the session."""


def _expiry() -> datetime:
    return datetime.now(UTC) + timedelta(days=get_settings().message_ttl_days)


def _result(record: MessageModel) -> dict[str, Any]:
    return {"Id": record.whatsapp_id or record.message_id, "Timestamp": record.sent_at or ""}


def check_request(record: MessageModel, message_id: str, fingerprint: str | None) -> None:
    """DomainError(409, ID_REUSED) when `record` (of the client's `message_id`) was written for another
    request than `fingerprint`; either side without a fingerprint matches (older releases, host-internal
    sends). The one comparison of the API's pre-checks, `queue` and `send_once`."""
    if fingerprint and record.fingerprint and record.fingerprint != fingerprint:
        raise DomainError(409, ID_REUSED.format(id=message_id))


def queue(token: str, message_id: str, kind: str, to: str, fingerprint: str | None = None) -> bool:
    """Async mode: record the message as queued before its command leaves. False if that Id is taken
    (a repeated request while it is queued, sending or sent): nothing is dispatched twice.
    DomainError(409, ID_REUSED) if the Id was taken by another request (`fingerprint`: check_request).

    A claim is never left stuck: an Id whose send `failed`, or that is still `queued` after its command's
    deadline (`ASYNC_COMMAND_TTL_SECONDS`, after which no host runs it), is claimed again, so a retry
    with the same Id sends. Both moves are conditional on the state read, so two retries claim once.
    Except a send whose outcome is unknown (`OUTCOME_UNKNOWN`: WhatsApp may have it): never again, at
    most once; DomainError(500) with that text, as the synchronous path answers."""
    now = time.time()
    record = MessageModel(token, message_id, kind=kind, to=to, status="queued", rank=STATUS_ORDER["queued"],
                          updated_at=now, expires_at=_expiry(), fingerprint=fingerprint)
    try:
        record.save(condition=MessageModel.message_id.does_not_exist())
        return True
    except PutError:
        pass
    try:
        existing = MessageModel.get(token, message_id, consistent_read=True)
    except DoesNotExist:
        return False
    check_request(existing, message_id, fingerprint)
    if existing.status == "failed" and existing.error == OUTCOME_UNKNOWN.format(id=message_id):
        raise DomainError(500, OUTCOME_UNKNOWN.format(id=message_id))
    stale = existing.status == "queued" and now - float(existing.updated_at or 0) > \
        get_settings().async_command_ttl_seconds + STALE_QUEUE_MARGIN_SECONDS
    if existing.status != "failed" and not stale:
        return False
    try:
        existing.update(actions=[MessageModel.status.set("queued"), MessageModel.rank.set(STATUS_ORDER["queued"]),
                                 MessageModel.error.remove(), MessageModel.kind.set(kind), MessageModel.to.set(to),
                                 MessageModel.updated_at.set(now), *_fingerprint_set(fingerprint)],
                        condition=(MessageModel.status == existing.status)
                        & (MessageModel.updated_at == existing.updated_at))
    except UpdateError:
        return False  # another retry claimed it first
    return True


def _fingerprint_set(fingerprint: str | None) -> list[Action]:
    """Store the request's fingerprint on a record being (re)claimed; nothing when the send has none."""
    return [MessageModel.fingerprint.set(fingerprint)] if fingerprint else []


def mark_failed(token: str, message_id: str, error: str) -> None:
    """A send that never got as far as send_once (no session, not logged in): say so on its record."""
    try:
        MessageModel(token, message_id).update(
            actions=[MessageModel.status.set("failed"), MessageModel.rank.set(STATUS_ORDER["failed"]),
                     MessageModel.error.set(error[:500]), MessageModel.updated_at.set(time.time())],
            condition=MessageModel.message_id.exists() & (MessageModel.rank < STATUS_ORDER["failed"]))
    except UpdateError:
        pass


def _claim(claim: MessageModel, fence: Any) -> bool:
    """Write a new claim; False if `(token, Id)` exists. ClaimFenced if the session row's `fence` fails."""
    if fence is None:
        try:
            claim.save(condition=MessageModel.message_id.does_not_exist())
        except PutError:
            return False
        return True
    try:
        with TransactWrite(connection=aws.dynamodb_connection()) as tx:
            tx.condition_check(SessionModel, claim.token, condition=fence)
            tx.save(claim, condition=MessageModel.message_id.does_not_exist())
    except TransactWriteError as exc:
        if cancelled_by_condition(exc, 0):
            raise ClaimFenced(claim.token) from None
        if cancelled_by_condition(exc, 1):
            return False
        raise
    return True


def send_once(token: str, message_id: str | None, kind: str, to: str, send: Callable[[], dict[str, Any]],
              epoch: int | None = None, host_id: str = "", fence: Any = None, reuses_id: bool = False,
              before_send: Callable[[], object] | None = None, fingerprint: str | None = None) -> dict[str, Any]:
    """Run `send` (returns {"Id", "Timestamp"}) at most once per (token, message_id).

    `epoch`/`host_id`: the session host's held epoch, stored on the claim; `fence`: the pynamodb
    condition on the session row written with the claim (ClaimFenced when it fails); `reuses_id`: the
    driver sends with `message_id` as WhatsApp's id, so a claim a dead owner left `sending` may be sent
    again (else OutcomeUnknown); `before_send`: a last check right before the driver call (fencing);
    `fingerprint`: the request's (ops.Send.fingerprint), kept on the claim: a repeat of the Id with another
    one raises DomainError(409, ID_REUSED) before anything is sent or written (check_request).
    """
    now = time.time()
    if message_id:
        claim = MessageModel(token, message_id, kind=kind, to=to, status="sending", rank=0, updated_at=now,
                             expires_at=_expiry(), claim_epoch=epoch, claim_host=host_id or None,
                             fingerprint=fingerprint)
        if not _claim(claim, fence):
            existing = MessageModel.get(token, message_id, consistent_read=True)
            check_request(existing, message_id, fingerprint)
            if existing.rank >= STATUS_ORDER["sent"]:
                return _result(existing)
            _take_over(existing, now, epoch, host_id, reuses_id, fingerprint)
    if before_send is not None:
        before_send()
    try:
        sent = send()
    except Exception as exc:
        if message_id:
            MessageModel(token, message_id).update(actions=[
                MessageModel.status.set("failed"), MessageModel.rank.set(STATUS_ORDER["failed"]),
                MessageModel.error.set(str(getattr(exc, "message", exc))[:500]),
                MessageModel.updated_at.set(time.time())])
        raise
    whatsapp_id = sent["Id"]
    for key in {whatsapp_id, message_id or whatsapp_id}:  # neonize cannot choose ids: the claim points to WhatsApp's
        _record_sent(token, key, kind, to, whatsapp_id, sent["Timestamp"], fingerprint)
    return {"Id": whatsapp_id, "Timestamp": sent["Timestamp"]}


def _take_over(existing: MessageModel, now: float, epoch: int | None, host_id: str, reuses_id: bool,
               fingerprint: str | None) -> None:
    """A claim exists without a result: in progress (SendInProgress), left by a host that lost the session
    (resend if the id is reused, else OutcomeUnknown), or failed before (send again)."""
    message_id = existing.message_id
    claimed_under = int(existing.claim_epoch or 0)
    if existing.status == "sending":
        orphaned = epoch is not None and claimed_under < epoch
        stale = now - float(existing.updated_at or 0) >= STALE_CLAIM_SECONDS
        if not orphaned and not stale:
            raise SendInProgress(message_id)
        if not reuses_id:
            existing.update(actions=[
                MessageModel.status.set("failed"), MessageModel.rank.set(STATUS_ORDER["failed"]),
                MessageModel.error.set(OUTCOME_UNKNOWN.format(id=message_id)), MessageModel.updated_at.set(now)],
                condition=MessageModel.status == "sending")
            raise OutcomeUnknown(message_id)
    elif existing.status == "failed" and existing.error == OUTCOME_UNKNOWN.format(id=message_id):
        raise OutcomeUnknown(message_id)
    try:  # take the claim over, once: a concurrent retry on the same host loses this race
        existing.update(actions=[MessageModel.status.set("sending"), MessageModel.updated_at.set(now),
                                 MessageModel.claim_epoch.set(epoch) if epoch is not None
                                 else MessageModel.claim_epoch.remove(),
                                 MessageModel.claim_host.set(host_id) if host_id else MessageModel.claim_host.remove(),
                                 *_fingerprint_set(fingerprint)],
                        condition=(MessageModel.status == existing.status)
                        & (MessageModel.updated_at == existing.updated_at))
    except UpdateError:
        raise SendInProgress(message_id) from None


def _record_sent(token: str, key: str, kind: str, to: str, whatsapp_id: str, sent_at: str,
                 fingerprint: str | None) -> None:
    """One write: the record's send fields (with the request's fingerprint, so the record under WhatsApp's
    id refuses another request too) and status `sent`, unless a receipt already moved it further (the sim
    network, for one, can deliver before the send call returns); then, and only then, a second write
    stores the send fields without touching the status."""
    fields: list[Action] = [MessageModel.kind.set(kind), MessageModel.to.set(to), MessageModel.sent_at.set(sent_at),
              MessageModel.whatsapp_id.set(whatsapp_id), MessageModel.updated_at.set(time.time()),
              MessageModel.expires_at.set(_expiry()), *_fingerprint_set(fingerprint)]
    record = MessageModel(token, key)
    try:
        record.update(actions=[*fields, MessageModel.status.set("sent"), MessageModel.rank.set(STATUS_ORDER["sent"])],
                      condition=MessageModel.rank.does_not_exist() | (MessageModel.rank < STATUS_ORDER["sent"]))
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        record.update(actions=fields)


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
    """The message record of (token, message id), following a client Id to the WhatsApp id it was
    sent as (whose record holds the receipts); None when neither is known."""
    try:
        record = MessageModel.get(token, message_id, consistent_read=True)
    except DoesNotExist:
        return None
    if record.whatsapp_id and record.whatsapp_id != message_id:
        return status_of(token, record.whatsapp_id) or record
    return record
