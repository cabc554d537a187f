"""One session host: its command queue, registration, lease and fencing, failover adoption, shutdown.

Lifecycle:
- start: create the FIFO command queue `<prefix>-host-<host_id>.fifo`, register the host row (queue
  URL, capacity, driver), start the command loop, the heartbeat loop and the lease watchdog.
- heartbeat loop: one adoption pass at start (WaGo's connectstartup: sessions come back without
  waiting for a beat), then every `host_heartbeat_seconds`: renew the lease (heartbeat_at, load), which
  moves the local monotonic deadline (session_host/fencing.py); then look for sessions that should be
  connected (auto_connect) through the sessions table's owner index, never a scan of every session:
  adopt those of owner RELEASED or of a host whose heartbeat is older than `lease + margin` (epoch
  raised by a conditional write), and take back, under a raised epoch, those still recorded as ours
  that this host no longer holds (after a fence); restore both through the driver (a linked device
  needs no QR). Remove rows and queues of hosts dead for ten leases once none of their sessions awaits
  adoption.
- watchdog, several times per heartbeat: once the local lease deadline has passed (pause, stall, a
  heartbeat that hangs), or after a renewal that opened a new lease term, stop every client held under
  the old term before anything else runs (fencing). It also rewrites `HOST_REPORT_FILE`, if set.
- stop (SIGTERM): mark the row draining (no new placements), stop receiving, finish in-flight
  commands, answer still-queued ones with 503, release every session (owner RELEASED, auto_connect
  kept so another host restores it), delete the queue and the row.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.core import aws
from chalicelib.core.errors import DomainError
from chalicelib.core.models import HostModel, SessionModel
from chalicelib.core.models.base import condition_failed
from chalicelib.core.models.sessions import RELEASED
from chalicelib.core.observability import logger
from session_host.commands import CommandLoop, ReplyStore
from session_host.drivers import load_driver
from session_host.fencing import Holdings, Lease, epoch_is
from session_host.registry import HostRegistry
from session_host.sessions import HostSessions

COMMAND_VISIBILITY_SECONDS = 60
COMMAND_RETENTION_SECONDS = 3600
DEAD_HOST_LEASES = 10
SHUTTING_DOWN = "session host is shutting down"


class HostRemoved(RuntimeError):
    """This host's row is gone: it was declared dead. Its sessions belong to others now."""


class SessionHost:
    def __init__(self, settings, driver_name: str | None = None, host_id: str | None = None, sqs: Any = None):
        self.settings = settings
        self.driver_name = driver_name or settings.whatsapp_driver
        self.sqs = sqs or aws.client("sqs")
        self.registry = HostRegistry(settings, host_id, driver=self.driver_name)
        self.host_id = self.registry.host_id
        self.lease = Lease(settings.host_lease_seconds, settings.lease_margin_seconds)
        self.holdings = Holdings(self.host_id, self.lease)
        # The driver first: a host that cannot drive WhatsApp fails before touching AWS.
        self.sessions = HostSessions(self.host_id, settings, self.sqs, events_queue_url="",
                                     driver_factory=lambda callbacks: load_driver(self.driver_name, callbacks,
                                                                                  settings),
                                     holdings=self.holdings)
        self.driver = self.sessions.driver
        _ = self.sessions.sink.publisher.queue_url  # resolve the events queue now: a host without it fails at start
        self.stopping = threading.Event()
        self.fenced = False
        self.fences = 0
        self.fatal: str | None = None
        self.loop: CommandLoop | None = None
        self.queue_url = ""
        self._threads: list[threading.Thread] = []
        self._fence_lock = threading.Lock()
        self.report_file = settings.host_report_file

    # -- start -------------------------------------------------------------------------------------

    def start(self) -> None:
        self.queue_url = self.sqs.create_queue(
            QueueName=self.settings.host_queue_name(self.host_id),
            Attributes={
                "FifoQueue": "true",
                "ContentBasedDeduplication": "false",
                "VisibilityTimeout": str(COMMAND_VISIBILITY_SECONDS),
                "MessageRetentionPeriod": str(COMMAND_RETENTION_SECONDS),
            },
        )["QueueUrl"]
        self.registry.command_queue_url = self.queue_url
        sent_at = time.monotonic()
        self.registry.register()
        self.lease.renewed(sent_at)
        self.loop = CommandLoop(self.sqs, self.queue_url, self.sessions.handle,
                                ReplyStore(self.host_id, self.settings.reply_ttl_seconds, self.holdings),
                                self.settings.host_workers, short_poll_interval=self.settings.command_poll_interval,
                                on_unanswered=self.sessions.sink.report_async_send)
        for name, target in (("commands", self.loop.run), ("heartbeat", self._heartbeat_loop),
                             ("watchdog", self._watchdog_loop)):
            thread = threading.Thread(target=target, args=(self.stopping,) if name == "commands" else (),
                                      name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("session host started", extra={"host_id": self.host_id, "driver": self.driver_name,
                                                   "queue": self.queue_url,
                                                   "lease_seconds": self.settings.host_lease_seconds,
                                                   "margin_seconds": self.settings.lease_margin_seconds})

    # -- lease -------------------------------------------------------------------------------------

    def beat(self) -> None:
        """Renew the lease once. A failure (or a hang: the deadline just does not move) leaves the
        watchdog to fence; a removed row fences at once and raises HostRemoved."""
        try:
            sent_at = self.registry.heartbeat(self.sessions.lifecycle.load())
        except UpdateError as exc:
            if condition_failed(exc):
                self.fence("host row removed")
                raise HostRemoved(self.host_id) from None
            self._lapsing(exc)
            return
        except Exception as exc:
            self._lapsing(exc)
            return
        self.lease.renewed(sent_at)
        if self.enforce():  # a renewal that opened a new term voids what was held before it
            self.fenced = False

    def _lapsing(self, exc: Exception) -> None:
        logger.warning("heartbeat failed", extra={"error": str(exc),
                                                  "lease_left_seconds": round(self.lease.remaining(), 2)})
        self.enforce()

    def enforce(self) -> bool:
        """Fence if the lease deadline passed, or if clients are held under an earlier lease term.
        Returns True when this host may drive its sessions."""
        if not self.lease.valid():
            if self.driver.tokens() or self.holdings.tokens() or not self.fenced:
                self.fence(f"lease deadline passed {-self.lease.remaining():.1f} s ago")
            return False
        stale = self.holdings.stale()
        if stale:
            self.fence_stale(stale)
        return True

    def fence_stale(self, tokens: list[str]) -> None:
        """The lease was renewed after it had lapsed: stop the clients held under the old term (sessions
        taken back in the new term keep theirs); the adoption pass takes back what is still ours."""
        with self._fence_lock:
            stale = [t for t in self.holdings.stale() if t in tokens]
            logger.error("fencing: stopping clients held under a lapsed lease",
                         extra={"host_id": self.host_id, "clients": len(stale), "ts": time.time()})
            self.fences += 1
            for token in stale:
                self.holdings.drop(token)
                try:
                    self.driver.disconnect(token)
                except DomainError:
                    pass

    def fence(self, why: str) -> None:
        """Stop every local client without touching shared state: another host may own them already.
        What is still ours is taken back (under a raised epoch) by the next adoption pass."""
        with self._fence_lock:
            held = self.holdings.clear()
            tokens = self.driver.tokens()
            if tokens or held or not self.fenced:
                logger.error("fencing: stopping every local client",
                             extra={"why": why, "host_id": self.host_id, "clients": len(tokens),
                                    "held": len(held), "ts": time.time()})
            self.fenced = True
            self.fences += 1
            self.driver.stop_all()

    def _heartbeat_loop(self) -> None:
        if self.lease.valid():  # at start: sessions marked connected come back now, not a beat later
            try:
                self.adopt_orphans()
            except Exception as exc:
                logger.warning("adoption pass failed", extra={"error": str(exc)})
        while not self.stopping.wait(self.settings.host_heartbeat_seconds):
            try:
                self.beat()
            except HostRemoved:
                self.fatal = "this host's row was removed (declared dead); exiting"
                self.stopping.set()
                return
            if self.lease.valid():
                try:
                    self.adopt_orphans()
                except Exception as exc:
                    logger.warning("adoption pass failed", extra={"error": str(exc)})

    def _watchdog_loop(self) -> None:
        interval = min(0.25, self.settings.host_heartbeat_seconds / 4)
        while not self.stopping.wait(interval):
            try:
                self.enforce()
                self.write_report()
            except Exception as exc:  # noqa: BLE001 - the watchdog must outlive any one failure
                logger.warning("lease watchdog failed", extra={"error": str(exc)})

    def report(self) -> dict:
        """What this host itself holds right now: its clients, held epochs, lease state."""
        return {"host_id": self.host_id, "pid": os.getpid(), "ts": time.time(), "clients": sorted(self.driver.tokens()),
                "held": self.holdings.tokens(), "lease_valid": self.lease.valid(), "term": self.lease.term,
                "fences": self.fences}

    def write_report(self) -> None:
        if not self.report_file:
            return
        tmp = f"{self.report_file}.tmp"
        with open(tmp, "w") as out:
            json.dump(self.report(), out)
        os.replace(tmp, self.report_file)

    # -- failover ----------------------------------------------------------------------------------

    def adopt_orphans(self) -> list[str]:
        """Take over sessions that should be connected but have no live owner (owner RELEASED, or a host
        whose heartbeat is older than the lease plus the margin), and take back our own that we no longer
        hold; restore both.

        Orphans are found from owners, not by scanning sessions: the hosts table (one row per host) says
        which hosts are dead, and the sessions table's owner index lists the sessions of RELEASED, of each
        dead host and of this one. Idle cost: the hosts scan and two index queries, whatever the number of
        sessions other hosts hold."""
        if self.stopping.is_set() or self.loop is None:
            return []
        room = self.settings.host_capacity - self.sessions.lifecycle.load()
        now = time.time()
        lease = self.settings.host_lease_seconds
        patience = lease + self.settings.lease_margin_seconds
        hosts = {h.host_id: h for h in HostModel.scan(consistent_read=True)}
        dead = sorted(h.host_id for h in hosts.values() if h.host_id != self.host_id and not h.is_live(now, patience))
        adopted: list[str] = []
        for owner in [RELEASED, *dead, self.host_id]:
            if room <= 0:
                break
            for entry in SessionModel.by_owner.query(owner, filter_condition=SessionModel.auto_connect == True,  # noqa: E712 - a pynamodb condition, not a truth test
                                                     limit=None if owner == self.host_id else room):
                if owner == self.host_id and self.holdings.held(entry.token):
                    continue
                if not self.lease.valid():
                    room = 0
                    break
                seen = int(entry.epoch or 0)
                condition = (SessionModel.auto_connect == True) & epoch_is(seen) & (SessionModel.owner_host == owner)  # noqa: E712 - a pynamodb condition, not a truth test
                session = SessionModel(entry.token)
                try:
                    session.update(actions=[SessionModel.owner_host.set(self.host_id), SessionModel.epoch.add(1)],
                                   condition=condition)
                except UpdateError:
                    continue  # someone else took it, or it was disconnected meanwhile
                self.holdings.hold(entry.token, int(session.epoch))
                logger.info("adopting session" if owner != self.host_id else "taking back session",
                            extra={"token": entry.token, "previous_owner": owner, "epoch": int(session.epoch)})
                self.loop.lanes.submit(entry.token, functools.partial(self.sessions.lifecycle.restore, entry.token))
                adopted.append(entry.token)
                room -= 1
                if room <= 0:
                    break
        self._reap_dead_hosts(hosts.values(), now)
        return adopted

    def _reap_dead_hosts(self, hosts, now: float) -> None:
        """Remove hosts dead for DEAD_HOST_LEASES leases, once none of their sessions awaits adoption
        (their row is how those sessions are found)."""
        for host in hosts:
            if (host.host_id == self.host_id
                    or float(host.heartbeat_at or 0) >= now - DEAD_HOST_LEASES * self.settings.host_lease_seconds):
                continue
            if next(iter(SessionModel.by_owner.query(host.host_id, filter_condition=SessionModel.auto_connect == True,  # noqa: E712 - a pynamodb condition, not a truth test
                                                      limit=1)), None) is not None:
                continue  # sessions still wait for a host with room: keep the row that leads to them
            try:
                host.delete(condition=HostModel.heartbeat_at == host.heartbeat_at)
            except Exception:
                continue
            if host.command_queue_url:
                try:
                    self.sqs.delete_queue(QueueUrl=host.command_queue_url)
                except Exception:
                    pass
            logger.info("removed dead host", extra={"dead_host": host.host_id})

    # -- stop --------------------------------------------------------------------------------------

    def stop(self, grace_seconds: float = 25.0) -> None:
        try:
            self.registry.set_status("draining")
        except Exception as exc:
            logger.warning("could not mark the host draining", extra={"error": str(exc)})
        self.stopping.set()
        for thread in self._threads:
            # The command thread may sit in an idle long poll; whatever it receives after this is refused.
            thread.join(timeout=0.5 if thread.name == "commands" else 5)
        if self.loop is not None:
            if not self.loop.lanes.wait_idle(grace_seconds):
                logger.warning("in-flight commands did not finish in time",
                               extra={"pending": self.loop.lanes.pending()})
            try:
                self.loop.refuse_waiting(SHUTTING_DOWN)
            except Exception as exc:
                logger.warning("could not refuse queued commands", extra={"error": str(exc)})
            self.loop.lanes.shutdown()
        self.sessions.close()
        released = 0 if self.fatal else self.sessions.lifecycle.release_all()
        self.driver.stop_all()
        self.driver.close()
        if self.queue_url:
            try:
                self.sqs.delete_queue(QueueUrl=self.queue_url)
            except Exception as exc:
                logger.warning("could not delete the command queue", extra={"error": str(exc)})
        try:
            self.registry.deregister()
        except Exception as exc:
            logger.warning("could not remove the host row", extra={"error": str(exc)})
        logger.info("session host stopped", extra={"host_id": self.host_id, "released": released})
