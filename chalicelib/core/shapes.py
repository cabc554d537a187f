"""whatsmeow's event structs as Go's encoding/json writes them: the one builder of the JSON that WaGo puts
under a webhook's `event`, used by both drivers (the neonize translators in session_host/drivers/ and
the simulator in session_host/sim/), so a receiver cannot tell them apart.

Shapes are research/wago-api.md §3.5's (whatsmeow's structs, `[W]`), with the fields the pinned
whatsmeow version adds (MessageSource's `AddressingMode`, `SenderAlt`, `RecipientAlt`,
`BroadcastListOwner`; Message's `IsViewOnceV2`, `IsViewOnceV2Extension`, `IsLottieSticker`):

- JIDs are strings (`types.JID`'s MarshalText), an empty JID is `""`; a nil `*types.JID` is `null`;
- times are RFC 3339 (UTC here), a zero time is `"0001-01-01T00:00:00Z"`;
- byte slices are base64 strings, protobuf enums integers, WhatsApp message protobufs under their
  proto field names (`conversation`, `imageMessage`, ...);
- nil pointers, maps and slices are `null`.

Every builder takes values already in those JSON forms (strings, RFC 3339 times) and returns a new dict.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"

#: whatsmeow's types.EditAttribute (the `edit` attribute of a message node), as `Info.Edit`.
EDIT_NONE = ""
EDIT_MESSAGE = "1"
EDIT_PIN = "2"
EDIT_ADMIN = "3"
EDIT_SENDER_REVOKE = "7"
EDIT_ADMIN_REVOKE = "8"

#: waE2E.ProtocolMessage.Type values that decide the edit attribute.
_REVOKE, _MESSAGE_EDIT = 0, 14

#: Receipt `Type` (whatsmeow's types.ReceiptType) -> WaGo's `state` beside the event.
RECEIPT_STATES = {"": "Delivered", "read": "Read", "read-self": "ReadSelf"}

#: Message fields whose content is media, and whatsmeow's `mediatype` for each (send.go getMediaTypeFromMessage).
_MEDIA_TYPES = {
    "imageMessage": "image", "stickerMessage": "sticker", "documentMessage": "document",
    "audioMessage": "audio", "videoMessage": "video", "contactMessage": "vcard",
    "contactsArrayMessage": "contact_array", "listMessage": "list", "listResponseMessage": "list_response",
    "buttonsResponseMessage": "buttons_response", "orderMessage": "order", "productMessage": "product",
    "interactiveResponseMessage": "native_flow_response",
}


def rfc3339(seconds: float | int | None) -> str:
    """Epoch seconds -> RFC 3339 in UTC (`2025-05-01T13:00:00Z`); 0 or None -> Go's zero time."""
    if not seconds:
        return ZERO_TIME
    return datetime.fromtimestamp(float(seconds), tz=UTC).isoformat().replace("+00:00", "Z")


# -- messages ------------------------------------------------------------------------------------------


def message_source(chat: str, sender: str, *, is_from_me: bool = False, is_group: bool = False,
                   addressing_mode: str = "", sender_alt: str = "", recipient_alt: str = "",
                   broadcast_list_owner: str = "") -> dict[str, Any]:
    """types.MessageSource: who sent what to which chat (embedded, so flattened into its parent)."""
    return {"Chat": chat, "Sender": sender, "IsFromMe": is_from_me, "IsGroup": is_group,
            "AddressingMode": addressing_mode, "SenderAlt": sender_alt, "RecipientAlt": recipient_alt,
            "BroadcastListOwner": broadcast_list_owner}


def message_info(source: dict[str, Any], message_id: str, timestamp: str, *, server_id: int = 0, type: str = "text",
                 push_name: str = "", category: str = "", multicast: bool = False, media_type: str = "",
                 edit: str = EDIT_NONE, verified_name: dict[str, Any] | None = None,
                 device_sent_meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """types.MessageInfo: the source, then `ID`, `Type` (`text`, `media`, `reaction`, `poll`), `Edit` (EDIT_*)..."""
    return {**source, "ID": message_id, "ServerID": server_id, "Type": type, "PushName": push_name,
            "Timestamp": timestamp, "Category": category, "Multicast": multicast, "MediaType": media_type,
            "Edit": edit, "VerifiedName": verified_name, "DeviceSentMeta": device_sent_meta}


def message(info: dict[str, Any], content: dict[str, Any], *, raw: dict[str, Any] | None = None,
            is_ephemeral: bool = False, is_view_once: bool = False, is_view_once_v2: bool = False,
            is_view_once_v2_extension: bool = False, is_document_with_caption: bool = False,
            is_lottie_sticker: bool = False, is_edit: bool = False, source_web_msg: dict[str, Any] | None = None,
            unavailable_request_id: str = "", retry_count: int = 0,
            newsletter_meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """events.Message: `Info`, the unwrapped `Message`, flags, and the `RawMessage` as received (default: `content`)."""
    return {"Info": info, "Message": content, "IsEphemeral": is_ephemeral, "IsViewOnce": is_view_once,
            "IsViewOnceV2": is_view_once_v2, "IsViewOnceV2Extension": is_view_once_v2_extension,
            "IsDocumentWithCaption": is_document_with_caption, "IsLottieSticker": is_lottie_sticker,
            "IsEdit": is_edit, "SourceWebMsg": source_web_msg, "UnavailableRequestID": unavailable_request_id,
            "RetryCount": retry_count, "NewsletterMeta": newsletter_meta,
            "RawMessage": content if raw is None else raw}


def edit_attribute(content: dict[str, Any]) -> str:
    """The `edit` attribute whatsmeow sends with a message (send.go getEditAttribute): `1` for an edit,
    `7` for a sender's revoke (or a reaction removed), `8` for an admin's revoke, `2` for a pin."""
    inner = (content.get("editedMessage") or {}).get("message")
    if inner:
        return edit_attribute(inner)
    protocol = content.get("protocolMessage")
    if protocol and protocol.get("key"):
        kind = protocol.get("type", _REVOKE)
        if kind in (_REVOKE, "REVOKE"):
            return EDIT_SENDER_REVOKE if protocol["key"].get("fromMe") else EDIT_ADMIN_REVOKE
        if kind in (_MESSAGE_EDIT, "MESSAGE_EDIT") and protocol.get("editedMessage"):
            return EDIT_MESSAGE
    reaction = content.get("reactionMessage")
    if reaction is not None and not reaction.get("text"):
        return EDIT_SENDER_REVOKE
    if "pinInChatMessage" in content:
        return EDIT_PIN
    return EDIT_NONE


def media_type(content: dict[str, Any]) -> str:
    """whatsmeow's `mediatype` of a message (`image`, `video`/`gif`, `audio`/`ptt`, `document`, `sticker`,
    `vcard`, `url` for a link preview, ...; `""` for plain text and other kinds)."""
    for field, kind in _MEDIA_TYPES.items():
        if field in content:
            if field == "audioMessage" and content[field].get("PTT"):
                return "ptt"
            if field == "videoMessage" and content[field].get("gifPlayback"):
                return "gif"
            return kind
    if (content.get("extendedTextMessage") or {}).get("title"):
        return "url"  # a link preview
    return ""


def message_type(content: dict[str, Any]) -> str:
    """whatsmeow's `type` of a message (send.go getTypeFromMessage): `reaction`, `poll`, `media` or `text`."""
    if "reactionMessage" in content or "encReactionMessage" in content:
        return "reaction"
    if any(field.startswith("pollCreationMessage") or field == "pollUpdateMessage" for field in content):
        return "poll"
    if media_type(content):
        return "media"
    return "text"


# -- receipts and presence -----------------------------------------------------------------------------


def receipt(source: dict[str, Any], message_ids: list[str], timestamp: str, type: str = "",
            message_sender: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """events.Receipt and WaGo's keys beside it: (`{...source, MessageIDs, Timestamp, Type, MessageSender}`,
    `{"state": "Delivered" | "Read" | "ReadSelf"}`). KeyError for a type WaGo does not forward."""
    body = {**source, "MessageIDs": list(message_ids), "Timestamp": timestamp, "Type": type,
            "MessageSender": message_sender}
    return body, {"state": RECEIPT_STATES[type]}


def presence(from_: str, unavailable: bool, last_seen: str = ZERO_TIME) -> tuple[dict[str, Any], dict[str, Any]]:
    """events.Presence and WaGo's `state` (`online` / `offline`)."""
    return ({"From": from_, "Unavailable": unavailable, "LastSeen": last_seen},
            {"state": "offline" if unavailable else "online"})


def chat_presence(source: dict[str, Any], state: str, media: str = "") -> dict[str, Any]:
    """events.ChatPresence: `State` `composing` / `paused`, `Media` `audio` (recording) or `""`."""
    return {**source, "State": state, "Media": media}


# -- calls -----------------------------------------------------------------------------------------------


def node(tag: str, attrs: dict[str, Any] | None = None, content: Any = None) -> dict[str, Any]:
    """waBinary.Node: `{Tag, Attrs, Content}` (Content: child nodes, base64 bytes or null)."""
    return {"Tag": tag, "Attrs": dict(attrs or {}), "Content": content}


def call(from_: str, timestamp: str, call_creator: str, call_id: str, *, call_creator_alt: str = "",
         group_jid: str = "", remote: tuple[str, str] | None = None, reason: str | None = None,
         media: str | None = None, type: str | None = None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """events.CallOffer / CallAccept / CallTerminate / ...: BasicCallMeta, then `RemotePlatform` and
    `RemoteVersion` where the event has CallRemoteMeta (`remote`), `Reason` (terminate), `Media` and
    `Type` (offer notice), and `Data` (the call node, null when absent)."""
    body: dict[str, Any] = {"From": from_, "Timestamp": timestamp, "CallCreator": call_creator,
                            "CallCreatorAlt": call_creator_alt, "CallID": call_id, "GroupJID": group_jid}
    if remote is not None:
        body["RemotePlatform"], body["RemoteVersion"] = remote
    if reason is not None:
        body["Reason"] = reason
    if media is not None:
        body["Media"] = media
        body["Type"] = type or ""
    body["Data"] = data
    return body


# -- session ---------------------------------------------------------------------------------------------


def logged_out(on_connect: bool, reason: int) -> dict[str, Any]:
    """events.LoggedOut: `Reason` is WhatsApp's code (401 logged out, 403 main device gone, ...)."""
    return {"OnConnect": on_connect, "Reason": reason}


def pair_success(device_jid: str, business_name: str = "", platform: str = "", lid: str = "") -> dict[str, Any]:
    """events.PairSuccess: the new device's JID (`user:device@s.whatsapp.net`)."""
    return {"ID": device_jid, "LID": lid, "BusinessName": business_name, "Platform": platform}


# -- groups ----------------------------------------------------------------------------------------------


def group_participant(jid: str, *, phone_number: str = "", lid: str = "", is_admin: bool = False,
                      is_super_admin: bool = False, display_name: str = "", error: int = 0,
                      add_request: dict[str, Any] | None = None) -> dict[str, Any]:
    """types.GroupParticipant (`Error`: 0, or WhatsApp's 403/404/409 for a participant change)."""
    return {"JID": jid, "PhoneNumber": phone_number, "LID": lid, "IsAdmin": is_admin or is_super_admin,
            "IsSuperAdmin": is_super_admin, "DisplayName": display_name, "Error": error, "AddRequest": add_request}


def group_name(name: str, set_at: str, set_by: str, set_by_pn: str = "") -> dict[str, Any]:
    """types.GroupName."""
    return {"Name": name, "NameSetAt": set_at, "NameSetBy": set_by, "NameSetByPN": set_by_pn}


def group_topic(topic: str, topic_id: str, set_at: str, set_by: str, deleted: bool = False,
                set_by_pn: str = "") -> dict[str, Any]:
    """types.GroupTopic."""
    return {"Topic": topic, "TopicID": topic_id, "TopicSetAt": set_at, "TopicSetBy": set_by,
            "TopicSetByPN": set_by_pn, "TopicDeleted": deleted}


def group_info(jid: str, owner: str, name: dict[str, Any], topic: dict[str, Any], participants: list[dict[str, Any]],
               *, owner_pn: str = "", locked: bool = False, announce: bool = False, announce_version_id: str = "",
               ephemeral: bool = False, disappearing_timer: int = 0, incognito: bool = False, parent: bool = False,
               default_membership_approval_mode: str = "", linked_parent: str = "", default_sub_group: bool = False,
               join_approval_required: bool = False, addressing_mode: str = "", created: str = ZERO_TIME,
               creator_country_code: str = "", participant_version_id: str = "",
               member_add_mode: str = "") -> dict[str, Any]:
    """types.GroupInfo with its embedded structs flattened (`Name`, `Topic`, `IsLocked`, ... at the top)."""
    return {
        "JID": jid, "OwnerJID": owner, "OwnerPN": owner_pn, **name, **topic,
        "IsLocked": locked, "IsAnnounce": announce, "AnnounceVersionID": announce_version_id,
        "IsEphemeral": ephemeral, "DisappearingTimer": disappearing_timer, "IsIncognito": incognito,
        "IsParent": parent, "DefaultMembershipApprovalMode": default_membership_approval_mode,
        "LinkedParentJID": linked_parent, "IsDefaultSubGroup": default_sub_group,
        "IsJoinApprovalRequired": join_approval_required, "AddressingMode": addressing_mode,
        "GroupCreated": created, "CreatorCountryCode": creator_country_code,
        "ParticipantVersionID": participant_version_id, "Participants": participants,
        "ParticipantCount": len(participants), "MemberAddMode": member_add_mode,
    }


#: events.GroupInfo's change fields: only what changed is set, the rest is null (nil pointers and slices).
GROUP_CHANGES = ("Name", "Topic", "Locked", "Announce", "Ephemeral", "MembershipApprovalMode", "Delete", "Link",
                 "Unlink", "NewInviteLink", "Join", "Leave", "Promote", "Demote", "UnknownChanges")


def group_info_event(jid: str, timestamp: str, sender: str | None, *, notify: str = "", sender_pn: str | None = None,
                     prev_participant_version_id: str = "", participant_version_id: str = "",
                     join_reason: str = "", **changes: Any) -> dict[str, Any]:
    """events.GroupInfo: `changes` are GROUP_CHANGES keys (`Name=group_name(...)`, `Join=[jid, ...]`,
    `Locked={"IsLocked": True}`); a change not given, or empty, is null. ValueError for an unknown key."""
    unknown = set(changes) - set(GROUP_CHANGES)
    if unknown:
        raise ValueError(f"not a GroupInfo change: {sorted(unknown)}")
    body: dict[str, Any] = {"JID": jid, "Notify": notify, "Sender": sender or None, "SenderPN": sender_pn or None,
                            "Timestamp": timestamp}
    for key in GROUP_CHANGES:
        body[key] = changes.get(key) or None
    body.update(PrevParticipantVersionID=prev_participant_version_id, ParticipantVersionID=participant_version_id,
                JoinReason=join_reason)
    return body


def joined_group(group: dict[str, Any], *, reason: str = "", type: str = "", create_key: str = "",
                 sender: str | None = None, sender_pn: str | None = None, notify: str = "") -> dict[str, Any]:
    """events.JoinedGroup: how it happened (`Reason` `invite`, `Type` `new`, ...) then the GroupInfo, flattened."""
    return {"Reason": reason, "Type": type, "CreateKey": create_key, "Sender": sender or None,
            "SenderPN": sender_pn or None, "Notify": notify, **group}


def picture(jid: str, author: str, timestamp: str, picture_id: str, remove: bool = False) -> dict[str, Any]:
    """events.Picture: a user's or group's picture changed (or was removed)."""
    return {"JID": jid, "Author": author, "Timestamp": timestamp, "Remove": remove, "PictureID": picture_id}
