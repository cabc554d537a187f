"""`python -m session_host`: register, heartbeat, and on SIGTERM deregister and exit."""

from __future__ import annotations

import signal
import sys
import threading

from chalicelib.observability import logger
from chalicelib.settings import get_settings
from session_host.registry import HostRegistry


def main() -> int:
    settings = get_settings()
    settings.validate_runnable()
    registry = HostRegistry(settings)
    registry.register()
    logger.info("session host registered", extra={"host_id": registry.host_id})
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        while not stopping.wait(settings.host_heartbeat_seconds):
            try:
                registry.heartbeat(load=0)
            except Exception as exc:  # endpoint briefly unreachable: the next beat retries
                logger.warning("heartbeat failed", extra={"error": str(exc)})
    finally:
        registry.deregister()
        logger.info("session host stopped", extra={"host_id": registry.host_id})
    return 0


if __name__ == "__main__":
    sys.exit(main())
