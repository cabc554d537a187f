"""The neonize driver offline, with the real neonize library (Go core loaded, no WhatsApp reachable).

- Event translation: hand-built neonize protobuf events pushed through neonize's own dispatcher
  (`client.event.execute`, the function Go calls) on a real client with the worker's handlers.
- Real client construction per session store (one SQLite file per session; a shared store looked up
  by JID).
- Connect with no network: every dial goes to a SOCKS proxy on 127.0.0.1 that is closed (refused)
  or a black hole (accepts, never answers), so nothing leaves this machine; connect ends in a clear
  error, or a bounded wait, never a hang.
- The supervisor: a SIGKILLed worker process is replaced and its sessions restarted.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from neonize.events import EVENT_TO_INT  # noqa: E402
from neonize.proto import Neonize_pb2 as N  # noqa: E402
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as WAMessage  # noqa: E402
from neonize.utils.jid import build_jid  # noqa: E402

from chalicelib.core import ops
from chalicelib.core.errors import DomainError
from session_host.drivers.neonize_worker import (  # noqa: E402
    LOGGED_OUT,
    NeonizeWorker,
    Session,
    WorkerConfig,
    sqlite_path,
)
from tests.conftest import wait_for


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class BlackHole:
    """A TCP listener on 127.0.0.1 that accepts and never answers (a dial that hangs)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        for _ in range(64):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.sock.close()


class Recorder:
    def __init__(self):
        self.messages: list[tuple] = []

    def __call__(self, *message) -> None:
        self.messages.append(message)

    def of(self, kind: str) -> list[tuple]:
        return [m for m in self.messages if m[0] == kind]


@pytest.fixture
def worker(tmp_path):
    emitted = Recorder()
    running = NeonizeWorker(WorkerConfig(data_dir=str(tmp_path), proxy=f"socks5://127.0.0.1:{_closed_port()}",
                                         connect_wait=5, start_spacing=0.01), emitted)
    running.emitted = emitted
    yield running
    running.shutdown(time.monotonic() + 5)


def _feed(client, event) -> None:
    """What Go does for each event: hand neonize's dispatcher the serialized protobuf and its id."""
    raw = event.SerializePartialToString()
    buffer = ctypes.create_string_buffer(raw, len(raw))
    client.event.execute(0, ctypes.addressof(buffer), len(raw), EVENT_TO_INT[type(event)])


def _session_with_handlers(worker: NeonizeWorker, token: str) -> Session:
    session = Session(token, worker._new_client(token, None, "Chrome"))
    worker._register_handlers(session)
    worker.sessions[token] = session
    return session


PEER = build_jid("15551234567")
NOW = 1_760_000_000


def _source(chat=PEER, sender=PEER, **kwargs) -> N.MessageSource:
    return N.MessageSource(Chat=chat, Sender=sender, IsFromMe=False, IsGroup=False, **kwargs)


def test_real_protobuf_events_become_wago_webhook_envelopes(worker):
    session = _session_with_handlers(worker, "tok-events")
    client = session.client

    _feed(client, N.Message(
        Info=N.MessageInfo(MessageSource=_source(), ID="3EB0ABCDEF", Timestamp=NOW * 1000, Pushname="Alice",
                           Type="text"),
        Message=WAMessage(conversation="hello"), Raw=WAMessage(conversation="hello")))
    _feed(client, N.Receipt(MessageSource=_source(), MessageIDs=["3EB0ABCDEF"], Timestamp=NOW, Type=N.Receipt.READ))
    _feed(client, N.Receipt(MessageSource=_source(), MessageIDs=["X"], Timestamp=NOW, Type=N.Receipt.DELIVERED))
    _feed(client, N.Receipt(MessageSource=_source(), MessageIDs=["Y"], Timestamp=NOW, Type=N.Receipt.PLAYED))
    _feed(client, N.Presence(From=PEER, Unavailable=True, LastSeen=NOW))
    _feed(client, N.ChatPresence(MessageSource=_source(), State=N.ChatPresence.COMPOSING, Media=N.ChatPresence.AUDIO))
    _feed(client, N.CallOffer(
        basicCallMeta=N.BasicCallMeta(**{"from": PEER}, callCreator=PEER, callID="CALL1", timestamp=NOW),
        callRemoteMeta=N.CallRemoteMeta(remotePlatform="android", remoteVersion="2.25"),
        data=N.Node(Tag="offer", Attrs=[N.NodeAttrs(name="call-id", text="CALL1")])))
    _feed(client, N.Message(
        Info=N.MessageInfo(MessageSource=_source(chat=build_jid("1203630", "newsletter")), ID="NL1",
                           Timestamp=NOW * 1000, Type="text"),
        Message=WAMessage(conversation="channel post")))

    events = {(m[2], m[3].get("Info", {}).get("ID") if m[2] in ("Message", "Newsletter") else None): m
              for m in worker.emitted.of("event")}
    _, token, kind, body, extra = events[("Message", "3EB0ABCDEF")]
    assert token == "tok-events" and extra == {}
    assert body["Info"]["Chat"] == body["Info"]["Sender"] == "15551234567@s.whatsapp.net"
    assert (body["Info"]["PushName"], body["Info"]["Type"], body["Info"]["IsFromMe"]) == ("Alice", "text", False)
    assert body["Info"]["Timestamp"] == "2025-10-09T08:53:20Z"  # ms on the wire, RFC 3339 in WaGo's JSON
    assert body["Message"] == {"conversation": "hello"} and body["RawMessage"] == {"conversation": "hello"}

    receipts = [m for m in worker.emitted.of("event") if m[2] == "ReadReceipt"]
    assert [(m[4]["state"], m[3]["Type"], m[3]["MessageIDs"]) for m in receipts] == [
        ("Read", "read", ["3EB0ABCDEF"]), ("Delivered", "", ["X"])]  # PLAYED is not forwarded (as WaGo)
    _, _, _, presence, presence_extra = events[("Presence", None)]
    assert presence_extra == {"state": "offline"} and presence["From"] == "15551234567@s.whatsapp.net"
    _, _, _, typing, typing_extra = events[("ChatPresence", None)]
    assert (typing["State"], typing["Media"], typing_extra) == ("composing", "audio", {})
    _, _, _, offer, offer_extra = events[("Call", None)]
    assert offer_extra == {"callEvent": "CallOffer"}
    assert (offer["CallID"], offer["From"], offer["RemotePlatform"]) == ("CALL1", "15551234567@s.whatsapp.net",
                                                                       "android")
    assert offer["Data"] == {"Tag": "offer", "Attrs": {"call-id": "CALL1"}, "Content": None}
    assert events[("Newsletter", "NL1")][3]["Message"] == {"conversation": "channel post"}


def test_pairing_and_logout_events_drive_the_session_state(worker):
    session = _session_with_handlers(worker, "tok-pair")
    device = N.JID(User="15550001111", RawAgent=0, Device=7, Integrator=0, Server="s.whatsapp.net", IsEmpty=False)
    session.client.event._qr(session.client, b"2@ref,noise,identity,adv")  # what Go's QR callback hands over
    assert session.state.qr == "2@ref,noise,identity,adv" and session.state.connected
    _feed(session.client, N.PairStatus(ID=device, BusinessName="", Platform="android", Status=N.PairStatus.SUCCESS))
    assert (session.state.logged_in, session.state.jid, session.state.qr) == (True, "15550001111:7@s.whatsapp.net",
                                                                              None)
    states = worker.emitted.of("state")
    assert states[-1][2]["logged_in"] is True and states[0][2]["qr"] == "2@ref,noise,identity,adv"
    kinds = [m[2] for m in worker.emitted.of("event")]
    assert kinds == ["QR", "PairSuccess"]

    _feed(session.client, N.LoggedOut(OnConnect=False, Reason=N.LOGGED_OUT))
    assert (session.end_reason, session.logged_out) == (LOGGED_OUT, True)
    assert worker.emitted.of("event")[-1][2:] == ("LoggedOut", {"OnConnect": False, "Reason": 401}, {})


def test_clients_are_built_per_session_store(worker, tmp_path):
    first = worker._new_client("token one", None, "Firefox")
    again = worker._new_client("token one", None, "Firefox")
    other = worker._new_client("token/two", None, None)
    assert first.name == again.name == str(sqlite_path(str(tmp_path), "token one"))
    assert other.name != first.name and "token" not in Path(other.name).name  # hashed: tokens are secrets
    assert first.uuid != again.uuid  # unique per attempt: an old client's finalizer cannot stop a new one
    assert first.device_props.os == "Firefox" and not first.new_device and first.jid is None

    shared = NeonizeWorker(WorkerConfig(store=f"postgres://wago@127.0.0.1:{_closed_port()}/devices?sslmode=disable",
                                        connect_wait=2), Recorder())
    fresh = shared._new_client("tok", None, "Chrome")  # no JID yet: a fresh pairing, never "the first device"
    assert fresh.new_device and fresh.jid is None and fresh.name.startswith("postgres://")
    with pytest.raises(DomainError) as unreachable:  # a JID is looked up first (unknown JIDs panic in Go)
        shared._new_client("tok", "15550001111:7@s.whatsapp.net", "Chrome")
    assert unreachable.value.message.startswith("device store unreachable")


def test_connect_without_network_fails_fast_with_the_reason(worker, tmp_path):
    started = time.monotonic()
    with pytest.raises(DomainError) as failure:
        worker.connect("tok-offline", os_name="Chrome")
    elapsed = time.monotonic() - started
    assert elapsed < 5, elapsed
    assert failure.value.message.startswith("Failed to connect: failed to dial whatsapp web websocket")
    assert "connection refused" in failure.value.message
    (closed,) = worker.emitted.of("closed")
    assert closed[1:] == ("tok-offline", failure.value.message, False)
    assert worker.sessions == {}
    assert sqlite_path(str(tmp_path), "tok-offline").stat().st_size > 0  # the store (schema) exists
    with pytest.raises(DomainError):  # the worker stays usable: a second attempt fails the same way
        worker.connect("tok-offline")


def _neonize_settings(tmp_path, proxy: str, **overrides):
    from chalicelib.core.settings import Settings

    values = dict(stage="test", whatsapp_driver="neonize", neonize_workers=1, neonize_data_dir=str(tmp_path),
                  neonize_proxy=proxy, connect_wait_seconds=1.0, neonize_start_spacing_seconds=0.01)
    values.update(overrides)
    return Settings(**values)


class Callbacks:
    def __init__(self):
        self.states: list[tuple] = []
        self.events: list[tuple] = []
        self.closed: list[tuple] = []

    def on_state(self, token, state):
        self.states.append((token, state))

    def on_event(self, token, type, event, extra=None):
        self.events.append((token, type))

    def on_closed(self, token, reason, logged_out):
        self.closed.append((token, reason, logged_out))



def test_a_killed_worker_is_replaced_and_its_sessions_restarted(tmp_path):
    from session_host.drivers.neonize import WORKER_CRASHED, NeonizeDriver

    hole = BlackHole()
    callbacks = Callbacks()
    driver = NeonizeDriver(callbacks, _neonize_settings(tmp_path, f"socks5://127.0.0.1:{hole.port}"))
    try:
        started = time.monotonic()
        state = driver.connect("tok-hang", os_name="Chrome")  # the dial hangs: connect returns after its wait
        assert time.monotonic() - started < 10
        assert (state.connected, state.logged_in, state.last_error) == (False, False, None)
        assert driver.tokens() == ["tok-hang"] and len(hole.accepted) == 1
        (victim,) = driver.worker_pids()

        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: driver.worker_pids() and driver.worker_pids()[0] != victim and len(hole.accepted) == 2,
              what="a new worker dialling again")
        assert driver.tokens() == ["tok-hang"]
        assert ("tok-hang", WORKER_CRASHED) in [(t, s.last_error) for t, s in callbacks.states]
        assert callbacks.closed == []
    finally:
        started = time.monotonic()
        driver.close(grace=1.0)  # a pending dial blocks stop() ~60 s: the worker is ended regardless
        assert time.monotonic() - started < 10
        assert driver.worker_pids() == []
        hole.close()


def _children_states(pid: int) -> dict[int, str]:
    """pid -> "<state letter> <command>" (Z = defunct) of every child of `pid`, from /proc."""
    states = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                stat = Path(f"/proc/{child}/stat").read_text()
            except FileNotFoundError:
                continue
            command = stat.split("(", 1)[1].rsplit(")", 1)[0]
            states[int(child)] = f"{stat.rsplit(')', 1)[1].split()[0]} {command}"
    return states


def test_workers_leave_no_defunct_children(tmp_path):
    """neonize's import runs `uname -a` through os.popen twice and drops the pipes: without
    load_neonize() each worker kept two `[sh] <defunct>` children for its whole life."""
    from session_host.drivers.neonize import NeonizeDriver

    driver = NeonizeDriver(Callbacks(), _neonize_settings(tmp_path, f"socks5://127.0.0.1:{_closed_port()}",
                                                          neonize_workers=2))
    try:
        for token in ("tok-a", "tok-b"):  # a worker that answered has loaded neonize (the dial is refused)
            with pytest.raises(DomainError, match="connection refused"):
                driver.connect(token, os_name="Chrome")
        pids = driver.worker_pids()
        assert len(pids) == 2
        def defunct() -> list[str]:
            return [f"{pid}>{c} {state}" for pid in pids for c, state in _children_states(pid).items()
                    if state.startswith("Z")]

        # A child another thread of the worker is about to reap (a library's subprocess) is defunct for a
        # moment; the defect was children left defunct for the worker's whole life: they never go away.
        wait_for(lambda: not defunct(), timeout=5.0, what="no defunct children of the workers")
    finally:
        driver.close(grace=1.0)


def test_the_host_reports_a_connect_without_network_as_an_error_status(aws, tmp_path):
    from chalicelib import sessions
    from chalicelib.bus import Bus
    from chalicelib.core.models import SessionModel
    from session_host.host import SessionHost

    settings = _neonize_settings(tmp_path, f"socks5://127.0.0.1:{_closed_port()}", host_heartbeat_seconds=0.5,
                                 command_timeout_seconds=15)
    host = SessionHost(settings, host_id="host-neonize")
    host.start()
    try:
        session = sessions.create_session("tok-net", "tok-net", "Chrome")
        started = time.monotonic()
        with pytest.raises(DomainError) as failure:
            Bus(settings=settings).command(session, ops.CONNECT, ops.Connect(events=["All"]), place=True)
        assert time.monotonic() - started < 10
        assert failure.value.status == 500 and "connection refused" in failure.value.message
        row = SessionModel.get("tok-net", consistent_read=True)
        assert (row.connected, row.logged_in, row.auto_connect, row.owner_host) == (False, False, False, None)
        assert row.last_error.startswith("Failed to connect: failed to dial whatsapp web websocket")
        assert host.driver.tokens() == []
    finally:
        host.stop(grace_seconds=5)
    assert host.driver.worker_pids() == []


class FakeGo:
    """Stands in for the Go library of one client: records what neonize would hand to whatsmeow."""

    def __init__(self):
        self.sent: list[tuple] = []

    def SendMessage(self, uuid, to, to_len, message, message_len):  # noqa: N802 - the Go export's name
        self.sent.append((N.JID.FromString(to), WAMessage.FromString(message)))
        return N.SendMessageReturnFunction(SendResponse=N.SendResponse(ID="3EB0FAKE", Timestamp=NOW)) \
            .SerializePartialToString()


def test_send_text_builds_a_plain_conversation_message(worker):
    session = _session_with_handlers(worker, "tok-send")
    with pytest.raises(DomainError) as not_yet:
        worker.send_text("tok-send", "15551234567", "hello")
    assert not_yet.value.message == "not logged in"
    session.state.logged_in = True
    fake = FakeGo()
    session.client._NewClient__client = fake
    sent = worker.send_text("tok-send", "+1 (555) 123-4567", "hi @15550001111")
    assert sent == {"Id": "3EB0FAKE", "Timestamp": "2025-10-09T08:53:20Z"}
    ((jid, message),) = fake.sent
    assert (jid.User, jid.Server, jid.Device) == ("15551234567", "s.whatsapp.net", 0)
    # A Message, not neonize's str path: no mention parsing, no extendedTextMessage, no group lookups.
    assert [f.name for f, _ in message.ListFields()] == ["conversation"] and message.conversation == "hi @15550001111"
    worker.send_text("tok-send", "120363000000000000@g.us", "to a group")
    assert (fake.sent[-1][0].User, fake.sent[-1][0].Server) == ("120363000000000000", "g.us")


def test_media_messages_are_built_from_the_upload():
    from neonize.proto import Neonize_pb2 as Proto

    from session_host.drivers.base import OutboundMedia
    from session_host.drivers.neonize_messages import media_message

    upload = Proto.UploadResponse(url="https://mmg.example/u", DirectPath="/v/t62/x", MediaKey=b"k" * 32,
                                  FileEncSHA256=b"e" * 32, FileSHA256=b"s" * 32, FileLength=1234)
    image = media_message(OutboundMedia("image", b"", "image/png", "key", caption="look"), upload).imageMessage
    assert (image.URL, image.directPath, image.mimetype, image.caption, image.fileLength) == (
        "https://mmg.example/u", "/v/t62/x", "image/png", "look", 1234)
    voice = media_message(OutboundMedia("audio", b"", "audio/ogg", "key"), upload).audioMessage
    assert (voice.mimetype, voice.PTT) == ("audio/ogg; codecs=opus", True)  # plays inline as a voice note
    mp3 = media_message(OutboundMedia("audio", b"", "audio/mpeg", "key"), upload).audioMessage
    assert (mp3.mimetype, mp3.PTT) == ("audio/mpeg", False)
    doc = media_message(OutboundMedia("document", b"", "application/pdf", "key", file_name="invoice.pdf",
                                      caption="March"), upload).documentMessage
    assert (doc.fileName, doc.title, doc.mimetype, doc.caption, doc.mediaKey) == (
        "invoice.pdf", "invoice.pdf", "application/pdf", "March", b"k" * 32)


def test_every_media_kind_carries_the_requests_context_info():
    """WaGo's ContextInfo/Forward on a media send end up on the media message itself (issue 14, item 4)."""
    from neonize.proto import Neonize_pb2 as Proto

    from chalicelib.core import message_content
    from session_host.drivers.base import OutboundMedia
    from session_host.drivers.neonize_messages import media_message

    upload = Proto.UploadResponse(url="https://mmg.example/u", DirectPath="/v/t62/x", MediaKey=b"k" * 32,
                                  FileEncSHA256=b"e" * 32, FileSHA256=b"s" * 32, FileLength=1)
    context = message_content.context_info("3EB0QUOTED", "15550001111@s.whatsapp.net", {"conversation": "hi"},
                                           ["15550002222@s.whatsapp.net"], forwarded=True)
    for kind in ("image", "video", "audio", "document", "sticker"):
        message = media_message(OutboundMedia(kind, b"", "application/octet-stream", "key", context_info=context),
                                upload)
        info = getattr(message, f"{kind}Message").contextInfo
        assert (info.stanzaID, info.participant, info.quotedMessage.conversation, list(info.mentionedJID),
                info.isForwarded) == ("3EB0QUOTED", "15550001111@s.whatsapp.net", "hi",
                                      ["15550002222@s.whatsapp.net"], True), kind
    with pytest.raises(DomainError) as bad:
        media_message(OutboundMedia("image", b"", "image/png", "key",
                                    context_info={"quotedMessage": {"noSuchField": 1}}), upload)
    assert bad.value.status == 400 and bad.value.message.startswith("Invalid message content:")


def test_content_messages_become_the_real_protobufs(worker):
    from chalicelib.core import message_content

    session = _session_with_handlers(worker, "tok-content")
    session.state.logged_in = True
    fake = FakeGo()
    session.client._NewClient__client = fake
    worker.send_content("tok-content", "15551234567", message_content.location(48.8584, 2.2945, "Eiffel Tower"))
    worker.send_content("tok-content", "15551234567",
                        message_content.revoke("15551234567@s.whatsapp.net", "3EB0OLD"))
    worker.send_content("tok-content", "15551234567",
                        message_content.reaction("15551234567@s.whatsapp.net", "3EB0OLD", "👍", from_me=False))
    (_, location), (_, revoke), (_, reaction) = fake.sent
    assert (location.locationMessage.degreesLatitude, location.locationMessage.name) == (48.8584, "Eiffel Tower")
    assert (revoke.protocolMessage.type, revoke.protocolMessage.key.ID, revoke.protocolMessage.key.fromMe) == (
        0, "3EB0OLD", True)
    assert (reaction.reactionMessage.text, reaction.reactionMessage.key.remoteJID) == (
        "👍", "15551234567@s.whatsapp.net")


def test_polls_are_built_by_go_and_edits_and_replies_parse_into_protobufs(worker):
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import PollCreationMessage

    from chalicelib.core import message_content

    class PollGo(FakeGo):
        def BuildPollVoteCreation(self, uuid, name, options, options_len, selectable):  # noqa: N802
            self.poll = (name.decode(), N.ArrayString.FromString(options).data, selectable)
            built = WAMessage(pollCreationMessage=PollCreationMessage(name=name.decode(),
                                                                      selectableOptionsCount=selectable))
            return N.BuildMessageReturnFunction(Message=built).SerializePartialToString()

    session = _session_with_handlers(worker, "tok-poll")
    session.state.logged_in = True
    fake = PollGo()
    session.client._NewClient__client = fake
    worker.send_content("tok-poll", "15551234567", message_content.poll("Lunch?", ["Pizza", "Sushi"], 1))
    assert fake.poll == ("Lunch?", ["Pizza", "Sushi"], 1)  # VoteType.SINGLE
    assert fake.sent[-1][1].pollCreationMessage.name == "Lunch?"
    worker.send_content("tok-poll", "15551234567", message_content.edit("15551234567@s.whatsapp.net", "3EB0A", "new"))
    assert (fake.sent[-1][1].protocolMessage.type, fake.sent[-1][1].protocolMessage.editedMessage.conversation) == (
        14, "new")
    worker.send_content("tok-poll", "15551234567", message_content.text(
        "re", quoted_id="3EB0A", quoted_sender="15551234567@s.whatsapp.net", quoted={"conversation": "orig"}))
    context = fake.sent[-1][1].extendedTextMessage.contextInfo
    assert (context.stanzaID, context.participant, context.quotedMessage.conversation) == (
        "3EB0A", "15551234567@s.whatsapp.net", "orig")
    with pytest.raises(DomainError) as bad:
        worker.send_content("tok-poll", "15551234567", {"extendedTextMessage": {"text": "x", "contextInfo": {
            "quotedMessage": {"noSuchField": 1}}}})
    assert bad.value.status == 400 and bad.value.message.startswith("Invalid message content")
