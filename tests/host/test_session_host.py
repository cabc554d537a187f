"""The session host in-process on moto: commands through the bus, sim pairing, QR rotation, fencing,
adoption of orphaned sessions, graceful release, and the refusal to start with an unknown driver."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import boto3
import pytest

from chalicelib.core import ops
from chalicelib.core.settings import Settings
from tests.conftest import PROJECT_DIR, wait_for


def _settings(**overrides) -> Settings:
    values = dict(stage="test", whatsapp_driver="sim", host_heartbeat_seconds=0.2, host_lease_seconds=2.0,
                  command_timeout_seconds=10)
    values.update(overrides)
    return Settings(**values)



@pytest.fixture
def host(aws):
    from session_host.host import SessionHost

    running = SessionHost(_settings(), host_id="host-one")
    running.start()
    yield running
    if not running.stopping.is_set():
        running.stop(grace_seconds=5)


def _session(token: str):
    from chalicelib import sessions
    from chalicelib.core.models import SessionModel

    sessions.create_session(token, token, "Chrome")
    return SessionModel.get(token, consistent_read=True)


def _row(token: str):
    from chalicelib.core.models import SessionModel

    return SessionModel.get(token, consistent_read=True)


def _bus():
    from chalicelib.bus import Bus

    return Bus(settings=_settings())


def test_connect_scan_and_restore_through_the_bus(host):
    session = _session("t1")
    bus = _bus()
    data = bus.command(session, ops.CONNECT, ops.Connect(events=["Message"]), place=True)
    assert data == {"jid": "", "connected": True, "logged_in": False, "already_connected": False}
    row = _row("t1")
    assert row.owner_host == "host-one" and row.connected and not row.logged_in and row.events == ["Message"]
    assert row.qr_code.startswith("data:image/png;base64,") and row.qr_expires_at > time.time()
    jid = bus.command(row, ops.SIM_SCAN, ops.SimScan(phone="15550009999"))["jid"]
    row = _row("t1")
    assert (row.logged_in, row.jid, row.qr_code) == (True, jid, None)
    assert host.driver.tokens() == ["t1"]

    bus.command(row, ops.DISCONNECT)
    row = _row("t1")
    assert (row.owner_host, row.connected, row.auto_connect, row.jid) == (None, False, False, jid)
    assert host.driver.tokens() == []
    assert bus.command(row, ops.CONNECT, ops.Connect(), place=True)["logged_in"] is True  # device store: no new QR
    assert _row("t1").qr_code is None


def test_commands_for_a_session_owned_elsewhere_are_refused(host):
    from chalicelib.core.models import HostModel, SessionModel
    from session_host.dispatch import SESSION_MOVED

    session = _session("t2")
    bus = _bus()
    bus.command(session, ops.CONNECT, ops.Connect(), place=True)
    assert host.driver.tokens() == ["t2"]
    # The lease moved on: another live host took the session. This host must let go, not write.
    HostModel("someone-else", command_queue_url="", capacity=10, load=1, heartbeat_at=time.time() + 60,
              started_at=0, status="up").save()
    SessionModel("t2").update(actions=[SessionModel.owner_host.set("someone-else")])
    reply = bus.call(host_model(), "t2", ops.PAIR, ops.Pair(phone="15550001234"))
    assert (reply.ok, reply.status, reply.error) == (False, 409, SESSION_MOVED)
    assert host.driver.tokens() == []
    assert _row("t2").owner_host == "someone-else"


def host_model():
    from chalicelib.core.models import HostModel

    return HostModel.get("host-one", consistent_read=True)


def test_qr_rotates_then_times_out(aws):
    from session_host.host import SessionHost

    running = SessionHost(_settings(sim_qr_first_seconds=0.3, sim_qr_next_seconds=0.2, sim_qr_rotations=2),
                          host_id="host-qr")
    running.start()
    try:
        _bus().command(_session("t3"), ops.CONNECT, ops.Connect(), place=True)
        first = _row("t3").qr_code
        wait_for(lambda: _row("t3").qr_code not in (first, None), what="a rotated QR")
        row = wait_for(lambda: (r := _row("t3")).last_error and r, what="the pairing timeout")
        assert (row.last_error, row.connected, row.owner_host, row.qr_code, row.auto_connect) == (
            "QR code timed out", False, None, None, False)
        assert int(row.event_seq) == 3  # three QR events: the first code and two rotations
        assert running.driver.tokens() == []
    finally:
        running.stop(grace_seconds=5)


def test_a_host_that_cannot_renew_its_lease_stops_its_clients(host, monkeypatch):
    _bus().command(_session("t4"), ops.CONNECT, ops.Connect(), place=True)
    assert host.driver.tokens() == ["t4"]

    def unreachable(load):
        raise ConnectionError("endpoint unreachable")

    monkeypatch.setattr(host.registry, "heartbeat", unreachable)
    host.beat()  # one failure within the lease: nothing happens yet
    assert host.driver.tokens() == ["t4"] and not host.fenced
    # The local deadline (lease - margin after the last renewal was sent) passes without a renewal.
    wait_for(lambda: host.fenced and host.driver.tokens() == [], timeout=host.settings.host_lease_seconds + 2,
             what="fencing at the lease deadline")
    assert host.holdings.tokens() == {}


def test_a_host_whose_row_was_removed_fences_and_exits(host):
    from session_host.host import HostRemoved

    _bus().command(_session("t5"), ops.CONNECT, ops.Connect(), place=True)
    host.stopping.set()  # keep the background heartbeat out of the way
    host_model().delete()
    with pytest.raises(HostRemoved):
        host.beat()
    assert host.driver.tokens() == []


def test_orphans_of_a_dead_host_are_adopted_and_restored(host):
    from chalicelib.core.models import HostModel, SessionModel, SimDeviceModel

    for token, linked in (("t6", True), ("t7", False)):
        _session(token)
        SessionModel(token).update(actions=[SessionModel.owner_host.set("dead"), SessionModel.auto_connect.set(True),
                                            SessionModel.connected.set(True), SessionModel.logged_in.set(linked)])
        if linked:
            SimDeviceModel(SimDeviceModel.key(token), token=token, phone="15550007777",
                           jid="15550007777:3@s.whatsapp.net").save()
    _session("t8")  # never connected: nobody adopts it
    # The dead host's row last: orphans are found through it, and a row long dead with no orphans is
    # removed (a real host cannot gain sessions after its death; here they are written by hand).
    HostModel("dead", command_queue_url="", capacity=10, load=2, heartbeat_at=time.time() - 60,
              started_at=0, status="up").save()
    wait_for(lambda: sorted(host.driver.tokens()) == ["t6", "t7"], what="adoption")
    wait_for(lambda: _row("t6").logged_in and _row("t7").qr_code, what="restored state written")
    six, seven = _row("t6"), _row("t7")
    assert (six.owner_host, six.logged_in, six.jid) == ("host-one", True, "15550007777:3@s.whatsapp.net")
    assert (seven.owner_host, seven.logged_in) == ("host-one", False) and seven.qr_code  # unpaired: new QR
    assert _row("t8").owner_host is None


def test_graceful_stop_releases_sessions_for_another_host(aws):
    from chalicelib.core.models import HostModel
    from session_host.host import SessionHost

    running = SessionHost(_settings(), host_id="host-leaving")
    running.start()
    bus = _bus()
    session = _session("t9")
    bus.command(session, ops.CONNECT, ops.Connect(), place=True)
    bus.command(_row("t9"), ops.SIM_SCAN, ops.SimScan(phone="15550008888"))
    queue_url = running.queue_url
    running.stop(grace_seconds=5)
    row = _row("t9")
    assert (row.owner_host, row.connected, row.logged_in, row.auto_connect) == ("released", False, False, True)
    assert row.jid.startswith("15550008888:")
    with pytest.raises(HostModel.DoesNotExist):
        HostModel.get("host-leaving", consistent_read=True)
    sqs = boto3.client("sqs", region_name="us-east-1")
    assert queue_url not in sqs.list_queues().get("QueueUrls", [])

    successor = SessionHost(_settings(), host_id="host-next")
    successor.start()
    try:
        wait_for(lambda: successor.driver.tokens() == ["t9"], what="the successor restoring the session")
        assert wait_for(lambda: _row("t9").logged_in, what="logged in again")
    finally:
        successor.stop(grace_seconds=5)


def test_an_unknown_driver_is_refused_at_start_with_a_clear_message():
    env = {k: v for k, v in os.environ.items()}
    env.update(STAGE="local", WHATSAPP_DRIVER="carrier-pigeon", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    result = subprocess.run([sys.executable, "-m", "session_host"], cwd=PROJECT_DIR, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "WHATSAPP_DRIVER must be one of neonize, sim" in result.stderr


def test_a_redelivered_send_command_sends_once(host, monkeypatch):
    """The host dies (here: loses the acknowledgement) after sending: SQS redelivers the command, and
    the message must not go out twice."""
    from chalicelib.core.models import MessageModel, SessionModel, SimMessageModel

    bus = _bus()
    for token, phone in (("s1", "15550007001"), ("s2", "15550007002")):
        bus.command(_session(token), ops.CONNECT, ops.Connect(), place=True)
        bus.command(SessionModel.get(token, consistent_read=True), ops.SIM_SCAN, ops.SimScan(phone=phone))
    acknowledge = host.loop._delete
    lost: list[str] = []

    def lose_the_first_acknowledgement(receipt: str) -> None:
        if not lost:  # lost, and its visibility runs out at once: SQS hands the command out again
            lost.append(receipt)
            host.sqs.change_message_visibility(QueueUrl=host.queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
            return
        acknowledge(receipt)

    monkeypatch.setattr(host.loop, "_delete", lose_the_first_acknowledgement)
    sent = bus.command(SessionModel.get("s1", consistent_read=True), ops.SEND_TEXT,
                       ops.SendText(to="15550007002", body="once"))

    def drained() -> bool:
        attrs = host.sqs.get_queue_attributes(QueueUrl=host.queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return lost and attrs["ApproximateNumberOfMessages"] == attrs["ApproximateNumberOfMessagesNotVisible"] == "0"

    wait_for(drained, timeout=15, what="the redelivered command to be acknowledged")
    assert [m.pk for m in SimMessageModel.scan(SimMessageModel.pk.startswith("msg#"))] == [f"msg#{sent['Id']}"]
    assert [r.message_id for r in MessageModel.query("s1")] == [sent["Id"]]
