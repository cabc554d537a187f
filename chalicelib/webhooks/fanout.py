"""The events-queue handler: Powertools batch processing with partial batch failures.

A record that cannot be delivered raises, so only it returns to the queue (and, after the queue's
maxReceiveCount, to the DLQ); the rest of the batch is acknowledged.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.contract import WireEvent
from chalicelib.models import SessionModel
from chalicelib.observability import logger
from chalicelib.webhooks.delivery import new_client, post_event
from chalicelib.webhooks.subscriptions import is_subscribed


def _deliver_record(record: SQSRecord) -> str:
    event = WireEvent.model_validate_json(record.body)
    try:
        session = SessionModel.get(event.token)
    except SessionModel.DoesNotExist:
        logger.info("event for a deleted session dropped", extra={"event_id": event.event_id})
        return "dropped:no-session"
    if not session.webhook:
        return "dropped:no-webhook"
    if not is_subscribed(session.events or [], event.type):
        return "dropped:unsubscribed"
    with new_client() as client:
        status = post_event(client, session.webhook, event)
    logger.info("webhook delivered", extra={"event_id": event.event_id, "status": status})
    return f"delivered:{status}"


def handle_events(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=_deliver_record, processor=processor, context=context)
