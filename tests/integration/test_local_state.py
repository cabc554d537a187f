"""`make run` remembers: state survives a clean restart and a crash (within the documented window),
sessions come back at start, and killing any child leaves the gateway answering (issues 13 and 15)."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
import segno

from tests.conftest import ADMIN, PROJECT_DIR, free_port, wait_for
from tests.integration.test_local_stack import Launcher, _processes_with_marker
from tests.integration.test_sim_messaging import Receiver

pytestmark = pytest.mark.integration

SIM = {"WHATSAPP_DRIVER": "sim", "HOST_HEARTBEAT_SECONDS": "1", "HOST_LEASE_SECONDS": "4",
       "WEBHOOK_BACKOFF_BASE_SECONDS": "1", "WEBHOOK_BACKOFF_CAP_SECONDS": "2"}
SECRET = "restart-secret-0123456789"
CRASH_WINDOW_SECONDS = 2.0  # the documented bound (README, Known limits); the snapshot interval is 0.5 s


def _data(response: httpx.Response):
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _start(state_dir: str, env: dict | None = None, **kwargs) -> Launcher:
    launcher = Launcher({**SIM, **(env or {})}, state_dir=state_dir, **kwargs)
    try:
        launcher.wait_ready()
    except BaseException:
        launcher.close()
        raise
    return launcher


def _wait_logged_in(api: httpx.Client, token: str, timeout: float = 30) -> dict:
    return wait_for(lambda: (s := _data(api.get("/session/status", headers={"token": token})))["LoggedIn"] and s,
                    timeout=timeout, what=f"{token} logged in")


def _login(api: httpx.Client, token: str, phone: str, webhook: str, subscribe: list[str], secret: str = "") -> None:
    _data(api.post("/session/init", headers=ADMIN, json={"Name": f"user{phone[-4:]}", "Token": token, "Os": "Chrome"}))
    _data(api.post("/webhook", headers={"token": token},
                   json={"WebhookURL": webhook, **({"Secret": secret} if secret else {})}))
    _data(api.post("/session/connect", headers={"token": token}, json={"Subscribe": subscribe}))
    _data(api.post("/sim/scan", headers=ADMIN, json={"Token": token, "Phone": phone}))
    _wait_logged_in(api, token)


def _png() -> bytes:
    buffer = io.BytesIO()
    segno.make_qr("kept across restarts").save(buffer, kind="png", scale=3)
    return buffer.getvalue()


def test_a_restart_keeps_sessions_webhooks_statuses_media_and_delivers_what_came_meanwhile(tmp_path):
    state_dir = str(tmp_path / "state")
    receiver = Receiver()
    first = _start(state_dir)
    try:
        api = httpx.Client(base_url=first.base, timeout=30)
        _login(api, "amy", "15550007001", receiver.url, ["Message", "ReadReceipt"], secret=SECRET)
        _login(api, "ben", "15550007002", receiver.url, ["Message"])
        png = _png()
        image = _data(api.post("/send/image", headers={"token": "amy"}, json={
            "Phone": "15550007002", "Image": "data:image/png;base64," + base64.b64encode(png).decode(),
            "Caption": "before", "Id": "3EB0RESTART0001"}))
        text = _data(api.post("/send/text", headers={"token": "amy"},
                              json={"Phone": "15550007002", "Body": "hello ben", "Id": "3EB0RESTART0002"}))
        (received_image,) = wait_for(lambda: [m for m in receiver.of("ben", "Message")
                                              if "imageMessage" in m["event"]["Message"]], what="ben's image")
        _data(api.post("/message/markread", headers={"token": "ben"},
                       json={"Id": [text["Id"]], "Chat": "15550007001"}))
        wait_for(lambda: _data(api.post("/message/status", headers={"token": "amy"}, json={"Id": text["Id"]}))
                 ["Status"] == "read", what="read status")
        wait_for(lambda: _data(api.get("/webhook/deliveries", headers={"token": "ben"}))["deliveries"],
                 what="ben's delivery log")
        before = {
            "webhook": _data(api.get("/webhook", headers={"token": "amy"})),
            "statuses": [_data(api.post("/message/status", headers={"token": "amy"}, json={"Id": i}))
                         for i in (image["Id"], text["Id"])],
            "deliveries": _data(api.get("/webhook/deliveries", headers={"token": "ben"}))["deliveries"],
            "all": sorted(row["name"] for row in _data(api.get("/session/all", headers=ADMIN))),
        }
        code, output = first.stop(signal.SIGTERM)
        assert code == 0, output
        assert f"local state: {Path(state_dir).resolve()}" in output and "local state written to" in output
    finally:
        first.close()

    # While the gateway is down, WhatsApp (the sim network) still delivers: a phone messages ben.
    offline = subprocess.run([sys.executable, "-m", "tests.integration.offline_network", state_dir,
                              "15550007999", "15550007002", "sent while you were down"],
                             cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60)
    assert offline.returncode == 0, offline.stderr
    offline_id = offline.stdout.strip().splitlines()[-1]

    second = _start(state_dir)
    try:
        api = httpx.Client(base_url=second.base, timeout=30)
        # No new scan: both sessions come back logged in, with the same JIDs.
        assert _wait_logged_in(api, "amy")["Jid"]["User"] == "15550007001"
        assert _wait_logged_in(api, "ben")["Jid"]["User"] == "15550007002"
        assert sorted(row["name"] for row in _data(api.get("/session/all", headers=ADMIN))) == before["all"]
        assert _data(api.get("/webhook", headers={"token": "amy"})) == before["webhook"]
        statuses = [_data(api.post("/message/status", headers={"token": "amy"}, json={"Id": i}))
                    for i in (image["Id"], text["Id"])]
        assert statuses == before["statuses"]
        deliveries = _data(api.get("/webhook/deliveries", headers={"token": "ben"}))["deliveries"]
        assert deliveries[-len(before["deliveries"]):] == before["deliveries"]
        media = received_image["event"]["Message"]["imageMessage"]
        got = _data(api.post("/message/download/image", headers={"token": "ben"}, json={
            "URL": media["URL"], "directPath": media["directPath"], "mediaKey": media["mediaKey"],
            "mimetype": media["mimetype"], "fileSHA256": media["fileSHA256"], "fileLength": media["fileLength"]}))
        assert base64.b64decode(got["Data"].split(",", 1)[1]) == png
        # What arrived while the gateway was down reaches ben's webhook now.
        (late,) = wait_for(lambda: [m for m in receiver.of("ben", "Message")
                                    if m["event"]["Info"]["ID"] == offline_id], what="the message sent while down")
        assert late["event"]["Message"] == {"conversation": "sent while you were down"}
        # The webhook secret still signs, and the old token still works for sends.
        _data(api.post("/send/text", headers={"token": "amy"}, json={"Phone": "15550007002", "Body": "after"}))
        wait_for(lambda: [m for m in receiver.of("ben", "Message")
                          if m["event"]["Message"].get("conversation") == "after"], what="a send after the restart")
        code, output = second.stop(signal.SIGTERM)
        assert code == 0, output
        line = output.split("sessions at start (connectstartup): ", 1)[1].split("\n", 1)[0]
        assert line.startswith("2 to restore; 2 back: ") and "user7001 (LoggedIn)" in line, line
        assert "amy" not in line and "ben" not in line  # names, never tokens
    finally:
        second.close()
        receiver.close()


class ClosedThenOpenReceiver:
    """A webhook port that refuses connections until `open()`; then counts deliveries by event id."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.event_ids: set[str] = set()
        self.server = None

    def open(self) -> None:
        from http.server import BaseHTTPRequestHandler

        from tests.http_server import LocalHTTPServer

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.event_ids.add(self.headers.get("X-Webhook-Event-Id", ""))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = LocalHTTPServer(Handler, port=self.port).start()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def _event(token: str, seq: int) -> tuple[str, str]:
    event_id = uuid.uuid4().hex
    return event_id, json.dumps({"v": 1, "event_id": event_id, "token": token, "seq": seq, "ts": time.time(),
                                 "type": "Presence", "event": {"From": "1555@s.whatsapp.net", "Unavailable": False},
                                 "extra": {"state": "online"}})


def _dlq_event_ids(sqs, queue_url: str) -> set[str]:
    found: set[str] = set()
    for _ in range(20):
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                       WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            break
        found |= {json.loads(m["Body"]).get("event_id", "") for m in messages}
    return found


def test_a_crash_loses_nothing_older_than_the_window(tmp_path):
    """Receiver down, N events pending, SIGKILL the launcher, restart, receiver up: every event older
    than the window is delivered or in the DLQ; writes inside the last window are counted."""
    state_dir = str(tmp_path / "state")
    receiver = ClosedThenOpenReceiver()
    env = {"WEBHOOK_MAX_ATTEMPTS": "100"}
    first = _start(state_dir, env)
    pending = 40
    try:
        api = httpx.Client(base_url=first.base, timeout=30)
        _data(api.post("/session/init", headers=ADMIN, json={"Name": "crash", "Token": "crashtok", "Os": "Chrome"}))
        _data(api.post("/webhook", headers={"token": "crashtok"}, json={"WebhookURL": receiver.url}))
        ddb = boto3.client("dynamodb", endpoint_url=first.endpoint, region_name="us-east-1")
        ddb.update_item(TableName="wago-local-sessions", Key={"token": {"S": "crashtok"}},
                        UpdateExpression="SET events = :e", ExpressionAttributeValues={":e": {"L": [{"S": "All"}]}})
        sqs = boto3.client("sqs", endpoint_url=first.endpoint, region_name="us-east-1")
        queue = sqs.get_queue_url(QueueName="wago-local-events")["QueueUrl"]
        old_ids = set()
        for seq in range(1, pending + 1):
            event_id, body = _event("crashtok", seq)
            sqs.send_message(QueueUrl=queue, MessageBody=body)
            old_ids.add(event_id)
        # The poller tries each one, the receiver refuses: they are in flight, retrying.
        wait_for(lambda: _data(api.get("/webhook/deliveries", headers={"token": "crashtok"},
                                       params={"limit": 200}))["deliveries"].__len__() >= pending,
                 timeout=30, what="every event attempted once")
        time.sleep(CRASH_WINDOW_SECONDS)  # older than the window from here on

        # Inside the window: sessions created every 20 ms until the kill, each acknowledged time noted.
        acknowledged: list[tuple[float, str]] = []
        stop = threading.Event()

        def writer() -> None:
            n = 0
            while not stop.is_set() and n < 500:
                n += 1
                name = f"w{n:04d}"
                try:
                    if api.post("/session/init", headers=ADMIN,
                                json={"Name": name, "Token": f"tok-{name}", "Os": "Chrome"}).status_code == 200:
                        acknowledged.append((time.monotonic(), name))
                except httpx.HTTPError:
                    return
                time.sleep(0.02)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        time.sleep(1.5)
        killed_at = time.monotonic()
        first.process.send_signal(signal.SIGKILL)
        stop.set()
        thread.join(timeout=10)
        first.process.wait(timeout=10)
        # The children got SIGTERM with the launcher's death; with no endpoint their shutdown is short.
        try:
            wait_for(lambda: not _processes_with_marker(first.marker), timeout=30, what="the children to exit")
        except AssertionError:
            left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120]
                    for pid in _processes_with_marker(first.marker)}
            raise AssertionError(f"children still running 30 s after the launcher's SIGKILL: {left}") from None
    finally:
        first.close()

    second = _start(state_dir, env)
    try:
        api = httpx.Client(base_url=second.base, timeout=30)
        names = {row["name"] for row in _data(api.get("/session/all", headers=ADMIN))}
        lost = [(t, name) for t, name in acknowledged if name not in names]
        survived = [t for t, name in acknowledged if name in names]
        window = killed_at - max(survived) if survived else float("inf")
        print(f"crash window: {len(lost)} of {len(acknowledged)} acknowledged writes lost; "
              f"the newest surviving write was {window * 1000:.0f} ms before the kill")
        assert all(killed_at - t <= CRASH_WINDOW_SECONDS for t, _ in lost), "a write older than the window was lost"
        assert window <= CRASH_WINDOW_SECONDS
        assert "crash" in names

        receiver.open()
        sqs = boto3.client("sqs", endpoint_url=second.endpoint, region_name="us-east-1")
        dlq = sqs.get_queue_url(QueueName="wago-local-events-dlq")["QueueUrl"]
        # A batch the killed poller held stays invisible for the events queue's visibility timeout (60 s,
        # as SQS would keep it): then it is received again, with its receive count carried on.
        wait_for(lambda: old_ids <= receiver.event_ids, timeout=80, interval=0.25,
                 what=f"the {pending} pending events delivered after the restart")
        in_dlq = _dlq_event_ids(sqs, dlq) & old_ids
        print(f"pending events: {len(old_ids & receiver.event_ids)} delivered, {len(in_dlq)} in the DLQ, "
              f"{len(old_ids - receiver.event_ids - in_dlq)} lost")
        assert old_ids - receiver.event_ids - in_dlq == set()
        log = _data(api.get("/webhook/deliveries", headers={"token": "crashtok"}, params={"limit": 200}))
        delivered = {d["eventId"] for d in log["deliveries"] if d["state"] == "delivered"}
        assert old_ids <= delivered
    finally:
        second.close()
        receiver.close()


def _child_pids(launcher_pid: int) -> dict[str, int]:
    """The launcher's children by role, from their command lines."""
    roles = {"local_gateway.api_server": "api", "session_host": "host", "local_gateway.poller": "poller"}
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid != launcher_pid or len(cmdline) < 3:
            continue
        role = roles.get(cmdline[2].decode())
        if role:
            found[role] = int(proc.name)
    return found


def test_kill_9_of_each_child_keeps_the_gateway_answering_and_sessions_come_back(tmp_path):
    launcher = _start(str(tmp_path / "state"))
    try:
        api = httpx.Client(base_url=launcher.base, timeout=30)
        receiver = Receiver()
        _login(api, "kim", "15550008001", receiver.url, ["Message"])
        _login(api, "lee", "15550008002", receiver.url, ["Message"])
        for role in ("poller", "host", "api"):
            before = _child_pids(launcher.process.pid)
            assert set(before) == {"api", "host", "poller"}, before
            os.kill(before[role], signal.SIGKILL)
            killed_at = time.monotonic()
            # The gateway keeps answering while the child is restarted (the API's socket stays open).
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                assert httpx.get(f"{launcher.base}/server/ok", timeout=15).status_code == 200
                time.sleep(0.2)
            wait_for(lambda: (now := _child_pids(launcher.process.pid)).get(role) not in (None, before[role])  # noqa: B023 - wait_for calls it in this iteration
                     and len(now) == 3, timeout=30, what=f"the {role} restarted")
            if role == "poller":  # the killed poller's last long poll (5 s) must not take the next event
                time.sleep(max(0.0, 6 - (time.monotonic() - killed_at)))
            # Sessions come back (a killed host's are adopted by its replacement); a send with a fixed Id
            # is retried until a host holds the session again, and is sent once.
            body = {"Phone": "15550008002", "Body": f"after the {role} was killed", "Id": f"3EB0KILL{role.upper()}"}
            sent = wait_for(lambda: (r := api.post("/send/text", headers={"token": "kim"}, json=body)).status_code  # noqa: B023 - wait_for calls it in this iteration
                            == 200 and r.json()["data"], timeout=30, interval=0.5, what=f"a send after the {role} kill")
            _wait_logged_in(api, "kim")
            _wait_logged_in(api, "lee")
            wait_for(lambda: [m for m in receiver.of("lee", "Message") if m["event"]["Info"]["ID"] == sent["Id"]],  # noqa: B023 - wait_for calls it in this iteration
                     timeout=30, what=f"a message delivered after the {role} restart")
        assert launcher.process.poll() is None
        code, output = launcher.stop(signal.SIGTERM)
        assert code == 0, output
        for role in ("poller", "host", "api"):
            assert f"launcher: {role} (pid" in output and "exited with signal SIGKILL" in output
        receiver.close()
    finally:
        launcher.close()


def test_reset_starts_empty_and_connect_on_startup_off_leaves_sessions_disconnected(tmp_path):
    state_dir = str(tmp_path / "state")
    launcher = _start(state_dir)
    try:
        api = httpx.Client(base_url=launcher.base, timeout=30)
        _login(api, "max", "15550009001", "http://127.0.0.1:9/hook", ["Message"])
        assert launcher.stop(signal.SIGTERM)[0] == 0
    finally:
        launcher.close()

    off = _start(state_dir, {"CONNECT_ON_STARTUP": "false"})
    try:
        api = httpx.Client(base_url=off.base, timeout=30)
        time.sleep(2)  # a host that restored it would have done so by now (heartbeat 1 s)
        status = _data(api.get("/session/status", headers={"token": "max"}))
        assert (status["Connected"], status["LoggedIn"]) == (False, False)
        # /session/connect brings it back from the device store: no QR, logged in.
        _data(api.post("/session/connect", headers={"token": "max"}, json={"Subscribe": ["Message"]}))
        assert _wait_logged_in(api, "max")["Jid"]["User"] == "15550009001"
        code, output = off.stop(signal.SIGTERM)
        assert code == 0 and "CONNECT_ON_STARTUP is off; 1 session(s) left disconnected" in output
    finally:
        off.close()

    reset = subprocess.run([sys.executable, "-m", "local_gateway", "--reset-only", "--state-dir", state_dir],
                           cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60)
    assert reset.returncode == 0 and "local state deleted" in reset.stdout, reset.stderr
    empty = _start(state_dir)
    try:
        assert _data(httpx.get(f"{empty.base}/session/all", headers=ADMIN, timeout=30)) == []
    finally:
        empty.close()
