"""AWS clients of the fan-out, created once per process (Lambda reuses them across invocations)."""

from __future__ import annotations

import functools

import boto3

from chalicelib.core.settings import get_settings


@functools.lru_cache(maxsize=None)
def client(service: str):
    return boto3.client(service, region_name=get_settings().region)


@functools.lru_cache(maxsize=None)
def queue_url(name: str) -> str:
    return client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


def reset() -> None:
    """Forget cached clients and queue URLs (tests start a fresh moto backend per test)."""
    client.cache_clear()
    queue_url.cache_clear()
