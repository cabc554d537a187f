"""neonize's group structs and group events -> WaGo's JSON (whatsmeow's structs through Go's encoding/json),
built with chalicelib/core/shapes.py as the sim builds them.

GroupInfo's embedded structs are flattened (`Name`, `Topic`, `IsLocked`, ... at the top level), JIDs
are strings, times RFC 3339; in events.GroupInfo only what changed is set, the rest is null (Go's nil
pointers and slices). neonize's GroupInfo protobuf lacks a few of whatsmeow's fields
(IsJoinApprovalRequired, AddressingMode, CreatorCountryCode, MemberAddMode): they get zero values.

neonize_events registers the two event translators (EVENT_TRANSLATORS).
"""

from __future__ import annotations

from typing import Any

from neonize.proto import Neonize_pb2 as N

from chalicelib.core import shapes
from chalicelib.core.shapes import rfc3339
from session_host.drivers.neonize_json import Translated, jid_str, proto_json

# -- GroupInfo ------------------------------------------------------------------------------------------


def participant_json(p: N.GroupParticipant) -> dict[str, Any]:
    add = None
    if p.HasField("AddRequest"):
        add = {"Code": p.AddRequest.Code, "Expiration": _event_time(p.AddRequest.Expiration)}
    return shapes.group_participant(
        jid_str(p.JID), phone_number=jid_str(p.PhoneNumber), lid=jid_str(p.LID), is_admin=p.IsAdmin,
        is_super_admin=p.IsSuperAdmin, display_name=p.DisplayName, error=p.Error, add_request=add)


def _name(n: Any) -> dict[str, Any]:
    return shapes.group_name(n.Name, _event_time(n.NameSetAt), jid_str(n.NameSetBy))


def _topic(t: Any) -> dict[str, Any]:
    return shapes.group_topic(t.Topic, t.TopicID, _event_time(t.TopicSetAt), jid_str(t.TopicSetBy), t.TopicDeleted)


def group_json(g: N.GroupInfo) -> dict[str, Any]:
    """whatsmeow's types.GroupInfo through encoding/json, from neonize's (nested) protobuf."""
    return shapes.group_info(
        jid_str(g.JID), jid_str(g.OwnerJID), _name(g.GroupName), _topic(g.GroupTopic),
        [participant_json(p) for p in g.Participants], owner_pn=jid_str(g.OwnerPN),
        locked=g.GroupLocked.isLocked, announce=g.GroupAnnounce.IsAnnounce,
        announce_version_id=g.GroupAnnounce.AnnounceVersionID, ephemeral=g.GroupEphemeral.IsEphemeral,
        disappearing_timer=g.GroupEphemeral.DisappearingTimer, incognito=g.GroupIncognito.IsIncognito,
        parent=g.GroupParent.IsParent, default_membership_approval_mode=g.GroupParent.DefaultMembershipApprovalMode,
        linked_parent=jid_str(g.GroupLinkedParent.LinkedParentJID),
        default_sub_group=g.GroupIsDefaultSub.IsDefaultSubGroup, created=_event_time(g.GroupCreated),
        participant_version_id=g.ParticipantVersionID)


# -- group events: whatsmeow's events.GroupInfo / events.JoinedGroup through encoding/json -----------


def _event_time(value: int) -> str:
    """neonize's event timestamps: seconds, or milliseconds where Go's UnixMilli was used."""
    return rfc3339(value / 1000 if value > 10**11 else value)


def _jids(values: Any) -> list[str] | None:
    return [jid_str(j) for j in values] or None  # a nil slice is null


def group_info_event(event: N.GroupInfoEvent) -> Translated:
    """Only what changed is set; the rest is null, as whatsmeow's nil pointers and slices."""
    def has(name: str) -> Any:
        return getattr(event, name) if event.HasField(name) else None

    name, topic, locked, announce = has("Name"), has("Topic"), has("Locked"), has("Announce")
    ephemeral, delete = has("Ephemeral"), has("Delete")
    body = shapes.group_info_event(
        jid_str(event.JID), _event_time(event.Timestamp), jid_str(event.Sender), notify=event.Notify,
        prev_participant_version_id=event.PrevParticipantsVersionID,
        participant_version_id=event.ParticipantVersionID, join_reason=event.JoinReason,
        Name=_name(name) if name else None, Topic=_topic(topic) if topic else None,
        Locked={"IsLocked": locked.isLocked} if locked else None,
        Announce={"IsAnnounce": announce.IsAnnounce, "AnnounceVersionID": announce.AnnounceVersionID}
        if announce else None,
        Ephemeral={"IsEphemeral": ephemeral.IsEphemeral, "DisappearingTimer": ephemeral.DisappearingTimer}
        if ephemeral else None,
        Delete={"Deleted": delete.Deleted, "DeletedReason": delete.DeletedReason} if delete else None,
        Link=proto_json(event.Link) if event.HasField("Link") else None,
        Unlink=proto_json(event.Unlink) if event.HasField("Unlink") else None,
        NewInviteLink=event.NewInviteLink or None,
        Join=_jids(event.Join), Leave=_jids(event.Leave), Promote=_jids(event.Promote), Demote=_jids(event.Demote),
        UnknownChanges=[proto_json(n) for n in event.UnknownChanges] or None)
    return Translated("GroupInfo", body, {})


def joined_group_event(event: N.JoinedGroup) -> Translated:
    """events.JoinedGroup embeds types.GroupInfo: its fields sit at the top level."""
    body = shapes.joined_group(group_json(event.GroupInfo), reason=event.Reason, type=event.Type,
                               create_key=event.CreateKey, sender=jid_str(event.Sender),
                               sender_pn=jid_str(event.SenderPN))
    return Translated("JoinedGroup", body, {})


#: Replaces neonize_events' plain copies of these two events (neonize_events registers them).
EVENT_TRANSLATORS = {N.GroupInfoEvent: group_info_event, N.JoinedGroup: joined_group_event}
