"""The simulator's phone side runs on a sim session host, reached through the bus as `sim.*` operations
(in-process host on moto): a sim account sends, reads, types and goes online; the phone unlinks the
device of a session no host holds; without a live sim host the API gets a 503, and a host running
another driver refuses the operations."""

from __future__ import annotations

import time

import pytest

from chalicelib.core import ops
from tests.host.test_session_host import _bus, _row, _session, host  # noqa: F401 - fixture


def _logged_in(bus, token: str, phone: str) -> str:
    bus.command(_session(token), ops.CONNECT, ops.Connect(events=["All"]), place=True)
    return bus.command(_row(token), ops.SIM_SCAN, ops.SimScan(phone=phone))["jid"]


def test_a_sim_accounts_phone_messages_reads_types_and_goes_online_through_any_sim_host(host):  # noqa: F811
    from chalicelib.core.models import SimMessageModel

    bus = _bus()
    _logged_in(bus, "alice", "15550001001")
    before = int(_row("alice").event_seq or 0)

    sent = bus.run_anywhere("sim", ops.sim_phone_key("15550009999"), ops.SIM_MESSAGE, ops.SimPhoneMessage(
        phone="15550009999", to="15550001001@s.whatsapp.net", body="hello", push_name="Carol"))
    assert sent["Id"].startswith("3EB0") and sent["Timestamp"].endswith("Z")
    stored = SimMessageModel.get(SimMessageModel.key(sent["Id"]), consistent_read=True)
    assert (stored.from_phone, stored.to_phone) == ("15550009999", "15550001001")
    assert int(_row("alice").event_seq) == before + 1  # alice's Message event was published

    mine = bus.command(_row("alice"), ops.SEND_TEXT, ops.SendText(to="15550009999@s.whatsapp.net", body="hi"))
    read = bus.run_anywhere("sim", ops.sim_phone_key("15550009999"), ops.SIM_READ,
                            ops.SimPhoneRead(phone="15550009999", ids=[mine["Id"], "3EB0UNKNOWN"]))
    assert read == {"Details": "1 message(s) marked as read"}
    typing = bus.run_anywhere("sim", ops.sim_phone_key("15550009999"), ops.SIM_CHAT_PRESENCE, ops.SimPhoneChatPresence(
        phone="15550009999", to="15550001001@s.whatsapp.net", state="composing"))
    assert typing == {"Details": "Chat presence set"}
    bus.command(_row("alice"), ops.SUBSCRIBE_PRESENCE, ops.SubscribePresence(jid="15550009999@s.whatsapp.net"))
    online = bus.run_anywhere("sim", ops.sim_phone_key("15550009999"), ops.SIM_PRESENCE,
                              ops.SimPhonePresence(phone="15550009999", available=True))
    assert online == {"Details": "Presence sent to 1 session(s)"}


def test_the_phone_unlinks_a_session_no_host_holds(host):  # noqa: F811
    from chalicelib.core.errors import DomainError
    from chalicelib.core.models import SimDeviceModel

    bus = _bus()
    _logged_in(bus, "bob", "15550001002")
    bus.command(_row("bob"), ops.DISCONNECT)
    assert _row("bob").owner_host is None and _row("bob").jid
    assert bus.run_anywhere("sim", "bob", ops.SIM_UNLINK) == {"Details": "Logged out"}
    row = _row("bob")
    assert (row.jid, row.logged_in) == (None, False)
    with pytest.raises(SimDeviceModel.DoesNotExist):
        SimDeviceModel.get(SimDeviceModel.key("bob"), consistent_read=True)
    with pytest.raises(DomainError) as again:
        bus.run_anywhere("sim", "bob", ops.SIM_UNLINK)
    assert (again.value.status, again.value.message) == (500, "Could not logout as it was not logged in")


def test_no_live_sim_host_is_a_503_and_another_driver_refuses(host):  # noqa: F811
    from chalicelib.core.errors import DomainError
    from chalicelib.core.models import HostModel

    bus = _bus()
    with pytest.raises(DomainError) as none:
        bus.run_anywhere("neonize", "k", ops.SIM_PRESENCE, ops.SimPhonePresence(phone="15550001003", available=True))
    assert (none.value.status, none.value.message) == (503, "no live session host runs the neonize driver")
    # A host whose heartbeat is older than the lease is not picked.
    HostModel("dead-sim", command_queue_url="http://q", capacity=10, heartbeat_at=time.time() - 60, driver="sim").save()
    assert bus.running("sim").host_id == "host-one"
    with pytest.raises(DomainError) as only_dead:
        bus.running("sim", exclude=["host-one"])
    assert only_dead.value.status == 503


def test_a_host_running_another_driver_has_no_simulator_controls():
    from chalicelib.core.errors import DomainError
    from session_host.sim.operations import SimOps

    class Other:
        name = "neonize"

    with pytest.raises(DomainError) as refused:
        SimOps(Other()).presence("k", ops.SimPhonePresence(phone="15550001003", available=True))  # type: ignore[arg-type]
    assert (refused.value.status, refused.value.message) == (400, "the neonize driver has no simulator controls")
