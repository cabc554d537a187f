"""Fencing: whether this host may still drive a session, decided locally and checked by DynamoDB.

Two mechanisms, both needed (README, "Session hosts", gives the timing argument):

- **Lease deadline (local, monotonic).** A renewal sent at monotonic time `t` (before the request
  leaves) extends the deadline to `t + lease - margin`. Past the deadline the host drives nothing: it
  starts no driver operation, writes nothing, and its watchdog stops every client. A heartbeat that
  hangs simply never extends the deadline, so it counts as failed without any timeout of its own.
  A renewal that starts after the deadline has passed opens a new *term*: what the host held in an
  earlier term stays void until it is re-checked against the table (a paused or stalled host must not
  resume its old clients just because its next heartbeat succeeded).
- **Epoch (fencing token, in DynamoDB).** `SessionModel.epoch` grows with every placement (the API's
  bus) and adoption (a host). The host remembers the epoch under which it holds each session; every
  write it makes about the session (live state, replies, event sequence numbers, send claims) is
  conditional on `owner_host == this host AND epoch == held epoch`. A host that lost the session
  while paused cannot write anything once another host has raised the epoch.

Errors: `Fenced` (the lease deadline passed, or the session is held under an old term/epoch).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.core import redact
from chalicelib.core.models import SessionModel

LEASE_LOST = "the session host lost its lease on this session; retry"


class Fenced(Exception):
    """This host may not drive the session now (lease deadline passed, or ownership moved)."""


@dataclass(frozen=True)
class Holding:
    epoch: int
    term: int


def epoch_is(epoch: int) -> Any:
    """pynamodb condition: the row's epoch equals `epoch` (rows from before epochs count as 0)."""
    if epoch == 0:
        return SessionModel.epoch.does_not_exist() | (SessionModel.epoch == 0)
    return SessionModel.epoch == epoch


class Lease:
    """The host's lease as this host sees it: a monotonic deadline with a margin, and a term counter."""

    def __init__(self, lease_seconds: float, margin_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.lease_seconds = lease_seconds
        self.margin_seconds = margin_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self.deadline = 0.0
        self.term = 0

    def renewed(self, sent_at: float) -> None:
        """A renewal sent at monotonic `sent_at` succeeded. A renewal that began after the deadline opens a
        new term."""
        with self._lock:
            if sent_at >= self.deadline:
                self.term += 1
            self.deadline = max(self.deadline, sent_at + self.lease_seconds - self.margin_seconds)

    def valid(self) -> bool:
        return self.clock() < self.deadline

    def remaining(self) -> float:
        return self.deadline - self.clock()


class Holdings:
    """Which sessions this host holds, under which epoch and lease term."""

    def __init__(self, host_id: str, lease: Lease):
        self.host_id = host_id
        self.lease = lease
        self._lock = threading.Lock()
        self._held: dict[str, Holding] = {}

    def hold(self, token: str, epoch: int) -> None:
        redact.register(token)  # from now on the token is scrubbed from any free text this host logs
        with self._lock:
            self._held[token] = Holding(int(epoch), self.lease.term)

    def drop(self, token: str) -> None:
        with self._lock:
            self._held.pop(token, None)

    def clear(self) -> list[str]:
        with self._lock:
            tokens = list(self._held)
            self._held.clear()
        return tokens

    def tokens(self) -> dict[str, int]:
        with self._lock:
            return {token: h.epoch for token, h in self._held.items()}

    def stale(self) -> list[str]:
        """Sessions held in an earlier lease term: to be stopped and re-checked."""
        with self._lock:
            return [token for token, h in self._held.items() if h.term != self.lease.term]

    def epoch(self, token: str) -> int | None:
        """The epoch this host holds `token` under, if it may drive it right now (lease valid, current term)."""
        with self._lock:
            holding = self._held.get(token)
        if holding is None or holding.term != self.lease.term or not self.lease.valid():
            return None
        return holding.epoch

    def check(self, token: str) -> int:
        """The held epoch, or Fenced. Called right before every driver operation and every write."""
        epoch = self.epoch(token)
        if epoch is None:
            raise Fenced(token)
        return epoch

    def held(self, token: str) -> bool:
        with self._lock:
            return token in self._held

    def condition(self, token: str) -> Any:
        """pynamodb condition for a write about `token`: still ours, under the epoch we hold."""
        return (SessionModel.owner_host == self.host_id) & epoch_is(self.check(token))


class StandingLease(Lease):
    """A lease that never lapses (term 1): session handling used without a SessionHost (unit tests).
    Epoch conditions still apply."""

    def __init__(self) -> None:
        super().__init__(lease_seconds=0.0, margin_seconds=0.0)
        self.term = 1

    def valid(self) -> bool:
        return True
