from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.core.models.base import table_meta
from chalicelib.core.settings import get_settings

_settings = get_settings()


class HostModel(Model):
    """A live session host: where its commands go, how much room it has, when it last spoke."""

    Meta = table_meta(_settings.hosts_table_name)

    host_id = UnicodeAttribute(hash_key=True)
    command_queue_url = UnicodeAttribute(default="")
    capacity = NumberAttribute(default=0)
    load = NumberAttribute(default=0)
    heartbeat_at = NumberAttribute(default=0)  # epoch seconds
    started_at = NumberAttribute(default=0)
    status = UnicodeAttribute(default="up")  # up | draining
    driver = UnicodeAttribute(default="")  # WhatsApp driver the host runs (neonize | sim)

    def is_live(self, now: float, lease_seconds: float) -> bool:
        """Heartbeat within the lease: the host still holds its sessions, even while draining."""
        return float(self.heartbeat_at or 0) >= now - lease_seconds

    def accepts_sessions(self, now: float, lease_seconds: float) -> bool:
        """Live and not draining: new placements may go here."""
        return self.status == "up" and self.is_live(now, lease_seconds) and self.has_room()

    def has_room(self) -> bool:
        """Fewer sessions than its capacity (HOST_CAPACITY)."""
        return int(self.load or 0) < int(self.capacity or 0)
