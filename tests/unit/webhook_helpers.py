"""Webhook test kit: a scripted receiver on 127.0.0.1, events on the moto queue, a poller pump."""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

import boto3
import pytest

from tests.http_server import LocalHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def form(self) -> dict[str, str]:
        """Fields of a urlencoded or multipart body (file parts as bytes under their name)."""
        if self.content_type.startswith("application/x-www-form-urlencoded"):
            return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}
        return {name: value for name, (value, _, _) in self.parts().items()}

    def parts(self) -> dict[str, tuple[object, str | None, str]]:
        """multipart/form-data: name -> (value, filename, content type)."""
        raw = f"Content-Type: {self.content_type}\r\n\r\n".encode() + self.body
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        out = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            filename = part.get_filename()
            value = payload if filename else payload.decode()
            out[name] = (value, filename, part.get_content_type())
        return out

    def event(self) -> dict:
        return json.loads(self.form()["jsonData"])


class Receiver:
    """A webhook receiver: answers `script(n)` for the n-th request (1-based), or 200."""

    def __init__(self, script: Callable[[int, Received], int] | None = None, delay: float = 0.0,
                 answer: bytes = b"ok"):
        self.script = script or (lambda n, r: 200)
        self.delay = delay
        self.answer = answer  # the response body
        self.received: list[Received] = []
        self.connections = 0  # TCP connections accepted
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with receiver.lock:
                    receiver.connections += 1

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.delay:
                    time.sleep(receiver.delay)
                item = Received({k.lower(): v for k, v in self.headers.items()}, body, 0)
                with receiver.lock:
                    n = len(receiver.received) + 1
                    item.status = receiver.script(n, item)
                    receiver.received.append(item)
                self.send_response(item.status)
                self.send_header("Content-Length", str(len(receiver.answer)))
                self.end_headers()
                self.wfile.write(receiver.answer)

            def log_message(self, *args):
                pass

        self.server = LocalHTTPServer(Handler)
        self.port = self.server.port
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> Receiver:
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.close()

    def delivered(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if 200 <= r.status < 300]


def fail_first(n: int, status: int = 500) -> Callable[[int, Received], int]:
    return lambda i, r: status if i <= n else 200


def wire_event(token: str, type_: str = "Message", seq: int = 1, media_key: str | None = None, **extra) -> dict:
    return {
        "v": 1, "event_id": uuid.uuid4().hex, "token": token, "seq": seq, "ts": time.time(), "type": type_,
        "event": {"Info": {"ID": f"MSG{seq}", "Chat": "1555@s.whatsapp.net"}, "Message": {"conversation": f"hi {seq}"}},
        "extra": extra, "media_key": media_key,
    }


@dataclass
class Stack:
    """Moto-backed queues and the session row of one test."""

    sqs: object
    events_url: str
    dlq_url: str
    sent: list[dict] = field(default_factory=list)

    def put(self, body: dict | str) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.sqs.send_message(QueueUrl=self.events_url, MessageBody=text)
        if isinstance(body, dict):
            self.sent.append(body)

    def count(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def dlq_bodies(self) -> list[dict]:
        out = []
        for _ in range(20):
            batch = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=1,
                                             MessageAttributeNames=["All"]).get("Messages", [])
            if not batch:
                break
            out.extend(batch)
        return out


def settings_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Override settings for one test (environment + fresh settings object)."""
    from chalicelib.core.settings import get_settings

    for key, value in values.items():
        monkeypatch.setenv(key.upper(), str(value))
    get_settings.cache_clear()


FAST = {"WEBHOOK_BACKOFF_BASE_SECONDS": "0", "WEBHOOK_BACKOFF_CAP_SECONDS": "0", "WEBHOOK_MAX_ATTEMPTS": "4"}


@pytest.fixture
def stack(aws, monkeypatch):
    from chalicelib.core.settings import get_settings
    from chalicelib.webhooks import fanout

    settings_env(monkeypatch, **FAST)
    fanout.reset()
    settings = get_settings()
    sqs = boto3.client("sqs", region_name=settings.region)
    yield Stack(sqs, sqs.get_queue_url(QueueName=settings.events_queue_name)["QueueUrl"],
                sqs.get_queue_url(QueueName=settings.events_dlq_name)["QueueUrl"])
    fanout.reset()
    monkeypatch.undo()
    get_settings.cache_clear()


def make_session(token: str, url: str, events: list[str] | None = None, secret: str | None = None):
    from chalicelib.core.models import SessionModel

    session = SessionModel(token, id=1, name=token, webhook=url, events=events if events is not None else ["All"],
                           webhook_secret=secret)
    session.save()
    return session


def pump(until: Callable[[], bool], rounds: int = 60, pause: float = 0.05) -> int:
    """Run the local poller (same handler as Lambda) until `until()` or `rounds` receive cycles."""
    from app import deliver_events
    from chalicelib.core.settings import get_settings
    from local_gateway.poller import QueuePoller

    poller = QueuePoller(get_settings().events_queue_name, deliver_events, "deliver_events", wait_seconds=0)
    for n in range(rounds):
        if until():
            return n
        delivered, failed = poller.poll_once()
        if not delivered and not failed:
            time.sleep(pause)
    return rounds
