"""Sim accounts message each other over HTTP on the launched stack, and everything reaches the
sessions' webhooks through the real path: host -> events queue -> poller -> fan-out -> receiver."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from tests.integration.test_session_lifecycle import Stack, _data, _wait_for, stack  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps every delivery (WaGo's form: token + jsonData)."""

    def __init__(self):
        self.deliveries: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                outer.deliveries.append((form["token"][0], json.loads(form["jsonData"][0])))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, token: str, type: str) -> list[dict]:
        return [body for t, body in list(self.deliveries) if t == token and body["type"] == type]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


def _login(stack: Stack, receiver: Receiver, token: str, phone: str, subscribe: list[str]) -> str:
    stack.init(token)
    _data(stack.call("POST", "/webhook", token, {"WebhookURL": receiver.url}))
    _data(stack.call("POST", "/session/connect", token, {"Subscribe": subscribe}))
    return _data(stack.call("POST", "/sim/scan", token, {"Token": token, "Phone": phone}, admin=True))["Jid"]


def test_sim_accounts_message_each_other_with_receipts_and_presence(stack, receiver):
    _login(stack, receiver, "alice", "15550001001", ["All"])
    _login(stack, receiver, "bob", "15550001002", ["Message", "ChatPresence", "Presence"])

    sent = _data(stack.call("POST", "/send/text", "alice", {"Phone": "+1 555 000 1002", "Body": "hi bob"}))
    assert sent["Details"] == "Sent" and sent["Id"].startswith("3EB0") and sent["Timestamp"].endswith("Z")
    (message,) = _wait_for(lambda: receiver.of("bob", "Message"), what="bob's message webhook")
    info = message["event"]["Info"]
    assert (info["ID"], info["Chat"], info["IsFromMe"]) == (sent["Id"], "15550001001@s.whatsapp.net", False)
    assert message["event"]["Message"] == {"conversation": "hi bob"}
    delivered = _wait_for(lambda: [r for r in receiver.of("alice", "ReadReceipt") if r["state"] == "Delivered"],
                          what="alice's delivery receipt")
    assert delivered[0]["event"]["MessageIDs"] == [sent["Id"]]

    assert _data(stack.call("POST", "/message/markread", "bob", {"Id": sent["Id"], "Chat": "15550001001"})) == {
        "Details": "Message(s) marked as read"}
    read = _wait_for(lambda: [r for r in receiver.of("alice", "ReadReceipt") if r["state"] == "Read"],
                     what="alice's read receipt")
    assert (read[0]["event"]["Type"], read[0]["event"]["Chat"]) == ("read", "15550001002@s.whatsapp.net")

    # Typing, and presence after subscribing to it.
    _data(stack.call("POST", "/message/presence", "alice", {"Phone": "15550001002", "State": "composing",
                                                             "Media": "audio"}))
    typing = _wait_for(lambda: receiver.of("bob", "ChatPresence"), what="bob seeing alice record")
    assert (typing[0]["event"]["State"], typing[0]["event"]["Media"]) == ("composing", "audio")
    _data(stack.call("POST", "/user/presence/subscribe", "bob", {"Phone": "15550001001"}))
    _data(stack.call("POST", "/user/presence", "alice", {"Type": "available"}))
    online = _wait_for(lambda: receiver.of("bob", "Presence"), what="bob seeing alice online")
    assert online[0]["state"] == "online" and online[0]["event"]["From"] == "15550001001@s.whatsapp.net"
    assert receiver.of("bob", "ReadReceipt") == []  # not subscribed: never delivered

    # Offline: a contact's phone writes while bob is disconnected; it arrives when bob connects again.
    _data(stack.call("POST", "/session/disconnect", "bob"))
    offline = _data(stack.call("POST", "/sim/message", "bob", {"From": "15550009999", "To": "15550001002",
                                                               "Body": "while you were away", "PushName": "Carol"},
                               admin=True))
    time.sleep(1.0)
    assert [m["event"]["Info"]["ID"] for m in receiver.of("bob", "Message")] == [sent["Id"]]
    _data(stack.call("POST", "/session/connect", "bob", {"Subscribe": ["Message"]}))
    later = _wait_for(lambda: [m for m in receiver.of("bob", "Message") if m["event"]["Info"]["ID"] == offline["Id"]],
                      what="the offline message on reconnect")
    assert later[0]["event"]["Info"]["PushName"] == "Carol"


def test_messaging_errors_keep_wagos_envelope(stack, receiver):
    _login(stack, receiver, "dana", "15550002001", ["All"])
    assert _data(stack.call("POST", "/send/text", "dana", {"Phone": "15550002002"}), 400) == "Missing Body in Payload"
    assert _data(stack.call("POST", "/send/text", "dana", {"Phone": 15550002002, "Body": "x"}), 400) \
        == "Could not decode Payload: Phone must be a string"
    assert _data(stack.call("POST", "/send/text", "dana", {"Phone": "15550002002", "Body": "x"}), 404) \
        == "15550002002 is not on WhatsApp"
    assert _data(stack.call("POST", "/send/text", "dana", {"Phone": "12", "Body": "x"}), 400) == "Could not parse Phone"
    bad_state = _data(stack.call("POST", "/message/presence", "dana", {"Phone": "15550002001", "State": "dancing"}),
                      400)
    assert bad_state.startswith("Invalid State in Payload")
    assert _data(stack.call("POST", "/message/markread", "dana", {"Chat": "15550002001"}), 400) \
        == "Missing Id in Payload"
    stack.init("erin")  # never connected
    assert _data(stack.call("POST", "/send/text", "erin", {"Phone": "15550002001", "Body": "x"}), 500) == "No session"
    _data(stack.call("POST", "/session/connect", "erin", {}))  # connected, QR shown, not logged in
    assert _data(stack.call("POST", "/send/text", "erin", {"Phone": "15550002001", "Body": "x"}), 500) \
        == "not logged in"
