"""Async sends: a claim (`queued` record) is never left stuck (issue 14, item 9).

Every way an async send's command can end without a send — the API's dispatch fails, the host's
handler refuses it (DomainError) or crashes (any exception), the command expires before a host runs
it — marks the record `failed`; and a retry with the same Id claims a failed (or long-stale `queued`)
record again and dispatches, while a live claim (queued, sending, sent) is never dispatched twice.
"""

from __future__ import annotations

import time

import pytest

from chalicelib.core import outbox
from chalicelib.core.contract import Command
from chalicelib.core.errors import DomainError
from chalicelib.core.settings import get_settings
from tests.unit.test_session_commands import _loop, _pump

TOKEN = "claim-token"


def _status(message_id: str) -> tuple[str, str | None]:
    from chalicelib.core.models import MessageModel

    record = MessageModel.get(TOKEN, message_id, consistent_read=True)
    return record.status, record.error


def _async(op: str, message_id: str, deadline: float | None = None) -> Command:
    return Command(token=TOKEN, op=op, args={"id": message_id, "to": "1@s.whatsapp.net", "body": "x"},
                   reply_to="discard",
                   deadline=deadline or time.time() + 30)


class _Host:
    """The host's real dispatcher and event sink around a send_text handler that fails as told."""

    def __init__(self, failure: Exception):
        import boto3

        from chalicelib.core import ops
        from session_host.dispatch import Dispatcher, handles
        from session_host.publishing import EventSink

        published = self.published = []

        class RecordingSink(EventSink):
            def publish(self, token, type, event, extra=None, media_key=None, condition=None):
                published.append({"type": type, **event})

        class Failing:
            @handles(ops.SEND_TEXT)
            def send_text(self, token, args):
                raise failure

        class Lifecycle:  # holds every session under a valid lease (fencing is tested elsewhere)
            host_id = "h1"

            def may_run(self, command):
                return 1

            def fence(self, token):
                pass

        self.sink = RecordingSink(get_settings(), boto3.client("sqs", region_name="us-east-1"))
        self.dispatcher = Dispatcher(Lifecycle(), self.sink, Failing())
        self.handle = self.dispatcher.handle


@pytest.mark.parametrize("failure,error", [
    (DomainError(400, "Invalid ContextInfo in Payload: bad quote"), "Invalid ContextInfo in Payload: bad quote"),
    (RecursionError("maximum recursion depth exceeded"), "internal error in the session host"),
    (KeyError("to"), "internal error in the session host"),
])
def test_a_send_the_host_refuses_or_crashes_on_is_marked_failed(aws, failure, error):
    outbox.queue(TOKEN, "M1", "text", "1@s.whatsapp.net")
    fake = _Host(failure)
    sqs, url, loop = _loop(fake.handle)
    loop.on_unanswered = fake.sink.report_async_send
    command = _async("send_text", "M1")
    sqs.send_message(QueueUrl=url, MessageBody=command.model_dump_json(), MessageGroupId=TOKEN,
                     MessageDeduplicationId=command.command_id)
    [reply] = _pump(loop, [command])
    assert not reply.ok and reply.error == error
    assert _status("M1") == ("failed", error)
    assert fake.published[-1] == {"type": "MessageStatus", "Id": "M1", "ClientId": "M1", "Status": "failed",
                                  "Error": error}


def test_an_async_send_that_expires_before_a_host_runs_it_is_marked_failed(aws):
    outbox.queue(TOKEN, "M2", "text", "1@s.whatsapp.net")
    fake = _Host(AssertionError("must not run"))
    sqs, url, loop = _loop(fake.handle)
    loop.on_unanswered = fake.sink.report_async_send
    command = _async("send_text", "M2", deadline=time.time() - 1)
    sqs.send_message(QueueUrl=url, MessageBody=command.model_dump_json(), MessageGroupId=TOKEN,
                     MessageDeduplicationId=command.command_id)
    [reply] = _pump(loop, [command])
    assert reply.status == 504
    assert _status("M2")[0] == "failed"
    assert fake.published[-1]["Status"] == "failed"


def test_a_retry_claims_a_failed_record_again_once(aws):
    assert outbox.queue(TOKEN, "M3", "text", "1@s.whatsapp.net")
    assert not outbox.queue(TOKEN, "M3", "text", "1@s.whatsapp.net")  # queued: a repeat dispatches nothing
    outbox.mark_failed(TOKEN, "M3", "No session")
    assert outbox.queue(TOKEN, "M3", "text", "1@s.whatsapp.net")  # failed: the retry sends
    assert _status("M3") == ("queued", None)
    assert not outbox.queue(TOKEN, "M3", "text", "1@s.whatsapp.net")  # and only one retry claims it


def test_a_send_whose_outcome_is_unknown_is_never_claimed_again(aws):
    """At most once (issue 13): a dead host's send WhatsApp may have delivered is not resent by a retry."""
    assert outbox.queue(TOKEN, "M6", "text", "1@s.whatsapp.net")
    outbox.mark_failed(TOKEN, "M6", outbox.OUTCOME_UNKNOWN.format(id="M6"))
    with pytest.raises(DomainError) as refused:
        outbox.queue(TOKEN, "M6", "text", "1@s.whatsapp.net")
    assert (refused.value.status, refused.value.message) == (500, outbox.OUTCOME_UNKNOWN.format(id="M6"))
    assert _status("M6")[0] == "failed"


def test_a_queued_record_past_its_commands_deadline_is_claimed_again(aws):
    from chalicelib.core.models import MessageModel

    assert outbox.queue(TOKEN, "M4", "text", "1@s.whatsapp.net")
    old = time.time() - get_settings().async_command_ttl_seconds - outbox.STALE_QUEUE_MARGIN_SECONDS - 1
    MessageModel(TOKEN, "M4").update(actions=[MessageModel.updated_at.set(old)])
    assert outbox.queue(TOKEN, "M4", "text", "1@s.whatsapp.net")
    assert not outbox.queue(TOKEN, "M4", "text", "1@s.whatsapp.net")


@pytest.mark.parametrize("status", ["sending", "sent", "delivered", "read"])
def test_a_live_or_done_claim_is_never_dispatched_again(aws, status):
    from chalicelib.core.models import MessageModel
    from chalicelib.core.models.messages import STATUS_ORDER

    assert outbox.queue(TOKEN, "M5", "text", "1@s.whatsapp.net")
    MessageModel(TOKEN, "M5").update(actions=[MessageModel.status.set(status),
                                              MessageModel.rank.set(STATUS_ORDER[status]),
                                              MessageModel.updated_at.set(0)])
    assert not outbox.queue(TOKEN, "M5", "text", "1@s.whatsapp.net")
