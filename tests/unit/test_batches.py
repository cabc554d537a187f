"""Batches answer per item (issue 14, item 3): one unparseable entry gets its own result or error and
does not sink the batch. The kind's members, found by listing every request field that is a list of
phones or ids (users.PhoneList, CreateRequest.Participants, MarkReadRequest.Id): /user/check,
/user/info, /group/create, /group/participants (each action) and /message/markread.

The host side runs the real GroupOps on the sim driver's groups (moto DynamoDB); markread's split
happens at the API (message ids need no driver), checked through the route.
"""

from __future__ import annotations

import pytest

from chalicelib.core import ops
from tests.conftest import ADMIN

OWNER, FRIEND, STRANGER = "15550002222", "15550003333", "15550004444"
BAD = ["6290", "", "abc", "15550002222@example.com", "+1 (555) 000\x00",
       "15550002222:\u00b2@s.whatsapp.net"]  # a superscript device digit (isdigit() but not int()) was a 500


@pytest.fixture
def host_ops(aws):
    """GroupOps on the sim driver's groups: what the host runs for these operations."""
    from chalicelib.core.media import MediaStore
    from chalicelib.core.models import SessionModel
    from session_host.drivers.base import ClientState
    from session_host.group_ops import GroupOps
    from session_host.sim.driver import SimDriver
    from session_host.sim.groups import SimGroups
    from session_host.sim.network import SimNetwork

    network = SimNetwork(lambda *args, **kwargs: None)
    for phone in (OWNER, FRIEND):
        network.link_device(f"t{phone}", network.account(phone, create=True), f"{phone}:1@s.whatsapp.net")
        SessionModel(f"t{phone}", id=int(phone[-2:]), name=phone, connected=True, logged_in=True,
                     owner_host="h1").save()
    groups = SimGroups(network)
    calls: list[tuple[str, list[str]]] = []

    class Driver(SimDriver):
        """The sim driver's parser and groups, recording what reaches them."""

        def __init__(self):
            pass

        def state(self, token):
            return ClientState(connected=True, logged_in=True, jid=f"{OWNER}@s.whatsapp.net")

        def check_users(self, token, phones):
            calls.append(("check", list(phones)))
            return groups.check(phones)

        def user_info(self, token, phones):
            calls.append(("info", list(phones)))
            return groups.info(phones)

        def create_group(self, token, name, participants):
            calls.append(("create", list(participants)))
            return groups.create(OWNER, token, name, participants)

        def update_group_participants(self, token, group, phones, action):
            calls.append((action, list(phones)))
            return groups.update_participants(OWNER, token, group, phones, action)

    class Lifecycle:
        def running(self, token):
            return Driver().state(token)

    running = GroupOps(Lifecycle(), Driver(), MediaStore())
    running.calls = calls
    return running


def test_user_check_answers_every_entry_in_order(host_ops):
    queries = [OWNER, *BAD, STRANGER]
    users = host_ops.check(f"t{OWNER}", ops.Phones(phones=queries)).users
    assert [u["Query"] for u in users] == queries
    assert host_ops.calls == [("check", [OWNER, STRANGER])]  # only what parses reaches WhatsApp, in one call
    assert users[0] == {"Query": OWNER, "IsInWhatsapp": True, "JID": f"{OWNER}@s.whatsapp.net", "VerifiedName": ""}
    assert users[-1]["IsInWhatsapp"] is False and "Error" not in users[-1]
    for user, query in zip(users[1:-1], BAD, strict=True):
        assert user["IsInWhatsapp"] is False and user["JID"] == ""
        assert user["Error"].endswith(f": {query!r}") and user["Error"].split(":")[0] in (
            "Could not parse Phone", "Invalid Phone in Payload"), user


def test_user_info_keeps_the_parseable_and_lists_the_rest(host_ops):
    answer = host_ops.info(f"t{OWNER}", ops.Phones(phones=["6290", FRIEND])).model_dump(by_alias=True)
    assert list(answer["Users"]) == [f"{FRIEND}@s.whatsapp.net"]
    assert answer["Errors"] == [{"Query": "6290", "Error": "Could not parse Phone: '6290'"}]
    assert host_ops.calls == [("info", [FRIEND])]


def test_a_batch_with_nothing_parseable_makes_no_call(host_ops):
    users = host_ops.check(f"t{OWNER}", ops.Phones(phones=BAD)).users
    assert [u["Query"] for u in users] == BAD and all(u["Error"] for u in users)
    answer = host_ops.info(f"t{OWNER}", ops.Phones(phones=BAD)).model_dump(by_alias=True)
    assert answer["Users"] == {} and len(answer["Errors"]) == len(BAD)
    assert host_ops.calls == []


def test_group_create_and_every_participants_action_answer_per_item(host_ops):
    info = host_ops.create(f"t{OWNER}", ops.GroupCreate(name="Team", participants=["6290", FRIEND]))
    assert {p["JID"] for p in info["Participants"]} == {f"{OWNER}@s.whatsapp.net", f"{FRIEND}@s.whatsapp.net"}
    assert info["Errors"] == [{"Query": "6290", "Error": "Could not parse Phone: '6290'"}]
    group = info["JID"]
    for action in ("promote", "demote", "remove", "add"):
        answer = host_ops.participants(f"t{OWNER}", ops.GroupParticipants(group=group, phones=["x1", FRIEND, ""],
                                                                          action=action))
        results = answer.participants
        assert [r["Error"] for r in results] == [400, 0, 400], (action, results)
        assert (results[0]["Query"], results[2]["Query"]) == ("x1", ""), action
        assert results[1]["JID"] == f"{FRIEND}@s.whatsapp.net"
        assert host_ops.calls[-1] == (action, [FRIEND])


def test_markread_marks_the_usable_ids_and_lists_the_rest(client, monkeypatch):
    from chalicelib.routes import messaging

    sent: list[ops.MarkRead] = []

    class Bus:
        def command(self, session, operation, args):
            sent.append(args)
            return {"Details": "Message(s) marked as read"}

    monkeypatch.setattr(messaging, "get_bus", lambda: Bus())
    client.init("mr", "mr-token")
    headers = {**ADMIN, "token": "mr-token"}
    response = client.post("/message/markread", {"Id": ["3EB0AA", "", "bad id!", "x" * 200, "3EB0BB"],
                                                 "Chat": FRIEND}, headers=headers)
    assert response.status_code == 200, response.json_body
    assert sent[0].ids == ["3EB0AA", "3EB0BB"]
    errors = response.json_body["data"]["Errors"]
    assert [e["Query"] for e in errors] == ["", "bad id!", "x" * 200]
    assert all(e["Error"].endswith("is not a message id") for e in errors)
    nothing = client.post("/message/markread", {"Id": ["", "bad id!"], "Chat": FRIEND}, headers=headers)
    assert (nothing.status_code, nothing.json_body["error"]) == (400, "Invalid Id in Payload: '' is not a message id")
    assert len(sent) == 1
    one = client.post("/message/markread", {"Id": "3EB0CC", "Chat": FRIEND}, headers=headers)
    assert one.json_body["data"] == {"Details": "Message(s) marked as read"}  # no Errors key when none
