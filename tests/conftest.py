"""Shared fixtures. Unit tests run against moto in-process; nothing leaves 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# Settings are read at import: fix the environment before anything imports chalicelib.
os.environ.update(
    STAGE="test",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
)
for _var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "ADMIN_TOKEN", "ADMIN_TOKEN_SECRET_ARN"):
    os.environ.pop(_var, None)

import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parent.parent
ADMIN = {"admintoken": "qwert"}


def wait_for(predicate, timeout: float = 30.0, what: str = "condition", interval: float = 0.05):
    """Poll `predicate` until it returns something truthy (returned) or the timeout (AssertionError)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value {last!r}")


def reset_pynamodb_connections() -> None:
    """pynamodb caches one connection per model, and chalicelib.core.aws one client per service; a new
    moto backend needs new ones."""
    from chalicelib.core import aws
    from chalicelib.core.models import ALL_MODELS

    aws.reset()

    for model in ALL_MODELS:
        model._connection = None


@pytest.fixture
def aws():
    """A fresh in-process AWS (moto) with every table, queue and bucket provisioned."""
    with mock_aws():
        reset_pynamodb_connections()
        from chalicelib.bus import forget_hosts
        from local_gateway import provision

        forget_hosts()
        provision.ensure_all()
        yield
    reset_pynamodb_connections()


@pytest.fixture
def client(aws):
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="local", project_dir=str(PROJECT_DIR)) as test_client:
        yield ApiClient(test_client)


class ApiClient:
    """chalice.test.Client with JSON helpers."""

    def __init__(self, test_client):
        self.http = test_client.http

    def post(self, path: str, body=None, headers: dict | None = None, raw: str | bytes | None = None):
        payload = raw if raw is not None else (json.dumps(body) if body is not None else "")
        headers = {"Content-Type": "application/json", **(headers or {})}
        return self.http.post(path, headers=headers, body=payload)

    def get(self, path: str, headers: dict | None = None):
        return self.http.get(path, headers=headers or {})

    def request(self, method: str, path: str, headers: dict | None = None, body: str = ""):
        return self.http.request(method, path, headers=headers or {}, body=body)

    def init(self, name: str, token: str, os_name: str = "Chrome"):
        return self.post("/session/init", {"Name": name, "Token": token, "Os": os_name}, headers=ADMIN)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def api_server(env: dict[str, str]) -> Iterator[int]:
    """`python -m local_gateway.api_server` alone (no AWS behind it unless `env` names one) on a free
    127.0.0.1 port, with exactly `env`; yields the port once it listens (bounded: 60 s), then stops it."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "local_gateway.api_server", "--port", str(port)],
                               cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, "api_server exited"
                assert time.monotonic() < deadline, "api_server did not listen"
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
