"""A gateway of several session hosts, each a separate process, against one moto server process, with
the faults the design promises to survive: pause a host (SIGSTOP/SIGCONT), freeze the AWS endpoint
(SIGSTOP of the moto server: every call hangs, none fails), kill a host (SIGKILL).

Used by tests/faults/ and bench/session_host.py. Everything listens on 127.0.0.1. Each host writes its
own report (HOST_REPORT_FILE: its clients, held epochs, lease state) and its log to the work directory;
`clients_per_session()` counts clients from those reports, never from the table.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.exceptions import BotoCoreError, ClientError

PROJECT_DIR = Path(__file__).resolve().parent.parent.parent
ADMIN = {"admintoken": "qwert"}
#: Short leases so a scenario fits in well under a minute: the lease 4 s, heartbeat 1 s, margin 0.5 s.
FAST = {"HOST_HEARTBEAT_SECONDS": "1", "HOST_LEASE_SECONDS": "4", "HOST_LEASE_MARGIN_SECONDS": "0.5",
        "COMMAND_TIMEOUT_SECONDS": "3", "WHATSAPP_DRIVER": "sim"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last value {last!r}")


class Cluster:
    def __init__(self, workdir: Path, hosts: int = 3, env: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.moto_port, self.api_port = free_port(), free_port()
        self.endpoint = f"http://127.0.0.1:{self.moto_port}"
        self.base = f"http://127.0.0.1:{self.api_port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        self.env.update(STAGE="local", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                        AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=self.endpoint, WAGO_ACCESS_LOG="0",
                        PYTHONUNBUFFERED="1", **FAST, **(env or {}))
        self.host_count = hosts
        self.processes: dict[str, subprocess.Popen] = {}
        self.hosts: dict[int, subprocess.Popen] = {}
        self.api = httpx.Client(base_url=self.base, timeout=15)
        self.ddb = boto3.resource("dynamodb", endpoint_url=self.endpoint, region_name="us-east-1",
                                  aws_access_key_id="testing", aws_secret_access_key="testing")

    # -- processes ---------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        with open(self.workdir / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen([sys.executable, *args], cwd=PROJECT_DIR, env={**self.env, **(env or {})},
                                       stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process
        return process

    def start(self, timeout: float = 60) -> Cluster:
        self._spawn("moto", ["-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.moto_port)])
        wait_for(self._moto_up, timeout, "the moto server")
        subprocess.run([sys.executable, "-m", "local_gateway.provision"], cwd=PROJECT_DIR, env=self.env,
                       check=True, capture_output=True, timeout=timeout)
        self._spawn("api", ["-m", "local_gateway.api_server", "--host", "127.0.0.1", "--port", str(self.api_port)])
        for index in range(self.host_count):
            self.start_host(index)
        wait_for(self._api_up, timeout, "the API")
        wait_for(lambda: len(self.host_rows()) == self.host_count and all(self.report(i) for i in self.hosts),
                 timeout, "every host registered")
        return self

    def start_host(self, index: int, env: dict[str, str] | None = None) -> subprocess.Popen:
        report = self.workdir / f"host-{index}.json"
        report.unlink(missing_ok=True)
        process = self._spawn(f"host-{index}", ["-m", "session_host"],
                              {"HOST_REPORT_FILE": str(report), **(env or {})})
        self.hosts[index] = process
        return process

    def _moto_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.moto_port), timeout=0.5):
                return True
        except OSError:
            return False

    def _api_up(self) -> bool:
        try:
            return self.api.get("/server/ok", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def pause(self, name: str) -> None:
        os.kill(self.processes[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.kill(self.processes[name].pid, signal.SIGCONT)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.kill(process.pid, signal.SIGCONT)
                    process.kill()
                    process.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        self.api.close()

    # -- what each host says about itself ----------------------------------------------------------

    def report(self, index: int) -> dict | None:
        try:
            return json.loads((self.workdir / f"host-{index}.json").read_text())
        except (OSError, ValueError):
            return None

    def host_id(self, index: int) -> str:
        return wait_for(lambda: (r := self.report(index)) and r["host_id"], 20, f"host {index}'s report")

    def index_of(self, host_id: str) -> int:
        return next(i for i in self.hosts if self.host_id(i) == host_id)

    def fresh_reports(self, since: float, indexes: list[int] | None = None, timeout: float = 20) -> dict[int, dict]:
        """Every running host's report written after `since` (wall clock)."""
        wanted = [i for i in (indexes or list(self.hosts)) if self.hosts[i].poll() is None]

        def collect():
            reports = {i: self.report(i) for i in wanted}
            return reports if all(r and r["ts"] > since for r in reports.values()) else None

        return wait_for(collect, timeout, "fresh host reports")

    def clients_per_session(self, since: float) -> dict[str, list[str]]:
        """token -> the hosts that report a client for it (from each host's own report)."""
        holders: dict[str, list[str]] = {}
        for report in self.fresh_reports(since).values():
            for token in report["clients"]:
                holders.setdefault(token, []).append(report["host_id"])
        return holders

    def log_lines(self, index: int) -> list[dict]:
        lines = []
        for raw in (self.workdir / f"host-{index}.log").read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    pass
        return lines

    # -- the API and the table ---------------------------------------------------------------------

    def call(self, path: str, token: str | None = None, body: dict | None = None, admin: bool = False,
             timeout: float = 15) -> httpx.Response:
        headers = dict(ADMIN) if admin else {"token": token or ""}
        return self.api.post(path, headers=headers, json=body or {}, timeout=timeout)

    def ok(self, path: str, token: str | None = None, body: dict | None = None, admin: bool = False) -> Any:
        response = self.call(path, token, body, admin)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        return response.json()["data"]

    def session_row(self, token: str) -> dict:
        return self.ddb.Table("wago-local-sessions").get_item(Key={"token": token}, ConsistentRead=True)["Item"]

    def host_rows(self) -> dict[str, dict]:
        try:
            items = self.ddb.Table("wago-local-hosts").scan(ConsistentRead=True)["Items"]
        except (BotoCoreError, ClientError):  # the endpoint is starting
            return {}
        return {item["host_id"]: item for item in items}

    def linked_sessions(self, tokens: list[str], phones: list[str]) -> None:
        """Create, connect (placed across the hosts) and pair each session with its sim phone number."""
        for token, phone in zip(tokens, phones, strict=True):  # one phone per session
            self.ok("/session/init", body={"Name": token, "Token": token, "Os": "Chrome"}, admin=True)
            self.ok("/session/connect", token, {"Subscribe": ["All"]})
            self.ok("/sim/scan", body={"Token": token, "Phone": phone}, admin=True)

    def drain_events(self, max_batches: int = 200) -> list[dict]:
        """Read (and delete) what the hosts published to the events queue (no poller runs here); returns
        everything read so far, as WireEvent dicts."""
        if not hasattr(self, "_events"):
            self._events: list[dict] = []
            self._sqs = boto3.client("sqs", endpoint_url=self.endpoint, region_name="us-east-1",
                                     aws_access_key_id="testing", aws_secret_access_key="testing")
            self._events_url = self._sqs.get_queue_url(QueueName="wago-local-events")["QueueUrl"]
        for _ in range(max_batches):
            batch = self._sqs.receive_message(QueueUrl=self._events_url, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=0).get("Messages", [])
            if not batch:
                break
            for message in batch:
                self._events.append(json.loads(message["Body"]))
            self._sqs.delete_message_batch(QueueUrl=self._events_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)])
        return self._events

    def received(self, token: str, message_id: str) -> int:
        """How many times `token`'s device received the message `message_id` (Message events)."""
        return sum(1 for e in self.drain_events() if e["token"] == token and e["type"] == "Message"
                   and e["event"].get("Info", {}).get("ID") == message_id)
