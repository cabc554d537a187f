"""Fencing pieces on their own: the lease's monotonic deadline and terms, held epochs, the send claim's
take-over after a host lost a session, the lease timing check, and secrets kept out of log lines."""

from __future__ import annotations

import json
import logging

import pytest

from chalicelib.core import outbox, redact
from chalicelib.core.settings import ConfigurationError, Settings
from session_host.fencing import Fenced, Holdings, Lease


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_deadline_counts_from_when_the_renewal_was_sent_and_a_lapse_opens_a_new_term():
    clock = Clock()
    lease = Lease(lease_seconds=4, margin_seconds=0.5, clock=clock)
    holdings = Holdings("h1", lease)
    lease.renewed(sent_at=100.0)
    holdings.hold("t", 7)
    clock.now = 103.4
    assert holdings.check("t") == 7
    clock.now = 103.5  # lease - margin after the renewal was *sent*, however late its answer came
    with pytest.raises(Fenced):
        holdings.check("t")
    lease.renewed(sent_at=103.0)  # a renewal sent before the deadline (a slow answer) keeps the term
    clock.now = 105.0
    assert holdings.check("t") == 7 and holdings.stale() == []
    clock.now = 120.0  # paused: the deadline passed; the next renewal succeeds...
    lease.renewed(sent_at=120.0)
    with pytest.raises(Fenced):  # ...but what was held before it stays void until re-checked
        holdings.check("t")
    assert holdings.stale() == ["t"]
    holdings.hold("t", 8)  # taken back under a raised epoch
    assert holdings.check("t") == 8


def test_a_send_claim_left_by_a_host_that_lost_the_session(aws):
    sent: list[str] = []

    def send() -> dict:
        sent.append("x")
        return {"Id": "3EB0A", "Timestamp": "2026-01-01T00:00:00Z"}

    def crashing() -> dict:
        raise SystemExit("the host died after WhatsApp took it")

    with pytest.raises(SystemExit):
        outbox.send_once("tok", "3EB0A", "text", "1555", crashing, epoch=3, host_id="old")
    from chalicelib.core.models import MessageModel

    # SystemExit is not an Exception: the claim stays `sending`, as with a SIGKILL
    assert MessageModel.get("tok", "3EB0A").status == "sending"
    with pytest.raises(outbox.SendInProgress):  # same epoch: the first send may still be running
        outbox.send_once("tok", "3EB0A", "text", "1555", send, epoch=3, host_id="old")
    with pytest.raises(outbox.OutcomeUnknown):  # new owner, driver cannot reuse the id: never resent
        outbox.send_once("tok", "3EB0A", "text", "1555", send, epoch=4, host_id="new")
    with pytest.raises(outbox.OutcomeUnknown):  # and every later retry says the same
        outbox.send_once("tok", "3EB0A", "text", "1555", send, epoch=4, host_id="new", reuses_id=True)
    assert sent == []

    with pytest.raises(SystemExit):
        outbox.send_once("tok", "3EB0B", "text", "1555", crashing, epoch=3, host_id="old")
    result = outbox.send_once("tok", "3EB0B", "text", "1555", send, epoch=4, host_id="new", reuses_id=True)
    assert result["Id"] == "3EB0A" and sent == ["x"]  # resent with the same id: WhatsApp keeps one message
    assert outbox.send_once("tok", "3EB0B", "text", "1555", send, epoch=4, host_id="new") == result
    assert sent == ["x"]


def test_a_lease_that_the_heartbeat_cannot_keep_is_refused_at_start():
    with pytest.raises(ConfigurationError, match="must exceed HOST_HEARTBEAT_SECONDS"):
        Settings(stage="test", host_lease_seconds=4, host_heartbeat_seconds=3, host_lease_margin_seconds=1.5) \
            .check_lease_timing()
    Settings(stage="test").check_lease_timing()  # defaults: 15 s lease, 5 s heartbeat, 1.875 s margin
    assert Settings(stage="test").lease_margin_seconds == 15 / 8


def test_secrets_become_fingerprints_in_log_lines():
    import io

    from chalicelib.core.observability import logger

    redact.register("a-registered-session-token")
    (handler,) = logging.getLogger(logger.service).handlers  # the gateway's own handler, with its filter
    captured = io.StringIO()
    previous = handler.setStream(captured)
    try:
        _log_with_secrets(logger)
    finally:
        handler.setStream(previous)
    out = captured.getvalue()
    for secret in ("a-registered-session-token", "the-token-itself", "whsec-1", '"pw"'):
        assert secret not in out
    first = json.loads(out.splitlines()[0])
    assert first["token"] == redact.fingerprint("the-token-itself") and first["other"] == "kept"
    assert first["message"] == f"connect for {redact.fingerprint('a-registered-session-token')}"
    assert redact.fingerprint(first["token"]) == first["token"]  # idempotent through several filters
    assert any(isinstance(f, redact.RedactSecrets) for f in handler.filters)


def _log_with_secrets(logger) -> None:
    logger.info("connect for a-registered-session-token", extra={"token": "the-token-itself", "secret": "whsec-1",
                                                                 "turn_credential": "pw", "other": "kept"})
    try:
        raise ValueError("boom a-registered-session-token")
    except ValueError:
        logger.exception("failed")


def test_placement_raises_the_epoch_and_waits_out_the_margin(aws):
    import time

    from chalicelib import sessions
    from chalicelib.bus import FAILING_OVER, Bus
    from chalicelib.core.errors import DomainError
    from chalicelib.core.models import HostModel, SessionModel

    settings = Settings(stage="test", host_lease_seconds=4, host_heartbeat_seconds=1, host_lease_margin_seconds=2)
    now = time.time()
    for host_id, heartbeat in (("fresh", now), ("lapsing", now - 5), ("dead", now - 7)):
        HostModel(host_id, command_queue_url=f"q-{host_id}", capacity=10, load=0, heartbeat_at=heartbeat,
                  started_at=0, status="up").save()
    bus = Bus(settings=settings)
    session = sessions.create_session("p1", "p1", "Chrome")
    assert bus.place(session).host_id == "fresh" and SessionModel.get("p1").epoch == 1
    SessionModel("p1").update(actions=[SessionModel.owner_host.set("lapsing")])
    with pytest.raises(DomainError) as caught:  # its lease ran out 1 s ago, its margin has not: wait
        bus.place(SessionModel.get("p1", consistent_read=True))
    assert (caught.value.status, caught.value.message) == (503, FAILING_OVER)
    SessionModel("p1").update(actions=[SessionModel.owner_host.set("dead")])
    assert bus.place(SessionModel.get("p1", consistent_read=True)).host_id == "fresh"
    assert SessionModel.get("p1").epoch == 2  # every placement raises it


def test_a_host_that_lost_the_session_publishes_no_message_status(aws):
    """report_async_send publishes the MessageStatus under the session's fencing condition, like every
    other effect: not after another host adopted the session, not after this host's lease lapsed."""
    import boto3

    from chalicelib.core.contract import Command, Reply
    from chalicelib.core.models import SessionModel
    from session_host.publishing import EventSink

    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="message-status-test")["QueueUrl"]
    clock = Clock()
    lease = Lease(lease_seconds=4, margin_seconds=0.5, clock=clock)
    lease.renewed(sent_at=100.0)
    holdings = Holdings("h1", lease)
    sink = EventSink(Settings(stage="test"), sqs, queue, holdings)
    SessionModel("t", id=1, name="t", owner_host="h1", epoch=3).save()
    holdings.hold("t", 3)

    def report(message_id: str, ok: bool = True) -> None:
        command = Command(token="t", op="send_text", args={"id": message_id}, reply_to="discard",
                          deadline=clock.now + 30)
        reply = Reply.success(command.command_id, {"Id": message_id, "Timestamp": "2026-01-01T00:00:00Z"}) \
            if ok else Reply.failure(command.command_id, "No session", 500)
        sink.report_async_send(command, reply)

    def published() -> list[str]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(m["Body"])["event"]["Id"] for m in messages]

    report("M1")  # held under the row's epoch: published
    assert published() == ["M1"]

    clock.now = 104.0  # the lease lapsed (not renewed for lease - margin): the host may not publish
    report("M2")
    report("M3", ok=False)
    assert published() == []

    lease.renewed(sent_at=104.0)
    holdings.hold("t", 3)  # this host still believes it holds epoch 3, but another host adopted it
    SessionModel("t").update(actions=[SessionModel.owner_host.set("h2"), SessionModel.epoch.set(4)])
    report("M4")
    assert published() == []
    holdings.drop("t")  # fenced and dropped: a late report of a command it had refused
    report("M5", ok=False)
    assert published() == []
    assert SessionModel.get("t", consistent_read=True).event_seq == 1  # no sequence number taken either

    SessionModel("t").update(actions=[SessionModel.owner_host.remove()])  # released: no host owns it
    report("M6", ok=False)
    assert published() == ["M6"]


def test_a_failed_task_logs_its_lane_the_session_token_as_a_fingerprint():
    """A host's command lanes are keyed by session token; a task that raised logged `"lane": "<token>"`
    (a token shorter than redact's registration minimum was not scrubbed anywhere)."""
    import io

    from chalicelib.core.observability import logger
    from session_host.commands import KeyedExecutor

    (handler,) = logging.getLogger(logger.service).handlers
    captured = io.StringIO()
    previous = handler.setStream(captured)
    lanes = KeyedExecutor(1, name="test-lane")
    try:
        lanes.submit("tk1", lambda: 1 / 0)
        assert lanes.wait_idle(5)
    finally:
        handler.setStream(previous)
    line = json.loads(captured.getvalue().splitlines()[0])
    assert line["message"] == "task failed" and line["lane"] == redact.fingerprint("tk1")
    assert '"tk1"' not in captured.getvalue()
