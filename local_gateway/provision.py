"""Create every table, queue and bucket the gateway uses, idempotently (local mode, LocalStack).

In the cloud the CDK stack owns these resources; this mirrors its shape for local endpoints.
"""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from chalicelib.core import aws
from chalicelib.core.models import ALL_MODELS
from chalicelib.core.settings import Settings, get_settings

EVENTS_VISIBILITY_SECONDS = 60
EVENTS_MAX_RECEIVES = 8
RETENTION_SECONDS = 14 * 24 * 3600


def ensure_tables(settings: Settings) -> list[str]:
    created = []
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
            created.append(model.Meta.table_name)
    ddb = aws.client("dynamodb")
    _ensure_ttl(ddb, settings.replies_table_name, "expires_at")
    _ensure_ttl(ddb, settings.messages_table_name, "expires_at")
    _ensure_ttl(ddb, settings.deliveries_table_name, "expires_at")
    _ensure_ttl(ddb, settings.calls_table_name, "expires_at")
    return created


def _ensure_ttl(ddb, table: str, attribute: str) -> None:
    """Turn on DynamoDB TTL (replies expire by themselves), once."""
    current = ddb.describe_time_to_live(TableName=table).get("TimeToLiveDescription", {})
    if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute})


def _queue_url(sqs, name: str, attributes: dict[str, str]) -> str:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def ensure_queues(settings: Settings) -> dict[str, str]:
    sqs = aws.client("sqs")
    dlq_url = _queue_url(sqs, settings.events_dlq_name, {"MessageRetentionPeriod": str(RETENTION_SECONDS)})
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    max_receives = max(EVENTS_MAX_RECEIVES, settings.webhook_max_attempts)
    events_url = _queue_url(
        sqs,
        settings.events_queue_name,
        {
            "VisibilityTimeout": str(EVENTS_VISIBILITY_SECONDS),
            "MessageRetentionPeriod": str(RETENTION_SECONDS),
            # The fan-out moves an event to the DLQ itself after WEBHOOK_MAX_ATTEMPTS; this is the backstop.
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}),
        },
    )
    return {"events": events_url, "events_dlq": dlq_url}


def ensure_bucket(settings: Settings) -> str:
    s3 = aws.client("s3")
    name = settings.media_bucket_name
    try:
        s3.head_bucket(Bucket=name)
        return name
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise
    kwargs = {} if settings.region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": settings.region}
    }
    s3.create_bucket(Bucket=name, **kwargs)
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
        },
    )
    return name


def ensure_all(settings: Settings | None = None) -> dict[str, object]:
    settings = settings or get_settings()
    return {"tables": ensure_tables(settings), "queues": ensure_queues(settings), "bucket": ensure_bucket(settings)}


if __name__ == "__main__":
    print(json.dumps(ensure_all(), indent=2))
