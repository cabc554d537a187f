"""Host registration and heartbeat in the hosts table."""

from __future__ import annotations

import os
import socket
import time
import uuid

from chalicelib.core.models import HostModel
from chalicelib.core.settings import Settings


def new_host_id() -> str:
    return f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class HostRegistry:
    def __init__(self, settings: Settings, host_id: str | None = None, command_queue_url: str = "",
                 driver: str = ""):
        self.settings = settings
        self.host_id = host_id or new_host_id()
        self.command_queue_url = command_queue_url
        self.driver = driver

    def register(self) -> HostModel:
        now = time.time()
        host = HostModel(
            self.host_id,
            command_queue_url=self.command_queue_url,
            capacity=self.settings.host_capacity,
            load=0,
            heartbeat_at=now,
            started_at=now,
            status="up",
            driver=self.driver,
        )
        host.save(condition=HostModel.host_id.does_not_exist())
        return host

    def heartbeat(self, load: int) -> float:
        """Renew the lease. Returns the monotonic time taken *before* the request left: the write may land
        any time after it, so the local lease deadline counts from there (session_host/fencing.py). Fails
        if the row was reaped (ConditionalCheckFailedException)."""
        sent_at = time.monotonic()
        now = time.time()
        HostModel(self.host_id).update(
            actions=[HostModel.heartbeat_at.set(now), HostModel.load.set(load)],
            condition=HostModel.host_id.exists(),
        )
        return sent_at

    def set_status(self, status: str) -> None:
        HostModel(self.host_id).update(actions=[HostModel.status.set(status)], condition=HostModel.host_id.exists())

    def deregister(self) -> None:
        HostModel(self.host_id).delete()
