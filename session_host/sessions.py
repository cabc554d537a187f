"""Everything that runs sessions on one host, assembled in one direction:

    Holdings (fencing), LiveState, EventSink, Fences  ->  HostCallbacks  ->  Driver  ->  SessionLifecycle
        ->  operation sets (SessionOps, MessagingOps, GroupOps, CallOps, SimOps)  ->  Dispatcher

Nothing built earlier holds anything built later: the driver reports through callbacks that only
write live state, publish events and queue fences; the lifecycle (holding the driver) stops fenced
clients; the dispatcher runs each Command's registered handler and turns its outcome into a Reply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.core.media import MediaStore
from session_host.callbacks import Fences, HostCallbacks
from session_host.calls.operations import CallOps
from session_host.dispatch import Dispatcher
from session_host.drivers.base import Driver, DriverCallbacks
from session_host.fencing import Holdings, StandingLease
from session_host.group_ops import GroupOps
from session_host.lifecycle import SessionLifecycle
from session_host.live_state import LiveState
from session_host.operations import MessagingOps, SessionOps
from session_host.publishing import EventSink
from session_host.sim.operations import SimOps

DriverFactory = Callable[[DriverCallbacks], Driver]


class HostSessions:
    def __init__(self, host_id: str, settings: Any, sqs: Any, events_queue_url: str, driver_factory: DriverFactory,
                 holdings: Holdings | None = None):
        self.host_id = host_id
        # The host's lease and held epochs (session_host/fencing.py); without a host, a lease that never lapses.
        self.holdings = holdings or Holdings(host_id, StandingLease())
        self.live_state = LiveState(host_id, self.holdings)
        self.sink = EventSink(settings, sqs, events_queue_url, self.holdings)
        self.fences = Fences()
        self.callbacks = HostCallbacks(self.live_state, self.sink, self.fences, self.holdings)
        self.driver = driver_factory(self.callbacks)
        self.lifecycle = SessionLifecycle(host_id, settings, self.driver, self.live_state, self.fences, self.holdings)
        media = MediaStore(settings)
        self.calls = CallOps(settings, host_id, self.lifecycle, self.driver, self.sink)
        self.dispatcher = Dispatcher(
            self.lifecycle, self.sink,
            SessionOps(self.lifecycle, self.driver),
            MessagingOps(self.lifecycle, self.driver, media, settings),
            GroupOps(self.lifecycle, self.driver, media),
            self.calls,
            SimOps(self.driver),
        )
        self.handle = self.dispatcher.handle

    def close(self) -> None:
        """Stop call media and the fencer (the driver is the host's to stop)."""
        self.calls.close()
        self.lifecycle.close()
