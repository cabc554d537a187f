"""Count AWS API calls (service, operation) made in this process, for tests and benchmarks.

Every botocore client (boto3's, pynamodb's, ours) sends through `botocore.endpoint.Endpoint.make_request`,
before any stub or HTTP: moto in-process and a moto server are counted alike. Retries of one call
are one call.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator

import botocore.endpoint

_lock = threading.Lock()
_active: list[Counter] = []
_original = botocore.endpoint.Endpoint.make_request


def _counting(self, operation_model, request_dict):
    key = (operation_model.service_model.service_name, operation_model.name)
    with _lock:
        for counter in _active:
            counter[key] += 1
    return _original(self, operation_model, request_dict)


class Calls(Counter):
    """(service, operation) -> calls; helpers for the usual questions."""

    def total(self) -> int:
        return sum(self.values())

    def writes(self) -> int:
        """Calls that change state (DynamoDB/SQS/S3 writes, deletes, sends)."""
        verbs = ("Put", "Update", "Delete", "BatchWrite", "TransactWrite", "Send", "ChangeMessage", "Copy",
                 "Create")
        return sum(n for (_, op), n in self.items() if op.startswith(verbs))

    def of(self, service: str) -> dict[str, int]:
        return {op: n for (svc, op), n in self.items() if svc == service}


@contextlib.contextmanager
def count_aws_calls() -> Iterator[Calls]:
    """Count every AWS call made (by any thread) while the block runs."""
    calls = Calls()
    with _lock:
        if not _active:
            botocore.endpoint.Endpoint.make_request = _counting
        _active.append(calls)
    try:
        yield calls
    finally:
        with _lock:
            _active.remove(calls)
            if not _active:
                botocore.endpoint.Endpoint.make_request = _original
