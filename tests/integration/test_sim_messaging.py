"""Sim accounts message each other over HTTP on the launched stack, and everything reaches the
sessions' webhooks through the real path: host -> events queue -> poller -> fan-out -> receiver."""

from __future__ import annotations

import base64
import io
import json
import time
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

import pytest
import segno

from tests.conftest import wait_for
from tests.http_server import LocalHTTPServer
from tests.integration.test_session_lifecycle import Stack, _data

pytestmark = pytest.mark.integration


def _multipart(content_type: str, raw: bytes) -> tuple[dict[str, str], tuple[str, str, bytes] | None]:
    message = BytesParser(policy=default).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields: dict[str, str] = {}
    file = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename():
            file = (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
        else:
            fields[name] = part.get_payload(decode=True).decode()
    return fields, file


class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps every delivery (WaGo's form: token + jsonData)."""

    def __init__(self):
        self.deliveries: list[tuple[str, dict]] = []
        self.files: dict[str, tuple[str, str, bytes]] = {}  # message id -> (filename, content type, bytes)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                content_type = self.headers.get("Content-Type", "")
                if content_type.startswith("multipart/form-data"):
                    fields, file = _multipart(content_type, raw)
                else:
                    fields, file = {k: v[0] for k, v in parse_qs(raw.decode()).items()}, None
                body = json.loads(fields["jsonData"])
                outer.deliveries.append((fields["token"], body))
                if file is not None:
                    outer.files[body["event"]["Info"]["ID"]] = file
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = LocalHTTPServer(Handler).start()
        self.url = f"http://127.0.0.1:{self.server.port}/hook"

    def of(self, token: str, type: str) -> list[dict]:
        return [body for t, body in list(self.deliveries) if t == token and body["type"] == type]

    def close(self):
        self.server.close()


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
    (message,) = wait_for(lambda: receiver.of("bob", "Message"), what="bob's message webhook")
    info = message["event"]["Info"]
    assert (info["ID"], info["Chat"], info["IsFromMe"]) == (sent["Id"], "15550001001@s.whatsapp.net", False)
    assert message["event"]["Message"] == {"conversation": "hi bob"}
    delivered = wait_for(lambda: [r for r in receiver.of("alice", "ReadReceipt") if r["state"] == "Delivered"],
                          what="alice's delivery receipt")
    assert delivered[0]["event"]["MessageIDs"] == [sent["Id"]]

    assert _data(stack.call("POST", "/message/markread", "bob", {"Id": sent["Id"], "Chat": "15550001001"})) == {
        "Details": "Message(s) marked as read"}
    read = wait_for(lambda: [r for r in receiver.of("alice", "ReadReceipt") if r["state"] == "Read"],
                     what="alice's read receipt")
    assert (read[0]["event"]["Type"], read[0]["event"]["Chat"]) == ("read", "15550001002@s.whatsapp.net")

    # Typing, and presence after subscribing to it.
    _data(stack.call("POST", "/message/presence", "alice", {"Phone": "15550001002", "State": "composing",
                                                             "Media": "audio"}))
    typing = wait_for(lambda: receiver.of("bob", "ChatPresence"), what="bob seeing alice record")
    assert (typing[0]["event"]["State"], typing[0]["event"]["Media"]) == ("composing", "audio")
    _data(stack.call("POST", "/user/presence/subscribe", "bob", {"Phone": "15550001001"}))
    _data(stack.call("POST", "/user/presence", "alice", {"Type": "available"}))
    online = wait_for(lambda: receiver.of("bob", "Presence"), what="bob seeing alice online")
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
    later = wait_for(lambda: [m for m in receiver.of("bob", "Message") if m["event"]["Info"]["ID"] == offline["Id"]],
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


def test_media_reaches_the_receiver_as_wagos_file_part_and_ids_send_once(stack, receiver):
    _login(stack, receiver, "fern", "15550003001", ["ReadReceipt"])
    _login(stack, receiver, "gus", "15550003002", ["Message"])
    buffer = io.BytesIO()
    segno.make_qr("a real PNG").save(buffer, kind="png", scale=4)
    png = buffer.getvalue()
    image = "data:image/png;base64," + base64.b64encode(png).decode()

    body = {"Phone": "15550003002", "Image": image, "Caption": "a QR", "Id": "3EB0CLIENTCHOSEN01"}
    first = _data(stack.call("POST", "/send/image", "fern", body))
    again = _data(stack.call("POST", "/send/image", "fern", body))  # a client retry: answered, not re-sent
    assert first == again and first["Id"] == "3EB0CLIENTCHOSEN01"
    (message,) = wait_for(lambda: receiver.of("gus", "Message"), what="gus's image webhook")
    assert message["event"]["Info"]["MediaType"] == "image"
    assert message["event"]["Message"]["imageMessage"]["caption"] == "a QR"
    assert message["event"]["Message"]["imageMessage"]["mimetype"] == "image/png"
    filename, content_type, data = wait_for(lambda: receiver.files.get(first["Id"]), what="the file part")
    assert data == png and content_type == "image/png" and filename.startswith(first["Id"])
    time.sleep(1.0)
    assert len(receiver.of("gus", "Message")) == 1  # the repeated Id was not sent twice

    status = wait_for(lambda: (s := _data(stack.call("POST", "/message/status", "fern", {"Id": first["Id"]})))
                       ["Status"] == "delivered" and s, what="delivered status")
    assert (status["Kind"], status["To"]) == ("image", "15550003002")
    _data(stack.call("POST", "/message/markread", "gus", {"Id": [first["Id"]], "Chat": "15550003001"}))
    wait_for(lambda: _data(stack.call("POST", "/message/status", "fern", {"Id": first["Id"]}))["Status"] == "read",
              what="read status")
    assert _data(stack.call("POST", "/message/status", "fern", {"Id": "3EB0NOSUCHID"}), 404) \
        == "message 3EB0NOSUCHID not found"

    # Bad media is refused before anything is stored or sent.
    assert _data(stack.call("POST", "/send/document", "fern", {"Phone": "15550003002", "FileName": "a.pdf",
                                                                "Document": "data:application/pdf;base64,JVBERg=="}),
                 400) == "Document data should start with data:application/octet-stream;base64,"
    truncated = {"Phone": "15550003002", "Image": image[:-7]}
    assert _data(stack.call("POST", "/send/image", "fern", truncated), 400).startswith(
        "Invalid Image in Payload: truncated base64 (")
    assert _data(stack.call("POST", "/send/document", "fern",
                            {"Phone": "15550003002", "Document": "data:application/octet-stream;base64,AA=="}),
                 400) == "Missing FileName in Payload"
