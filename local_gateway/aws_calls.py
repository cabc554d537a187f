"""Count AWS API calls (service, operation) made in this process, for tests and benchmarks.

Every botocore client (boto3's, pynamodb's, ours) sends through `botocore.endpoint.Endpoint.make_request`,
before any stub or HTTP: moto in-process and a moto server are counted alike. Retries of one call
are one call. An SQS ReceiveMessage that got nothing (an idle poll) is counted as
`ReceiveMessage(empty)`, apart from the calls that carried work. A call that raised is not counted.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator

import botocore.endpoint

_lock = threading.Lock()
_active: list[Calls] = []
_original = botocore.endpoint.Endpoint.make_request


def _counting(self, operation_model, request_dict):
    started = time.perf_counter()
    result = _original(self, operation_model, request_dict)
    ended = time.perf_counter()
    key = (operation_model.service_model.service_name, operation_model.name)
    if key == ("sqs", "ReceiveMessage") and not (result[1] or {}).get("Messages"):
        key = ("sqs", "ReceiveMessage(empty)")  # an idle poll: counted apart from the calls that carry work
    thread = threading.current_thread().name
    with _lock:
        for counter in _active:
            counter[key] += 1
            if counter.trace is not None:
                counter.trace.append((thread, *key))
                counter.spans.append((thread, *key, started, ended))
    return result


class Calls(Counter[tuple[str, str]]):
    """(service, operation) -> calls; helpers for the usual questions. With `trace`, also the calls in
    order as (thread name, service, operation), and in `spans` the same with each call's start and end
    (time.perf_counter seconds, retries included) for benchmarks."""

    def __init__(self, trace: bool = False):
        super().__init__()
        self.trace: list[tuple[str, str, str]] | None = [] if trace else None
        self.spans: list[tuple[str, str, str, float, float]] = []

    def total(self) -> int:
        """Calls that carried work (idle polls that received nothing are left out: see `idle`)."""
        return sum(n for (_, op), n in self.items() if op != "ReceiveMessage(empty)")

    def idle(self) -> int:
        return self[("sqs", "ReceiveMessage(empty)")]

    def writes(self) -> int:
        """Calls that change state (DynamoDB/SQS/S3 writes, deletes, sends)."""
        verbs = ("Put", "Update", "Delete", "BatchWrite", "TransactWrite", "Send", "ChangeMessage", "Copy",
                 "Create")
        return sum(n for (_, op), n in self.items() if op.startswith(verbs))

    def of(self, service: str) -> dict[str, int]:
        return {op: n for (svc, op), n in self.items() if svc == service}


@contextlib.contextmanager
def count_aws_calls(trace: bool = False) -> Iterator[Calls]:
    """Count every AWS call made (by any thread) while the block runs."""
    calls = Calls(trace)
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


def by_role(trace: list[tuple[str, str, str]]) -> dict[str, Counter]:
    """A trace's calls per role of the thread that made them, for an in-process API + session host:
    `api` (the request's thread), `host` (the command loop and its lanes), `delivery` (the sim
    network's background delivery), `receipt` (receipt timers), `other`. Idle polls and the heartbeat
    are left out."""
    roles: dict[str, Counter] = {}
    for thread, service, op in trace:
        if op == "ReceiveMessage(empty)" or thread == "heartbeat":
            continue
        if thread == "MainThread":
            role = "api"
        elif thread == "commands" or thread.startswith("command_"):
            role = "host"
        elif thread.startswith("sim-delivery"):
            role = "delivery"
        elif thread.startswith("Thread-"):  # threading.Timer: the sim's receipts
            role = "receipt"
        else:
            role = "other"
        roles.setdefault(role, Counter())[f"{service}.{op}"] += 1
    return roles
