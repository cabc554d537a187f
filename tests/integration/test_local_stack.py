"""`make run`'s launcher as a user meets it: start, serve, create and list a token, stop, nothing left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
import pytest

from tests.conftest import ADMIN, PROJECT_DIR, free_port

pytestmark = pytest.mark.integration
START_TIMEOUT = 90


def _processes_with_marker(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


READY_LINE = "WaGo gateway ready:"


class Launcher:
    """`python -m local_gateway` on free ports, with its own state directory (a temporary one unless
    `state_dir` is given: pass the same one to a second Launcher to restart on the same state)."""

    def __init__(self, extra_env: dict[str, str] | None = None, state_dir: str | None = None,
                 args: tuple[str, ...] = (), api_port: int | None = None):
        self.api_port = api_port or free_port()
        self.aws_port = free_port()
        self.marker = f"WAGO_TEST_LAUNCH={uuid.uuid4().hex}"
        if state_dir is None:
            self._state_tmp = tempfile.TemporaryDirectory(prefix="wago-state-")
            state_dir = self._state_tmp.name
        self.state_dir = state_dir
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env.update({"STAGE": "local", "WAGO_ACCESS_LOG": "0", "LOCAL_STATE_DIR": state_dir, **(extra_env or {})})
        key, value = self.marker.split("=")
        env[key] = value
        self.endpoint = env.get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{self.aws_port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_gateway", "--api-port", str(self.api_port), "--aws-port", str(self.aws_port),
             *args],
            cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.base = f"http://127.0.0.1:{self.api_port}"
        # Read the output as it comes: a full pipe would block the gateway's logging (and so its answers).
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, name="launcher-output", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)

    def output(self, wait: float = 0.0) -> str:
        """What the launcher printed so far (after waiting up to `wait` s for its output to end)."""
        self._reader.join(timeout=wait)
        return "".join(self._lines)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                # Children may still hold the output pipe open: end them, so reading cannot hang.
                for pid in _processes_with_marker(self.marker):
                    os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"the launcher exited ({self.process.returncode}): {self.output(wait=10)}")
            # Ready as `make run` says it (its session host registered), not merely the API answering: the
            # launcher owns the API's socket, so /server/ok can answer before a host exists (connect: 503).
            if READY_LINE in self.output():
                try:
                    if httpx.get(f"{self.base}/server/ok", timeout=1).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.25)
        raise AssertionError("the gateway did not start in time")

    def close(self) -> None:
        """Whatever happened, leave nothing behind for the next test."""
        if self.process.poll() is None:
            self.stop(signal.SIGKILL)
        for pid in _processes_with_marker(self.marker):
            os.kill(pid, signal.SIGKILL)

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=60)
            self._reader.join(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        if self._reader.is_alive():
            for pid in _processes_with_marker(self.marker):  # they may hold the output pipe open
                os.kill(pid, signal.SIGKILL)
        return self.process.returncode, self.output(wait=30)


@pytest.fixture
def launcher():
    running = Launcher()
    try:
        running.wait_ready()
        yield running
    finally:
        running.close()


def test_run_serves_wago_and_stops_clean(launcher):
    api = httpx.Client(base_url=launcher.base, timeout=10)
    assert api.get("/server/ok").json() == {"code": 200, "data": {"status": "ok"}, "success": True}

    # WaGo's documented curl, byte for byte the same request shape (form content type).
    created = api.post("/session/init", headers={**ADMIN, "Content-Type": "application/x-www-form-urlencoded"},
                       content='{"Name":"JohnDoe","Token":"veryhardtoken","Os":"Chrome"}')
    assert created.status_code == 200
    assert created.json()["data"]["token"] == "veryhardtoken"
    listed = api.get("/session/all", headers=ADMIN).json()["data"]
    assert [row["name"] for row in listed] == ["JohnDoe"]
    assert api.get("/no/such/route").json() == {"code": 404, "error": "Not Found", "success": False}

    # The session host registered itself in the hosts table of the embedded endpoint.
    ddb = boto3.client("dynamodb", endpoint_url=launcher.endpoint, region_name="us-east-1")
    hosts = ddb.scan(TableName="wago-local-hosts")["Items"]
    assert len(hosts) == 1 and hosts[0]["status"]["S"] == "up"

    code, output = launcher.stop(signal.SIGINT)
    assert code == 0, output
    assert "WaGo gateway ready" in output
    assert _processes_with_marker(launcher.marker) == []


def test_concurrent_inits_of_one_name_create_it_once(launcher):
    def init(i: int) -> int:
        body = {"Name": "contested", "Token": f"token-{i}", "Os": "Chrome"}
        return httpx.post(f"{launcher.base}/session/init", headers=ADMIN, json=body, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(init, range(16)))
    assert sorted(statuses) == [200] + [409] * 15
    rows = httpx.get(f"{launcher.base}/session/all", headers=ADMIN, timeout=10).json()["data"]
    assert [row["name"] for row in rows] == ["contested"]


def test_sigterm_stops_every_child(launcher):
    assert len(_processes_with_marker(launcher.marker)) >= 4  # launcher + api + host + poller
    code, output = launcher.stop(signal.SIGTERM)
    assert code == 0, output
    assert _processes_with_marker(launcher.marker) == []


def test_existing_endpoint_is_used_and_no_moto_started():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]:d}"
        running = Launcher({"AWS_ENDPOINT_URL": endpoint})
        try:
            running.wait_ready()
            tables = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1").list_tables()
            assert "wago-local-sessions" in tables["TableNames"]
            with pytest.raises(httpx.HTTPError):  # nothing listens on the launcher's own moto port
                httpx.get(f"http://127.0.0.1:{running.aws_port}/", timeout=1)
            code, output = running.stop()
            assert code == 0, output
            assert f"AWS endpoint {endpoint}" in output
        finally:
            if running.process.poll() is None:
                running.process.kill()
            for pid in _processes_with_marker(running.marker):
                os.kill(pid, signal.SIGKILL)
    finally:
        server.stop()


def test_non_local_stage_without_admin_token_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if k not in ("ADMIN_TOKEN", "ADMIN_TOKEN_SECRET_ARN")}
    env.update(STAGE="prod", AWS_ENDPOINT_URL="http://127.0.0.1:9")  # never contacted: it fails before
    result = subprocess.run(
        [sys.executable, "-m", "local_gateway", "--api-port", str(free_port())],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "stage 'prod' needs an admin token: set ADMIN_TOKEN or ADMIN_TOKEN_SECRET_ARN" in result.stderr
