"""Orphans are found from dead hosts through the sessions table's owner index: a heartbeat's AWS calls
do not grow with the sessions other hosts own (counted, not timed)."""

from __future__ import annotations

import threading
import time

from local_gateway.aws_calls import count_aws_calls
from tests.conftest import wait_for
from tests.host.test_session_host import _session, _settings, host

__all__ = ["host"]


def _fleet(sessions: int, owner: str = "busy-host") -> None:
    """`sessions` connected sessions owned by a live host other than the one under test."""
    from chalicelib.core.models import HostModel, SessionModel

    HostModel(owner, command_queue_url="", capacity=100_000, load=sessions, heartbeat_at=time.time() + 3600,
              started_at=time.time(), status="up").save()
    with SessionModel.batch_write() as batch:
        for n in range(sessions):
            batch.save(SessionModel(f"fleet-{owner}-{n}", id=n, name=f"fleet-{owner}-{n}", owner_host=owner,
                                    auto_connect=True, connected=True, logged_in=True))


def _heartbeat_calls(running) -> dict:
    with count_aws_calls(trace=True) as calls:
        running.beat()
        running.adopt_orphans()
    counted: dict = {}
    for thread, service, op in calls.trace:  # this thread's only: not the host's own loops
        if thread == threading.current_thread().name:
            counted[(service, op)] = counted.get((service, op), 0) + 1
    return counted


def test_heartbeat_calls_do_not_grow_with_the_fleet(aws):
    from session_host.host import SessionHost

    running = SessionHost(_settings(host_heartbeat_seconds=3600), host_id="host-under-test")
    running.start()
    try:
        _fleet(10)
        small = _heartbeat_calls(running)
        _fleet(300, owner="busier-host")
        large = _heartbeat_calls(running)
    finally:
        running.stop(grace_seconds=5)
    # the lease, the hosts table, the owner index for RELEASED and for this host (sessions to take back)
    assert small == large == {("dynamodb", "UpdateItem"): 1, ("dynamodb", "Scan"): 1, ("dynamodb", "Query"): 2}


def test_a_dead_hosts_row_stays_while_its_sessions_wait_for_room(aws):
    """The row of a long-dead host is what leads to its sessions: it is removed only once they are adopted."""
    from chalicelib.core.models import HostModel, SessionModel
    from session_host.host import DEAD_HOST_LEASES, SessionHost

    settings = _settings(host_heartbeat_seconds=3600, host_capacity=1)
    long_ago = time.time() - DEAD_HOST_LEASES * settings.host_lease_seconds - 60
    HostModel("long-dead", command_queue_url="", capacity=10, load=2, heartbeat_at=long_ago, started_at=0).save()
    for token in ("w1", "w2"):
        _session(token)
        SessionModel(token).update(actions=[SessionModel.owner_host.set("long-dead"),
                                            SessionModel.auto_connect.set(True)])
    running = SessionHost(settings, host_id="small-host")
    running.start()
    try:
        # Room for one: the host's adoption pass at start takes it; once it runs, no room is left.
        wait_for(lambda: len(running.driver.tokens()) == 1, what="one session adopted and restored")
        assert running.adopt_orphans() == []
        assert HostModel.get("long-dead", consistent_read=True)  # the other still waits: the row stays
        owners = sorted(SessionModel.get(t, consistent_read=True).owner_host for t in ("w1", "w2"))
        assert owners == ["long-dead", "small-host"]
    finally:
        running.stop(grace_seconds=5)


def test_sessions_reset_at_launcher_start_are_adopted_through_the_owner_index(aws):
    """The launcher's start-up reset (connectstartup) hands sessions to restore over to RELEASED: an
    unowned session is not in the sparse owner index, so no host would ever find it."""
    from chalicelib.core.models import SessionModel
    from chalicelib.core.models.sessions import RELEASED
    from local_gateway.startup import prepare_sessions
    from session_host.host import SessionHost

    for token, auto in (("back1", True), ("back2", True), ("idle", False)):
        _session(token)
        SessionModel(token).update(actions=[SessionModel.owner_host.set("previous-run"),
                                            SessionModel.auto_connect.set(auto), SessionModel.connected.set(True)])
    expected, reset = prepare_sessions(connect_on_startup=True)
    assert sorted(e.token for e in expected) == ["back1", "back2"] and reset == 3
    owners = {t: SessionModel.get(t, consistent_read=True).owner_host for t in ("back1", "back2", "idle")}
    assert owners == {"back1": RELEASED, "back2": RELEASED, "idle": None}
    running = SessionHost(_settings(host_heartbeat_seconds=3600), host_id="fresh-host")
    running.start()
    try:
        wait_for(lambda: sorted(running.driver.tokens()) == ["back1", "back2"], what="both sessions adopted")
    finally:
        running.stop(grace_seconds=5)
