"""The host <-> Lambda wire contract: commands and replies."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chalicelib.core.contract import CONTRACT_VERSION, Command, Reply, WireEvent


def test_command_round_trips_and_gets_a_unique_id():
    first = Command(token="t1", op="connect", args={"events": ["All"]}, deadline=100.0)
    second = Command(token="t1", op="connect", deadline=100.0)
    assert first.command_id != second.command_id and first.v == CONTRACT_VERSION
    again = Command.model_validate_json(first.model_dump_json())
    assert again == first and again.reply_to is None


def test_command_expiry_is_by_deadline():
    command = Command(token="t", op="logout", deadline=50.0)
    assert not command.expired(now=50.0)
    assert command.expired(now=50.001)


@pytest.mark.parametrize("bad", [
    {"token": "", "op": "connect", "deadline": 1},
    {"token": "t", "op": "connect"},
    {"token": "t", "op": "connect", "deadline": 1, "surprise": True},
    {"v": 2, "token": "t", "op": "connect", "deadline": 1},
])
def test_malformed_or_other_version_commands_are_refused(bad):
    with pytest.raises(ValidationError):
        Command.model_validate(bad)


def test_reply_success_and_failure():
    ok = Reply.success("c1", {"Details": "Disconnected"})
    assert (ok.ok, ok.status, ok.error, ok.data) == (True, 200, None, {"Details": "Disconnected"})
    failed = Reply.failure("c2", "No session")
    assert (failed.ok, failed.status, failed.error) == (False, 500, "No session")
    assert Reply.model_validate_json(failed.model_dump_json()) == failed
    with pytest.raises(ValidationError):
        Reply(command_id="c3", ok=False, status=42)


def test_wire_event_keeps_wago_shape():
    event = WireEvent(event_id="e", token="t", seq=3, ts=1.0, type="LoggedOut",
                      event={"OnConnect": False, "Reason": 401})
    assert event.wago_json() == {"type": "LoggedOut", "event": {"OnConnect": False, "Reason": 401}}
