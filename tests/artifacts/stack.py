"""What the deploy-artifact tests share: a moto server, provisioning, and processes talking to it.

Everything listens on 127.0.0.1. The moto server runs in the test process (from the test's own
environment); the gateway's processes are children given an explicit environment, so nothing of the
test's own settings leaks into them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx

from tests.faults.cluster import wait_for  # one bounded poll for the multi-process harnesses

PROJECT_DIR = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ADMIN_TOKEN = "artifact-admin-token"


class LocalAws:
    """A moto server on a free 127.0.0.1 port, and the environment that points a process at it."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        _, port = self.server.get_host_and_port()
        self.endpoint = f"http://127.0.0.1:{port}"

    def env(self, stage: str, **extra: str) -> dict[str, str]:
        """A clean environment for a gateway process of `stage` on this endpoint (sim driver)."""
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION,
                   AWS_ENDPOINT_URL=self.endpoint, STAGE=stage, WHATSAPP_DRIVER="sim",
                   HOST_HEARTBEAT_SECONDS="1", HOST_LEASE_SECONDS="5", COMMAND_SHORT_POLL_SECONDS="0.05",
                   PYTHONUNBUFFERED="1")
        env.update(extra)
        return env

    def provision(self, env: dict[str, str]) -> dict:
        """Every table, queue and bucket of env's stage (local_gateway.provision, as `make run` does)."""
        done = subprocess.run([sys.executable, "-m", "local_gateway.provision"], cwd=PROJECT_DIR, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout)

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def table(self, name: str):
        return boto3.resource("dynamodb", endpoint_url=self.endpoint, region_name=REGION,
                              aws_access_key_id="testing", aws_secret_access_key="testing").Table(name)

    def drain_events(self, queue: str, want, timeout: float = 30.0) -> list[dict]:
        """Receive events from `queue` until `want(messages)` is true; returns the SQS messages (not deleted)."""
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        seen: dict[str, dict] = {}

        def poll():
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                               VisibilityTimeout=300, AttributeNames=["All"],
                                               MessageAttributeNames=["All"]).get("Messages", []):
                seen[message["MessageId"]] = message
            return want(list(seen.values()))

        wait_for(poll, timeout, f"events on {queue}", interval=0.2)
        return list(seen.values())

    def close(self) -> None:
        self.server.stop()


class Child:
    """A child process whose output is kept (for the assertion message); ended by its own pid only."""

    def __init__(self, name: str, argv: list[str], cwd: Path, env: dict[str, str]):
        self.name = name
        self.log_path = Path(env.get("TMPDIR", "/tmp")) / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-6000:]

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait; SIGKILL only if it did not exit in time (and that is reported as -9)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()
        with contextlib.suppress(OSError):
            self.log_path.unlink()


def wait_host_registered(aws: LocalAws, stage: str, host: Child, timeout: float = 60.0) -> str:
    """The host id of `host` once its row is in the hosts table (registry ids are <hostname>-<pid>-<rand>)."""
    table = aws.table(f"wago-{stage}-hosts")

    def registered():
        assert host.process.poll() is None, f"the host exited ({host.process.returncode}):\n{host.output()}"
        return next((item["host_id"] for item in table.scan(ConsistentRead=True)["Items"]
                     if f"-{host.pid}-" in item["host_id"]), None)

    return wait_for(registered, timeout, "the session host to register")


@contextlib.contextmanager
def api_server(aws: LocalAws, env: dict[str, str], port: int) -> Iterator[httpx.Client]:
    """The API as `make run` serves it (local_gateway.api_server, the same Chalice app), from this environment."""
    child = Child("api", [sys.executable, "-m", "local_gateway.api_server", "--host", "127.0.0.1", "--port", str(port),
                          "--stage", env["STAGE"]], PROJECT_DIR, env)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        def ready():
            assert child.process.poll() is None, f"the API exited:\n{child.output()}"
            try:
                return client.get("/server/ok").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 60, "the API to answer /server/ok")
        yield client
    finally:
        client.close()
        child.terminate(timeout=10)
        child.stop()
