"""Users and groups over HTTP on the launched local stack (sim driver): three sim accounts create a group,
change its members, share an invite link, edit its settings and leave; the other members' webhooks get
whatsmeow's JoinedGroup / GroupInfo / Picture events through the real path (host -> events queue ->
poller -> fan-out -> receiver); every refusal keeps WaGo's envelope."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from tests.conftest import wait_for
from tests.integration.test_session_lifecycle import _data
from tests.integration.test_sim_messaging import Receiver, _login

pytestmark = pytest.mark.integration

ANN, BEN, CAT, NOBODY = "15550004001", "15550004002", "15550004003", "15550004999"


def jid(phone: str) -> str:
    return f"{phone}@s.whatsapp.net"


def _members(info: dict) -> dict[str, tuple[bool, bool]]:
    return {p["JID"]: (p["IsAdmin"], p["IsSuperAdmin"]) for p in info["Participants"]}


def _events(receiver: Receiver, token: str, type: str, group: str, **match) -> list[dict]:
    return [e["event"] for e in receiver.of(token, type)
            if e["event"]["JID"] == group and all(e["event"].get(k) == v for k, v in match.items())]


def _jpeg() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buffer, format="JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_users_and_a_group_lifecycle_between_three_sim_accounts(stack, receiver):
    ann_device = _login(stack, receiver, "ann", ANN, ["All"])
    _login(stack, receiver, "ben", BEN, ["All"])
    _login(stack, receiver, "cat", CAT, ["All"])
    call = stack.call

    # -- users --
    checked = _data(call("POST", "/user/check", "ann", {"Phone": [BEN, "+1 555 000 4999"]}))
    assert checked == {"Users": [
        {"Query": BEN, "IsInWhatsapp": True, "JID": jid(BEN), "VerifiedName": ""},
        {"Query": "+1 555 000 4999", "IsInWhatsapp": False, "JID": "", "VerifiedName": ""}]}
    info = _data(call("POST", "/user/info", "ben", {"phone": [ANN, NOBODY]}))["Users"]
    assert list(info) == [jid(ANN)] and info[jid(ANN)]["Devices"] == [jid(ANN), ann_device]
    assert _data(call("POST", "/user/avatar", "ann", {"Phone": BEN}), 404) == "No avatar found"
    assert _data(call("GET", "/user/avatar", "ann", {"Phone": NOBODY}), 404) == f"{NOBODY} is not on WhatsApp"
    contacts = _data(call("GET", "/user/contacts", "ann"))
    assert {jid(BEN), jid(CAT)} <= set(contacts) and jid(ANN) not in contacts
    assert contacts[jid(BEN)] == {"Found": True, "FirstName": "", "FullName": "", "PushName": "Sim 4002",
                                  "BusinessName": ""}

    # -- create: ann is the super admin; ben is told he was added --
    created = _data(call("POST", "/group/create", "ann", {"Name": "Book club", "Participants": [f"+{BEN}"]}))
    group = created["JID"]
    assert group.endswith("@g.us") and created["Name"] == "Book club" and created["OwnerJID"] == jid(ANN)
    assert _members(created) == {jid(ANN): (True, True), jid(BEN): (False, False)}
    assert created["IsLocked"] is False and created["IsAnnounce"] is False and created["ParticipantCount"] == 2
    joined = wait_for(lambda: _events(receiver, "ben", "JoinedGroup", group), what="ben's JoinedGroup")
    mine = wait_for(lambda: _events(receiver, "ann", "JoinedGroup", group, Type="new"), what="ann's JoinedGroup")
    assert mine[0]["CreateKey"].startswith("3EB0") and mine[0]["Participants"] == created["Participants"]
    assert (joined[0]["Reason"], joined[0]["Sender"], joined[0]["Name"]) == ("add", jid(ANN), "Book club")
    assert [g["JID"] for g in _data(call("GET", "/group/list", "ben"))["Groups"]] == [group]
    assert _data(call("GET", "/group/list", "cat")) == {"Groups": []}
    assert _data(call("POST", "/group/info", "cat", {"GroupJID": group}), 403) \
        == "you are not a participant of this group"

    # -- participants: admins only; per-participant errors; events to the others --
    assert _data(call("POST", "/group/participants", "ben", {"GroupJID": group, "Phone": [CAT], "Action": "add"}),
                 403) == "only group admins can do this"
    added = _data(call("POST", "/group/participants", "ann",
                       {"GroupJID": group, "Phone": [CAT, BEN, NOBODY], "Action": "ADD"}))
    assert added["Details"] == "Group Participants updated successfully"
    assert [(p["JID"], p["Error"]) for p in added["Participants"]] == [(jid(CAT), 0), (jid(BEN), 409),
                                                                        (jid(NOBODY), 404)]
    wait_for(lambda: _events(receiver, "cat", "JoinedGroup", group, Reason="add"), what="cat's JoinedGroup")
    wait_for(lambda: _events(receiver, "ben", "GroupInfo", group, Join=[jid(CAT)]), what="ben told cat joined")
    promoted = _data(call("POST", "/group/participants", "ann", {"GroupJID": group, "Phone": BEN, "Action": "promote"}))
    assert promoted["Participants"][0]["IsAdmin"] is True
    wait_for(lambda: _events(receiver, "cat", "GroupInfo", group, Promote=[jid(BEN)]), what="cat told ben promoted")
    refused = _data(call("POST", "/group/participants", "ben", {"GroupJID": group, "Phone": [ANN], "Action": "demote"}))
    assert refused["Participants"][0]["Error"] == 403  # the creator stays admin
    removed = _data(call("POST", "/group/participants", "ben", {"GroupJID": group, "Phone": [CAT], "Action": "remove"}))
    assert removed["Participants"][0]["Error"] == 0
    wait_for(lambda: _events(receiver, "cat", "GroupInfo", group, Leave=[jid(CAT)]), what="cat told she was removed")
    assert _members(_data(call("GET", "/group/info", "ann", {"GroupJID": group}))) == {
        jid(ANN): (True, True), jid(BEN): (True, False)}

    # -- invite links: admins only; a reset link kills the old one; joining tells the others --
    assert _data(call("GET", f"/group/invitelink?GroupJID={group}", "cat"), 403) \
        == "you are not a participant of this group"
    first = _data(call("GET", f"/group/invitelink?groupjid={group}", "ann"))["InviteLink"]
    assert first.startswith("https://chat.whatsapp.com/")
    assert _data(call("POST", "/group/invitelink", "ann", {"GroupJID": group}))["InviteLink"] == first
    second = _data(call("GET", f"/group/invitelink?GroupJID={group}&Reset=true", "ben"))["InviteLink"]
    assert second != first
    assert _data(call("POST", "/group/join", "cat", {"Code": first}), 404) == "invalid invite link or code"
    assert _data(call("POST", "/group/join", "cat", {"Code": second.rsplit("/", 1)[1]})) == {
        "Details": "Group joined successfully", "GroupJID": group}
    wait_for(lambda: _events(receiver, "ann", "GroupInfo", group, Join=[jid(CAT)], JoinReason="invite"),
             what="ann told cat joined by link")
    wait_for(lambda: _events(receiver, "cat", "JoinedGroup", group, Reason="invite"), what="cat's JoinedGroup")

    # -- settings: name/topic by anyone until locked; announce/locked by admins --
    assert _data(call("POST", "/group/name", "cat", {"GroupJID": group, "Name": "Books & tea"})) == {
        "Details": "Group Name set successfully"}
    assert _data(call("POST", "/group/topic", "cat", {"GroupJID": group, "Topic": "Monthly, first Friday"})) == {
        "Details": "Group Topic set successfully"}
    named = wait_for(lambda: [e for e in _events(receiver, "ann", "GroupInfo", group) if e["Name"]],
                     what="ann told of the new name")
    assert (named[0]["Name"]["Name"], named[0]["Sender"]) == ("Books & tea", jid(CAT))
    assert _data(call("POST", "/group/locked", "cat", {"GroupJID": group, "Value": True}), 403) \
        == "only group admins can do this"
    assert _data(call("POST", "/group/locked", "ann", {"GroupJID": group, "Value": True})) == {
        "Details": "Group Locked set successfully"}
    assert _data(call("POST", "/group/announce", "ben", {"GroupJID": group, "Value": True})) == {
        "Details": "Group Announce set successfully"}
    wait_for(lambda: [e for e in _events(receiver, "cat", "GroupInfo", group) if e["Locked"] == {"IsLocked": True}],
             what="cat told the group is locked")
    assert _data(call("POST", "/group/name", "cat", {"GroupJID": group, "Name": "Mine"}), 403) \
        == "the group is locked: only admins can change its name, topic and photo"
    current = _data(call("POST", "/group/info", "cat", {"GroupJID": group}))
    assert (current["Name"], current["Topic"], current["IsLocked"], current["IsAnnounce"]) == (
        "Books & tea", "Monthly, first Friday", True, True)
    assert current["TopicSetBy"] == jid(CAT) and current["NameSetBy"] == jid(CAT)

    # -- photo: JPEG only; then the group's avatar exists --
    assert _data(call("POST", "/group/photo", "ann", {"GroupJID": group, "Image": _png()}), 400) \
        == "Image must be a JPEG (data:image/jpeg;base64,...), not image/png"
    assert _data(call("POST", "/user/avatar", "ben", {"Phone": group}), 404) == "No avatar found"
    photo = _data(call("POST", "/group/photo", "ann", {"GroupJID": group, "Image": _jpeg()}))
    assert photo["Details"] == "Group Photo set successfully" and photo["PictureID"].isdigit()
    avatar = _data(call("GET", f"/user/avatar?Phone={group}&Preview=true", "ben"))
    assert (avatar["id"], avatar["type"]) == (photo["PictureID"], "preview") and avatar["url"].startswith("http")
    wait_for(lambda: _events(receiver, "cat", "Picture", group, PictureID=photo["PictureID"]), what="Picture event")

    # -- leave --
    assert _data(call("POST", "/group/leave", "cat", {"GroupJID": group})) == {"Details": "Left group successfully"}
    wait_for(lambda: _events(receiver, "ben", "GroupInfo", group, Leave=[jid(CAT)]), what="ben told cat left")
    assert _data(call("GET", "/group/list", "cat")) == {"Groups": []}
    assert _data(call("POST", "/group/leave", "cat", {"GroupJID": group}), 403) \
        == "you are not a participant of this group"
    # ann's own changes never came back to ann as events
    assert not [e for e in _events(receiver, "ann", "GroupInfo", group) if e["Sender"] == jid(ANN)]


def test_user_and_group_errors_keep_wagos_envelope(stack, receiver):
    _login(stack, receiver, "dora", "15550005001", ["All"])
    call = stack.call
    assert _data(call("POST", "/user/check", "dora", {}), 400) == "Missing Phone in Payload"
    assert _data(call("POST", "/user/check", "dora", {"Phone": []}), 400) == "Missing Phone in Payload"
    # one unparseable entry gets its own error; the batch goes on (issue 14, item 3)
    assert _data(call("POST", "/user/check", "dora", {"Phone": ["12", "15550005001"]}))["Users"] == [
        {"Query": "12", "IsInWhatsapp": False, "JID": "", "VerifiedName": "", "Error": "Could not parse Phone: '12'"},
        {"Query": "15550005001", "IsInWhatsapp": True, "JID": "15550005001@s.whatsapp.net", "VerifiedName": ""}]
    assert _data(call("GET", "/user/avatar?Preview=maybe&Phone=1555", "dora"), 400) \
        == "Could not decode Payload: Preview must be a boolean"
    assert _data(call("GET", "/group/info", "dora"), 400) == "Missing GroupJID in Payload"
    assert _data(call("POST", "/group/info", "dora", {"GroupJID": "15550005001@s.whatsapp.net"}), 400) \
        == "Could not parse Group JID"
    assert _data(call("GET", "/group/info?GroupJID=120363000000000001@g.us", "dora"), 404) \
        == "group 120363000000000001@g.us not found"
    assert _data(call("POST", "/group/create", "dora", {"Name": "x"}), 400) == "Missing Participants in Payload"
    assert _data(call("POST", "/group/create", "dora", {"Participants": ["15550005002"]}), 400) \
        == "Missing Name in Payload"
    # Someone not on WhatsApp does not stop the create: WhatsApp lists them with Error 404, not as a member.
    created = _data(call("POST", "/group/create", "dora", {"Name": "x", "Participants": ["15550005002"]}))
    assert [(p["JID"], p["Error"]) for p in created["Participants"]] == [
        ("15550005001@s.whatsapp.net", 0), ("15550005002@s.whatsapp.net", 404)]
    info = _data(call("GET", f"/group/info?GroupJID={created['JID']}", "dora"))
    assert [p["JID"] for p in info["Participants"]] == ["15550005001@s.whatsapp.net"]
    bad_action = _data(call("POST", "/group/participants", "dora", {"GroupJID": "120363000000000001@g.us",
                                                                     "Phone": ["15550005002"], "Action": "kick"}), 400)
    assert bad_action.startswith("Invalid Action in Payload")
    assert _data(call("POST", "/group/announce", "dora", {"GroupJID": "120363000000000001@g.us"}), 400) \
        == "Missing Value in Payload"
    assert _data(call("POST", "/group/announce", "dora", {"GroupJID": "120363000000000001@g.us", "Value": "yes"}),
                 400) == "Could not decode Payload: Value must be a boolean"
    assert _data(call("POST", "/group/join", "dora", {"Code": "https://chat.whatsapp.com/NoSuchCode1"}), 404) \
        == "invalid invite link or code"
    assert _data(call("POST", "/group/join", "dora", {"Code": "not a code!"}), 400) == "invalid invite link or code"
    stack.init("eve")  # never connected
    assert _data(call("GET", "/group/list", "eve"), 500) == "No session"
    _data(call("POST", "/session/connect", "eve", {}))  # connected, QR shown, not logged in
    assert _data(call("GET", "/group/list", "eve"), 500) == "not logged in"
    assert _data(call("POST", "/user/check", "eve", {"Phone": ["15550005001"]}), 500) == "not logged in"
