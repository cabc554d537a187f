"""The host's command loop: one session's commands in order, different sessions at the same time."""

from __future__ import annotations

import threading
import time

import boto3

from chalicelib.core.contract import COMMAND_EXPIRED, Command, Reply


def _loop(handler, workers: int = 4):
    from session_host.commands import CommandLoop, ReplyStore

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="wago-test-host-unit.fifo",
                           Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"})["QueueUrl"]
    return sqs, url, CommandLoop(sqs, url, handler, ReplyStore("unit", 60), workers)


def _send(sqs, url, token: str, op: str, args=None, deadline: float | None = None) -> Command:
    command = Command(token=token, op=op, args=args or {}, deadline=deadline or time.time() + 30)
    sqs.send_message(QueueUrl=url, MessageBody=command.model_dump_json(), MessageGroupId=token,
                     MessageDeduplicationId=command.command_id)
    return command


def _reply(command: Command, timeout: float = 10.0) -> Reply:
    from chalicelib.core.models import ReplyModel

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return Reply.model_validate_json(ReplyModel.get(command.command_id, consistent_read=True).body)
        except ReplyModel.DoesNotExist:
            time.sleep(0.02)
    raise AssertionError(f"no reply to {command.op}")


def _pump(loop, commands: list[Command], rounds: int = 50) -> list[Reply]:
    """Receive until every command has a reply (bounded)."""
    for _ in range(rounds):
        loop.poll_once(wait_seconds=0)
        if loop.lanes.wait_idle(2.0) and loop.lanes.pending() == 0:
            from chalicelib.core.models import ReplyModel

            if all(ReplyModel.count(c.command_id, consistent_read=True) for c in commands):
                break
    return [_reply(c) for c in commands]


def test_one_sessions_commands_run_in_order_one_at_a_time(aws):
    seen: list[int] = []
    running = {"now": 0, "max": 0}
    lock = threading.Lock()

    def handler(command: Command) -> Reply:
        with lock:
            running["now"] += 1
            running["max"] = max(running["max"], running["now"])
        time.sleep(0.01)
        seen.append(command.args["n"])
        with lock:
            running["now"] -= 1
        return Reply.success(command.command_id, {"n": command.args["n"]})

    sqs, url, loop = _loop(handler)
    commands = [_send(sqs, url, "same", "op", {"n": n}) for n in range(12)]
    replies = _pump(loop, commands)
    assert seen == list(range(12))
    assert running["max"] == 1
    assert [r.data["n"] for r in replies] == list(range(12))
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)  # all acknowledged
    loop.lanes.shutdown()


def test_different_sessions_run_concurrently(aws):
    # "a" can only finish once "b" has started: run one after the other, it would time out instead.
    b_started = threading.Event()

    def handler(command: Command) -> Reply:
        if command.token == "a":
            return Reply.success(command.command_id, {"saw_b": b_started.wait(timeout=10)})
        b_started.set()
        return Reply.success(command.command_id, {})

    sqs, url, loop = _loop(handler, workers=2)
    first = _send(sqs, url, "a", "op")
    second = _send(sqs, url, "b", "op")
    replies = _pump(loop, [first, second])
    assert replies[0].data == {"saw_b": True}
    loop.lanes.shutdown()


def test_expired_commands_are_answered_not_run(aws):
    ran: list[str] = []

    def handler(command: Command) -> Reply:
        ran.append(command.op)
        return Reply.success(command.command_id)

    sqs, url, loop = _loop(handler)
    stale = _send(sqs, url, "t", "stale", deadline=time.time() - 1)
    fresh = _send(sqs, url, "t", "fresh")
    stale_reply, fresh_reply = _pump(loop, [stale, fresh])
    assert (stale_reply.ok, stale_reply.status, stale_reply.error) == (False, 504, COMMAND_EXPIRED)
    assert fresh_reply.ok and ran == ["fresh"]
    loop.lanes.shutdown()


def test_a_handler_crash_is_a_500_reply_and_the_lane_goes_on(aws):
    def handler(command: Command) -> Reply:
        if command.op == "boom":
            raise RuntimeError("driver exploded")
        return Reply.success(command.command_id, {"op": command.op})

    sqs, url, loop = _loop(handler)
    boom = _send(sqs, url, "t", "boom")
    after = _send(sqs, url, "t", "after")
    boom_reply, after_reply = _pump(loop, [boom, after])
    assert (boom_reply.status, boom_reply.error) == (500, "internal error in the session host")
    assert after_reply.data == {"op": "after"}
    loop.lanes.shutdown()


def test_queued_commands_are_refused_at_shutdown(aws):
    sqs, url, loop = _loop(lambda c: Reply.success(c.command_id))
    waiting = _send(sqs, url, "t", "connect")
    assert loop.refuse_waiting("session host is shutting down") == 1
    reply = _reply(waiting)
    assert (reply.status, reply.error) == (503, "session host is shutting down")
    loop.lanes.shutdown()


def test_keyed_executor_orders_per_key():
    from session_host.commands import KeyedExecutor

    lanes = KeyedExecutor(3)
    out: dict[str, list[int]] = {"x": [], "y": []}
    for n in range(20):
        for key in ("x", "y"):
            lanes.submit(key, lambda k=key, n=n: out[k].append(n))
    assert lanes.wait_idle(10)
    assert out == {"x": list(range(20)), "y": list(range(20))}
    lanes.shutdown()


def test_a_finished_command_ends_the_short_poll_wait(aws):
    """Local stages short-poll while a command is in flight. When the last one finishes, the loop goes
    back to its long poll at once, not at the end of the interval: a session sending one message after
    another is never held back by the poll interval (60 s here, beyond the 10 s each reply may take)."""
    from session_host.commands import CommandLoop, ReplyStore

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="wago-test-host-wake.fifo",
                           Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"})["QueueUrl"]
    loop = CommandLoop(sqs, url, lambda c: Reply.success(c.command_id, {"n": c.args["n"]}), ReplyStore("unit", 60),
                       workers=2, short_poll_interval=60.0)
    stopping = threading.Event()
    runner = threading.Thread(target=loop.run, args=(stopping,), daemon=True)
    runner.start()
    try:
        for n in range(3):  # each sent after the previous reply, as a client sending in turn does
            assert _reply(_send(sqs, url, "same", "op", {"n": n}), timeout=10).data == {"n": n}
    finally:
        stopping.set()
        _send(sqs, url, "wake", "op", {"n": -1})  # ends the idle long poll; refused, as received after stop
        runner.join(timeout=30)
        loop.lanes.shutdown()
    assert not runner.is_alive()


def test_a_reply_says_how_long_its_hosts_reply_writes_take(aws):
    """`written_in`: the median of the host's recent reply writes (seconds), so the waiting Lambda
    learns when a reply is readable (created_at + written_in), not when the host began writing it."""
    from chalicelib.core.models import ReplyModel
    from session_host.commands import ReplyStore

    store = ReplyStore("unit", 60)
    first, second = (Command(token="t", op="op", deadline=time.time() + 30) for _ in range(2))
    store.put(first, Reply.success(first.command_id))
    store.put(second, Reply.success(second.command_id))
    assert ReplyModel.get(first.command_id).written_in == 0  # nothing measured yet
    assert 0 < ReplyModel.get(second.command_id).written_in < 5
