"""local_gateway/state.py and supervisor.py without a launcher: a snapshot restored into a fresh moto
behaves as the original (conditional writes, TTL, message attributes, receive counts, visibility,
media metadata); the change tracker marks only writes; the supervisor restarts and gives up."""

from __future__ import annotations

import io
import json
import sys
import time

import boto3
import pytest
from moto import mock_aws

from tests.conftest import reset_pynamodb_connections


def _fresh_aws():
    from local_gateway import provision

    reset_pynamodb_connections()
    provision.ensure_all()


def _state(root):
    from chalicelib.core.settings import get_settings
    from local_gateway.state import Backends, Durable, LocalState

    settings = get_settings()
    return LocalState(root, Durable.from_settings(settings), Backends(settings.region)), settings


def test_a_snapshot_restored_into_a_fresh_endpoint_behaves_as_before(tmp_path):
    with mock_aws():
        _fresh_aws()
        state, settings = _state(tmp_path)
        state.acquire()
        ddb, sqs, s3 = (boto3.client(name, region_name="us-east-1") for name in ("dynamodb", "sqs", "s3"))
        ddb.put_item(TableName=settings.sessions_table_name, Item={
            "token": {"S": "t1"}, "name": {"S": "one"}, "secret": {"B": b"\x00\xff"}, "n": {"N": "7"},
            "events": {"L": [{"S": "Message"}]}, "flags": {"M": {"on": {"BOOL": True}}}, "tags": {"SS": ["a", "b"]}})
        ddb.put_item(TableName=settings.messages_table_name, Item={
            "token": {"S": "t1"}, "message_id": {"S": "m1"}, "expires_at": {"N": "1900000000"}})
        ddb.put_item(TableName=settings.hosts_table_name, Item={"host_id": {"S": "ephemeral"}})
        queue = sqs.get_queue_url(QueueName=settings.events_queue_name)["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody="in flight")
        (taken,) = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=120)["Messages"]
        assert taken["Body"] == "in flight"
        sqs.send_message(QueueUrl=queue, MessageBody="retrying", MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "Message"},
            "raw": {"DataType": "Binary", "BinaryValue": b"\x01\x02"}})
        (tried,) = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0)["Messages"]  # received once, visible
        assert tried["Body"] == "retrying"
        s3.put_object(Bucket=settings.media_bucket_name, Key="in/t1/a.png", Body=b"PNG" * 100, ContentType="image/png")
        s3.put_object(Bucket=settings.media_bucket_name, Key="gone", Body=b"x")
        assert state.snapshot_all() > 0
        s3.delete_object(Bucket=settings.media_bucket_name, Key="gone")
        assert state.snapshot_all() > 0  # the deleted object leaves the manifest and the directory
        durable_tables = [n for n in state.backends.table_names() if n not in state.durable.tables_excluded]
        assert state.snapshot_all() == len(durable_tables)  # tables when asked; queue and bucket only if changed
        state.release()
        items_before = ddb.get_item(TableName=settings.sessions_table_name, Key={"token": {"S": "t1"}})["Item"]

    with mock_aws():
        _fresh_aws()
        state, settings = _state(tmp_path)
        state.acquire()
        report = state.restore()
        state.release()
        assert report.tables[settings.sessions_table_name] == 1 and settings.hosts_table_name not in report.tables
        assert report.messages[settings.events_queue_name] == 2 and report.objects[settings.media_bucket_name] == 1
        ddb, sqs, s3 = (boto3.client(name, region_name="us-east-1") for name in ("dynamodb", "sqs", "s3"))
        assert ddb.get_item(TableName=settings.sessions_table_name, Key={"token": {"S": "t1"}})["Item"] == items_before
        with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
            ddb.put_item(TableName=settings.sessions_table_name, Item={"token": {"S": "t1"}, "name": {"S": "x"}},
                         ConditionExpression="attribute_not_exists(#t)", ExpressionAttributeNames={"#t": "token"})
        ttl = ddb.describe_time_to_live(TableName=settings.messages_table_name)["TimeToLiveDescription"]
        assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
        message = ddb.get_item(TableName=settings.messages_table_name,
                               Key={"token": {"S": "t1"}, "message_id": {"S": "m1"}})["Item"]
        assert message["expires_at"] == {"N": "1900000000"}
        assert ddb.scan(TableName=settings.hosts_table_name)["Items"] == []  # hosts are ephemeral

        queue = sqs.get_queue_url(QueueName=settings.events_queue_name)["QueueUrl"]
        (again,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"],
                                       MessageAttributeNames=["All"])["Messages"]  # "in flight" stays in flight
        assert again["Body"] == "retrying" and again["MessageId"] == tried["MessageId"]
        assert again["Attributes"]["ApproximateReceiveCount"] == "2"  # the fan-out's attempt number carries on
        assert again["MessageAttributes"]["raw"]["BinaryValue"] == b"\x01\x02"
        assert again["MessageAttributes"]["kind"]["StringValue"] == "Message"
        counts = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        assert counts["ApproximateNumberOfMessagesNotVisible"] == "2"
        from moto.sqs.models import sqs_backends

        (restored,) = [m for m in sqs_backends["123456789012"]["us-east-1"].get_queue(settings.events_queue_name)
                       ._messages if m.id == taken["MessageId"]]
        assert restored.visible_at > (time.time() + 100) * 1000  # its deadline is the original one
        assert restored.approximate_receive_count == 1

        obj = s3.get_object(Bucket=settings.media_bucket_name, Key="in/t1/a.png")
        assert (obj["Body"].read(), obj["ContentType"]) == (b"PNG" * 100, "image/png")
        assert s3.list_objects_v2(Bucket=settings.media_bucket_name)["KeyCount"] == 1
    assert len(list((tmp_path / "s3" / settings.media_bucket_name / "objects").iterdir())) == 1


def test_one_directory_serves_one_launcher_and_reset_empties_it(tmp_path):
    from local_gateway.state import Backends, Durable, LocalState, StateDirBusy

    durable = Durable(frozenset(), (), ())
    first = LocalState(tmp_path / "s", durable, Backends("us-east-1"))
    first.acquire()
    with pytest.raises(StateDirBusy):
        LocalState(tmp_path / "s", durable, Backends("us-east-1")).acquire()
    with pytest.raises(StateDirBusy):
        LocalState.reset(tmp_path / "s")
    first.release()
    assert LocalState.reset(tmp_path / "s") is True and not (tmp_path / "s").exists()
    assert LocalState.reset(tmp_path / "s") is False
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "format.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(RuntimeError, match="start empty with --reset"):
        LocalState(tmp_path / "old", durable, Backends("us-east-1")).acquire()


def _call(tracker, target: str = "", method: str = "POST", body: bytes = b"") -> None:
    environ = {"REQUEST_METHOD": method, "HTTP_X_AMZ_TARGET": target, "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body)}
    seen = {}

    def app(env, start_response):
        seen["body"] = env["wsgi.input"].read()
        return [b"{}"]

    tracker.app = app
    tracker(environ, lambda *a: None)
    assert seen["body"] == body  # the app still reads the whole body


def test_the_tracker_marks_writes_only():
    from local_gateway.state import ChangeTracker

    tracker = ChangeTracker(None)
    _call(tracker, "DynamoDB_20120810.GetItem", body=b'{"TableName":"a"}')
    _call(tracker, "DynamoDB_20120810.Query", body=b'{"TableName":"a"}')
    _call(tracker, "", method="GET")
    assert not tracker.take().any()
    _call(tracker, "DynamoDB_20120810.PutItem", body=b'{"TableName":"a","Item":{"k":{"S":"1"},"v":{"N":"2"}}}')
    _call(tracker, "DynamoDB_20120810.TransactWriteItems",
          body=b'{"TransactItems":[{"Put":{"TableName":"b","Item":{"k":{"S":"2"}}}},'
               b'{"Update":{"TableName":"c","Key":{"k":{"S":"3"}}}},{"ConditionCheck":{"TableName":"a"}}]}')
    _call(tracker, "DynamoDB_20120810.BatchWriteItem",
          body=b'{"RequestItems":{"d":[{"DeleteRequest":{"Key":{"k":{"S":"4"}}}}]}}')
    _call(tracker, "DynamoDB_20120810.UpdateTable", body=b'{"TableName":"e"}')
    changes = tracker.take()
    assert changes.items == {"a": [{"k": {"S": "1"}, "v": {"N": "2"}}], "b": [{"k": {"S": "2"}}],
                             "c": [{"k": {"S": "3"}}], "d": [{"k": {"S": "4"}}]}
    assert changes.tables == {"e"} and not (changes.all_tables or changes.sqs or changes.s3)
    _call(tracker, "DynamoDB_20120810.ExecuteStatement", body=b'{"Statement":"UPDATE x"}')
    assert tracker.take().all_tables
    _call(tracker, "AmazonSQS.ReceiveMessage", body=b"{}")
    changes = tracker.take()
    assert changes.sqs and not changes.s3
    _call(tracker, "", method="PUT", body=b"media")
    assert tracker.take().s3


def test_the_supervisor_restarts_a_crashed_child_and_gives_up_on_one_that_keeps_crashing(tmp_path):
    from local_gateway.supervisor import ChildKeepsCrashing, Supervisor

    lines: list[str] = []
    exits: list[tuple[str, int]] = []
    supervisor = Supervisor(env={}, cwd=str(tmp_path), backoff_first=0.05, max_restarts=3,
                            on_exit=lambda child, pid: exits.append((child.name, pid)), log=lines.append)
    crash = "import sys; sys.stderr.write('boom: the endpoint is gone\\n'); sys.exit(3)"
    first = supervisor.start("flaky", "-c", crash)
    deadline = time.monotonic() + 30
    with pytest.raises(ChildKeepsCrashing) as failed:
        while time.monotonic() < deadline:
            supervisor.supervise()
            time.sleep(0.02)
    assert "flaky exited 4 times in a row (last status code 3): boom: the endpoint is gone" in str(failed.value)
    assert len(exits) == 3 and exits[0] == ("flaky", first.pid)
    assert "restarting in 0.1 s (restart 2 of at most 3 in a row)" in lines[2]  # backoff doubles
    assert supervisor.restarts == 3

    steady = Supervisor(env={}, cwd=str(tmp_path), backoff_first=0.05, log=lines.append)
    process = steady.start("steady", "-c", "import time; time.sleep(60)")
    process.kill()
    while steady.children["steady"].process is process and time.monotonic() < deadline:
        steady.supervise()
        time.sleep(0.02)
    assert steady.children["steady"].process is not process and steady.children["steady"].process.poll() is None
    assert any("steady (pid" in line and "signal SIGKILL" in line for line in lines)
    steady.stop_all(grace_seconds=5)
    assert steady.children["steady"].process.poll() is not None
    assert sys.executable  # children run with this interpreter


def test_state_files_are_private_and_a_damaged_one_is_named_not_a_traceback(tmp_path):
    from local_gateway.state import StateUnreadable

    with mock_aws():
        _fresh_aws()
        state, settings = _state(tmp_path / "s")
        state.acquire()
        boto3.client("dynamodb", region_name="us-east-1").put_item(
            TableName=settings.sessions_table_name, Item={"token": {"S": "secret-token"}, "name": {"S": "n"}})
        boto3.client("s3", region_name="us-east-1").put_object(
            Bucket=settings.media_bucket_name, Key="in/t1/a.png", Body=b"PNG")
        state.snapshot_all()
        table_file = tmp_path / "s" / "dynamodb" / f"{settings.sessions_table_name}.json"
        assert table_file.stat().st_mode & 0o777 == 0o600  # tokens and webhook secrets live here
        # Every directory 0700 and every file 0600, nested ones (s3/<bucket>/objects) and the lock included.
        paths = [tmp_path / "s", *(tmp_path / "s").rglob("*")]
        assert any(p.name == "objects" for p in paths) and any(p.name == "lock" for p in paths)
        modes = {str(p.relative_to(tmp_path)): p.stat().st_mode & 0o777 for p in paths}
        assert modes == {name: 0o700 if (tmp_path / name).is_dir() else 0o600 for name in modes}
        table_file.write_text('{"table": ')  # damaged from outside (writes are atomic renames)
        with pytest.raises(StateUnreadable, match="start empty with --reset"):
            state.restore()
        state.release()


def test_item_writes_are_journaled_then_folded_into_the_table_file(tmp_path, monkeypatch):
    """A snapshot's cost follows what changed: item writes append to a journal; restore = table file +
    the journal of its generation; a compaction starts the next generation; a torn last line is ignored."""
    from local_gateway import state as state_module
    from local_gateway.state import Changes

    monkeypatch.setattr(state_module, "JOURNAL_MIN_ENTRIES", 5)
    with mock_aws():
        _fresh_aws()
        state, settings = _state(tmp_path)
        state.acquire()
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        table = settings.messages_table_name  # hash + range key
        name_dir = tmp_path / "dynamodb"

        def put(i: int, status: str) -> dict:
            item = {"token": {"S": "t"}, "message_id": {"S": f"m{i}"}, "status": {"S": status}}
            ddb.put_item(TableName=table, Item=item)
            return item

        state.snapshot(Changes(items={table: [put(0, "sent")]}))  # no table file yet: generation 1
        assert (name_dir / f"{table}.json").exists()
        one = put(1, "sent")
        ddb.update_item(TableName=table, Key={"token": {"S": "t"}, "message_id": {"S": "m0"}},
                        UpdateExpression="SET #s = :r", ExpressionAttributeNames={"#s": "status"},
                        ExpressionAttributeValues={":r": {"S": "read"}})
        ddb.delete_item(TableName=table, Key={"token": {"S": "t"}, "message_id": {"S": "m1"}})
        state.snapshot(Changes(items={table: [one, {"token": {"S": "t"}, "message_id": {"S": "m0"}}]}))
        journal = name_dir / f"{table}.1.journal"
        assert len(journal.read_text().splitlines()) == 2
        state.release()

    def restored() -> dict[str, str]:
        with mock_aws():
            _fresh_aws()
            again, _ = _state(tmp_path)
            again.acquire()
            again.restore()
            again.release()
            rows = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=table)["Items"]
            return {row["message_id"]["S"]: row["status"]["S"] for row in rows}

    assert restored() == {"m0": "read"}
    with journal.open("ab") as handle:  # a crash mid-append: the record was never acknowledged
        handle.write(b'{"key":{"token":{"S":"t"},"mess')
    assert restored() == {"m0": "read"}

    with mock_aws():
        _fresh_aws()
        state, _ = _state(tmp_path)
        state.acquire()
        state.restore()
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        state.snapshot(Changes(items={table: [put(i, "sent") for i in range(2, 10)]}))  # 8 > max(5, 1): fold
        assert not journal.exists() and not list(name_dir.glob(f"{table}.*.journal"))
        state.snapshot(Changes(items={table: [put(10, "sent")]}))
        assert (name_dir / f"{table}.2.journal").exists()
        state.release()
    assert restored() == {"m0": "read", **{f"m{i}": "sent" for i in range(2, 11)}}
