"""WhatsApp message contents as WhatsApp's protobuf JSON (proto field names), built in the Lambda.

Both drivers take these dicts: the sim network delivers them as the event's `Message` (WaGo's webhook
shape), the neonize driver parses them into the real `waE2E.Message` protobuf. One place says what a
location, a contact, a poll, a reaction, an edit and a delete are on the wire.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from typing import Any

#: waE2E.ProtocolMessage.Type values.
REVOKE = 0
MESSAGE_EDIT = 14


def new_message_id() -> str:
    """whatsmeow's shape: 3EB0 + 18 hex digits."""
    return "3EB0" + secrets.token_hex(9).upper()


def _now_ms() -> int:
    return int(time.time() * 1000)


def context_info(quoted_id: str = "", quoted_sender: str = "", quoted: dict[str, Any] | None = None,
                 mentions: Iterable[str] = (), forwarded: bool = False) -> dict[str, Any]:
    """waE2E.ContextInfo as JSON: a reply/quote, mentions, the forwarded mark ({} when none)."""
    context: dict[str, Any] = {}
    if quoted_id:
        context["stanzaID"] = quoted_id
        context["participant"] = quoted_sender
        context["quotedMessage"] = quoted or {"conversation": ""}
    if mentions:
        context["mentionedJID"] = list(mentions)
    if forwarded:
        context["isForwarded"] = True
        context["forwardingScore"] = 1
    return context


def text(body: str, quoted_id: str = "", quoted_sender: str = "", quoted: dict[str, Any] | None = None,
         mentions: Iterable[str] = (), forwarded: bool = False) -> dict[str, Any]:
    """A text with context (reply/quote, mentions, forwarded): WhatsApp's extendedTextMessage."""
    return {"extendedTextMessage": {"text": body, "contextInfo": context_info(quoted_id, quoted_sender, quoted,
                                                                               mentions, forwarded)}}


def with_context(content: dict[str, Any], context: dict[str, Any] | None) -> dict[str, Any]:
    """`content` (one `<kind>Message`) with `context` merged into its contextInfo (kept keys, such as a
    preview's externalAdReply, stay). Every message kind the /send/* routes build has a contextInfo
    field in waE2E; a plain `conversation` cannot carry one and becomes an extendedTextMessage."""
    if not context:
        return content
    if "conversation" in content:
        content = {"extendedTextMessage": {"text": content["conversation"]}}
    (kind, body), = content.items()
    return {kind: {**body, "contextInfo": {**body.get("contextInfo", {}), **context}}}


def link_preview(body: str, url: str, title: str = "", description: str = "",
                 thumbnail_jpeg_b64: str = "") -> dict[str, Any]:
    """A text whose link shows a preview card; the metadata comes from the caller (nothing is fetched)."""
    message: dict[str, Any] = {"text": body, "matchedText": url, "previewType": 0}
    if title:
        message["title"] = title
    if description:
        message["description"] = description
    if thumbnail_jpeg_b64:
        message["JPEGThumbnail"] = thumbnail_jpeg_b64
    return {"extendedTextMessage": message}


def ad_reply_preview(body: str, title: str, description: str, source_url: str, thumbnail_url: str = "",
                     large_thumbnail: bool = True) -> dict[str, Any]:
    """WaGo's preview2: the "external ad reply" card (title, body, image link, target link)."""
    card: dict[str, Any] = {"title": title, "body": description, "mediaType": 1, "sourceURL": source_url,
                            "renderLargerThumbnail": large_thumbnail}
    if thumbnail_url:
        card["thumbnailURL"] = thumbnail_url
    return {"extendedTextMessage": {"text": body, "contextInfo": {"externalAdReply": card}}}


def group_invite(group_jid: str, code: str, group_name: str, expiration: int, caption: str = "") -> dict[str, Any]:
    """WhatsApp's groupInviteMessage: the group's JID and name, the invite code, its expiration
    (epoch seconds) and an optional caption."""
    return {"groupInviteMessage": {"groupJID": group_jid, "inviteCode": code, "inviteExpiration": expiration,
                                   "groupName": group_name, "caption": caption}}


def location(latitude: float, longitude: float, name: str = "", address: str = "") -> dict[str, Any]:
    """WhatsApp's locationMessage: latitude/longitude in degrees, name and address only when given."""
    body: dict[str, Any] = {"degreesLatitude": latitude, "degreesLongitude": longitude}
    if name:
        body["name"] = name
    if address:
        body["address"] = address
    return {"locationMessage": body}


def contact(name: str, vcard: str) -> dict[str, Any]:
    """WhatsApp's contactMessage: a display name and the contact as a vCard string."""
    return {"contactMessage": {"displayName": name, "vcard": vcard}}


def poll(question: str, options: list[str], max_answers: int) -> dict[str, Any]:
    """`max_answers` 1 is a single-choice poll; 0 (or >= len(options)) lets voters pick any number."""
    return {"pollCreationMessage": {"name": question, "options": [{"optionName": o} for o in options],
                                    "selectableOptionsCount": max_answers}}


def _key(chat: str, message_id: str, from_me: bool, participant: str = "") -> dict[str, Any]:
    key: dict[str, Any] = {"remoteJID": chat, "fromMe": from_me, "ID": message_id}
    if participant:
        key["participant"] = participant
    return key


def reaction(chat: str, message_id: str, emoji: str, from_me: bool, participant: str = "") -> dict[str, Any]:
    """An empty `emoji` removes the reaction (WhatsApp's rule)."""
    return {"reactionMessage": {"key": _key(chat, message_id, from_me, participant), "text": emoji,
                                "senderTimestampMS": _now_ms()}}


def edit(chat: str, message_id: str, text: str) -> dict[str, Any]:
    """WhatsApp's edit of one of our own messages: a protocolMessage of type MESSAGE_EDIT (14) whose
    editedMessage is the new text; timestampMS in epoch milliseconds."""
    return {"protocolMessage": {"key": _key(chat, message_id, True), "type": MESSAGE_EDIT,
                                "editedMessage": {"conversation": text}, "timestampMS": _now_ms()}}


def revoke(chat: str, message_id: str) -> dict[str, Any]:
    """WhatsApp's "delete for everyone" of one of our own messages: a protocolMessage of type REVOKE (0)."""
    return {"protocolMessage": {"key": _key(chat, message_id, True), "type": REVOKE}}


def kind_of(content: dict[str, Any]) -> str:
    """`locationMessage` -> `location`, for message records."""
    field = next(iter(content), "message")
    return field.removesuffix("Message") or field
