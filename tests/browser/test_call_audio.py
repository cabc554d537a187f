"""Two browsers talk through a sim call on the session host: each one's fake microphone plays a tone
from a generated WAV, and each hears the other's tone at its frequency (the call page's own analyser).
Hang-up from one page frees the call on both sides."""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_for
from tests.integration.test_local_stack import Launcher
from tests.integration.test_session_lifecycle import FAST, Stack, _data
from tests.integration.test_sim_messaging import Receiver, _login

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ALICE_HZ, BOB_HZ = 1000.0, 600.0
CONNECT_BOUND_MS = 5000


@pytest.fixture
def call_stack():

    launcher = Launcher({**FAST, "ICE_HOST_ADDRESSES": "127.0.0.1", "CALL_INACTIVITY_SECONDS": "15"})
    running = Stack(launcher)
    try:
        launcher.wait_ready()
        yield running
    finally:
        launcher.close()


def _open_page(browser, base: str, token: str, call_id: str):
    page = browser.new_page()
    page.goto(f"{base}/call/page")
    page.fill("#token", token)
    page.fill("#callID", call_id)
    page.uncheck("#processing")  # a steady test tone: no noise suppression or gain control against it
    page.click("#connect")
    return page


def _state(page) -> dict:
    return page.evaluate("() => Object.assign({}, window.callPage)")


def test_two_browsers_hear_each_other_through_a_sim_call(call_stack, launch_browser):
    stack = call_stack
    receiver = Receiver()
    try:
        _login(stack, receiver, "alice", "15550004001", ["Call"])
        _login(stack, receiver, "bob", "15550004002", ["Call"])
        call_id = _data(stack.call("POST", "/call/make", "alice", {"Phone": "15550004002"}))["CallID"]
        wait_for(lambda: any(c["CallID"] == call_id for c in _data(stack.call("GET", "/call/status", "bob"))["calls"]),
                  what="bob's ringing call")
        _data(stack.call("POST", "/call/accept", "bob", {"CallID": call_id}))

        started = time.monotonic()
        alice = _open_page(launch_browser(ALICE_HZ), stack.launcher.base, "alice", call_id)
        bob = _open_page(launch_browser(BOB_HZ), stack.launcher.base, "bob", call_id)
        for page in (alice, bob):
            page.wait_for_function("() => window.callPage.connection === 'connected'", timeout=20000)
            state = _state(page)
            assert state["error"] == "" and 0 < state["offerToConnectedMs"] < CONNECT_BOUND_MS, state

        def hears(page, hz):
            state = _state(page)
            return abs(state["peakHz"] - hz) <= 5 and state["levelDb"] > -45 and state

        heard_by_bob = wait_for(lambda: hears(bob, ALICE_HZ), timeout=20, what="bob hearing alice's tone")
        heard_by_alice = wait_for(lambda: hears(alice, BOB_HZ), timeout=20, what="alice hearing bob's tone")
        print(f"\nconnected+heard in {time.monotonic() - started:.1f} s; bob hears {heard_by_bob['peakHz']:.1f} Hz "
              f"at {heard_by_bob['levelDb']:.1f} dB; alice hears {heard_by_alice['peakHz']:.1f} Hz "
              f"at {heard_by_alice['levelDb']:.1f} dB; offer->connected {heard_by_alice['offerToConnectedMs']:.0f} / "
              f"{heard_by_bob['offerToConnectedMs']:.0f} ms")
        for token in ("alice", "bob"):
            assert _data(stack.call("GET", f"/call/status?callID={call_id}", token))["call"]["WebRTC"] == "connected"

        # Hang up on alice's page: the call ends on both sides and both legs close.
        alice.click("#hangup")

        def freed(token):
            call = _data(stack.call("GET", f"/call/status?callID={call_id}", token))["call"]
            return call["State"] == "ended" and call["WebRTC"] == "closed" and call

        wait_for(lambda: freed("alice"), timeout=10, what="alice's call freed")
        wait_for(lambda: freed("bob"), timeout=10, what="bob's call freed")
        bob.wait_for_function("() => window.callPage.callState === 'ended' && window.callPage.connection === 'closed'",
                              timeout=10000)
    finally:
        receiver.close()
