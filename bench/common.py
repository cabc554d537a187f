"""Helpers every benchmark uses (run as `python bench/<name>.py`: this folder is on sys.path)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree(pid: int) -> list[int]:
    """pid and all its descendants (Linux /proc: a host and its neonize workers, a launcher and its children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


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


class LocalGateway:
    """`python -m local_gateway` for a benchmark: the given ports, its own temporary state directory
    (never the user's .data/local-state), output to BENCH_LOG or a temporary file. Ready when the
    launcher prints its "WaGo gateway ready" line (its session host registered), bounded by `timeout`.
    Use as a context manager; stopping sends SIGTERM to the launcher's process group."""

    READY = "WaGo gateway ready"

    def __init__(self, api_port: int, aws_port: int, env: dict[str, str], timeout: float = 90.0):
        self.state_dir = tempfile.mkdtemp(prefix="wago-bench-state-")
        log = os.environ.get("BENCH_LOG")
        self.output = open(log, "w+") if log else tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        env = {**env, "LOCAL_STATE_DIR": self.state_dir}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_gateway", "--api-port", str(api_port), "--aws-port", str(aws_port)],
            cwd=Path(__file__).resolve().parent.parent, env=env, stdout=self.output, stderr=subprocess.STDOUT,
            text=True, start_new_session=True)
        self.timeout = timeout

    def __enter__(self) -> LocalGateway:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self.output.seek(0)
            if self.READY in self.output.read():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        self.__exit__()
        raise SystemExit("bench: the local gateway did not get ready")

    def __exit__(self, *exc) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.output.close()
        shutil.rmtree(self.state_dir, ignore_errors=True)


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """While the block runs, file descriptor 1 goes to /dev/null: what the code under measurement writes
    there (Powertools' JSON log lines and EMF metrics, as Lambda ships them to CloudWatch) is still
    written, so its cost stays in the figure, but it does not bury the benchmark's own output."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
