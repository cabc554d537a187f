"""`python -m session_host`: run one session host until SIGTERM/SIGINT (see session_host/host.py)."""

from __future__ import annotations

import signal
import sys
import time

from chalicelib.core.observability import logger
from chalicelib.core.settings import ConfigurationError, get_settings
from session_host.drivers import DriverUnavailable


def main() -> int:
    try:
        settings = get_settings()
        settings.validate_runnable("host")
        from session_host.host import SessionHost

        host = SessionHost(settings)
    except (ConfigurationError, DriverUnavailable) as exc:
        print(f"session host: error: {exc}", file=sys.stderr, flush=True)
        return 2
    # A plain list, not threading.Event: Event.set() in a signal handler can deadlock against the main
    # thread's own Event.wait() (both take the Event's non-reentrant lock).
    stop_requested: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _: stop_requested.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _: stop_requested.append(signum))
    host.start()
    print(f"session host {host.host_id} up (driver {host.driver_name}, queue {host.queue_url})", flush=True)
    while not stop_requested and not host.stopping.is_set():  # stopping: fatal, declared dead by other hosts
        time.sleep(0.2)
    host.stop()
    if host.fatal:
        print(f"session host: error: {host.fatal}", file=sys.stderr, flush=True)
        return 3
    logger.info("session host exited", extra={"host_id": host.host_id})
    return 0


if __name__ == "__main__":
    sys.exit(main())
