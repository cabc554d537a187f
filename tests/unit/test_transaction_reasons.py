"""`cancelled_by_condition` reads which item of a cancelled DynamoDB transaction failed its condition,
from a real TransactWriteItems (moto): the one reading every caller uses (sessions, outbox, replies)."""

from __future__ import annotations

import pytest
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.core.models.base import cancelled_by_condition


def test_names_the_item_whose_condition_failed(aws):
    from chalicelib.core import aws as clients
    from chalicelib.core.models import SessionModel, SessionNameModel

    SessionNameModel("taken", token="t0").save()
    with pytest.raises(TransactWriteError) as raised:
        with TransactWrite(connection=clients.dynamodb_connection()) as tx:
            tx.save(SessionModel("t1", id=1, name="taken"), condition=SessionModel.token.does_not_exist())
            tx.save(SessionNameModel("taken", token="t1"), condition=SessionNameModel.name.does_not_exist())
    assert [cancelled_by_condition(raised.value, i) for i in range(3)] == [False, True, False]

    with pytest.raises(PutError) as put_failed:  # not a transaction: no reasons to read
        SessionNameModel("taken", token="t2").save(condition=SessionNameModel.name.does_not_exist())
    assert not cancelled_by_condition(put_failed.value, 0)
    assert not cancelled_by_condition(RuntimeError("x"), 0)



def test_a_claim_under_a_failed_fence_is_refused_and_a_taken_id_is_a_duplicate(aws):
    """outbox._claim: item 0 is the session row's fence (ClaimFenced), item 1 the claim (a duplicate)."""
    from chalicelib.core import outbox
    from chalicelib.core.models import MessageModel, SessionModel

    SessionModel("t", id=1, name="t", owner_host="h1", epoch=3).save()
    def claim():
        return MessageModel("t", "m1", kind="text", to="1@s.whatsapp.net", status="sending", rank=0)
    with pytest.raises(outbox.ClaimFenced):
        outbox._claim(claim(), SessionModel.epoch == 2)  # another term owns the session now
    assert outbox._claim(claim(), SessionModel.epoch == 3) is True
    assert outbox._claim(claim(), SessionModel.epoch == 3) is False  # (token, Id) claimed already


def test_a_reply_of_a_host_that_lost_the_session_is_written_as_503(aws):
    """ReplyStore._put_fenced: the session row's condition (item 0) failed, so the result is not written."""
    import time

    from chalicelib.core.contract import Command, Reply
    from chalicelib.core.models import ReplyModel, SessionModel
    from session_host.commands import ReplyStore
    from session_host.fencing import LEASE_LOST, Holdings, StandingLease

    SessionModel("t", id=1, name="t", owner_host="h2", epoch=1).save()  # moved to h2
    holdings = Holdings("h1", StandingLease())
    holdings.hold("t", 1)
    store = ReplyStore("h1", 60, holdings)
    command = Command(token="t", op="send_text", deadline=time.time() + 30)
    store.put(command, Reply.success(command.command_id, {"Id": "x"}))
    written = Reply.model_validate_json(ReplyModel.get(command.command_id, consistent_read=True).body)
    assert (written.ok, written.status, written.error) == (False, 503, LEASE_LOST)
