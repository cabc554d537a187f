"""Sim calls over HTTP on the launched stack: ring, answer, hang up, reject, with Call webhooks that
say which transition happened, and /call/status following along."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.integration.test_session_lifecycle import _data
from tests.integration.test_sim_messaging import _login

pytestmark = pytest.mark.integration


def _call(stack, token: str, call_id: str) -> dict:
    return _data(stack.call("GET", f"/call/status?callID={call_id}", token))["call"]


def test_sim_call_lifecycle_and_webhooks(stack, receiver):
    _login(stack, receiver, "ann", "15550003001", ["Call"])
    _login(stack, receiver, "ben", "15550003002", ["Call"])

    made = _data(stack.call("POST", "/call/make", "ann", {"Phone": "15550003002"}))
    call_id = made["CallID"]
    assert (made["State"], made["Peer"]) == ("ringing", "15550003002@s.whatsapp.net")
    offer = wait_for(lambda: [c for c in _data(stack.call("GET", "/call/status", "ben"))["calls"]
                               if c["CallID"] == call_id], what="ben's ringing call")[0]
    assert (offer["State"], offer["Direction"], offer["Peer"]) == ("ringing", "incoming", "15550003001@s.whatsapp.net")
    assert _call(stack, "ann", call_id)["Direction"] == "outgoing"

    assert _data(stack.call("POST", "/call/accept", "ben", {"CallID": call_id}))["State"] == "active"
    assert wait_for(lambda: _call(stack, "ann", call_id)["State"] == "active", what="ann's call active")
    # accepting twice, or accepting one's own outgoing call, is refused
    assert _data(stack.call("POST", "/call/accept", "ben", {"CallID": call_id}), 409)
    assert _data(stack.call("POST", "/call/accept", "ann", {"CallID": call_id}), 409)

    assert _data(stack.call("POST", "/call/end", "ann", {"CallID": call_id}))["State"] == "ended"
    ended = wait_for(lambda: _call(stack, "ben", call_id)["State"] == "ended" and _call(stack, "ben", call_id),
                      what="ben's call ended")
    assert ended["Reason"] == "hangup" and ended["EndedAt"]
    assert _data(stack.call("POST", "/call/end", "ann", {"CallID": call_id}), 409) == "the call is ended"

    def transitions(token):
        return [(b["callEvent"], b.get("transition")) for b in receiver.of(token, "Call")
                if b["event"]["CallID"] == call_id]

    assert wait_for(lambda: len(transitions("ann")) >= 3 and len(transitions("ben")) >= 3, what="call webhooks")
    assert transitions("ann") == [("CallPlaced", "->ringing"), ("CallAccept", "ringing->active"),
                                  ("CallTerminate", "active->ended")]
    assert transitions("ben") == [("CallOffer", "->ringing"), ("CallAccept", "ringing->active"),
                                  ("CallTerminate", "active->ended")]

    # A rejected call
    second = _data(stack.call("POST", "/call/make", "ben", {"Phone": "15550003001"}))["CallID"]
    wait_for(lambda: any(c["CallID"] == second for c in _data(stack.call("GET", "/call/status", "ann"))["calls"]),
              what="ann's ringing call")
    assert _data(stack.call("POST", "/call/reject", "ann", {"CallID": second}))["State"] == "rejected"
    assert wait_for(lambda: _call(stack, "ben", second)["State"] == "rejected", what="ben sees the rejection")
    # WebRTC offer and playback on a finished call
    assert _data(stack.call("POST", "/call/webrtc/offer", "ben", {"callID": second, "type": "offer", "sdp": "v=0"}),
                 409) == "the call is rejected"
    assert _data(stack.call("POST", "/call/make", "ben", {"Phone": "15550003002"}), 400) \
        == "cannot call your own number"
    assert _data(stack.call("POST", "/call/make", "ben", {"Phone": "15550003999"}), 404) \
        == "15550003999 is not on WhatsApp"
