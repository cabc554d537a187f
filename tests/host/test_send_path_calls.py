"""AWS calls of one /send/text, counted (deterministic), never timed: the API and an in-process sim host
on moto. The request's path makes at most 8 calls (one reply read when the reply is due); the message's
delivery and its Delivered receipt follow after the answer, in the background."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from chalicelib.core import ops
from local_gateway.aws_calls import by_role, count_aws_calls
from tests.conftest import wait_for
from tests.host.test_session_host import _bus, _session, host

__all__ = ["host"]


@pytest.mark.parametrize("with_id", [True, False])
def test_a_text_send_makes_at_most_8_aws_calls_on_its_path(host, client, with_id):
    from chalicelib.core.models import SessionModel

    bus = _bus()
    for token, phone in (("s1", "15550008001"), ("s2", "15550008002")):
        bus.command(_session(token), ops.CONNECT, ops.Connect(), place=True)
        bus.command(SessionModel.get(token, consistent_read=True), ops.SIM_SCAN, ops.SimScan(phone=phone))
    headers = {"token": "s1"}
    body = {"Phone": "15550008002", "Body": "hello"}
    for n in range(3):  # warm: clients, the API's host-row cache, the reply timing
        assert client.post("/send/text", {**body, "Id": f"warm-{n}"}, headers=headers).status_code == 200
    from chalicelib.core import outbox

    wait_for(lambda: outbox.status_of("s1", "warm-2").status == "delivered", timeout=10,
             what="the warm-up sends' receipts")
    wait_for(lambda: not [t for t in threading.enumerate() if isinstance(t, threading.Timer)], timeout=10,
             what="the warm-up receipts' timers")

    with count_aws_calls(trace=True) as calls:
        response = client.post("/send/text", {**body, "Id": "counted"} if with_id else body, headers=headers)
        assert response.status_code == 200, response.json_body
        answered = len(calls.trace)
        wait_for(lambda: by_role(calls.trace).get("receipt", {}).get("sqs.SendMessage"), timeout=10,
                 what="the Delivered receipt")
        host.driver._deliveries.wait_idle(5)
        wait_for(lambda: by_role(calls.trace).get("host", {}).get("sqs.DeleteMessage"), timeout=10,
                 what="the command's acknowledgement")

    roles = by_role(calls.trace)
    path = by_role(calls.trace[:answered])
    api, host_path = path["api"], path.get("host", Counter())
    reply_reads = api["dynamodb.GetItem"] - 1  # the first GetItem is the session (auth)
    assert reply_reads >= 1 and api["sqs.SendMessage"] == 1 and sum(api.values()) == 2 + reply_reads
    host_path.pop("sqs.DeleteMessage", None)  # the acknowledgement may land before or after the answer
    # The receive that carries the command: an idle host's long poll may have begun before counting did
    # (an in-flight call is not counted), so it is counted as one either way.
    assert host_path.pop("sqs.ReceiveMessage", 0) <= 1
    claim = 1 if with_id else 0
    # claim and reply: each a transaction with a condition check on the session row (fencing, issue 13)
    assert host_path == Counter({"dynamodb.TransactWriteItems": 1 + claim,
                                 "dynamodb.BatchGetItem": 1, "dynamodb.UpdateItem": 1})  # accounts, record
    on_path = 2 + 1 + 1 + sum(host_path.values())  # auth + command + the reply read when due + receive + the host's
    assert on_path <= 8
    assert roles["host"]["sqs.DeleteMessage"] == 1
    # After the answer: the recipient's delivery, then the sender's Delivered receipt.
    assert roles["delivery"] == Counter({"dynamodb.PutItem": 1, "dynamodb.BatchGetItem": 1,  # record, devices
                                         "dynamodb.UpdateItem": 1, "sqs.SendMessage": 1})  # event seq, event
    assert roles["receipt"] == Counter({"dynamodb.BatchGetItem": 1, "dynamodb.UpdateItem": 2,  # seq, status
                                        "sqs.SendMessage": 1})
