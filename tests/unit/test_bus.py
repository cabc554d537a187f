"""The command bus (Lambda side): placement by conditional write, the reply wait, the timeout envelope."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from chalicelib.core import ops
from chalicelib.core.contract import HOST_TIMEOUT, Command, Reply
from chalicelib.core.errors import DomainError
from chalicelib.core.settings import Settings


def _host(host_id: str, *, heartbeat_age: float = 0.0, load: int = 0, capacity: int = 10, status: str = "up",
          queue: bool = True):
    from chalicelib.core.models import HostModel

    url = ""
    if queue:
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName=f"wago-test-host-{host_id}.fifo",
                               Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"})["QueueUrl"]
    host = HostModel(host_id, command_queue_url=url, capacity=capacity, load=load,
                     heartbeat_at=time.time() - heartbeat_age, started_at=time.time(), status=status)
    host.save()
    return host


def _session(token: str = "tok"):
    from chalicelib import sessions

    return sessions.create_session(token, token, "Chrome")


def _bus(**overrides):
    from chalicelib.bus import Bus

    return Bus(settings=Settings(stage="test", **overrides))


def test_placement_skips_stale_full_and_draining_hosts(aws):
    from chalicelib.core.models import SessionModel

    _host("stale", heartbeat_age=60)
    _host("full", load=10)
    _host("draining", status="draining")
    _host("good", load=3)
    session = _session()
    assert _bus().place(session).host_id == "good"
    assert SessionModel.get("tok", consistent_read=True).owner_host == "good"


def test_two_concurrent_placements_agree_on_one_owner(aws):
    from chalicelib.core.models import HostModel, SessionModel

    _host("a", load=0, capacity=10)
    _host("b", load=1, capacity=20)  # ratio 0.05: above a's 0/10 now, below a's 1/10 once a is placed
    seen_by_first = _session()
    seen_by_second = SessionModel.get("tok", consistent_read=True)  # both read "unowned"
    first = _bus().place(seen_by_first)
    assert first.host_id == "a"
    # The placement raised a's load above b's, so the second caller would pick b; the conditional
    # write refuses, and it adopts the first caller's choice instead.
    assert _bus().candidates()[0].host_id == "b"
    second = _bus().place(seen_by_second)
    assert second.host_id == "a"
    assert SessionModel.get("tok", consistent_read=True).owner_host == "a"
    assert int(HostModel.get("a").load) == 1 and int(HostModel.get("b").load) == 1


def test_a_session_whose_owner_went_stale_is_placed_again(aws):
    from chalicelib.core.models import SessionModel

    _host("dead", heartbeat_age=60)
    _host("alive")
    session = _session()
    session.update(actions=[SessionModel.owner_host.set("dead")])
    bus = _bus(host_lease_seconds=15)
    assert bus.live_owner(session) is None
    assert bus.place(session).host_id == "alive"


def test_no_live_host_is_a_503(aws):
    _host("stale", heartbeat_age=60)
    with pytest.raises(DomainError) as caught:
        _bus().place(_session())
    assert (caught.value.status, caught.value.message) == (503, "no session host available")


def test_unowned_session_without_placement_is_no_session(aws):
    _host("up")
    with pytest.raises(DomainError) as caught:
        _bus().command(_session(), ops.DISCONNECT)
    assert (caught.value.status, caught.value.message) == (500, "No session")


def test_the_command_lands_in_the_owners_fifo_queue(aws):
    host = _host("h1")
    session = _session()
    bus = _bus()
    with pytest.raises(DomainError):
        bus.command(session, ops.CONNECT, ops.Connect(events=["All"]), place=True, timeout=0.05)
    sqs = boto3.client("sqs", region_name="us-east-1")
    (message,) = sqs.receive_message(QueueUrl=host.command_queue_url, AttributeNames=["All"])["Messages"]
    command = Command.model_validate_json(message["Body"])
    assert (command.token, command.op, command.args) == ("tok", "connect", {"events": ["All"]})
    assert message["Attributes"]["MessageGroupId"] == "tok"
    assert message["Attributes"]["MessageDeduplicationId"] == command.command_id


def test_wait_reply_returns_the_hosts_reply(aws):
    from chalicelib.core.models import ReplyModel

    command = Command(token="t", op="logout", deadline=time.time() + 5)
    ReplyModel(command.command_id, token="t",
               body=Reply.failure(command.command_id, "No session").model_dump_json()).save()
    reply = _bus().wait_reply(command)
    assert (reply.ok, reply.error, reply.status) == (False, "No session", 500)


def _bus_on_a_fake_clock() -> tuple[Any, list[float], list[float]]:
    """A Bus whose clock starts at 1000.0 and whose sleeps only advance it: (bus, [now], sleeps)."""
    from chalicelib.bus import Bus

    now = [1000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    return Bus(settings=Settings(stage="test"), clock=lambda: now[0], sleep=sleep), now, sleeps


def test_waiting_is_bounded_and_backs_off(aws):
    from chalicelib.bus import MAX_POLL_DELAY

    bus, now, sleeps = _bus_on_a_fake_clock()
    command = Command(token="t", op="logout", deadline=now[0] + 10)
    with pytest.raises(DomainError) as caught:
        bus.wait_reply(command)
    assert (caught.value.status, caught.value.message) == (504, HOST_TIMEOUT)
    assert sleeps[:-1] == sorted(sleeps[:-1]) and max(sleeps) <= MAX_POLL_DELAY  # the last one ends at the deadline
    assert sum(sleeps) == pytest.approx(10.0) and len(sleeps) < 40


def test_the_first_reply_read_waits_until_three_in_four_replies_were_there(aws):
    """Reply times learned per operation place the first read at their 75th percentile, then reads
    every quarter of the 10th-90th percentile spread: a typical command costs one read."""
    from chalicelib.core.models import ReplyModel

    bus, now, sleeps = _bus_on_a_fake_clock()
    for ms in range(20, 40):  # 20 ms .. 39 ms: 10th percentile 22 ms, 75th 35 ms, 90th 38 ms
        bus._learn("logout", ms / 1000)
    command = Command(token="t", op="logout", deadline=now[0] + 5)
    ReplyModel(command.command_id, token="t", created_at=now[0] + 0.030,
               body=Reply.failure(command.command_id, "No session").model_dump_json()).save()
    bus.wait_reply(command, sent_at=now[0])
    assert sleeps == [pytest.approx(0.035)]  # one sleep, then the read that found the reply


def test_a_host_that_does_not_answer_gives_wagos_504_envelope(client, monkeypatch):
    import chalicelib.bus as bus_module
    from chalicelib.core.models import SessionModel

    _host("silent")
    assert client.init("Slow", "slowtoken").status_code == 200
    SessionModel("slowtoken").update(actions=[SessionModel.owner_host.set("silent")])
    monkeypatch.setattr(bus_module, "_bus", _bus(command_timeout_seconds=0.2))
    response = client.post("/session/disconnect", headers={"token": "slowtoken"})
    assert response.status_code == 504
    assert json.loads(response.body) == {"code": 504, "error": HOST_TIMEOUT, "success": False}


def test_a_gone_queue_is_skipped_when_placing(aws):
    from chalicelib.core.models import HostModel, SessionModel

    _host("gone", load=0)
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.delete_queue(QueueUrl=HostModel.get("gone").command_queue_url)
    other = _host("other", load=5)
    session = _session()
    with pytest.raises(DomainError) as caught:
        _bus().command(session, ops.CONNECT, place=True, timeout=0.05)
    assert caught.value.status == 504  # it reached "other" (nobody answers there in this test)
    assert SessionModel.get("tok", consistent_read=True).owner_host == "other"
    assert sqs.receive_message(QueueUrl=other.command_queue_url)["Messages"]


def test_a_command_over_sqss_message_limit_is_a_413_and_nothing_is_queued(aws):
    from chalicelib.bus import SQS_MAX_MESSAGE_BYTES

    host = _host("h1")
    session = _session()
    quoted = {"conversation": "\u00e9" * (SQS_MAX_MESSAGE_BYTES // 2)}  # 2 bytes each in UTF-8
    args = ops.SendContent(to="15550002222@s.whatsapp.net", content={"extendedTextMessage": {
        "text": "x", "contextInfo": {"stanzaID": "A", "participant": "1@s.whatsapp.net", "quotedMessage": quoted}}})
    with pytest.raises(DomainError) as caught:
        _bus().command(session, ops.SEND_CONTENT, args, place=True, timeout=0.05)
    assert caught.value.status == 413
    assert caught.value.message.startswith("Payload too large: the command for the session host would be ")
    sqs = boto3.client("sqs", region_name="us-east-1")
    assert not sqs.receive_message(QueueUrl=host.command_queue_url).get("Messages")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_body_within_the_limit_whose_command_is_not_is_a_413_not_a_500(client, mode, monkeypatch):
    """A command over SQS's message limit is refused before SQS is called: a 413, and an async send's
    record marked failed. Before, SQS refused it (InvalidParameterValue: a 500) and the record stayed
    `queued` for good. The request fields' own bounds (ContextInfo's sizes, Body's 65,536 characters)
    now keep a real command far under SQS's 1 MiB, so this backstop is exercised with a lower cap."""
    import chalicelib.bus as bus_module
    from chalicelib.core.models import MessageModel, SessionModel

    monkeypatch.setattr(bus_module, "SQS_MAX_MESSAGE_BYTES", 64 * 1024)
    _host("h1")
    client.init("big", "big-token")
    session = SessionModel.get("big-token")
    session.update(actions=[SessionModel.owner_host.set("h1")])  # placed on h1 (which never answers)
    body = {"Phone": "15550002222", "Body": "x" * 65536, "Id": f"BIG{mode}"}  # Body's own limit
    path = "/send/text" + ("?async=true" if mode == "async" else "")
    response = client.post(path, body, headers={"token": "big-token"})
    assert response.status_code == 413, response.json_body
    assert response.json_body["error"].startswith("Payload too large: the command for the session host")
    if mode == "async":
        record = MessageModel.get("big-token", "BIGasync", consistent_read=True)
        assert record.status == "failed" and record.error.startswith("Payload too large")
