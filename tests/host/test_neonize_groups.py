"""The neonize driver's user and group calls offline: a FakeGo stands in for one client's Go library,
records what neonize hands to whatsmeow (the real neonize Python wrappers run), and answers with real
neonize protobufs, which the worker turns into WaGo's JSON (whatsmeow's structs via encoding/json)."""

from __future__ import annotations

import pytest
from neonize.proto import Neonize_pb2 as N  # noqa: E402
from neonize.utils.jid import build_jid  # noqa: E402

from chalicelib.core.errors import DomainError
from tests.host.test_neonize_driver import _feed, _session_with_handlers, worker  # noqa: E402,F401 - fixture

GROUP = build_jid("120363000000000042", "g.us")
ME, BOB, CAROL = build_jid("15550000001"), build_jid("15551234567"), build_jid("15557654321")
NOW = 1_760_000_000


def _group_info(*participants: N.GroupParticipant, name: str = "Book club") -> N.GroupInfo:
    return N.GroupInfo(
        JID=GROUP, OwnerJID=ME, GroupName=N.GroupName(Name=name, NameSetAt=NOW, NameSetBy=ME),
        GroupTopic=N.GroupTopic(Topic="Fridays", TopicID="T1", TopicSetAt=NOW, TopicSetBy=ME),
        GroupLocked=N.GroupLocked(isLocked=True), GroupAnnounce=N.GroupAnnounce(IsAnnounce=False),
        GroupCreated=NOW, ParticipantVersionID="7", Participants=list(participants))


class FakeGo:
    """The Go exports neonize's user and group wrappers call, recording their (decoded) arguments."""

    def __init__(self):
        self.calls: list[tuple] = []

    def IsOnWhatsApp(self, uuid, numbers, size):  # noqa: N802 - the Go export's names
        self.calls.append(("IsOnWhatsApp", numbers.decode()))
        return N.IsOnWhatsAppReturnFunction(IsOnWhatsAppResponse=[
            N.IsOnWhatsAppResponse(Query="+15551234567", JID=BOB, IsIn=True),
            N.IsOnWhatsAppResponse(Query="+15550009999", JID=build_jid("15550009999"), IsIn=False),
        ]).SerializePartialToString()

    def GenerateMessageID(self, uuid):  # noqa: N802
        return b"3EB0CREATEKEY"

    def CreateGroup(self, uuid, request, size):  # noqa: N802
        self.calls.append(("CreateGroup", N.ReqCreateGroup.FromString(request)))
        return N.GetGroupInfoReturnFunction(GroupInfo=_group_info(
            N.GroupParticipant(JID=ME, IsAdmin=True, IsSuperAdmin=True),
            N.GroupParticipant(JID=BOB),
        )).SerializePartialToString()

    def UpdateGroupParticipants(self, uuid, group, gsize, jids, jsize, action):  # noqa: N802
        self.calls.append(("UpdateGroupParticipants", N.JID.FromString(group), N.JIDArray.FromString(jids),
                           action.decode()))
        return N.UpdateGroupParticipantsReturnFunction(participants=[
            N.GroupParticipant(JID=BOB, IsAdmin=True),
            N.GroupParticipant(JID=CAROL, Error=404),
        ]).SerializePartialToString()

    def GetUserInfo(self, uuid, jids, size):  # noqa: N802
        self.calls.append(("GetUserInfo", N.JIDArray.FromString(jids)))
        return N.GetUserInfoReturnFunction(UsersInfo=[N.GetUserInfoSingleReturnFunction(
            JID=BOB, UserInfo=N.UserInfo(Status="Reading", PictureID="999", Devices=[BOB]))]).SerializePartialToString()

    def GetProfilePicture(self, uuid, jid, jsize, extra, esize):  # noqa: N802
        self.calls.append(("GetProfilePicture", N.JID.FromString(jid), N.GetProfilePictureParams.FromString(extra)))
        return N.GetProfilePictureReturnFunction(
            Error="the user doesn't have a profile picture").SerializePartialToString()

    def GetGroupInviteLink(self, uuid, jid, size, revoke):  # noqa: N802
        self.calls.append(("GetGroupInviteLink", N.JID.FromString(jid), revoke))
        return N.GetGroupInviteLinkReturnFunction(InviteLink="https://chat.whatsapp.com/AbC123").SerializePartialToString()

    def JoinGroupWithLink(self, uuid, code):  # noqa: N802
        self.calls.append(("JoinGroupWithLink", code.decode()))
        return N.JoinGroupWithLinkReturnFunction(Jid=GROUP).SerializePartialToString()

    def SetGroupTopic(self, uuid, jid, size, previous, new, topic):  # noqa: N802
        self.calls.append(("SetGroupTopic", N.JID.FromString(jid), previous, new, topic.decode()))
        return b""

    def GetGroupInfo(self, uuid, jid, size):  # noqa: N802
        self.calls.append(("GetGroupInfo", N.JID.FromString(jid)))
        return N.GetGroupInfoReturnFunction(Error="group not found").SerializePartialToString()


@pytest.fixture
def fake(worker):  # noqa: F811 - the imported fixture
    session = _session_with_handlers(worker, "tok-groups")
    with pytest.raises(DomainError) as not_yet:
        worker.user_group("tok-groups", "check_users", phones=["15551234567"])
    assert (not_yet.value.status, not_yet.value.message) == (500, "not logged in")
    session.state.logged_in = True
    go = FakeGo()
    session.client._NewClient__client = go
    return go


def test_is_on_whatsapp_asks_for_plus_numbers_and_answers_wuzapis_shape(worker, fake):  # noqa: F811
    users = worker.user_group("tok-groups", "check_users", phones=["+1 (555) 123-4567", "15550009999"])
    assert fake.calls == [("IsOnWhatsApp", "+15551234567 +15550009999")]
    assert users == [
        {"Query": "+15551234567", "IsInWhatsapp": True, "JID": "15551234567@s.whatsapp.net", "VerifiedName": ""},
        {"Query": "+15550009999", "IsInWhatsapp": False, "JID": "15550009999@s.whatsapp.net", "VerifiedName": ""}]
    with pytest.raises(DomainError) as bad:
        worker.user_group("tok-groups", "check_users", phones=["12"])
    assert (bad.value.status, bad.value.message) == (400, "Could not parse Phone")


def test_create_group_sends_the_name_and_participant_jids_and_answers_a_flat_group_info(worker, fake):  # noqa: F811
    info = worker.user_group("tok-groups", "create_group", name="Book club", participants=["+1 555 123 4567"])
    ((_, request),) = fake.calls
    assert request.name == "Book club" and request.CreateKey == "3EB0CREATEKEY"
    assert [(j.User, j.Server) for j in request.Participants] == [("15551234567", "s.whatsapp.net")]
    assert (info["JID"], info["OwnerJID"], info["Name"], info["Topic"]) == (
        "120363000000000042@g.us", "15550000001@s.whatsapp.net", "Book club", "Fridays")
    assert (info["IsLocked"], info["IsAnnounce"], info["ParticipantCount"], info["ParticipantVersionID"]) == (
        True, False, 2, "7")
    assert info["NameSetAt"] == info["GroupCreated"] == "2025-10-09T08:53:20Z"
    assert [(p["JID"], p["IsAdmin"], p["IsSuperAdmin"]) for p in info["Participants"]] == [
        ("15550000001@s.whatsapp.net", True, True), ("15551234567@s.whatsapp.net", False, False)]


def test_update_group_participants_sends_the_action_and_reports_each_participant(worker, fake):  # noqa: F811
    result = worker.user_group("tok-groups", "update_group_participants", group="120363000000000042@g.us",
                               phones=["15551234567", "15557654321@s.whatsapp.net"], action="promote")
    ((_, group, jids, action),) = fake.calls
    assert (group.User, group.Server, action) == ("120363000000000042", "g.us", "promote")
    assert [j.User for j in jids.JIDS] == ["15551234567", "15557654321"]
    assert [(p["JID"], p["IsAdmin"], p["Error"]) for p in result] == [
        ("15551234567@s.whatsapp.net", True, 0), ("15557654321@s.whatsapp.net", False, 404)]
    with pytest.raises(DomainError) as bad:
        worker.user_group("tok-groups", "update_group_participants", group="15551234567@s.whatsapp.net",
                          phones=["15551234567"], action="add")
    assert (bad.value.status, bad.value.message) == (400, "Could not parse Group JID")


def test_user_info_avatar_invite_join_topic_and_errors(worker, fake):  # noqa: F811
    info = worker.user_group("tok-groups", "user_info", phones=["15551234567"])
    assert info == {"15551234567@s.whatsapp.net": {"VerifiedName": None, "Status": "Reading", "PictureID": "999",
                                                   "Devices": ["15551234567@s.whatsapp.net"], "LID": ""}}
    with pytest.raises(DomainError) as none:
        worker.user_group("tok-groups", "user_avatar", phone="15551234567", preview=True)
    assert (none.value.status, none.value.message) == (404, "No avatar found")
    assert fake.calls[-1][2].Preview is True
    assert worker.user_group("tok-groups", "group_invite_link", group="120363000000000042@g.us", reset=True) \
        == "https://chat.whatsapp.com/AbC123"
    assert fake.calls[-1][2] is True
    assert worker.user_group("tok-groups", "join_group", code="https://chat.whatsapp.com/AbC123") \
        == "120363000000000042@g.us"
    assert fake.calls[-1] == ("JoinGroupWithLink", "AbC123")
    worker.user_group("tok-groups", "set_group_topic", group="120363000000000042@g.us", topic="New topic")
    assert fake.calls[-1][2:] == (b"", b"", "New topic")
    with pytest.raises(DomainError) as missing:
        worker.user_group("tok-groups", "group_info", group="120363000000000043@g.us")
    assert (missing.value.status, missing.value.message) == (404, "Failed to get group info: group not found")


def test_group_events_become_whatsmeows_shapes(worker):  # noqa: F811
    session = _session_with_handlers(worker, "tok-events")
    _feed(session.client, N.GroupInfoEvent(JID=GROUP, Sender=BOB, Timestamp=NOW, Join=[CAROL],
                                           Name=N.GroupName(Name="Renamed", NameSetAt=NOW, NameSetBy=BOB),
                                           Locked=N.GroupLocked(isLocked=True)))
    _feed(session.client, N.JoinedGroup(Reason="invite", Type="", GroupInfo=_group_info(
        N.GroupParticipant(JID=ME, IsAdmin=True, IsSuperAdmin=True))))
    (_, token, kind, info, extra), (_, _, joined_kind, joined, _) = worker.emitted.of("event")
    assert (token, kind, extra) == ("tok-events", "GroupInfo", {})
    assert (info["JID"], info["Sender"], info["Timestamp"], info["Join"], info["Leave"]) == (
        "120363000000000042@g.us", "15551234567@s.whatsapp.net", "2025-10-09T08:53:20Z",
        ["15557654321@s.whatsapp.net"], None)
    assert info["Name"] == {"Name": "Renamed", "NameSetAt": "2025-10-09T08:53:20Z",
                            "NameSetBy": "15551234567@s.whatsapp.net", "NameSetByPN": ""}
    assert (info["Locked"], info["Topic"], info["Announce"]) == ({"IsLocked": True}, None, None)
    assert joined_kind == "JoinedGroup" and (joined["Reason"], joined["JID"], joined["Name"]) == (
        "invite", "120363000000000042@g.us", "Book club")
    assert joined["Participants"][0]["IsSuperAdmin"] is True
