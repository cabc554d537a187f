"""No double send across a host's death: the host is SIGKILLed (a test hook in the sim driver) right
after WhatsApp (the sim network) took a message and before the send's outcome was recorded. Retries of
that `Id`, before and after another host adopts the session, never make the recipient receive it twice,
and one answers the first result within the lease plus a bound, not after a fixed 120 s; the Id reused
for another message is then refused (409)."""

from __future__ import annotations

import time
import uuid

import pytest

from session_host.sim.driver import CRASH_AFTER_SEND_ENV
from tests.faults.cluster import FAST, Cluster, wait_for
from tests.faults.test_fencing import _assert_no_secret_in_logs

pytestmark = pytest.mark.integration

LEASE = float(FAST["HOST_LEASE_SECONDS"])
MARGIN = float(FAST["HOST_LEASE_MARGIN_SECONDS"])
HEARTBEAT = float(FAST["HOST_HEARTBEAT_SECONDS"])
COMMAND_TIMEOUT = float(FAST["COMMAND_TIMEOUT_SECONDS"])
#: adoption (a heartbeat after lease + margin) + restoring the client + one retry's round trip
BOUND = 2 * HEARTBEAT + COMMAND_TIMEOUT + 5


def test_a_send_interrupted_by_host_death_is_delivered_once(tmp_path):
    message_id = "3EB0" + uuid.uuid4().hex[:18].upper()
    run = uuid.uuid4().hex[:8]
    sender, recipient = f"tok-{run}-sender", f"tok-{run}-recipient"
    cluster = Cluster(tmp_path, hosts=0)
    cluster.secrets = [sender, recipient]
    try:
        cluster.start()
        cluster.start_host(0, {CRASH_AFTER_SEND_ENV: message_id})  # the victim: both sessions land here
        wait_for(lambda: len(cluster.host_rows()) == 1, 30, "the first host")
        cluster.linked_sessions([sender, recipient], ["15550071001", "15550071002"])
        victim_id = cluster.session_row(sender)["owner_host"]
        assert cluster.session_row(recipient)["owner_host"] == victim_id
        cluster.start_host(1)  # the survivor
        wait_for(lambda: len(cluster.host_rows()) == 2, 30, "the second host")

        body = {"Phone": "15550071002", "Body": "exactly once", "Id": message_id}
        first = cluster.call("/send/text", sender, body, timeout=COMMAND_TIMEOUT + 10)
        died_at = time.time()
        assert cluster.hosts[0].wait(timeout=10) == -9  # killed by the hook, between send and record
        assert first.status_code == 504, first.text

        answers = []
        deadline = time.monotonic() + LEASE + MARGIN + BOUND
        while time.monotonic() < deadline:
            response = cluster.call("/send/text", sender, body, timeout=COMMAND_TIMEOUT + 10)
            answers.append((round(time.time() - died_at, 1), response.status_code, response.json().get("error")))
            if response.status_code == 200:
                break
            time.sleep(0.3)
        assert answers[-1][1] == 200, answers
        took = answers[-1][0]
        result = cluster.call("/send/text", sender, body).json()["data"]
        assert result["Id"] == message_id
        assert all(status != 409 for _, status, _ in answers), answers  # never "already being sent" for 120 s
        print(f"retried answer after {took:.1f} s (lease {LEASE:g} s + margin {MARGIN:g} s); answers {answers}")

        # Later retries: the same first result, and still a single delivery.
        time.sleep(1)
        again = cluster.call("/send/text", sender, body).json()["data"]
        assert again == result
        # The Id reused for another message, on the adopting host: refused, and nothing more is sent.
        other = cluster.call("/send/text", sender, {**body, "Body": "another message"})
        assert (other.status_code, other.json()["error"]) == (
            409, f"Id {message_id} was already used for a different message; send this one with a new Id")
        wait_for(lambda: cluster.received(recipient, message_id) >= 1, 10, "the recipient's copy")
        time.sleep(1)
        assert cluster.received(recipient, message_id) == 1
        status = cluster.ok("/message/status", sender, {"Id": message_id})
        assert status["Status"] in ("sent", "delivered", "read") and status["Id"] == message_id
        survivor = cluster.host_id(1)
        assert cluster.session_row(sender)["owner_host"] == survivor
    finally:
        cluster.close()
    _assert_no_secret_in_logs(tmp_path, cluster.secrets)
