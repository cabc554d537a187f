"""The tester's report, end to end (the API and an in-process sim host on moto): `Id` MSG1 sent to Bob,
then reused for a message to Carol, answered 200 "Sent" with the first send's result and Carol got
nothing. Now a true retry answers the first result and sends once, and the Id reused for another
recipient, text, kind or file answers 409 in WaGo's envelope, sends nothing and leaves the first record
as it was; synchronously and with `?async=true`.
"""

from __future__ import annotations

import base64
import io
import json
import time

import boto3
import pytest
import segno

from chalicelib.core import ops
from chalicelib.core.settings import get_settings
from tests.conftest import wait_for
from tests.host.test_session_host import _bus, _session, host

__all__ = ["host"]

SENDER, BOB, CAROL = ("alice", "15550001111"), ("bob", "15550002222"), ("carol", "15550003333")
HEADERS = {"token": SENDER[0]}


def _refused(message_id: str) -> dict:
    return {"code": 409, "error": f"Id {message_id} was already used for a different message; send this one "
                                  "with a new Id", "success": False}


def _png(text: str) -> str:
    buffer = io.BytesIO()
    segno.make_qr(text).save(buffer, kind="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class _Events:
    """What the sim network delivered: the Message events each session received (the events queue)."""

    def __init__(self):
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.url = self.sqs.get_queue_url(QueueName=get_settings().events_queue_name)["QueueUrl"]
        self.seen: list[dict] = []

    def received(self, token: str, message_id: str) -> int:
        for _ in range(100):
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                             WaitTimeSeconds=0).get("Messages", [])
            if not batch:
                break
            self.seen.extend(json.loads(m["Body"]) for m in batch)
            self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)])
        return sum(1 for e in self.seen if e["token"] == token and e["type"] == "Message"
                   and e["event"].get("Info", {}).get("ID") == message_id)


@pytest.fixture
def linked(host):
    from chalicelib.core.models import SessionModel

    bus = _bus()
    for token, phone in (SENDER, BOB, CAROL):
        bus.command(_session(token), ops.CONNECT, ops.Connect(), place=True)
        bus.command(SessionModel.get(token, consistent_read=True), ops.SIM_SCAN, ops.SimScan(phone=phone))
    return _Events()


def _record(message_id: str) -> dict:
    from chalicelib.core.models import MessageModel

    values = MessageModel.get(SENDER[0], message_id, consistent_read=True).attribute_values
    return {k: v for k, v in values.items() if k not in ("status", "rank", "updated_at")}  # receipts move these


def _media_objects() -> int:
    s3 = boto3.client("s3", region_name="us-east-1")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=get_settings().media_bucket_name)
    return sum(page.get("KeyCount", 0) for page in pages)


def _settle(events: _Events, message_id: str) -> None:
    """Wait for Bob's copy (the send's delivery runs in the background), then a little longer for any copy
    that should not come."""
    wait_for(lambda: events.received(BOB[0], message_id), timeout=10, what="Bob's copy")
    time.sleep(0.5)


def test_a_text_id_reused_for_another_message_is_409_and_carol_gets_nothing(client, linked):
    first = client.post("/send/text", {"Phone": BOB[1], "Body": "hi bob", "Id": "MSG1"}, headers=HEADERS)
    assert first.status_code == 200, first.json_body
    kept = _record("MSG1")
    retry = client.post("/send/text", {"phone": BOB[1], "body": "hi bob", "id": "MSG1"}, headers=HEADERS)
    assert (retry.status_code, retry.json_body) == (200, first.json_body)

    for path, body in [("/send/text", {"Phone": CAROL[1], "Body": "to carol"}),  # the tester's request
                       ("/send/text", {"Phone": CAROL[1], "Body": "hi bob"}),  # another recipient
                       ("/send/text", {"Phone": BOB[1], "Body": "hi bob!"}),  # another text
                       ("/send/location", {"Phone": BOB[1], "Latitude": 1.5, "Longitude": 2.5}),  # another kind
                       ("/send/image", {"Phone": BOB[1], "Image": _png("hi bob")})]:
        refused = client.post(path, {**body, "Id": "MSG1"}, headers=HEADERS)
        assert (refused.status_code, refused.json_body) == (409, _refused("MSG1")), (path, body)

    _settle(linked, "MSG1")
    assert linked.received(BOB[0], "MSG1") == 1
    assert linked.received(CAROL[0], "MSG1") == 0
    assert _record("MSG1") == kept
    status = client.post("/message/status", {"Id": "MSG1"}, headers=HEADERS).json_body["data"]
    assert status["To"] == BOB[1] and status["Timestamp"] == first.json_body["data"]["Timestamp"]


def test_an_image_id_reused_for_another_file_caption_or_kind_is_409_before_any_s3_write(client, linked):
    image = _png("the first image")
    body = {"Phone": BOB[1], "Image": image, "Caption": "look", "Id": "IMG1"}
    first = client.post("/send/image", body, headers=HEADERS)
    assert first.status_code == 200, first.json_body
    _settle(linked, "IMG1")  # the delivery stores Bob's copy of the file: count after it
    kept, objects = _record("IMG1"), _media_objects()
    retry = client.post("/send/image", body, headers=HEADERS)
    assert (retry.status_code, retry.json_body) == (200, first.json_body)

    for path, changed in [("/send/image", {"Phone": CAROL[1]}), ("/send/image", {"Image": _png("another image")}),
                          ("/send/image", {"Caption": "look!"}), ("/send/sticker", {"Sticker": image})]:
        refused = client.post(path, {**body, **changed}, headers=HEADERS)
        assert (refused.status_code, refused.json_body) == (409, _refused("IMG1")), (path, changed)

    time.sleep(0.5)
    assert linked.received(BOB[0], "IMG1") == 1 and linked.received(CAROL[0], "IMG1") == 0
    assert _record("IMG1") == kept
    assert _media_objects() == objects  # neither the retry nor a refused request stored a file


def test_async_a_retry_is_queued_once_and_another_message_is_409(client, linked):
    body = {"Phone": BOB[1], "Body": "queued for bob", "Id": "ASYNC1"}
    queued = client.post("/send/text?async=true", body, headers=HEADERS)
    assert queued.status_code == 202, queued.json_body
    assert queued.json_body["data"] == {"Details": "Queued", "Timestamp": "", "Id": "ASYNC1"}
    refused = client.post("/send/text?async=true", {**body, "Phone": CAROL[1]}, headers=HEADERS)
    assert (refused.status_code, refused.json_body) == (409, _refused("ASYNC1"))
    again = client.post("/send/text?async=true", body, headers=HEADERS)
    assert again.status_code == 202

    _settle(linked, "ASYNC1")
    kept = _record("ASYNC1")
    assert kept["to"] == BOB[1] and kept["sent_at"]
    for reuse in (client.post("/send/text", {**body, "Body": "changed"}, headers=HEADERS),
                  client.post("/send/text?async=true", {**body, "Body": "changed"}, headers=HEADERS)):
        assert (reuse.status_code, reuse.json_body) == (409, _refused("ASYNC1"))
    sync_retry = client.post("/send/text", body, headers=HEADERS)  # the same request, synchronously now
    assert sync_retry.status_code == 200
    assert sync_retry.json_body["data"] == {"Details": "Sent", "Timestamp": kept["sent_at"], "Id": "ASYNC1"}
    time.sleep(0.5)
    assert linked.received(BOB[0], "ASYNC1") == 1 and linked.received(CAROL[0], "ASYNC1") == 0
    assert _record("ASYNC1") == kept


def test_a_media_key_send_retried_is_the_first_result_and_another_upload_is_409(client, linked):
    """The API copies a MediaKey's upload to a new outbound key on every send it runs: the fingerprint is
    of the client's MediaKey, so the retry matches (and copies nothing), another upload does not."""
    from chalicelib.core.media import UPLOAD_PREFIX, MediaStore, _owner

    store = MediaStore()
    uploads = [f"{UPLOAD_PREFIX}{_owner(SENDER[0])}/{name}" for name in ("first", "second")]
    for key, text in zip(uploads, ("first upload", "second upload"), strict=True):
        store.s3.put_object(Bucket=store.settings.media_bucket_name, Key=key,
                            Body=base64.b64decode(_png(text).split(",", 1)[1]))
    body = {"Phone": BOB[1], "MediaKey": uploads[0], "Id": "KEY1"}
    first = client.post("/send/image", body, headers=HEADERS)
    assert first.status_code == 200, first.json_body
    _settle(linked, "KEY1")
    kept, objects = _record("KEY1"), _media_objects()
    retry = client.post("/send/image", body, headers=HEADERS)
    assert (retry.status_code, retry.json_body) == (200, first.json_body)
    refused = client.post("/send/image", {**body, "MediaKey": uploads[1]}, headers=HEADERS)
    assert (refused.status_code, refused.json_body) == (409, _refused("KEY1"))
    time.sleep(0.5)
    assert linked.received(BOB[0], "KEY1") == 1
    assert _record("KEY1") == kept and _media_objects() == objects
