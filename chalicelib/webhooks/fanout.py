"""The events-queue handler: durable webhook delivery.

Lambda's SQS trigger (with ReportBatchItemFailures) or the local poller calls `handle_events` with a
batch of up to 10 records. The records are delivered concurrently (one slow receiver does not hold up
the rest of the batch) through Powertools' AsyncBatchProcessor, which reports only the failed records
in `batchItemFailures`.

Once per batch, before any POST: every body is parsed, and ONE BatchGetItem reads both the batch's
sessions and the batch's delivery-log items (consistent reads). Per record:

1. drop it if the session is gone, has no webhook, or is not subscribed to the event's type (WaGo
   sends nothing then). An event the log already shows (retrying; failed, then redriven) ends there
   as `dropped` with the reason (`no-session`, `no-webhook`, `not-subscribed`): one more item in the
   batch's log write, from the item the prefetch read (if the prefetch failed: one conditional
   UpdateItem per such drop). One dropped on its first attempt is not logged (see `log`);
2. skip it if its delivery-log item says `delivered` (SQS handed the message over again after a
   success; the log item is keyed by the event, so it is the idempotency record too), or if the same
   event already appears earlier in this batch;
3. POST it (the receiver's host is resolved and checked once per batch; keep-alive connections,
   HTTP/2 where the receiver offers it). 2xx: delivered. 408/429/5xx/network error: the message is
   hidden for an exponential backoff with jitter (ChangeMessageVisibility) and reported as failed, so
   SQS hands it back later; its ApproximateReceiveCount is the attempt number. A refused status (other
   4xx, 3xx), a blocked destination (SSRF guard), or the last allowed attempt: the fan-out puts the
   event on the DLQ itself and reports success, so the original is deleted. `POST /webhook/redrive`
   brings it back.
4. Every logged outcome is buffered; one BatchWriteItem per 25 items writes the delivery log at the end.

AWS calls on the happy path: 1 BatchGetItem + 1 BatchWriteItem per batch (Lambda deletes the
messages), i.e. one item write per event. Not guarded: two invocations holding the same message at
once (SQS's rare duplicate delivery; the queue's visibility timeout is six function timeouts, so a
redelivery never overlaps a running attempt) may both POST it; receivers de-duplicate on
`X-Webhook-Event-Id`, as for a crash between a receiver's 2xx and the log write.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from chalicelib.core import aws
from chalicelib.core.contract import WireEvent
from chalicelib.core.models import DeliveryModel, SessionModel
from chalicelib.core.models.base import batch_get
from chalicelib.core.models.deliveries import delivery_sort_key
from chalicelib.core.observability import logger, metrics
from chalicelib.core.settings import Settings, get_settings
from chalicelib.core.ssrf import BlockedDestination, Guard, Target
from chalicelib.webhooks import dlq, log, media
from chalicelib.webhooks.delivery import AttemptResult, ClientPool, post_event
from chalicelib.webhooks.retry import Verdict, classify, visibility_for
from chalicelib.webhooks.subscriptions import is_subscribed

#: Deliveries in flight at once per invocation (a batch of 25, the stack's default, takes three rounds).
CONCURRENCY = 10
#: Records whose session and delivery-log item one BatchGetItem reads (2 keys each; DynamoDB's cap is 100).
PREFETCH_RECORDS = 50
_executor = ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="webhook")


class DeliveryFailed(Exception):
    """The receiver did not take the event."""

    def __init__(self, result: AttemptResult, verdict: Verdict):
        super().__init__(result.error or f"status {result.status}")
        self.result = result
        self.verdict = verdict


class RetryLater(Exception):
    """Raised for a record that stays on the queue: Powertools lists it in batchItemFailures."""


@functools.lru_cache(maxsize=1)
def _http_clients() -> ClientPool:
    """Keep-alive clients per receiver host, kept across invocations of one Lambda container."""
    return ClientPool()


def reset() -> None:
    """Drop cached AWS clients and HTTP connections (tests start a fresh moto backend per test)."""
    aws.reset()
    _http_clients().close()


@dataclass
class _Batch:
    """What one invocation shares between its records: read once, written once."""

    settings: Settings
    guard: Guard
    http: ClientPool
    events: dict[str, WireEvent | None] = field(default_factory=dict)  # by SQS message id; None: malformed
    sessions: dict[str, SessionModel | None] = field(default_factory=dict)
    logged: dict[str, DeliveryModel] = field(default_factory=dict)  # event id -> its log item, as read
    looked_up: set[str] = field(default_factory=set)  # event ids whose log item the prefetch asked for
    started: set[str] = field(default_factory=set)  # event ids a record of this batch has taken
    targets: dict[str, Target | Exception] = field(default_factory=dict)  # receiver URL -> checked address
    counts: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    log_items: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def parse(self, records: list[dict]) -> None:
        """Parse every record's body once."""
        for raw in records:
            try:
                self.events[raw.get("messageId", "")] = WireEvent.model_validate_json(raw.get("body") or "")
            except ValidationError:
                self.events[raw.get("messageId", "")] = None

    def prefetch(self) -> None:
        """One BatchGetItem (consistent) for the batch's sessions and delivery-log items together: two
        keys per record, so one call per PREFETCH_RECORDS records (DynamoDB takes 100 keys a call)."""
        events = [e for e in self.events.values() if e is not None]
        for start in range(0, len(events), PREFETCH_RECORDS):
            chunk = events[start:start + PREFETCH_RECORDS]
            tokens = sorted({e.token for e in chunk} - set(self.sessions))
            log_keys = sorted({(e.token, delivery_sort_key(e.ts, e.event_id)) for e in chunk})
            sessions, entries = batch_get((SessionModel, tokens), (DeliveryModel, log_keys))
            self.sessions.update({t: None for t in tokens})
            self.sessions.update({s.token: s for s in sessions})
            self.logged.update({e.event_id: e for e in entries})
            self.looked_up.update(e.event_id for e in chunk)

    def session(self, token: str) -> SessionModel | None:
        with self.lock:
            if token in self.sessions:
                return self.sessions[token]
        try:
            found = SessionModel.get(token, consistent_read=True)
        except SessionModel.DoesNotExist:
            found = None
        with self.lock:
            self.sessions[token] = found
        return found

    def take(self, event_id: str) -> bool:
        """False if the event was delivered before, or another record of this batch has it."""
        with self.lock:
            prior = self.logged.get(event_id)
            if (prior is not None and prior.state == log.DELIVERED) or event_id in self.started:
                return False
            self.started.add(event_id)
            return True

    def target(self, url: str) -> Target:
        """The receiver's checked address, resolved once per batch and URL (raises as Guard.resolve)."""
        with self.lock:
            known = self.targets.get(url)
        if known is None:
            try:
                known = self.guard.resolve(url)
            except (BlockedDestination, OSError) as exc:
                known = exc
            with self.lock:
                self.targets[url] = known
        if isinstance(known, Exception):
            raise known
        return known

    def log(self, event: WireEvent, **fields: Any) -> None:
        """Buffer a delivery-log entry; the batch writes them together at the end."""
        item = log.entry(event, **fields)
        with self.lock:
            self.log_items.append(item)

    def drop(self, event: WireEvent, reason: str) -> None:
        """Close the event's log item as dropped, if the log shows it and it is not final: buffered
        with the batch's log write when the prefetch read the item, else one conditional update."""
        with self.lock:
            known = event.event_id in self.looked_up
            prior = self.logged.get(event.event_id)
        if not known:
            log.close_dropped(event, reason)
            return
        item = log.dropped(prior, reason) if prior is not None else None
        if item is not None:
            with self.lock:
                self.log_items.append(item)

    def count(self, outcome: str) -> None:
        with self.lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1


def _hide(record: SQSRecord, seconds: int) -> None:
    """Keep a failed record invisible for the backoff; SQS hands it back afterwards."""
    name = record.event_source_arn.rsplit(":", 1)[-1]
    try:
        aws.client("sqs").change_message_visibility(
            QueueUrl=aws.queue_url(name), ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds
        )
    except Exception:  # noqa: BLE001 - the queue's own visibility timeout applies instead
        logger.exception("could not set the retry delay", extra={"message_id": record.message_id})


def _give_up(record: SQSRecord, event: WireEvent, batch: _Batch, attempt: int, reason: str, status: int | None,
             latency_ms: float) -> str:
    dlq.move(record.body, token=event.token, reason=reason, attempts=attempt)
    batch.log(event, state=log.FAILED, attempts=attempt, status=status, latency_ms=latency_ms, error=reason)
    logger.warning("webhook event moved to the DLQ",
                   extra={"event_id": event.event_id, "token": event.token, "reason": reason, "attempt": attempt})
    return "failed"


def _retry(record: SQSRecord, event: WireEvent, batch: _Batch, attempt: int, reason: str, status: int | None,
           latency_ms: float, retry_after: float | None = None) -> None:
    settings = batch.settings
    if attempt >= settings.webhook_max_attempts:
        batch.count(_give_up(record, event, batch, attempt, f"gave up after {attempt} attempts: {reason}", status,
                             latency_ms))
        return
    delay = visibility_for(attempt, settings.webhook_backoff_base_seconds, settings.webhook_backoff_cap_seconds,
                           retry_after)
    _hide(record, delay)
    batch.log(event, state=log.RETRYING, attempts=attempt, status=status, latency_ms=latency_ms, error=reason,
               next_retry_seconds=delay)
    batch.count("retrying")
    raise RetryLater(f"{event.event_id}: attempt {attempt} failed ({reason}); next in {delay} s")


def _deliver(event: WireEvent, session: SessionModel, attempt: int, batch: _Batch) -> AttemptResult:
    """POST once; raises DeliveryFailed unless the receiver took it (BlockedDestination if refused)."""
    target = batch.target(session.webhook)
    attachment = media.fetch(event) if batch.settings.webhook_files else None
    result = post_event(batch.http, session.webhook, event, attempt=attempt, secret=session.webhook_secret,
                        attachment=attachment, guard=batch.guard, target=target)
    verdict = classify(result.status)
    if verdict is not Verdict.DELIVERED:
        raise DeliveryFailed(result, verdict)
    return result


def process_record(record: SQSRecord, batch: _Batch) -> str:
    """Deliver one record; returns the outcome, or raises RetryLater to leave it on the queue."""
    attempt = int(record.attributes.approximate_receive_count or 1)
    if record.message_id in batch.events:
        event = batch.events[record.message_id]
    else:
        try:
            event = WireEvent.model_validate_json(record.body)
        except ValidationError:
            event = None
    if event is None:
        try:
            WireEvent.model_validate_json(record.body)
            reason = "malformed event"
        except ValidationError as exc:
            reason = f"malformed event: {exc.errors()[0]['msg']}"
        dlq.move(record.body, token=None, reason=reason, attempts=attempt)
        batch.count("malformed")
        return "failed:malformed"
    session = batch.session(event.token)
    drop = (log.NO_SESSION if session is None else log.NO_WEBHOOK if not session.webhook
            else "" if is_subscribed(session.events or [], event.type) else log.NOT_SUBSCRIBED)
    if session is None or drop:
        batch.drop(event, drop)
        batch.count(f"dropped:{drop}")
        return f"dropped:{drop}"
    if not batch.take(event.event_id):
        batch.count("duplicate")  # delivered before (SQS handed the message over again), or twice in this batch
        return "duplicate"

    try:
        result = _deliver(event, session, attempt, batch)
    except BlockedDestination as exc:
        batch.count(_give_up(record, event, batch, attempt, f"refused by the SSRF guard: {exc}", None, 0))
        return "failed:blocked"
    except DeliveryFailed as exc:
        result = exc.result
        if exc.verdict is Verdict.REJECTED:
            batch.count(_give_up(record, event, batch, attempt, result.error or "refused", result.status,
                                 result.latency_ms))
            return "failed:rejected"
        _retry(record, event, batch, attempt, result.error or "failed", result.status, result.latency_ms,
               result.retry_after)
        return "failed:attempts"
    except OSError as exc:  # the receiver's name did not resolve: a network error
        _retry(record, event, batch, attempt, f"{type(exc).__name__}: {exc}"[:500], None, 0)
        return "failed:attempts"
    except Exception as exc:  # noqa: BLE001 - e.g. S3 throttling: retry like a network error
        logger.exception("webhook delivery error", extra={"event_id": event.event_id})
        _retry(record, event, batch, attempt, f"{type(exc).__name__}: {exc}"[:500], None, 0)
        return "failed:attempts"

    batch.log(event, state=log.DELIVERED, attempts=attempt, status=result.status, latency_ms=result.latency_ms)
    batch.count("delivered")
    with batch.lock:
        batch.latencies.append(result.latency_ms)
    return f"delivered:{result.status}"


def handle_events(event: dict[str, Any], context: Any = None) -> PartialItemFailureResponse:
    settings = get_settings()
    batch = _Batch(settings, Guard.from_settings(settings), _http_clients())
    processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    async def record_handler(record: SQSRecord) -> str:
        return await asyncio.get_running_loop().run_in_executor(_executor, process_record, record, batch)

    records = event.get("Records") or []
    batch.parse(records)
    try:
        batch.prefetch()
    except Exception:  # noqa: BLE001 - each record then reads its session itself (and POSTs: at least once)
        logger.exception("batch prefetch failed")
    response = async_process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                              context=context)
    log.save_all(batch.log_items)
    for outcome, n in batch.counts.items():
        metrics.add_metric(name=f"Webhook_{outcome.replace(':', '_')}", unit=MetricUnit.Count, value=n)
    for latency in batch.latencies:
        metrics.add_metric(name="WebhookLatency", unit=MetricUnit.Milliseconds, value=latency)
    if batch.counts:
        metrics.flush_metrics()
    return response
