"""Start child processes and stop all of them, always: no process is left behind."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: a child gets SIGTERM if the launcher dies, even by SIGKILL."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class Supervisor:
    def __init__(self, env: dict[str, str], cwd: str):
        self.env = env
        self.cwd = cwd
        self.children: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, *args], env=self.env, cwd=self.cwd, preexec_fn=_die_with_parent
        )
        self.children[name] = process
        return process

    def exited(self) -> list[tuple[str, int]]:
        return [(name, p.returncode) for name, p in self.children.items() if p.poll() is not None]

    def stop_all(self, grace_seconds: float = 20.0) -> None:
        """SIGTERM every child (they finish in-flight work), then SIGKILL whoever is still there."""
        for process in self.children.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for process in self.children.values():
            remaining = max(0.0, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def pids(self) -> list[int]:
        return [p.pid for p in self.children.values()]


def port_is_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


__all__ = ["Supervisor", "port_is_free", "os"]
