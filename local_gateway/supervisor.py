"""Start, supervise and stop the launcher's child processes (API server, session host, events poller).

- A child that exits while the gateway runs is restarted after a backoff (0.5 s, doubling up to
  30 s) with a log line naming it, its exit status and its last error line.
- A child that keeps crashing fails the launcher: more than `max_restarts` restarts without a run of
  `stable_seconds` in between raise `ChildKeepsCrashing` with its last error (the launcher exits 1).
- `stop_all` SIGTERMs every child (they finish in-flight work), then SIGKILLs whoever is left. A
  child also gets `death_signal` if the launcher dies, even by SIGKILL (PR_SET_PDEATHSIG): SIGTERM
  when the AWS endpoint outlives the launcher (they drain), SIGKILL when the endpoint is embedded in
  the launcher (it is gone with it: a graceful stop could only retry dead calls for a minute).
"""

from __future__ import annotations

import collections
import ctypes
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_PR_SET_PDEATHSIG = 1


def _die_with_parent(death_signal: int) -> Callable[[], None]:
    """Linux: a child gets `death_signal` if the launcher dies, even by SIGKILL."""

    def preexec() -> None:
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, death_signal)
        except OSError:
            pass

    return preexec


class ChildKeepsCrashing(RuntimeError):
    """A child exited more than the allowed number of times in a row; the message has its last error."""


@dataclass
class Child:
    name: str
    args: tuple[str, ...]
    pass_fds: tuple[int, ...] = ()
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts_in_a_row: int = 0
    restart_at: float | None = None  # monotonic time of the scheduled restart
    last_exit: int | None = None
    stderr_tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=20))

    def last_error(self) -> str:
        for line in reversed(self.stderr_tail):
            if line.strip():
                return line.strip()
        return "no error output"


class Supervisor:
    def __init__(self, env: dict[str, str], cwd: str, backoff_first: float = 0.5, backoff_max: float = 30.0,
                 max_restarts: int = 5, stable_seconds: float = 60.0,
                 on_exit: Callable[[Child, int], None] | None = None,
                 log: Callable[[str], None] | None = None, death_signal: int = signal.SIGTERM):
        self.env = env
        self.cwd = cwd
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.max_restarts = max_restarts
        self.stable_seconds = stable_seconds
        self.on_exit = on_exit  # called with (child, pid) once a child has exited, before its restart
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.children: dict[str, Child] = {}
        self.restarts = 0
        self.death_signal = death_signal

    def start(self, name: str, *args: str, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
        child = self.children.get(name) or Child(name, tuple(args), tuple(pass_fds))
        self.children[name] = child
        return self._spawn(child)

    def _spawn(self, child: Child) -> subprocess.Popen:
        """Start `child`'s process (it becomes `child.process`) and return it."""
        process = subprocess.Popen(
            [sys.executable, *child.args], env=self.env, cwd=self.cwd, preexec_fn=_die_with_parent(self.death_signal),
            pass_fds=child.pass_fds, stderr=subprocess.PIPE, text=True, errors="replace", bufsize=1,
        )
        child.process = process
        child.started_at = time.monotonic()
        child.restart_at = None
        threading.Thread(target=self._forward_stderr, args=(child, process), name=f"{child.name}-stderr",
                         daemon=True).start()
        return process

    @staticmethod
    def _forward_stderr(child: Child, process: subprocess.Popen) -> None:
        """Pass the child's stderr through and keep its last lines (the 'last error' of a crash)."""
        assert process.stderr is not None
        for line in process.stderr:
            child.stderr_tail.append(line.rstrip("\n"))
            sys.stderr.write(line)
        sys.stderr.flush()

    def exited(self) -> list[tuple[str, int]]:
        return [(c.name, c.process.returncode) for c in self.children.values()
                if c.process is not None and c.process.poll() is not None]

    def supervise(self) -> None:
        """One supervision step: notice exits, schedule and run restarts. Raises ChildKeepsCrashing."""
        now = time.monotonic()
        for child in self.children.values():
            process = child.process
            if process is None:
                continue
            if child.restart_at is None and process.poll() is not None:
                code = process.returncode
                child.last_exit = code
                ran = now - child.started_at
                child.restarts_in_a_row = 1 if ran >= self.stable_seconds else child.restarts_in_a_row + 1
                if process.stderr is not None:
                    time.sleep(0.05)  # let the forwarder read the last lines
                if child.restarts_in_a_row > self.max_restarts:
                    raise ChildKeepsCrashing(
                        f"{child.name} exited {child.restarts_in_a_row} times in a row "
                        f"(last status {_status(code)}): {child.last_error()}")
                delay = min(self.backoff_max, self.backoff_first * 2 ** (child.restarts_in_a_row - 1))
                self.log(f"launcher: {child.name} (pid {process.pid}) exited with {_status(code)} after "
                         f"{ran:.1f} s; restarting in {delay:.1f} s (restart {child.restarts_in_a_row} of at most "
                         f"{self.max_restarts} in a row); last error: {child.last_error()}")
                if self.on_exit is not None:
                    try:
                        self.on_exit(child, process.pid)
                    except Exception as exc:
                        self.log(f"launcher: clean-up after {child.name} failed: {type(exc).__name__}: {exc}")
                child.restart_at = now + delay
            elif child.restart_at is not None and now >= child.restart_at:
                process = self._spawn(child)
                self.restarts += 1
                self.log(f"launcher: {child.name} restarted (pid {process.pid})")

    def stop_all(self, grace_seconds: float = 20.0) -> None:
        """SIGTERM every child (they finish in-flight work), then SIGKILL whoever is still there."""
        processes = [c.process for c in self.children.values() if c.process is not None]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for process in processes:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def pids(self) -> list[int]:
        return [c.process.pid for c in self.children.values() if c.process is not None]


def _status(code: int | None) -> str:
    if code is None:
        return "no status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def port_is_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


__all__ = ["ChildKeepsCrashing", "Supervisor", "port_is_free"]
