"""The host's command loop: read its FIFO queue, run one session's commands in order and different
sessions' commands concurrently, write each reply, then acknowledge the message.

- `KeyedExecutor` is a thread pool with one lane per key (session token): a lane's tasks run one at a
  time, in submission order, on whichever worker is free; different lanes run in parallel.
- The FIFO queue already withholds a message group's next message while one is in flight; the lanes
  keep the order within one receive batch too.
- A message is deleted only after its reply is written, so a host that dies mid-command leaves the
  command to reappear (to a new host of the same queue, or to expire).
- A command past its deadline is not run: it gets a 504 reply (nobody is waiting any more).
- Every reply the loop writes itself (expired, or the handler raised) also goes to `on_unanswered`,
  so an async send whose command never ran is marked failed instead of staying `queued`.
- A redelivered command whose reply already exists is not run again (its deletion was lost); sends
  are also idempotent by their own Id (chalicelib/core/outbox.py) for the case where it died mid-run.
- Receiving (local stages, `short_poll_interval` > 0): while any command of this host is in flight,
  short polls `short_poll_interval` apart (the first one interval after the receive that brought
  work), and at once when one of them finishes (its session's next
  command may be waiting: FIFO holds a group back while a message of it is in flight); when none is,
  one long poll of `IDLE_WAIT_SECONDS`. moto
  decides which FIFO message groups are busy only when a long poll starts (AWS re-checks during the
  poll), so a long poll is started only when no group of ours is in flight: no command waits behind
  it, and an idle host makes one request per IDLE_WAIT_SECONDS instead of twenty a second. Deployed
  stages (`short_poll_interval` = 0) long-poll RECEIVE_WAIT_SECONDS at a time, as before.
- Commands received after stopping began are refused (503) at once, not run.
"""

from __future__ import annotations

import collections
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.core import aws
from chalicelib.core.contract import COMMAND_EXPIRED, Command, Reply
from chalicelib.core.models import ReplyModel, SessionModel
from chalicelib.core.models.base import cancelled_by_condition
from chalicelib.core.observability import logger
from session_host.fencing import LEASE_LOST, Fenced

RECEIVE_WAIT_SECONDS = 1  # bounds how long a stop request waits for the receive in progress
IDLE_WAIT_SECONDS = 20  # SQS's longest long poll; local stages, when no command is in flight
RECEIVE_BATCH = 10
WRITE_WINDOW = 20  # reply writes whose durations give a reply's `written_in`
STOPPING = "session host is shutting down"


class KeyedExecutor:
    """Tasks run in order per key (a session's lane), lanes in parallel on `workers` threads.

    `on_task_done`: called after each task has left its lane (so `pending()` no longer counts it).
    """

    def __init__(self, workers: int, name: str = "lane", on_task_done: Callable[[], None] | None = None):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._lanes: dict[str, collections.deque[Callable[[], Any]]] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._on_task_done = on_task_done

    def submit(self, key: str, task: Callable[[], Any]) -> None:
        with self._lock:
            lane = self._lanes.get(key)
            if lane is not None:  # a worker is draining this lane: it will pick the task up in order
                lane.append(task)
                return
            self._lanes[key] = collections.deque([task])
        self._pool.submit(self._drain, key)

    def _drain(self, key: str) -> None:
        while True:
            with self._lock:
                lane = self._lanes[key]
                if not lane:
                    del self._lanes[key]
                    self._idle.notify_all()
                    return
                task = lane[0]
            try:
                task()
            except Exception:
                logger.exception("task failed", extra={"lane": key})
            finally:
                with self._lock:
                    lane.popleft()
                if self._on_task_done is not None:
                    self._on_task_done()

    def pending(self) -> int:
        with self._lock:
            return sum(len(lane) for lane in self._lanes.values())

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every lane is empty (or the timeout); True if idle."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._lanes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=False)


class ReplyStore:
    """Replies as items of the replies table (the Lambda polls them with consistent reads).

    With `holdings` (session_host/fencing.py), the reply to a command of a session this host holds is
    written in one transaction with the fencing condition on the session row (owner and epoch): a host
    that lost the session meanwhile writes only a failure (503, retry) instead of its result.
    """

    def __init__(self, host_id: str, ttl_seconds: int, holdings: Any = None):
        self.host_id = host_id
        self.ttl_seconds = ttl_seconds
        self.holdings = holdings
        self._write_seconds: collections.deque[float] = collections.deque(maxlen=WRITE_WINDOW)

    def exists(self, command_id: str) -> bool:
        try:
            ReplyModel.get(command_id, consistent_read=True, attributes_to_get=["command_id"])
        except ReplyModel.DoesNotExist:
            return False
        return True

    def put(self, command: Command, reply: Reply) -> None:
        """Stored even when nobody waits (async sends): a redelivery then finds it and is skipped."""
        started = time.monotonic()
        if self.holdings is not None and self.holdings.held(command.token):
            if self._put_fenced(command, reply):
                self._write_seconds.append(time.monotonic() - started)
                return
            if reply.ok:
                reply = Reply.failure(command.command_id, LEASE_LOST, 503)
        self._item(command, reply).save()
        self._write_seconds.append(time.monotonic() - started)

    def _item(self, command: Command, reply: Reply) -> ReplyModel:
        now = datetime.now(UTC)
        recent = sorted(self._write_seconds)
        return ReplyModel(
            command.command_id, token=command.token, body=reply.model_dump_json(), host_id=self.host_id,
            created_at=now.timestamp(), written_in=round(recent[len(recent) // 2], 4) if recent else 0,
            expires_at=now + timedelta(seconds=self.ttl_seconds),
        )

    def _put_fenced(self, command: Command, reply: Reply) -> bool:
        """The reply and the fencing condition in one transaction; False if this host lost the session."""
        try:
            condition = self.holdings.condition(command.token)
        except Fenced:
            return False
        try:
            with TransactWrite(connection=aws.dynamodb_connection()) as tx:
                tx.condition_check(SessionModel, command.token, condition=condition)
                tx.save(self._item(command, reply))
        except TransactWriteError as exc:
            if cancelled_by_condition(exc, 0):
                logger.warning("reply not written: the session moved to another host",
                               extra={"op": command.op, "token": command.token})
                return False
            raise
        return True


class CommandLoop:
    def __init__(self, sqs: Any, queue_url: str, handler: Callable[[Command], Reply], replies: ReplyStore,
                 workers: int, clock: Callable[[], float] = time.time, short_poll_interval: float = 0.0,
                 on_unanswered: Callable[[Command, Reply], None] | None = None):
        self.sqs = sqs
        self.on_unanswered = on_unanswered
        self.queue_url = queue_url
        self.handler = handler
        self.replies = replies
        self.clock = clock
        # > 0: short polls (WaitTimeSeconds=0) this far apart instead of 1 s long polls. For moto, whose
        # long poll decides once, when it starts, which FIFO groups are busy: a session's next command
        # waited out the whole poll (~1 s per command). Real SQS re-checks during a long poll.
        self.short_poll_interval = short_poll_interval
        # Set when a command leaves its lane: the short-poll wait ends then, so the next command of
        # a session that was just answered is received at once, not at the next interval.
        self._done = threading.Event()
        self.lanes = KeyedExecutor(workers, name="command", on_task_done=self._done.set)
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._stopping: threading.Event | None = None
        self.receives = 0  # receive calls made (tests and benchmarks count them)

    def busy(self) -> bool:
        """Is any command (or restore) of this host queued or running?"""
        with self._lock:
            if self._in_flight:
                return True
        return self.lanes.pending() > 0

    def poll_once(self, wait_seconds: int = RECEIVE_WAIT_SECONDS) -> int:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=RECEIVE_BATCH, WaitTimeSeconds=wait_seconds,
            AttributeNames=["MessageGroupId", "ApproximateReceiveCount"],
        ).get("Messages", [])
        self.receives += 1
        if messages and self._stopping is not None and self._stopping.is_set():
            for message in messages:  # a long poll that returned after stop began: refuse, do not run
                self._refuse(message, STOPPING)
            return len(messages)
        for message in messages:
            try:
                command = Command.model_validate_json(message["Body"])
            except ValidationError as exc:
                logger.error("malformed command dropped", extra={"error": str(exc)[:500]})
                self._delete(message["ReceiptHandle"])
                continue
            with self._lock:
                if command.command_id in self._in_flight:  # redelivered while still running
                    continue
                self._in_flight.add(command.command_id)
            redelivered = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")) > 1
            self.lanes.submit(command.token,
                              functools.partial(self._run, command, message["ReceiptHandle"], redelivered))
        return len(messages)

    def _run(self, command: Command, receipt: str, redelivered: bool = False) -> None:
        try:
            if redelivered and self.replies.exists(command.command_id):
                # Ran before, its acknowledgement was lost (host died, visibility ran out): never twice.
                logger.info("redelivered command already answered", extra={"op": command.op})
                self._delete(receipt)
                return
            reply = None
            if command.expired(self.clock()):
                unanswered = Reply.failure(command.command_id, COMMAND_EXPIRED, 504)
            else:
                try:
                    reply = self.handler(command)
                except Exception:
                    logger.exception("command failed", extra={"op": command.op, "token": command.token})
                    unanswered = Reply.failure(command.command_id, "internal error in the session host", 500)
            if reply is None:
                reply = unanswered
                if self.on_unanswered is not None:
                    try:
                        self.on_unanswered(command, reply)
                    except Exception:
                        logger.exception("reporting an unanswered command failed", extra={"op": command.op})
            self.replies.put(command, reply)
            self._delete(receipt)
        finally:
            with self._lock:
                self._in_flight.discard(command.command_id)

    def _delete(self, receipt: str) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        except Exception as exc:  # it reappears after the visibility timeout; the reply already exists
            logger.warning("could not acknowledge a command", extra={"error": str(exc)})

    def run(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        while not stopping.is_set():
            try:
                if not self.short_poll_interval:
                    self.poll_once()
                elif self.busy():
                    # Wait first: a receive right after one that brought work finds none (its session's
                    # group is held) and only competes with the running command's calls for the endpoint.
                    self._done.clear()
                    if self.busy():
                        self._done.wait(self.short_poll_interval)
                    self.poll_once(wait_seconds=0)
                else:
                    self.poll_once(wait_seconds=IDLE_WAIT_SECONDS)
            except Exception as exc:  # endpoint restarting, throttled: back off and go on
                logger.warning("command receive failed", extra={"error": str(exc)})
                stopping.wait(1.0)

    def refuse_waiting(self, error: str, max_batches: int = 5) -> int:
        """After stopping: answer commands still queued with an error at once, instead of a timeout."""
        refused = 0
        for _ in range(max_batches):
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=RECEIVE_BATCH, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                refused += self._refuse(message, error)
        return refused

    def _refuse(self, message: dict, error: str) -> int:
        """Answer a received command 503 without running it, and acknowledge it; 1 if it was a command."""
        refused = 0
        try:
            command = Command.model_validate_json(message["Body"])
            self.replies.put(command, Reply.failure(command.command_id, error, 503))
            refused = 1
        except ValidationError:
            pass
        self._delete(message["ReceiptHandle"])
        return refused
