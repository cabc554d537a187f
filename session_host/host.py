"""One session host: its command queue, registration, heartbeat (lease), failover adoption, shutdown.

Lifecycle:
- start: create the FIFO command queue `<prefix>-host-<host_id>.fifo`, register the host row (queue
  URL, capacity, driver), start the command loop and the heartbeat loop.
- heartbeat loop, every `host_heartbeat_seconds`: renew the lease (heartbeat_at, load); adopt
  orphaned sessions (auto_connect set, owner missing or with a heartbeat older than the lease) by a
  conditional write on owner_host, then restore them through the driver (a linked device needs no
  QR); remove rows and queues of hosts dead for ten leases.
- fencing: when the lease cannot be renewed for `lease - heartbeat` seconds, other hosts may take the
  sessions over, so every local client is stopped first. A host whose row was removed exits.
- stop (SIGTERM): mark the row draining (no new placements), stop receiving, finish in-flight
  commands, answer still-queued ones with 503, release every session (owner cleared, auto_connect
  kept so another host restores it), delete the queue and the row.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.core import aws
from chalicelib.core.models import HostModel, SessionModel
from chalicelib.core.models.base import condition_failed
from chalicelib.core.observability import logger
from session_host.commands import CommandLoop, ReplyStore
from session_host.drivers import load_driver
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
        # The driver first: a host that cannot drive WhatsApp fails before touching AWS.
        self.sessions = HostSessions(self.host_id, settings, self.sqs, events_queue_url="",
                                     driver_factory=lambda callbacks: load_driver(self.driver_name, callbacks, settings))
        self.driver = self.sessions.driver
        self.sessions.sink.publisher.queue_url  # resolve the events queue now: a host without it fails at start
        self.stopping = threading.Event()
        self.fenced = False
        self.fatal: str | None = None
        self.loop: CommandLoop | None = None
        self.queue_url = ""
        self._threads: list[threading.Thread] = []
        self._last_beat = 0.0

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
        self.registry.register()
        self._last_beat = time.time()
        self.loop = CommandLoop(self.sqs, self.queue_url, self.sessions.handle,
                                ReplyStore(self.host_id, self.settings.reply_ttl_seconds), self.settings.host_workers,
                                short_poll_interval=self.settings.command_poll_interval)
        for name, target in (("commands", self.loop.run), ("heartbeat", self._heartbeat_loop)):
            thread = threading.Thread(target=target, args=(self.stopping,) if name == "commands" else (),
                                      name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("session host started", extra={"host_id": self.host_id, "driver": self.driver_name,
                                                   "queue": self.queue_url})

    # -- lease -------------------------------------------------------------------------------------

    def beat(self) -> None:
        """Renew the lease once; fence when it has been lapsing too long."""
        try:
            self._last_beat = self.registry.heartbeat(self.sessions.lifecycle.load())
            self.fenced = False
        except UpdateError as exc:
            if condition_failed(exc):
                self.fence("host row removed")
                raise HostRemoved(self.host_id) from None
            self._lapsing(exc)
        except Exception as exc:
            self._lapsing(exc)

    def _lapsing(self, exc: Exception) -> None:
        silent = time.time() - self._last_beat
        logger.warning("heartbeat failed", extra={"error": str(exc), "silent_seconds": round(silent, 1)})
        if silent > self.settings.host_lease_seconds - self.settings.host_heartbeat_seconds:
            self.fence(f"lease not renewed for {silent:.0f} s")

    def fence(self, why: str) -> None:
        """Stop every local client without touching shared state: another host may own them already."""
        if self.driver.tokens():
            logger.error("fencing: stopping every local client", extra={"why": why, "host_id": self.host_id})
        self.fenced = True
        self.driver.stop_all()

    def _heartbeat_loop(self) -> None:
        while not self.stopping.wait(self.settings.host_heartbeat_seconds):
            try:
                self.beat()
            except HostRemoved:
                self.fatal = "this host's row was removed (declared dead); exiting"
                self.stopping.set()
                return
            if not self.fenced:
                try:
                    self.adopt_orphans()
                except Exception as exc:
                    logger.warning("adoption pass failed", extra={"error": str(exc)})

    # -- failover ----------------------------------------------------------------------------------

    def adopt_orphans(self) -> list[str]:
        """Take over sessions that should be connected but have no live owner; restore them."""
        if self.stopping.is_set() or self.loop is None:
            return []
        room = self.settings.host_capacity - self.sessions.lifecycle.load()
        now = time.time()
        lease = self.settings.host_lease_seconds
        hosts = {h.host_id: h for h in HostModel.scan(consistent_read=True)}
        adopted: list[str] = []
        if room > 0:
            for session in SessionModel.scan(filter_condition=SessionModel.auto_connect == True,  # noqa: E712
                                             consistent_read=True):
                owner = session.owner_host
                if owner == self.host_id or (owner in hosts and hosts[owner].is_live(now, lease)):
                    continue
                condition = (SessionModel.auto_connect == True) & (  # noqa: E712
                    SessionModel.owner_host.does_not_exist() if not owner else SessionModel.owner_host == owner
                )
                try:
                    session.update(actions=[SessionModel.owner_host.set(self.host_id)], condition=condition)
                except UpdateError:
                    continue  # someone else took it, or it was disconnected meanwhile
                logger.info("adopting session", extra={"token": session.token, "previous_owner": owner})
                self.loop.lanes.submit(session.token, lambda t=session.token: self.sessions.lifecycle.restore(t))
                adopted.append(session.token)
                room -= 1
                if room <= 0:
                    break
        self._reap_dead_hosts(hosts.values(), now)
        return adopted

    def _reap_dead_hosts(self, hosts, now: float) -> None:
        for host in hosts:
            if host.host_id == self.host_id or float(host.heartbeat_at or 0) >= now - DEAD_HOST_LEASES * self.settings.host_lease_seconds:
                continue
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
            thread.join(timeout=5)
        if self.loop is not None:
            if not self.loop.lanes.wait_idle(grace_seconds):
                logger.warning("in-flight commands did not finish in time", extra={"pending": self.loop.lanes.pending()})
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
