"""neonize's group structs and group events -> WaGo's JSON (whatsmeow's structs through Go's encoding/json).

GroupInfo's embedded structs are flattened (`Name`, `Topic`, `IsLocked`, ... at the top level), JIDs
are strings, times RFC 3339; in events.GroupInfo only what changed is set, the rest is null (Go's nil
pointers and slices). neonize's GroupInfo protobuf lacks a few of whatsmeow's fields
(IsJoinApprovalRequired, AddressingMode, CreatorCountryCode, MemberAddMode): they get zero values.

neonize_events registers the two event translators at its end; this module imports neonize_events'
helpers inside the functions, so either module may be imported first.
"""

from __future__ import annotations

from typing import Any, Callable

from neonize.proto import Neonize_pb2 as N


def _helpers():
    from session_host.drivers import neonize_events

    return neonize_events


def jid_str(jid: Any) -> str:
    return _helpers().jid_str(jid)


def rfc3339(seconds: float | int) -> str:
    return _helpers().rfc3339(seconds)


def proto_json(message: Any) -> dict[str, Any]:
    return _helpers().proto_json(message)


# -- GroupInfo ------------------------------------------------------------------------------------------


def participant_json(p: N.GroupParticipant) -> dict[str, Any]:
    add = None
    if p.HasField("AddRequest"):
        add = {"Code": p.AddRequest.Code, "Expiration": _event_time(p.AddRequest.Expiration)}
    return {"JID": jid_str(p.JID), "PhoneNumber": jid_str(p.PhoneNumber), "LID": jid_str(p.LID),
            "IsAdmin": p.IsAdmin, "IsSuperAdmin": p.IsSuperAdmin, "DisplayName": p.DisplayName, "Error": p.Error,
            "AddRequest": add}


def group_json(g: N.GroupInfo) -> dict[str, Any]:
    """whatsmeow's types.GroupInfo through encoding/json, from neonize's (nested) protobuf."""
    return {
        "JID": jid_str(g.JID), "OwnerJID": jid_str(g.OwnerJID), "OwnerPN": jid_str(g.OwnerPN),
        "Name": g.GroupName.Name, "NameSetAt": _event_time(g.GroupName.NameSetAt),
        "NameSetBy": jid_str(g.GroupName.NameSetBy), "NameSetByPN": "",
        "Topic": g.GroupTopic.Topic, "TopicID": g.GroupTopic.TopicID, "TopicSetAt": _event_time(g.GroupTopic.TopicSetAt),
        "TopicSetBy": jid_str(g.GroupTopic.TopicSetBy), "TopicSetByPN": "", "TopicDeleted": g.GroupTopic.TopicDeleted,
        "IsLocked": g.GroupLocked.isLocked,
        "IsAnnounce": g.GroupAnnounce.IsAnnounce, "AnnounceVersionID": g.GroupAnnounce.AnnounceVersionID,
        "IsEphemeral": g.GroupEphemeral.IsEphemeral, "DisappearingTimer": g.GroupEphemeral.DisappearingTimer,
        "IsIncognito": g.GroupIncognito.IsIncognito,
        "IsParent": g.GroupParent.IsParent, "DefaultMembershipApprovalMode": g.GroupParent.DefaultMembershipApprovalMode,
        "LinkedParentJID": jid_str(g.GroupLinkedParent.LinkedParentJID),
        "IsDefaultSubGroup": g.GroupIsDefaultSub.IsDefaultSubGroup,
        "IsJoinApprovalRequired": False,
        "AddressingMode": "",
        "GroupCreated": _event_time(g.GroupCreated),
        "CreatorCountryCode": "",
        "ParticipantVersionID": g.ParticipantVersionID,
        "Participants": [participant_json(p) for p in g.Participants],
        "ParticipantCount": len(g.Participants),
        "MemberAddMode": "",
    }


# -- group events: whatsmeow's events.GroupInfo / events.JoinedGroup through encoding/json -----------


def _event_time(value: int) -> str:
    """neonize's event timestamps: seconds, or milliseconds where Go's UnixMilli was used."""
    return rfc3339(value / 1000 if value > 10**11 else value)


def _jids(values: Any) -> list[str] | None:
    return [jid_str(j) for j in values] or None  # a nil slice is null


def group_info_event(event: N.GroupInfoEvent) -> Any:
    """Only what changed is set; the rest is null, as whatsmeow's nil pointers and slices."""
    def part(name: str, build: Callable[[Any], dict[str, Any]]) -> dict[str, Any] | None:
        return build(getattr(event, name)) if event.HasField(name) else None

    body = {
        "JID": jid_str(event.JID), "Notify": event.Notify, "Sender": jid_str(event.Sender) or None, "SenderPN": None,
        "Timestamp": _event_time(event.Timestamp),
        "Name": part("Name", lambda n: {"Name": n.Name, "NameSetAt": _event_time(n.NameSetAt),
                                        "NameSetBy": jid_str(n.NameSetBy), "NameSetByPN": ""}),
        "Topic": part("Topic", lambda t: {"Topic": t.Topic, "TopicID": t.TopicID, "TopicSetAt": _event_time(t.TopicSetAt),
                                          "TopicSetBy": jid_str(t.TopicSetBy), "TopicSetByPN": "",
                                          "TopicDeleted": t.TopicDeleted}),
        "Locked": part("Locked", lambda x: {"IsLocked": x.isLocked}),
        "Announce": part("Announce", lambda x: {"IsAnnounce": x.IsAnnounce, "AnnounceVersionID": x.AnnounceVersionID}),
        "Ephemeral": part("Ephemeral", lambda x: {"IsEphemeral": x.IsEphemeral, "DisappearingTimer": x.DisappearingTimer}),
        "MembershipApprovalMode": None,
        "Delete": part("Delete", lambda x: {"Deleted": x.Deleted, "DeletedReason": x.DeletedReason}),
        "Link": part("Link", proto_json), "Unlink": part("Unlink", proto_json),
        "NewInviteLink": event.NewInviteLink or None,
        "PrevParticipantVersionID": event.PrevParticipantsVersionID, "ParticipantVersionID": event.ParticipantVersionID,
        "JoinReason": event.JoinReason,
        "Join": _jids(event.Join), "Leave": _jids(event.Leave), "Promote": _jids(event.Promote),
        "Demote": _jids(event.Demote), "UnknownChanges": [proto_json(n) for n in event.UnknownChanges] or None,
    }
    return _helpers().Translated("GroupInfo", body, {})


def joined_group_event(event: N.JoinedGroup) -> Any:
    """events.JoinedGroup embeds types.GroupInfo: its fields sit at the top level."""
    body = {"Reason": event.Reason, "Type": event.Type, "CreateKey": event.CreateKey,
            "Sender": jid_str(event.Sender) or None, "SenderPN": jid_str(event.SenderPN) or None, "Notify": "",
            **group_json(event.GroupInfo)}
    return _helpers().Translated("JoinedGroup", body, {})


#: Replaces neonize_events' plain copies of these two events (registered at the end of neonize_events).
EVENT_TRANSLATORS = {N.GroupInfoEvent: group_info_event, N.JoinedGroup: joined_group_event}
