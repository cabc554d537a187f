"""The host's call ops with a driver that cannot do calls (as neonize: events and reject only), and the
tracker turning driver Call events into registry transitions and webhook keys."""

from __future__ import annotations

import time

import boto3
import pytest

from chalicelib.core.contract import Command
from session_host.drivers.base import ClientState, Driver


class EventsOnlyDriver(Driver):
    """Logged-in clients that see call events and can reject, like neonize."""

    name = "neonize"

    def __init__(self, callbacks):
        super().__init__(callbacks)
        self.rejected = []

    def connect(self, token, jid=None, os_name=None): return ClientState(connected=True, logged_in=True)
    def pair_phone(self, token, phone): return "ABCD-EFGH"
    def disconnect(self, token): pass
    def logout(self, token): pass
    def forget(self, token): pass
    def send_text(self, token, to, body, message_id=None): return {}
    def send_media(self, token, to, media, message_id=None): return {}
    def send_content(self, token, to, content, message_id=None): return {}
    def download_media(self, token, kind, ref): return b""
    def mark_read(self, token, ids, chat, sender=None): pass
    def send_chat_presence(self, token, to, state, media=""): pass
    def send_presence(self, token, available): pass
    def subscribe_presence(self, token, jid): pass
    def state(self, token): return ClientState(connected=True, logged_in=True)
    def tokens(self): return ["t"]
    def check_users(self, token, phones): return []
    def user_info(self, token, phones): return {}
    def user_avatar(self, token, phone, preview): return {}
    def contacts(self, token): return {}
    def list_groups(self, token): return []
    def group_info(self, token, group): return {}
    def create_group(self, token, name, participants): return {}
    def update_group_participants(self, token, group, phones, action): return []
    def group_invite_link(self, token, group, reset): return ""
    def join_group(self, token, code): return ""
    def leave_group(self, token, group): pass
    def set_group_name(self, token, group, name): pass
    def set_group_topic(self, token, group, topic): pass
    def set_group_photo(self, token, group, data, media_key, sha256): return ""
    def set_group_announce(self, token, group, value): pass
    def set_group_locked(self, token, group, value): pass

    def reject_call(self, token, call_id, peer, link_token):
        self.rejected.append((token, call_id, peer))


@pytest.fixture
def manager(aws):
    from chalicelib.core.models import SessionModel
    from chalicelib.core.settings import get_settings
    from session_host.sessions import HostSessions

    settings = get_settings()
    sqs = boto3.client("sqs", region_name=settings.region)
    SessionModel("t", id=1, name="t", owner_host="h1").save()  # placed on this host (the row has no epoch yet)
    running = HostSessions("h1", settings, sqs, sqs.get_queue_url(QueueName=settings.events_queue_name)["QueueUrl"],
                           driver_factory=EventsOnlyDriver)
    running.holdings.hold("t", 0)
    yield running
    running.close()


def _run(manager, op, **args):
    reply = manager.handle(Command(token="t", op=op, args=args, deadline=time.time() + 30))
    return reply.status, (reply.data if reply.ok else reply.error)


def _offer(manager, call_id="C1"):
    body = {"From": "155@s.whatsapp.net", "Timestamp": "", "CallCreator": "155@s.whatsapp.net", "CallID": call_id}
    manager.callbacks.on_event("t", "Call", body, {"callEvent": "CallOffer"})


def test_unsupported_call_operations_are_clear_501s(manager):
    assert _run(manager, "call.make", to="155") == (501, "the neonize driver cannot place WhatsApp calls")
    _offer(manager)
    assert _run(manager, "call.accept", call_id="C1") == (501, "the neonize driver cannot accept WhatsApp calls")
    status, error = _run(manager, "call.offer", call_id="C1", sdp="v=0")
    assert status == 501 and "cannot carry WhatsApp call audio" in error
    assert _run(manager, "call.play", call_id="C1", path="/x.wav")[0] == 501
    assert _run(manager, "call.accept", call_id="nope") == (404, "call not found")
    assert _run(manager, "call.stop", call_id="nope") == (404, "call not found")


def test_reject_works_and_end_on_ringing_declines(manager):
    _offer(manager, "C1")
    assert _run(manager, "call.reject", call_id="C1") == (200, {"Details": "Call rejected", "CallID": "C1",
                                                               "State": "rejected"})
    assert manager.driver.rejected == [("t", "C1", "155@s.whatsapp.net")]
    assert _run(manager, "call.reject", call_id="C1") == (409, "the call is rejected")
    _offer(manager, "C2")
    assert _run(manager, "call.end", call_id="C2")[1]["State"] == "rejected"


def test_tracker_follows_driver_events(manager):
    tracker = manager.sink.call_tracker
    body = {"From": "155@s.whatsapp.net", "CallCreator": "155@s.whatsapp.net", "CallID": "C9"}
    extra = tracker.on_driver_event("t", body, {"callEvent": "CallOffer", "simLinkToken": "other"})
    assert extra == {"callEvent": "CallOffer", "state": "ringing", "previousState": "", "transition": "->ringing"}
    assert manager.sink.call_registry.get("t", "C9").link_token == "other"
    assert tracker.on_driver_event("t", body, {"callEvent": "CallOffer"}) == {"callEvent": "CallOffer"}  # repeated
    extra = tracker.on_driver_event("t", {**body, "Reason": "timeout"}, {"callEvent": "CallTerminate"})
    assert extra["transition"] == "ringing->ended"
    call = manager.sink.call_registry.get("t", "C9")
    assert (call.state, call.reason) == ("ended", "timeout")
    # nothing left to move: the event passes with the current state and no transition
    assert tracker.on_driver_event("t", body, {"callEvent": "CallAccept"}) == {"callEvent": "CallAccept",
                                                                               "state": "ended"}
    assert tracker.on_driver_event("t", body, {"callEvent": "CallRelayLatency"}) == {"callEvent": "CallRelayLatency"}
