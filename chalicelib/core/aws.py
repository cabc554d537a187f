"""AWS clients, made in one place and once per process (Lambda and the hosts reuse them).

Region from settings. The endpoint is botocore's own: `AWS_ENDPOINT_URL` (moto, LocalStack) or a
service's `AWS_ENDPOINT_URL_<SERVICE>`; nothing here hard-codes one, so real AWS needs no change.
Clients are botocore's, which are thread-safe, so one per service serves every thread of a process.
boto3 adds nothing used here (resources, s3transfer) and costs the Lambda ~45 ms of cold start
(s3transfer pulls in multiprocessing); botocore's clients have every call used, S3's
generate_presigned_url / generate_presigned_post included.

pynamodb opens its own botocore sessions (one per model and thread); they share this module's
service-model loader, so botocore's JSON service files are parsed once per process, not ~0.2 s per
model.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import botocore.session
import pynamodb.connection.base as pynamodb_connection

from chalicelib.core.settings import get_settings

_lock = threading.Lock()
_shared_loader: Any = None


def new_session() -> botocore.session.Session:
    """A botocore session whose service-model loader is shared process-wide (made on first use, not
    at import). Credentials and config stay per session."""
    global _shared_loader
    session = botocore.session.get_session()
    with _lock:
        if _shared_loader is None:
            _shared_loader = session.get_component("data_loader")
        else:
            session.register_component("data_loader", _shared_loader)
    return session


pynamodb_connection.get_session = new_session


@functools.cache
def client(service: str) -> Any:
    """The process's client for `service` ("sqs", "s3", "dynamodb", ...)."""
    session = new_session()
    with _lock:  # botocore sessions are not thread-safe while they create clients
        return session.create_client(service, region_name=get_settings().region)


@functools.cache
def dynamodb_connection() -> Any:
    """The process's pynamodb Connection for transactions (pynamodb.transactions.TransactWrite).

    One per process: each new Connection makes its own botocore session and client on first use
    (credential resolution included: on ECS, a request to the container credentials endpoint), which
    cost a transaction ~5-15 ms locally when every transaction made one. Its client is shared by
    every thread (botocore clients are thread-safe)."""
    from pynamodb.connection import Connection

    return Connection(region=get_settings().region)


@functools.cache
def queue_url(name: str) -> str:
    """The URL of the SQS queue called `name` (one GetQueueUrl per process and name)."""
    return str(client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def reset() -> None:
    """Forget cached clients and queue URLs (tests start a fresh moto backend per test)."""
    client.cache_clear()
    dynamodb_connection.cache_clear()
    queue_url.cache_clear()
