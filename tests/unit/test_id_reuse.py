"""A send `Id` reused for a different request is refused (409), a true retry still answers the first
result (the IETF httpapi Idempotency-Key draft's rule; README "Idempotent sends").

Here: the fingerprint itself (`Send.fingerprint`, what identifies a request) and that every send route
puts it on its command; the outbox's comparison on moto (`send_once`, `queue`): nothing sent, the first
record untouched, a record or command without one matches (older releases), and the retry a new owner
runs after failover still matches. End to end through the API and a sim host: tests/host/test_id_reuse.py.
"""

from __future__ import annotations

import pytest

from chalicelib.core import outbox
from chalicelib.core.errors import DomainError
from tests.unit.test_send_fields import BODIES, TOKEN, _send_routes, sent  # noqa: F401 - sent: a fixture

F1, F2 = "a" * 32, "b" * 32


def _model(path: str):
    from app import ROUTES

    [spec] = [s for s in ROUTES if s.method == "POST" and s.path == path]
    return spec.body


def _fingerprint(path: str, body: dict) -> str:
    return _model(path).model_validate({"Phone": "15550002222", **body}).fingerprint(path)


# -- the fingerprint ---------------------------------------------------------------------------------------

def test_the_fingerprint_ignores_the_id_key_case_and_written_out_defaults():
    body = {"Body": "hi bob"}
    base = _fingerprint("/send/text", body)
    assert len(base) == 32 and int(base, 16) >= 0
    assert _fingerprint("/send/text", {**body, "Id": "MSG1"}) == base
    assert _fingerprint("/send/text", {**body, "Id": "OTHER"}) == base
    assert _fingerprint("/send/text", {"body": "hi bob", "Forward": False}) == base
    assert _model("/send/text").model_validate({"pHoNe": "15550002222", "BODY": "hi bob"}).fingerprint(
        "/send/text") == base


@pytest.mark.parametrize("path,changed", [
    ("/send/text", {"Phone": "15550003333"}),
    ("/send/text", {"Body": "to carol"}),
    ("/send/text", {"Forward": True}),
    ("/send/text", {"ContextInfo": {"StanzaID": "3EB0Q", "Participant": "15550001111@s.whatsapp.net"}}),
    ("/send/image", {"Caption": "another"}),
    ("/send/image", {"Image": BODIES["/send/sticker"]["Sticker"].replace("data:image/png", "data:image/jpeg")}),
    ("/send/image", {"MediaKey": "uploads/other"}),
    ("/send/location", {"Latitude": 1.6}),
    ("/send/poll", {"Options": ["a", "c"]}),
])
def test_any_other_recipient_text_media_or_field_is_another_fingerprint(path, changed):
    assert _fingerprint(path, {**BODIES[path], **changed}) != _fingerprint(path, BODIES[path])


def test_the_same_body_on_another_route_is_another_fingerprint():
    media = BODIES["/send/sticker"]["Sticker"]
    assert _fingerprint("/send/image", {"Image": media}) != _fingerprint("/send/sticker", {"Sticker": media})
    assert _fingerprint("/send/text", {"Body": "x"}) != _fingerprint("/send/preview2", {
        "Body": "x", "Title": "t", "SourceUrl": "https://example.com/"}) != ""


def test_every_send_route_puts_the_fingerprint_on_its_command(client, sent):  # noqa: F811
    for path in _send_routes():
        body = {"Phone": "15550002222", **BODIES[path]}
        response = client.post(path, {**body, "Id": f"FP{len(sent)}"}, headers={"token": TOKEN})
        assert response.status_code == 200, (path, response.json_body)
        _, args = sent[-1]
        assert args.fingerprint == _fingerprint(path, BODIES[path]), path


def test_a_media_send_is_fingerprinted_by_the_clients_request_not_the_s3_key_it_gets(client, sent):  # noqa: F811
    """Two identical data-URL requests store the file under two S3 keys; their fingerprints are one."""
    body = {"Phone": "15550002222", **BODIES["/send/image"]}
    for _ in range(2):
        assert client.post("/send/image", body, headers={"token": TOKEN}).status_code == 200
    (_, first), (_, second) = sent
    assert first.media_key != second.media_key
    assert first.fingerprint == second.fingerprint


# -- the outbox ------------------------------------------------------------------------------------------

def _record(message_id: str) -> dict:
    from chalicelib.core.models import MessageModel

    return MessageModel.get(TOKEN, message_id, consistent_read=True).attribute_values


class _Driver:
    """Counts the sends that reached "WhatsApp"."""

    def __init__(self):
        self.sent: list[str] = []

    def send(self, message_id: str, when: str = "2026-11-30T14:00:00Z"):
        def run() -> dict:
            self.sent.append(message_id)
            return {"Id": message_id, "Timestamp": when}

        return run


def test_a_repeat_with_the_same_fingerprint_answers_the_first_result(aws):
    driver = _Driver()
    first = outbox.send_once(TOKEN, "MSG1", "text", "15550002222", driver.send("MSG1"), fingerprint=F1)
    again = outbox.send_once(TOKEN, "MSG1", "text", "15550002222", driver.send("MSG1", "later"), fingerprint=F1)
    assert again == first and driver.sent == ["MSG1"]
    assert _record("MSG1")["fingerprint"] == F1


@pytest.mark.parametrize("status", ["sent", "sending", "failed"])
def test_a_repeat_with_another_fingerprint_is_409_sends_nothing_and_leaves_the_record(aws, status):
    from chalicelib.core.models import MessageModel
    from chalicelib.core.models.messages import STATUS_ORDER

    driver = _Driver()
    if status == "sent":
        outbox.send_once(TOKEN, "MSG1", "text", "15550002222", driver.send("MSG1"), fingerprint=F1)
    else:  # in progress on another request, or failed: still that request's Id
        MessageModel(TOKEN, "MSG1", kind="text", to="15550002222", status=status, rank=STATUS_ORDER[status],
                     updated_at=1.0, claim_epoch=1, fingerprint=F1).save()
    before = _record("MSG1")
    with pytest.raises(DomainError) as refused:
        outbox.send_once(TOKEN, "MSG1", "text", "15550003333", driver.send("MSG1"), epoch=2, reuses_id=True,
                         fingerprint=F2)
    assert (refused.value.status, refused.value.message) == (
        409, "Id MSG1 was already used for a different message; send this one with a new Id")
    assert driver.sent == (["MSG1"] if status == "sent" else [])
    assert _record("MSG1") == before


@pytest.mark.parametrize("stored,given", [(None, F1), (F1, None), (None, None)])
def test_a_record_or_a_command_without_a_fingerprint_matches(aws, stored, given):
    """Compatibility: a record an older release wrote, a command an older API sent, a host-internal send."""
    driver = _Driver()
    first = outbox.send_once(TOKEN, "MSG1", "text", "15550002222", driver.send("MSG1"), fingerprint=stored)
    again = outbox.send_once(TOKEN, "MSG1", "text", "15550002222", driver.send("MSG1", "later"), fingerprint=given)
    assert again == first and driver.sent == ["MSG1"]


def test_after_failover_the_retry_matches_and_another_request_does_not(aws):
    """A host died between claiming the Id (epoch 1) and recording the result: the new owner (epoch 2)
    runs the redelivered command or the client's retry, the same request, and finishes it (the sim
    reuses the Id, so WhatsApp keeps one message); a different request reusing the Id is refused."""
    from chalicelib.core.models import MessageModel

    MessageModel(TOKEN, "MSG1", kind="text", to="15550002222", status="sending", rank=0, updated_at=1.0,
                 claim_epoch=1, claim_host="dead", fingerprint=F1).save()
    driver = _Driver()
    with pytest.raises(DomainError) as refused:
        outbox.send_once(TOKEN, "MSG1", "text", "15550003333", driver.send("MSG1"), epoch=2, host_id="new",
                         reuses_id=True, fingerprint=F2)
    assert refused.value.status == 409 and driver.sent == []
    assert _record("MSG1")["claim_host"] == "dead"
    result = outbox.send_once(TOKEN, "MSG1", "text", "15550002222", driver.send("MSG1"), epoch=2, host_id="new",
                              reuses_id=True, fingerprint=F1)
    assert result["Id"] == "MSG1" and driver.sent == ["MSG1"]
    record = _record("MSG1")
    assert (record["status"], record["claim_host"], record["fingerprint"]) == ("sent", "new", F1)


def test_the_async_claim_keeps_the_fingerprint_and_refuses_another_request(aws):
    assert outbox.queue(TOKEN, "MSG1", "text", "15550002222", F1) is True
    before = _record("MSG1")
    assert before["fingerprint"] == F1
    assert outbox.queue(TOKEN, "MSG1", "text", "15550002222", F1) is False  # a retry: dispatched once
    with pytest.raises(DomainError) as refused:
        outbox.queue(TOKEN, "MSG1", "text", "15550003333", F2)
    assert refused.value.status == 409
    assert _record("MSG1") == before
    # the host then runs the queued command: the same request, so it takes the claim and sends
    driver = _Driver()
    outbox.send_once(TOKEN, "MSG1", "text", "15550002222", driver.send("MSG1"), fingerprint=F1)
    assert driver.sent == ["MSG1"]


def test_a_failed_async_send_is_claimed_again_only_by_the_same_request(aws):
    assert outbox.queue(TOKEN, "MSG1", "text", "15550002222", F1)
    outbox.mark_failed(TOKEN, "MSG1", "No session")
    with pytest.raises(DomainError):
        outbox.queue(TOKEN, "MSG1", "text", "15550003333", F2)
    assert _record("MSG1")["status"] == "failed"
    assert outbox.queue(TOKEN, "MSG1", "text", "15550002222", F1) is True
    assert _record("MSG1")["status"] == "queued"
