"""The Lambda side of the command bus: place a session on a host, send it a command, wait for the reply.

- Placement: a session's owner is `SessionModel.owner_host`. An unowned session (or one whose owner's
  heartbeat is older than the lease plus the margin) is given to the live host with the most room, by
  a conditional write on `owner_host` that also raises the session's `epoch` (the fencing token,
  session_host/fencing.py), so two concurrent connects never place one session twice: the loser reads
  the winner's choice and uses it. Between the lease and the margin the answer is 503 (failing over).
- Commands go to the owner's FIFO queue (message group = token, so one session's commands run in
  order; deduplication id = command id).
- Host rows are cached per process for `Settings.host_cache_ttl` (HOST_CACHE_SECONDS, default 2 s,
  capped at lease - heartbeat): liveness is judged from the cached heartbeat and the current clock, so
  a live host is never taken for dead, and a dead host is seen dead at most when the uncached read
  would (its last heartbeat + the lease). A status read is then one GetItem (the session's).
- The reply is an item in the replies table keyed by the command id. The Lambda reads it with
  consistent reads from when the reply is due: per operation it keeps the last REPLY_WINDOW reply
  times (when the host says its reply became readable, `created_at` + `written_in`, minus the send
  time), sleeps until their 75th percentile before the first read (so three replies in four take
  one read: the send path's AWS calls), then reads every quarter of their 10th-90th percentile
  spread (at least 10 ms), backing off by 1.25x up to 500 ms, until the command's deadline; then it
  answers WaGo's error envelope with 504 `timed out waiting for the session host`. With no history
  yet (a new process, an operation not seen) reads start at 10 ms.
- Inside a route, only the operations the route declares (`Router.route(sends=...)`, shown in OpenAPI
  as `x-wago-operations`) are sent: another is a route bug (UndeclaredOperation, a logged 500), so
  the document cannot drift from what the route does.
"""

from __future__ import annotations

import collections
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import UpdateError

from chalicelib.core import aws, ops
from chalicelib.core.contract import HOST_TIMEOUT, NO_SESSION, Command, Reply
from chalicelib.core.errors import DomainError
from chalicelib.core.models import HostModel, ReplyModel, SessionModel
from chalicelib.core.models.base import condition_failed
from chalicelib.core.settings import Settings, get_settings
from chalicelib.routing import declared_sends

NO_HOST = "no session host available"
FAILING_OVER = "the session's host stopped answering; it is failing over to another host, retry in a few seconds"
PLACEMENT_ATTEMPTS = 4
FIRST_POLL_DELAY = 0.01
MAX_POLL_DELAY = 0.5
#: Reply times remembered per operation (they say when the next reply is due).
REPLY_WINDOW = 20
#: SQS's largest message (body and attributes; the commands have no attributes): 1 MiB since 2025.
SQS_MAX_MESSAGE_BYTES = 1_048_576
_GONE_QUEUE_CODES = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


class HostGone(Exception):
    """The host's command queue no longer exists (it shut down or was reaped)."""


class UndeclaredOperation(RuntimeError):
    """A route sent an operation its declaration does not name (`Router.route(sends=...)`): a route bug."""



class Bus:
    def __init__(
        self,
        settings: Settings | None = None,
        sqs: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings or get_settings()
        self.sqs = sqs or aws.client("sqs")
        self.clock = clock
        self.sleep = sleep
        self._hosts: dict[str, tuple[float, HostModel | None]] = {}  # host_id -> (read at, row or None)
        self._reply_seconds: dict[str, collections.deque[float]] = {}  # op -> its last reply times

    # -- hosts -----------------------------------------------------------------------------------

    def host(self, host_id: str | None, fresh: bool = False) -> HostModel | None:
        """The host's row, read at most `host_cache_ttl` ago (now, with `fresh`); None if it has none."""
        if not host_id:
            return None
        now = self.clock()
        cached = None if fresh else self._hosts.get(host_id)
        if cached is not None and now - cached[0] < self.settings.host_cache_ttl:
            return cached[1]
        try:
            row = HostModel.get(host_id, consistent_read=True)
        except HostModel.DoesNotExist:
            row = None
        if len(self._hosts) > 1024:  # hosts come and go: forget the old ones
            self._hosts.clear()
        self._hosts[host_id] = (now, row)
        return row

    def forget_hosts(self) -> None:
        """Drop the cached host rows (tests start a fresh AWS backend)."""
        self._hosts.clear()

    def is_live(self, host: HostModel | None) -> bool:
        return host is not None and host.is_live(self.clock(), self.settings.host_lease_seconds)

    def within_margin(self, host: HostModel) -> bool:
        """The host's lease has expired but not its margin: nobody may take its sessions yet."""
        return host.is_live(self.clock(), self.settings.host_lease_seconds + self.settings.lease_margin_seconds)

    def live_owner(self, session: SessionModel) -> HostModel | None:
        """The host holding this session, if its heartbeat is within the lease (draining included: it
        still drives its clients until it releases them)."""
        owner = self.host(session.owner_host)
        if not self.is_live(owner) and owner is not None:
            owner = self.host(session.owner_host, fresh=True)  # a late heartbeat: look again before "dead"
        return owner if self.is_live(owner) else None

    def candidates(self, exclude: Iterable[str] = ()) -> list[HostModel]:
        """Live hosts with room, least loaded first (ties in random order)."""
        skip = set(exclude)
        hosts = [
            h for h in HostModel.scan(consistent_read=True)
            if h.host_id not in skip and h.accepts_sessions(self.clock(), self.settings.host_lease_seconds)
            and h.command_queue_url
        ]
        random.shuffle(hosts)
        return sorted(hosts, key=lambda h: int(h.load or 0) / max(1, int(h.capacity or 1)))

    def running(self, driver: str, exclude: Iterable[str] = ()) -> HostModel:
        """Any live host running `driver` (the hosts table's `driver`), hosts taking new sessions first;
        DomainError 503 when there is none."""
        skip = set(exclude)
        hosts = [h for h in HostModel.scan(consistent_read=True)
                 if h.driver == driver and h.host_id not in skip and self.is_live(h) and h.command_queue_url]
        if not hosts:
            raise DomainError(503, f"no live session host runs the {driver} driver")
        random.shuffle(hosts)
        return sorted(hosts, key=lambda h: h.status != "up")[0]

    # -- placement -------------------------------------------------------------------------------

    def place(self, session: SessionModel, exclude: Iterable[str] = ()) -> HostModel:
        """The session's live owner, or a newly chosen one recorded by a conditional write."""
        exclude = set(exclude)
        for _ in range(PLACEMENT_ATTEMPTS):
            if session.owner_host and session.owner_host not in exclude:
                owner = self.host(session.owner_host)
                if owner is not None and self.is_live(owner):
                    return owner
                if owner is not None and self.within_margin(owner):
                    # Its lease has run out, but the margin has not: it may still be stopping its clients.
                    raise DomainError(503, FAILING_OVER)
            hosts = self.candidates(exclude)
            if not hosts:
                raise DomainError(503, NO_HOST)
            chosen = hosts[0]
            previous = session.owner_host
            # Take it only if nobody else did meanwhile: unowned, or still owned by the dead host we saw.
            condition = SessionModel.token.exists() & (
                SessionModel.owner_host.does_not_exist() if not previous else SessionModel.owner_host == previous
            )
            try:
                session.update(actions=[SessionModel.owner_host.set(chosen.host_id), SessionModel.epoch.add(1)],
                               condition=condition)
            except UpdateError as exc:
                if not condition_failed(exc):
                    raise
                try:
                    session.refresh(consistent_read=True)
                except SessionModel.DoesNotExist:
                    raise DomainError(401, "invalid token") from None
                continue
            self._count_placement(chosen)
            return chosen
        raise DomainError(503, "could not place the session on a session host; try again")

    def _count_placement(self, host: HostModel) -> None:
        """Raise the host's load at once, so a burst of connects spreads before the next heartbeat."""
        try:
            host.update(actions=[HostModel.load.add(1)], condition=HostModel.host_id.exists())
        except UpdateError:
            pass

    # -- commands --------------------------------------------------------------------------------

    def send(self, host: HostModel, command: Command) -> None:
        body = command.model_dump_json()
        size = len(body.encode("utf-8"))
        if size > SQS_MAX_MESSAGE_BYTES:
            # The request fields' own bounds keep a real command far below SQS's limit; this is the
            # backstop for a route that carries more: SQS would refuse it (InvalidParameterValue, a 500).
            raise DomainError(413, f"Payload too large: the command for the session host would be {size} bytes, "
                                   f"over SQS's limit of {SQS_MAX_MESSAGE_BYTES} bytes")
        try:
            self.sqs.send_message(
                QueueUrl=host.command_queue_url,
                MessageBody=body,
                MessageGroupId=command.token,
                MessageDeduplicationId=command.command_id,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _GONE_QUEUE_CODES:
                raise HostGone(host.host_id) from None
            raise

    def wait_reply(self, command: Command, sent_at: float | None = None) -> Reply:
        """Read the replies table (consistent reads) from when the reply is due until it is there or
        the deadline passes (504). `sent_at`: when the command was sent (this Bus's clock)."""
        history = sorted(self._reply_seconds.get(command.op) or ())
        delay = FIRST_POLL_DELAY
        if history and sent_at is not None:
            early, late = history[len(history) // 10], history[(len(history) * 9) // 10]
            delay = max(FIRST_POLL_DELAY, (late - early) / 4)
            due = sent_at + history[(len(history) * 3) // 4] - self.clock()
            if due > 0:
                self.sleep(min(due, max(0.0, command.deadline - self.clock())))
        while True:
            try:
                item = ReplyModel.get(command.command_id, consistent_read=True)
            except ReplyModel.DoesNotExist:
                pass
            else:
                if sent_at is not None and item.created_at:
                    self._learn(command.op, float(item.created_at) + float(item.written_in or 0) - sent_at)
                return Reply.model_validate_json(item.body)
            remaining = command.deadline - self.clock()
            if remaining <= 0:
                raise DomainError(504, HOST_TIMEOUT)
            self.sleep(min(delay, remaining))
            delay = min(delay * 1.25, MAX_POLL_DELAY)

    def _learn(self, op: str, seconds: float) -> None:
        """Remember one reply time of `op` (implausible values are skipped: the host's clock is another
        machine's, and a reply that waited for a person, such as a QR scan, says nothing about the next)."""
        if not 0 <= seconds <= MAX_POLL_DELAY * 4:
            return
        self._reply_seconds.setdefault(op, collections.deque(maxlen=REPLY_WINDOW)).append(seconds)

    def call(self, host: HostModel, token: str, op: ops.Operation[Any, Any], args: ops.Args | None = None,
             timeout: float | None = None) -> Reply:
        timeout = self.settings.command_timeout_seconds if timeout is None else timeout
        command = Command(token=token, op=op.name, args=_wire_args(op, args), deadline=self.clock() + timeout)
        sent_at = self.clock()
        self.send(host, command)
        return self.wait_reply(command, sent_at)

    def dispatch(self, session: SessionModel, op: ops.Operation[Any, Any], args: ops.Args | None = None) -> str:
        """Send `op` to the session's host without waiting (async mode); its reply is not stored.
        Returns the command id. `No session` when no live host holds the session."""
        host = self.live_owner(session)
        if host is None:
            raise DomainError(500, NO_SESSION)
        command = Command(token=session.token, op=op.name, args=_wire_args(op, args), reply_to="discard",
                          deadline=self.clock() + self.settings.async_command_ttl_seconds)
        try:
            self.send(host, command)
        except HostGone:
            raise DomainError(500, NO_SESSION) from None
        return command.command_id

    def command(self, session: SessionModel, op: ops.Operation[Any, Any], args: ops.Args | None = None, *,
                place: bool = False, timeout: float | None = None) -> Any:
        """Run `op` on the session's host and return the reply's data (checked against the operation's
        reply model, as WaGo's JSON keys); a failed reply raises its DomainError.

        With `place`, an unowned (or orphaned) session is placed first; without it, a session that no
        live host holds is WaGo's `No session`.
        """
        _check_declared(op)  # before placement: a route bug is found whatever the session's state
        tried: set[str] = set()
        for _ in range(2):
            host = self.place(session, exclude=tried) if place else self.live_owner(session)
            if host is None:
                raise DomainError(500, NO_SESSION)
            try:
                reply = self.call(host, session.token, op, args, timeout)
            except HostGone:
                if not place:
                    raise DomainError(500, NO_SESSION) from None
                tried.add(host.host_id)  # it shut down between its last heartbeat and now
                continue
            return _reply_data(op, reply)
        raise DomainError(503, NO_HOST)

    def run_anywhere(self, driver: str, key: str, op: ops.Operation[Any, Any], args: ops.Args | None = None) -> Any:
        """Run `op` on any live host running `driver` (no session placed; `key` is the Command's token,
        the FIFO message group) and return the reply's data as `command` does. 503 when none is live."""
        _check_declared(op)
        tried: set[str] = set()
        for _ in range(2):
            host = self.running(driver, exclude=tried)
            try:
                return _reply_data(op, self.call(host, key, op, args))
            except HostGone:
                tried.add(host.host_id)
        raise DomainError(503, NO_HOST)


def _reply_data(op: ops.Operation[Any, Any], reply: Reply) -> Any:
    """A reply's data checked against the operation's reply model; a failed reply raises its DomainError."""
    if not reply.ok:
        raise DomainError(reply.status, reply.error or "session host error")
    return op.reply_data(reply.data)


def _check_declared(op: ops.Operation[Any, Any]) -> None:
    """UndeclaredOperation when a route sends `op` without declaring it (routing.route_sends); nothing outside a
    route."""
    declared = declared_sends()
    if declared is not None and op.name not in declared:
        raise UndeclaredOperation(f"the route sends {op.name!r} but declares {sorted(declared)} (sends=...)")


def _wire_args(op: ops.Operation[Any, Any], args: ops.Args | None) -> dict[str, Any]:
    """The Command's `args`: the operation's own argument model as JSON, defaults left out (TypeError for another
    model)."""
    _check_declared(op)
    args = op.args() if args is None else args
    if not isinstance(args, op.args):
        raise TypeError(f"{op.name} takes {op.args.__name__}, not {type(args).__name__}")
    return args.model_dump(mode="json", exclude_defaults=True)


_bus: Bus | None = None


def get_bus() -> Bus:
    global _bus
    if _bus is None:
        _bus = Bus()
    return _bus


def forget_hosts() -> None:
    """Drop the process's cached host rows (tests start a fresh AWS backend)."""
    if _bus is not None:
        _bus.forget_hosts()
