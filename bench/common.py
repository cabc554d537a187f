"""Helpers every benchmark uses (run as `python bench/<name>.py`: this folder is on sys.path)."""

from __future__ import annotations

import socket
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll until `predicate` returns something truthy (returned); the benchmark stops on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"bench: timed out waiting for {what}")
