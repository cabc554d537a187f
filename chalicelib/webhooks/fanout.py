"""The events-queue handler: durable webhook delivery.

Lambda's SQS trigger (with ReportBatchItemFailures) or the local poller calls `handle_events` with a
batch of up to 10 records. The records are delivered concurrently (one slow receiver does not hold up
the rest of the batch) through Powertools' AsyncBatchProcessor, which reports only the failed records
in `batchItemFailures`. Per record:

1. drop it if the session is gone, has no webhook, or is not subscribed to the event's type;
2. POST it once per event id (Powertools idempotency on the idempotency table: a message that SQS
   delivers again after a success is not POSTed again);
3. 2xx: delivered. 408/429/5xx/network error: the message is hidden for an exponential backoff
   with jitter (ChangeMessageVisibility) and reported as failed, so SQS hands it back later; its
   ApproximateReceiveCount is the attempt number. A refused status (other 4xx, 3xx), a blocked
   destination (SSRF guard), or the last allowed attempt: the fan-out puts the event on the DLQ
   itself and reports success, so the original is deleted. `POST /webhook/redrive` brings it back.
4. Every outcome is written to the session's delivery log.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from pydantic import ValidationError

from chalicelib.core import aws
from chalicelib.core.contract import WireEvent
from chalicelib.core.models import SessionModel
from chalicelib.core.observability import logger, metrics
from chalicelib.core.settings import Settings, get_settings
from chalicelib.core.ssrf import BlockedDestination, Guard
from chalicelib.webhooks import dlq, log, media
from chalicelib.webhooks.delivery import AttemptResult, ClientPool, post_event
from chalicelib.webhooks.retry import Verdict, classify, visibility_for
from chalicelib.webhooks.subscriptions import is_subscribed

#: Deliveries in flight at once per invocation (the SQS batch size).
CONCURRENCY = 10
#: How long a delivered event id is remembered (a redelivered SQS message within it is not POSTed).
IDEMPOTENCY_SECONDS = 24 * 3600

_executor = ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="webhook")
_idempotency_config = IdempotencyConfig(event_key_jmespath="event_id", expires_after_seconds=IDEMPOTENCY_SECONDS)


class DeliveryFailed(Exception):
    """The receiver did not take the event (the idempotency record is released, so it can be retried)."""

    def __init__(self, result: AttemptResult, verdict: Verdict):
        super().__init__(result.error or f"status {result.status}")
        self.result = result
        self.verdict = verdict


class RetryLater(Exception):
    """Raised for a record that stays on the queue: Powertools lists it in batchItemFailures."""


@dataclass
class _Job:
    """One delivery's inputs and, once POSTed, its result (left None when idempotency replays)."""

    event: WireEvent
    url: str
    secret: str | None
    attempt: int
    batch: _Batch
    result: AttemptResult | None = None


def _post_once(*, event: dict, job: _Job) -> dict:
    attachment = media.fetch(job.event) if job.batch.settings.webhook_files else None
    result = post_event(job.batch.http, job.url, job.event, attempt=job.attempt, secret=job.secret,
                        attachment=attachment, guard=job.batch.guard)
    job.result = result
    verdict = classify(result.status)
    if verdict is not Verdict.DELIVERED:
        raise DeliveryFailed(result, verdict)
    return {"status": result.status, "latency_ms": result.latency_ms, "delivered_at": time.time()}


@functools.lru_cache(maxsize=1)
def _idempotent_post():
    store = DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table_name,
                                     boto3_client=aws.client("dynamodb"))
    return idempotent_function(_post_once, data_keyword_argument="event", persistence_store=store,
                               config=_idempotency_config, key_prefix="webhook-delivery")


@functools.lru_cache(maxsize=4)
def _http_clients(timeout: float) -> ClientPool:
    return ClientPool()


def reset() -> None:
    """Drop cached AWS clients (tests start a fresh moto backend per test)."""
    aws.reset()
    _idempotent_post.cache_clear()


@dataclass
class _Batch:
    settings: Settings
    guard: Guard
    http: ClientPool
    sessions: dict[str, SessionModel | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    log_items: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prefetch(self, records: list[dict]) -> None:
        """Read every session of the batch in one BatchGetItem."""
        tokens = set()
        for raw in records:
            try:
                token = json.loads(raw.get("body") or "").get("token")
            except (ValueError, AttributeError):
                continue
            if isinstance(token, str) and token:
                tokens.add(token)
        if not tokens:
            return
        found = {s.token: s for s in SessionModel.batch_get(list(tokens))}
        self.sessions.update({token: found.get(token) for token in tokens})

    def session(self, token: str) -> SessionModel | None:
        with self.lock:
            if token in self.sessions:
                return self.sessions[token]
        try:
            found = SessionModel.get(token)
        except SessionModel.DoesNotExist:
            found = None
        with self.lock:
            self.sessions[token] = found
        return found

    def log(self, event: WireEvent, **fields: Any) -> None:
        """Buffer a delivery-log entry; the batch writes them together at the end."""
        item = log.entry(event, **fields)
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


def process_record(record: SQSRecord, batch: _Batch) -> str:
    """Deliver one record; returns the outcome, or raises RetryLater to leave it on the queue."""
    attempt = int(record.attributes.approximate_receive_count or 1)
    try:
        event = WireEvent.model_validate_json(record.body)
    except ValidationError as exc:
        dlq.move(record.body, token=None, reason=f"malformed event: {exc.errors()[0]['msg']}", attempts=attempt)
        batch.count("malformed")
        return "failed:malformed"
    session = batch.session(event.token)
    if session is None:
        outcome = "dropped:no-session"
    elif not session.webhook:
        outcome = "dropped:no-webhook"
    elif not is_subscribed(session.events or [], event.type):
        outcome = "dropped:unsubscribed"
    else:
        outcome = ""
    if outcome or session is None:
        batch.count(outcome)
        return outcome

    job = _Job(event, session.webhook, session.webhook_secret, attempt, batch)
    try:
        _idempotent_post()(event={"event_id": event.event_id}, job=job)
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
    except IdempotencyAlreadyInProgressError:
        # Another invocation is POSTing this very event right now; look again after a short delay.
        _hide(record, max(1, int(batch.settings.webhook_backoff_base_seconds)))
        raise RetryLater(f"{event.event_id}: delivery already in progress") from None
    except Exception as exc:  # noqa: BLE001 - e.g. S3/DynamoDB throttling: retry like a network error
        logger.exception("webhook delivery error", extra={"event_id": event.event_id})
        _retry(record, event, batch, attempt, f"{type(exc).__name__}: {exc}"[:500], None, 0)
        return "failed:attempts"

    if job.result is None:  # delivered before: SQS handed the message over again
        batch.count("duplicate")
        return "duplicate"
    batch.log(event, state=log.DELIVERED, attempts=attempt, status=job.result.status,
               latency_ms=job.result.latency_ms)
    batch.count("delivered")
    with batch.lock:
        batch.latencies.append(job.result.latency_ms)
    return f"delivered:{job.result.status}"


def handle_events(event: dict[str, Any], context: Any = None) -> PartialItemFailureResponse:
    settings = get_settings()
    # An interrupted delivery's in-progress marker then expires with the invocation (never a stale one).
    # Powertools takes None (no deadline) although its hint names LambdaContext only.
    _idempotency_config.register_lambda_context(
        context if hasattr(context, "get_remaining_time_in_millis") else None)  # type: ignore[arg-type]
    batch = _Batch(settings, Guard.from_settings(settings), _http_clients(settings.webhook_timeout_seconds))
    processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    async def record_handler(record: SQSRecord) -> str:
        return await asyncio.get_running_loop().run_in_executor(_executor, process_record, record, batch)

    try:
        batch.prefetch(event.get("Records") or [])
    except Exception:  # noqa: BLE001 - each record then reads its session itself
        logger.exception("session prefetch failed")
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
