"""Every lifecycle state has a way out, and every path that sets subscriptions shares one default
(issue 14, items 1 and 2). The real host in-process on moto, the sim driver, commands through the bus.

States: waiting for its QR (after connect), waiting for its pair code (after pair), logged in.
Exits: connect (answers the state and updates the subscription), disconnect, logout. Each pair of
(state, exit) is tried: no 500, and after a stop the session can be connected again.
"""

from __future__ import annotations

import pytest

from chalicelib.core import ops
from tests.host.test_session_host import _bus, _row, _session

STATES = ("waiting for QR", "waiting for pair code", "logged in")
EXITS = ("connect", "disconnect", "logout")


def _into(state: str, token: str, bus):
    session = _session(token)
    if state == "waiting for pair code":
        bus.command(session, ops.PAIR, ops.Pair(phone="15550008888", events=["Message"]), place=True)
    else:
        bus.command(session, ops.CONNECT, ops.Connect(events=["Message"]), place=True)
    if state == "logged in":
        bus.command(_row(token), ops.SIM_SCAN, ops.SimScan(phone="15550007777"))
    return _row(token)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("exit_", EXITS)
def test_every_state_has_a_way_out(host, state, exit_):
    token = f"t-{STATES.index(state)}-{exit_}"
    bus = _bus()
    row = _into(state, token, bus)
    logged_in = state == "logged in"
    assert row.logged_in is logged_in and host.driver.tokens() == [token]

    if exit_ == "connect":
        data = bus.command(row, ops.CONNECT, ops.Connect(events=["ReadReceipt", "Message"]), place=True)
        assert (data["already_connected"], data["logged_in"], data["connected"]) == (True, logged_in, True)
        assert _row(token).events == ["ReadReceipt", "Message"]  # the subscription is updated
        assert host.driver.tokens() == [token]  # nothing was started twice
        return
    op = ops.DISCONNECT if exit_ == "disconnect" else ops.LOGOUT
    details = bus.command(row, op)["Details"]
    assert details == ("Disconnected" if exit_ == "disconnect" else "Logged out")
    after = _row(token)
    assert host.driver.tokens() == [] and after.owner_host is None and not after.connected
    assert (after.jid is not None) is (logged_in and exit_ == "disconnect")  # only a linked device stays linked
    again = bus.command(after, ops.CONNECT, ops.Connect(), place=True)
    assert again["logged_in"] is (logged_in and exit_ == "disconnect")  # a kept device needs no new QR


def test_a_start_with_no_subscription_given_or_stored_gets_the_default(host):
    """A restore (or any start) of a row stored without a subscription: All, never no webhooks."""
    from chalicelib.core.models import SessionModel

    session = _session("t-restore")
    assert not session.events
    bus = _bus()
    bus.command(session, ops.PAIR, ops.Pair(phone="15550008888"), place=True)  # events omitted
    assert _row("t-restore").events == ["All"]
    SessionModel("t-restore").update(actions=[SessionModel.events.set([])])
    bus.command(_row("t-restore"), ops.DISCONNECT)
    bus.command(_row("t-restore"), ops.CONNECT, ops.Connect(), place=True)
    assert _row("t-restore").events == ["All"]
