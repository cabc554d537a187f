"""`python -m session_host`: run one session host until SIGTERM/SIGINT (see session_host/host.py)."""

from __future__ import annotations

import signal
import sys
import threading

from chalicelib.observability import logger
from chalicelib.settings import ConfigurationError, get_settings
from session_host.drivers import DriverUnavailable


def main() -> int:
    try:
        settings = get_settings()
        settings.validate_runnable()
        from session_host.host import SessionHost

        host = SessionHost(settings)
    except (ConfigurationError, DriverUnavailable) as exc:
        print(f"session host: error: {exc}", file=sys.stderr, flush=True)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    host.start()
    print(f"session host {host.host_id} up (driver {host.driver_name}, queue {host.queue_url})", flush=True)
    while not stop.wait(0.5):
        if host.stopping.is_set():  # fatal: declared dead by other hosts
            break
    host.stop()
    if host.fatal:
        print(f"session host: error: {host.fatal}", file=sys.stderr, flush=True)
        return 3
    logger.info("session host exited", extra={"host_id": host.host_id})
    return 0


if __name__ == "__main__":
    sys.exit(main())
