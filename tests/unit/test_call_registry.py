"""The call state machine, the registry's conditional transitions, and TURN credential derivation."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from chalicelib.core.calls import states
from chalicelib.core.calls.states import InvalidTransition, next_state
from chalicelib.core.calls.turn import ice_servers, rest_credentials, turn_status, webrtc_config
from chalicelib.core.settings import Settings


@pytest.mark.parametrize("state,action,expected", [
    ("ringing", "accept", "active"), ("ringing", "reject", "rejected"), ("ringing", "end", "ended"),
    ("ringing", "fail", "failed"), ("active", "end", "ended"), ("active", "fail", "failed"),
])
def test_allowed_transitions(state, action, expected):
    assert next_state(state, action) == expected


@pytest.mark.parametrize("state,action", [
    ("active", "accept"), ("active", "reject"), ("ended", "end"), ("ended", "accept"), ("rejected", "end"),
    ("failed", "end"), ("rejected", "accept"), ("failed", "fail"),
])
def test_forbidden_transitions(state, action):
    with pytest.raises(InvalidTransition) as info:
        next_state(state, action)
    assert state in str(info.value)


def test_unknown_action_and_state_set():
    with pytest.raises(ValueError):
        next_state("ringing", "explode")
    assert set(states.TERMINAL) == {"ended", "rejected", "failed"}
    assert all(not states.is_terminal(s) for s in ("ringing", "active"))
    # every target state is in the documented set
    assert {to for to in states.TRANSITIONS.values()} <= set(states.STATES)


def test_registry_lifecycle(aws):
    from chalicelib.core.calls.registry import CallNotFound, CallRegistry

    clock = iter(range(100, 200)).__next__
    registry = CallRegistry(clock=lambda: float(clock()))
    call = registry.open("alice", "C1", "155@s.whatsapp.net", "outgoing", ring_tokens=["bob"])
    assert (call.state, call.direction, call.ring_tokens) == ("ringing", "outgoing", ["bob"])
    assert registry.open("alice", "C1", "x", "outgoing") is None  # a repeated offer opens nothing
    previous, moved = registry.move("alice", "C1", "accept", link_token="bob")
    assert (previous, moved.state, moved.link_token) == ("ringing", "active", "bob")
    assert registry.get("alice", "C1").answered_at is not None
    with pytest.raises(InvalidTransition):
        registry.move("alice", "C1", "reject")
    previous, ended = registry.move("alice", "C1", "end", reason="hangup")
    assert (previous, ended.state, ended.reason) == ("active", "ended", "hangup")
    assert registry.get("alice", "C1").ended_at is not None
    with pytest.raises(InvalidTransition):
        registry.move("alice", "C1", "end")
    with pytest.raises(CallNotFound):
        registry.move("alice", "nope", "end")
    assert registry.get("bob", "C1") is None  # keyed per session: another token never sees it

    registry.open("alice", "C2", "p", "incoming")
    assert [c.call_id for c in registry.list("alice")] == ["C2", "C1"]  # newest first
    registry.set_leg("alice", "C2", "connected", host_id="h1")
    got = registry.get("alice", "C2")
    assert (got.webrtc, got.host_id) == ("connected", "h1")
    registry.set_leg("alice", "missing", "closed")  # a vanished call is not recreated
    assert registry.get("alice", "missing") is None
    with pytest.raises(ValueError):
        registry.set_leg("alice", "C2", "dancing")
    assert got.public()["State"] == "ringing" and got.public()["WebRTC"] == "connected"


def test_registry_race_loses_cleanly(aws):
    from chalicelib.core.calls.registry import CallRegistry
    from chalicelib.core.models import CallModel

    registry = CallRegistry()
    registry.open("t", "C", "p", "incoming")
    stale = CallModel.get("t", "C")
    registry.move("t", "C", "reject")
    # A writer holding the stale ringing item cannot accept it any more.
    from pynamodb.exceptions import UpdateError

    with pytest.raises(UpdateError):
        stale.update(actions=[CallModel.state.set("active")], condition=CallModel.state == "ringing")
    with pytest.raises(InvalidTransition):
        registry.move("t", "C", "accept")


# -- ICE and TURN -----------------------------------------------------------------------------------


def _settings(**values) -> Settings:
    return Settings(stage="test", **values)


def test_no_servers_configured_means_empty_ice_servers():
    settings = _settings()
    assert ice_servers(settings) == []
    assert turn_status(settings) == {"enabled": False, "status": "disabled"}
    assert webrtc_config(settings)["iceServers"] == []


def test_static_turn_and_stun():
    settings = _settings(ice_stun_urls="stun:stun.example.org:3478, stun:b.example.org",
                         turn_urls="turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349",
                         turn_username="u", turn_credential="p")
    assert ice_servers(settings) == [
        {"urls": ["stun:stun.example.org:3478", "stun:b.example.org"]},
        {"urls": ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
         "username": "u", "credential": "p"},
    ]
    assert turn_status(settings) == {"enabled": True, "status": "enabled", "credentials": "static"}


def test_rest_api_credentials_match_coturn():
    username, password = rest_credentials("s3cret", "wago", 3600, now=1_700_000_000.7)
    assert username == "1700003600:wago"
    expected = base64.b64encode(hmac.new(b"s3cret", b"1700003600:wago", hashlib.sha1).digest()).decode()
    assert password == expected
    settings = _settings(turn_urls="turn:t.example.org", turn_shared_secret="s3cret", turn_ttl_seconds=600,
                         turn_user="gw", turn_username="ignored", turn_credential="ignored")
    (server,) = ice_servers(settings, now=1000)
    assert server["username"] == "1600:gw"
    assert server["credential"] == rest_credentials("s3cret", "gw", 600, 1000)[1]
    assert turn_status(settings) == {"enabled": True, "status": "enabled", "credentials": "ephemeral", "ttl": 600}
    # later requests get later expiries
    assert ice_servers(settings, now=2000)[0]["username"] == "2600:gw"


def test_turn_urls_without_credentials_are_left_out():
    settings = _settings(turn_urls="turn:t.example.org", turn_username="only-user")
    assert ice_servers(settings) == []
    assert turn_status(settings) == {"enabled": False, "status": "misconfigured"}
