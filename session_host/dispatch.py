"""The host's dispatch: a Command's operation looked up in the registry (`chalicelib/core/ops.py`), its
args validated against the operation's model, the bound handler run, and the outcome turned into a
Reply in this one place (`DomainError` -> its status and WaGo text; a lost ownership -> 409 and the
local client fenced; a lapsed lease or a session held under an old lease term -> 503, nothing run;
arguments that do not fit the model -> 400; any other exception -> a logged 500). Every command passes
`SessionLifecycle.may_run` first and is logged as `command started` (op, token fingerprint, epoch) only
if it does. Every outcome of an async send (reply_to "discard" with an `id`) is reported (EventSink).

Handlers are methods marked `@handles(ops.X)` on the host's operation objects; `Dispatcher` collects
them and refuses to start if an operation has two handlers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from chalicelib.core import ops
from chalicelib.core.contract import Command, Reply
from chalicelib.core.errors import DomainError
from chalicelib.core.observability import logger
from session_host.fencing import LEASE_LOST, Fenced
from session_host.lifecycle import SessionLifecycle
from session_host.live_state import OwnershipLost
from session_host.publishing import EventSink

SESSION_MOVED = "the session is held by another session host"
INTERNAL_ERROR = "internal error in the session host"

F = TypeVar("F", bound=Callable[..., Any])


def handles(operation: ops.Operation[Any, Any]) -> Callable[[F], F]:
    """Mark a method `(self, token: str, args: <operation's args model>) -> reply` as the operation's handler."""

    def mark(method: F) -> F:
        method.__wago_operation__ = operation  # type: ignore[attr-defined]
        return method

    return mark


Handler = Callable[[str, Any], Any]


class Dispatcher:
    def __init__(self, lifecycle: SessionLifecycle, sink: EventSink, *operation_sets: object):
        self.lifecycle = lifecycle
        self.sink = sink
        self.handlers: dict[str, tuple[ops.Operation[Any, Any], Handler]] = {}
        for operation_set in operation_sets:
            for name in dir(type(operation_set)):
                operation = getattr(getattr(type(operation_set), name), "__wago_operation__", None)
                if operation is None:
                    continue
                if operation.name in self.handlers:
                    raise ValueError(f"operation {operation.name!r} has two handlers")
                self.handlers[operation.name] = (operation, getattr(operation_set, name))

    def missing(self) -> set[str]:
        """Declared operations with no handler on this host."""
        return set(ops.OPERATIONS) - set(self.handlers)

    def handle(self, command: Command) -> Reply:
        bound = self.handlers.get(command.op)
        if bound is None:
            return Reply.failure(command.command_id, f"unknown command {command.op!r}", 400)
        operation, handler = bound
        try:
            args = operation.parse_args(command.args)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error.get("loc", ())) or "args"
            reply = Reply.failure(command.command_id, f"invalid {where} for {command.op}: {error.get('msg')}", 400)
        else:
            try:  # a reply that does not fit its model is a host bug: a logged 500
                epoch = self.lifecycle.may_run(command)
                logger.info("command started", extra={"op": command.op, "token": command.token, "epoch": epoch,
                                                      "host_id": self.lifecycle.host_id, "ts": time.time()})
                reply = Reply.success(command.command_id, operation.reply_data(handler(command.token, args)))
            except DomainError as exc:
                reply = Reply.failure(command.command_id, exc.message, exc.status)
            except OwnershipLost:
                self.lifecycle.fence(command.token)
                reply = Reply.failure(command.command_id, SESSION_MOVED, 409)
            except Fenced:
                logger.warning("command refused: lease or ownership lost",
                               extra={"op": command.op, "token": command.token, "host_id": self.lifecycle.host_id,
                                      "ts": time.time()})
                reply = Reply.failure(command.command_id, LEASE_LOST, 503)
            except Exception:  # a driver/converter bug (or a reply off its model): still a reply, and an
                # async send is reported failed instead of staying `queued` for good
                logger.exception("command failed", extra={"op": command.op})
                reply = Reply.failure(command.command_id, INTERNAL_ERROR, 500)
        self.sink.report_async_send(command, reply)
        return reply
