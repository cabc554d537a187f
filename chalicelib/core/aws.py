"""AWS clients, made in one place and once per process (Lambda and the hosts reuse them).

Region from settings. The endpoint is botocore's own: `AWS_ENDPOINT_URL` (moto, LocalStack) or a
service's `AWS_ENDPOINT_URL_<SERVICE>`; nothing here hard-codes one, so real AWS needs no change.
boto3 clients are thread-safe, so one per service serves every thread of a process.
pynamodb's connections are its own (chalicelib/core/models/base.py shares their model loader).
"""

from __future__ import annotations

import functools
from typing import Any

import boto3

from chalicelib.core.settings import get_settings


@functools.cache
def client(service: str) -> Any:
    """The process's boto3 client for `service` ("sqs", "s3", "dynamodb", ...)."""
    return boto3.client(service, region_name=get_settings().region)


@functools.cache
def queue_url(name: str) -> str:
    """The URL of the SQS queue called `name` (one GetQueueUrl per process and name)."""
    return str(client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def reset() -> None:
    """Forget cached clients and queue URLs (tests start a fresh moto backend per test)."""
    client.cache_clear()
    queue_url.cache_clear()
