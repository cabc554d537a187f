"""Shape parity: the same message kinds through both drivers' translators give the same JSON structure,
field by field (keys and value types), and that structure is whatsmeow's as research/wago-api.md §3.5
pins it (plus the fields the pinned whatsmeow adds, declared below). Values whatsmeow decides from the
content (Info.Type, Info.MediaType, Info.Edit, IsEdit) must equal what whatsmeow gives.

- neonize: real neonize protobuf events, built offline as whatsmeow would deliver them, through
  `neonize_events.translate` (the worker's translator);
- sim: the same contents sent over the sim network (moto), as the receiving session's events.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from google.protobuf import json_format
from neonize.proto import Neonize_pb2 as N
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as WAMessage
from neonize.utils.jid import build_jid

from chalicelib.core import message_content

ALICE, BOB = "15550001111", "15550002222"  # Alice sends; Bob's session receives
NOW = 1_760_000_000
NULLABLE = type(None)

# -- the pins: §3.5's shapes, with the pinned whatsmeow's additions named ------------------------------

SOURCE = {"Chat": str, "Sender": str, "IsFromMe": bool, "IsGroup": bool,
          # §3.5's Message Info shows these MessageSource fields; Receipt and ChatPresence embed it too
          "AddressingMode": str, "SenderAlt": str, "RecipientAlt": str, "BroadcastListOwner": str}
MESSAGE = {
    "Info": {**SOURCE, "ID": str, "ServerID": int, "Type": str, "PushName": str, "Timestamp": str,
             "Category": str, "Multicast": bool, "MediaType": str, "Edit": str,
             "VerifiedName": (NULLABLE, dict), "DeviceSentMeta": (NULLABLE, dict)},
    "Message": dict, "IsEphemeral": bool, "IsViewOnce": bool, "IsDocumentWithCaption": bool, "IsEdit": bool,
    "SourceWebMsg": (NULLABLE, dict), "UnavailableRequestID": str, "RetryCount": int,
    "NewsletterMeta": (NULLABLE, dict), "RawMessage": dict,
    # added by the whatsmeow neonize pins (events.Message), absent from §3.5's older example
    "IsViewOnceV2": bool, "IsViewOnceV2Extension": bool, "IsLottieSticker": bool,
}
RECEIPT = {**SOURCE, "MessageIDs": [str], "Timestamp": str, "Type": str, "MessageSender": str}
PRESENCE = {"From": str, "Unavailable": bool, "LastSeen": str}
CHAT_PRESENCE = {**SOURCE, "State": str, "Media": str}
PARTICIPANT = {"JID": str, "PhoneNumber": str, "LID": str, "IsAdmin": bool, "IsSuperAdmin": bool,
               "DisplayName": str, "Error": int, "AddRequest": (NULLABLE, dict)}
GROUP = {  # types.GroupInfo, embedded structs flattened
    "JID": str, "OwnerJID": str, "OwnerPN": str, "Name": str, "NameSetAt": str, "NameSetBy": str,
    "NameSetByPN": str, "Topic": str, "TopicID": str, "TopicSetAt": str, "TopicSetBy": str, "TopicSetByPN": str,
    "TopicDeleted": bool, "IsLocked": bool, "IsAnnounce": bool, "AnnounceVersionID": str, "IsEphemeral": bool,
    "DisappearingTimer": int, "IsIncognito": bool, "IsParent": bool, "DefaultMembershipApprovalMode": str,
    "LinkedParentJID": str, "IsDefaultSubGroup": bool, "IsJoinApprovalRequired": bool, "AddressingMode": str,
    "GroupCreated": str, "CreatorCountryCode": str, "ParticipantVersionID": str, "Participants": [PARTICIPANT],
    "ParticipantCount": int, "MemberAddMode": str,
}
JOINED_GROUP = {"Reason": str, "Type": str, "CreateKey": str, "Sender": (NULLABLE, str),
                "SenderPN": (NULLABLE, str), "Notify": str, **GROUP}
GROUP_NAME = {"Name": str, "NameSetAt": str, "NameSetBy": str, "NameSetByPN": str}
GROUP_INFO = {  # events.GroupInfo: a change not made is null
    "JID": str, "Notify": str, "Sender": (NULLABLE, str), "SenderPN": (NULLABLE, str), "Timestamp": str,
    "Name": (NULLABLE, GROUP_NAME), "Topic": (NULLABLE, dict), "Locked": (NULLABLE, {"IsLocked": bool}),
    "Announce": (NULLABLE, dict), "Ephemeral": (NULLABLE, dict), "MembershipApprovalMode": (NULLABLE, dict),
    "Delete": (NULLABLE, dict), "Link": (NULLABLE, dict), "Unlink": (NULLABLE, dict),
    "NewInviteLink": (NULLABLE, str), "PrevParticipantVersionID": str, "ParticipantVersionID": str,
    "JoinReason": str, "Join": (NULLABLE, [str]), "Leave": (NULLABLE, [str]), "Promote": (NULLABLE, [str]),
    "Demote": (NULLABLE, [str]), "UnknownChanges": (NULLABLE, list),
}


def conforms(value: Any, pin: Any, where: str = "event") -> list[str]:
    """Where `value` departs from `pin`: a dict pin needs exactly its keys; `[pin]` a list of such items;
    a tuple any of its alternatives; a type an instance (bool is not an int)."""
    if isinstance(pin, tuple):
        tries = [conforms(value, alternative, where) for alternative in pin]
        return [] if any(not t for t in tries) else min(tries, key=len)
    if isinstance(pin, dict):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not an object"]
        problems = [f"{where}: keys {sorted(set(value) ^ set(pin))} differ"] if set(value) != set(pin) else []
        for key in set(value) & set(pin):
            problems += conforms(value[key], pin[key], f"{where}.{key}")
        return problems
    if isinstance(pin, list):
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a list"]
        return [p for i, item in enumerate(value) for p in conforms(item, pin[0], f"{where}[{i}]")]
    if pin is int and isinstance(value, bool) or not isinstance(value, pin):
        return [f"{where}: {type(value).__name__}, not {getattr(pin, '__name__', pin)}"]
    return []


def structure(value: Any) -> Any:
    """A JSON value's skeleton: the same keys, each value replaced by its type name (lists by their items')."""
    if isinstance(value, dict):
        return {key: structure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [structure(item) for item in value]
    return type(value).__name__


# -- the message kinds ---------------------------------------------------------------------------------

BOB_JID = f"{BOB}@s.whatsapp.net"
ALICE_JID = f"{ALICE}@s.whatsapp.net"
SHA = hashlib.sha256(b"image bytes").hexdigest()
IMAGE = {"imageMessage": {"URL": "", "mimetype": "image/png",
                          "fileSHA256": base64.b64encode(bytes.fromhex(SHA)).decode(),
                          "fileLength": 11, "mediaKey": "", "directPath": "media/out/x/img", "caption": "look"}}
KINDS = {  # content, and whatsmeow's (Info.Type, Info.MediaType, Info.Edit, IsEdit) for it
    "text": ({"conversation": "hi"}, ("text", "", "", False)),
    "reply": (message_content.text("re", quoted_id="3EB0QUOTED", quoted_sender=BOB_JID,
                                   quoted={"conversation": "hi"}, mentions=[BOB_JID]), ("text", "", "", False)),
    "image": (IMAGE, ("media", "image", "", False)),
    "edit": (message_content.edit(BOB_JID, "3EB0EDITED", "fixed"), ("text", "", "1", False)),
    "revoke": (message_content.revoke(BOB_JID, "3EB0GONE"), ("text", "", "7", False)),
    "reaction": (message_content.reaction(BOB_JID, "3EB0LIKED", "👍", False), ("reaction", "", "", False)),
    "poll": (message_content.poll("Lunch?", ["Pizza", "Sushi"], 1), ("poll", "", "", False)),
}


def _neonize_message(content: dict[str, Any], values: tuple[str, str, str, bool]) -> dict[str, Any]:
    """What whatsmeow delivers for `content`, as a neonize protobuf, through the neonize translator."""
    from session_host.drivers.neonize_events import translate

    type_, media, edit, is_edit = values
    proto = json_format.ParseDict(content, WAMessage())
    event = N.Message(
        Info=N.MessageInfo(MessageSource=N.MessageSource(Chat=build_jid(ALICE), Sender=build_jid(ALICE),
                                                         IsFromMe=False, IsGroup=False),
                           ID="3EB0NEONIZE", Timestamp=NOW * 1000, Pushname="Alice", Type=type_, MediaType=media,
                           Edit=edit),
        Message=proto, Raw=proto, IsEdit=is_edit)
    translated = translate(event)
    assert translated is not None and translated.type == "Message"
    return translated.event


@pytest.fixture
def sim(aws):
    """Alice's and Bob's accounts with one online session each; what Bob's session receives is kept."""
    from chalicelib.core.media import MediaStore
    from chalicelib.core.models import SessionModel
    from session_host.sim.network import SimNetwork

    received: list[tuple[str, str, dict, dict]] = []
    network = SimNetwork(lambda token, type, event, extra, media_key=None: received.append((token, type, event, extra)))
    for phone, token in ((ALICE, "alice"), (BOB, "bob")):
        network.link_device(token, network.account(phone, "Alice" if phone == ALICE else "Bob", create=True),
                            f"{phone}:3@s.whatsapp.net")
        SessionModel(token, id=int(phone[-1]), name=token, connected=True, logged_in=True, owner_host="h1").save()
    store = MediaStore()
    store.s3.put_object(Bucket=store.settings.media_bucket_name, Key="media/out/x/img", Body=b"image bytes")
    network.received = received
    return network


def _sim_events(network, token: str, type: str) -> list[tuple[dict, dict]]:
    return [(event, extra) for t, kind, event, extra in network.received if t == token and kind == type]


@pytest.mark.parametrize("kind", list(KINDS))
def test_message_kinds_have_one_shape_in_both_drivers(sim, kind):
    content, values = KINDS[kind]
    if kind == "image":
        sim.send_media(ALICE, BOB, "image", "media/out/x/img", "image/png", 11, SHA, "look")
    else:
        sim.send_message(ALICE, BOB, content)
    ((sim_event, extra),) = _sim_events(sim, "bob", "Message")
    neonize_event = _neonize_message(content, values)

    assert extra == {}
    assert conforms(sim_event, MESSAGE) == []
    assert conforms(neonize_event, MESSAGE) == []
    assert structure(sim_event) == structure(neonize_event)  # field by field, content included
    info = sim_event["Info"]
    assert (info["Type"], info["MediaType"], info["Edit"], sim_event["IsEdit"]) == values
    assert (info["Chat"], info["Sender"], info["PushName"]) == (ALICE_JID, ALICE_JID, "Alice")


def test_receipts_presence_and_chat_presence_have_one_shape(sim):
    from session_host.drivers.neonize_events import translate

    sent = sim.send_text(BOB, ALICE, "hello")  # Bob sends; Alice reads; Bob's session gets the receipts
    sim.mark_read(ALICE, [sent["Id"]])
    sim.chat_presence(ALICE, BOB, "composing", "audio")
    sim.subscribe_presence("bob", ALICE)
    sim.presence(ALICE, False)

    source = N.MessageSource(Chat=build_jid(ALICE), Sender=build_jid(ALICE), IsFromMe=False, IsGroup=False)
    neonize = {
        ("ReadReceipt", "Delivered"): translate(N.Receipt(MessageSource=source, MessageIDs=[sent["Id"]], Timestamp=NOW,
                                                          Type=N.Receipt.DELIVERED)),
        ("ReadReceipt", "Read"): translate(N.Receipt(MessageSource=source, MessageIDs=[sent["Id"]], Timestamp=NOW,
                                                     Type=N.Receipt.READ)),
        ("ChatPresence", None): translate(N.ChatPresence(MessageSource=source, State=N.ChatPresence.COMPOSING,
                                                         Media=N.ChatPresence.AUDIO)),
        ("Presence", "offline"): translate(N.Presence(From=build_jid(ALICE), Unavailable=True, LastSeen=NOW)),
    }
    pins = {"ReadReceipt": RECEIPT, "ChatPresence": CHAT_PRESENCE, "Presence": PRESENCE}
    for (type, state), translated in neonize.items():
        matching = [(e, x) for e, x in _sim_events(sim, "bob", type) if x.get("state") == state]
        assert matching, (type, state)
        sim_event, sim_extra = matching[0]
        assert translated.type == type and translated.extra == sim_extra
        assert conforms(sim_event, pins[type]) == [] and conforms(translated.event, pins[type]) == []
        assert structure(sim_event) == structure(translated.event), type
        assert sim_event.get("Type", translated.event.get("Type")) == translated.event.get("Type")


def test_group_events_have_one_shape(sim):
    from neonize.proto import Neonize_pb2 as P

    from session_host.drivers.neonize_events import translate
    from session_host.sim.groups import SimGroups

    groups = SimGroups(sim)
    group = groups.create(ALICE, "alice", "Book club", [BOB])["JID"]
    groups.set_name(ALICE, "alice", group, "Renamed")
    groups.set_locked(ALICE, "alice", group, True)
    ((joined, _),) = _sim_events(sim, "bob", "JoinedGroup")
    infos = [event for event, _ in _sim_events(sim, "bob", "GroupInfo")]
    assert [bool(i["Name"]) for i in infos] == [True, False] and infos[1]["Locked"] == {"IsLocked": True}

    gjid, alice, bob = build_jid("120363000000000042", "g.us"), build_jid(ALICE), build_jid(BOB)
    info = P.GroupInfo(
        JID=gjid, OwnerJID=alice, GroupName=P.GroupName(Name="Book club", NameSetAt=NOW, NameSetBy=alice),
        GroupTopic=P.GroupTopic(), GroupCreated=NOW, ParticipantVersionID="1",
        Participants=[P.GroupParticipant(JID=alice, IsAdmin=True, IsSuperAdmin=True), P.GroupParticipant(JID=bob)])
    neonize_joined = translate(P.JoinedGroup(Reason="add", Sender=alice, GroupInfo=info)).event
    neonize_renamed = translate(P.GroupInfoEvent(
        JID=gjid, Sender=alice, Timestamp=NOW, Name=P.GroupName(Name="Renamed", NameSetAt=NOW, NameSetBy=alice))).event
    neonize_locked = translate(P.GroupInfoEvent(JID=gjid, Sender=alice, Timestamp=NOW,
                                                Locked=P.GroupLocked(isLocked=True))).event

    for sim_event, neonize_event, pin in ((joined, neonize_joined, JOINED_GROUP),
                                          (infos[0], neonize_renamed, GROUP_INFO),
                                          (infos[1], neonize_locked, GROUP_INFO)):
        assert conforms(sim_event, pin) == [] and conforms(neonize_event, pin) == []
        assert structure(sim_event) == structure(neonize_event)
