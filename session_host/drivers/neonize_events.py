"""neonize events (whatsmeow's, as protobuf) -> WaGo's webhook envelope `{type, event, ...extra}`.

WaGo posts whatsmeow's event structs as Go's encoding/json writes them (research/wago-api.md §3.5):
JIDs as `user[:device]@server` strings, times as RFC 3339, byte slices as base64, protobuf enums as
integers, WhatsApp message protobufs under their proto field names. This module reproduces that from
neonize's protobufs, so a WaGo webhook receiver parses our events unchanged.

Runs in the neonize worker processes; imports neonize's generated protobufs only (no FFI calls).
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any, Callable, NamedTuple

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message as Proto
from neonize import events as ev
from neonize.proto import Neonize_pb2 as N

ZERO_TIME = "0001-01-01T00:00:00Z"


class Translated(NamedTuple):
    type: str
    event: dict[str, Any]
    extra: dict[str, Any]


def jid_str(jid: N.JID | None) -> str:
    """whatsmeow's JID.String(): `user[.agent][:device]@server`; an empty JID is ``""``."""
    if jid is None or not (jid.User or jid.Server):
        return ""
    user = jid.User
    if jid.RawAgent:
        user += f".{jid.RawAgent}"
    if jid.Device:
        user += f":{jid.Device}"
    return f"{user}@{jid.Server}" if user else jid.Server


def rfc3339(seconds: float | int) -> str:
    if not seconds:
        return ZERO_TIME
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc).isoformat().replace("+00:00", "Z")


def proto_json(message: Proto) -> dict[str, Any]:
    """A protobuf as Go's encoding/json writes the generated struct: set fields only, proto names,
    bytes as base64, enums and 64-bit integers as numbers (not protobuf-JSON's strings), JIDs as strings."""
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        if field.is_repeated:
            out[field.name] = [_value(field, item) for item in value]
        else:
            out[field.name] = _value(field, value)
    return out


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name == "neonize.JID":
            return jid_str(value)
        return proto_json(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode()
    return value


def _source(source: N.MessageSource) -> dict[str, Any]:
    return {
        "Chat": jid_str(source.Chat),
        "Sender": jid_str(source.Sender),
        "IsFromMe": source.IsFromMe,
        "IsGroup": source.IsGroup,
        "AddressingMode": source.AddressingMode,
        "SenderAlt": jid_str(source.SenderAlt),
        "RecipientAlt": jid_str(source.RecipientAlt),
        "BroadcastListOwner": jid_str(source.BroadcastListOwner),
    }


def _optional(message: Proto, name: str) -> dict[str, Any] | None:
    return proto_json(getattr(message, name)) if message.HasField(name) else None


def message(event: N.Message) -> Translated:
    info = event.Info
    body = {
        "Info": {
            **_source(info.MessageSource),
            "ID": info.ID,
            "ServerID": info.ServerID,
            "Type": info.Type,
            "PushName": info.Pushname,
            "Timestamp": rfc3339(info.Timestamp / 1000),  # neonize encodes MessageInfo.Timestamp in ms
            "Category": info.Category,
            "Multicast": info.Multicast,
            "MediaType": info.MediaType,
            "Edit": info.Edit,
            "VerifiedName": _optional(info, "VerifiedName"),
            "DeviceSentMeta": _optional(info, "DeviceSentMeta"),
        },
        "Message": proto_json(event.Message),
        "IsEphemeral": event.IsEphemeral,
        "IsViewOnce": event.IsViewOnce,
        "IsViewOnceV2": event.IsViewOnceV2,
        "IsViewOnceV2Extension": event.IsViewOnceV2Extension,
        "IsDocumentWithCaption": event.IsDocumentWithCaption,
        "IsLottieSticker": event.IsLottieSticker,
        "IsEdit": event.IsEdit,
        "SourceWebMsg": _optional(event, "SourceWebMsg"),
        "UnavailableRequestID": event.UnavailableRequestID,
        "RetryCount": event.RetryCount,
        "NewsletterMeta": _optional(event, "NewsLetterMeta"),
        "RawMessage": proto_json(event.Raw),
    }
    # WaGo's `Newsletter` subscription is for channel messages: give them that type so it filters.
    kind = "Newsletter" if info.MessageSource.Chat.Server == "newsletter" else "Message"
    return Translated(kind, body, {})


#: Receipt types WaGo forwards, as whatsmeow's wire string and WaGo's `state` (wuzapi drops the rest).
RECEIPT_STATES = {
    N.Receipt.DELIVERED: ("", "Delivered"),
    N.Receipt.READ: ("read", "Read"),
    N.Receipt.READ_SELF: ("read-self", "ReadSelf"),
}


def receipt(event: N.Receipt) -> Translated | None:
    if not event.HasField("Type"):  # an unset proto2 enum reads as DELIVERED: do not invent one
        return None
    mapped = RECEIPT_STATES.get(event.Type)
    if mapped is None:
        return None
    wire, state = mapped
    body = {
        **_source(event.MessageSource),
        "MessageIDs": list(event.MessageIDs),
        "Timestamp": rfc3339(event.Timestamp),
        "Type": wire,
        "MessageSender": "",
    }
    return Translated("ReadReceipt", body, {"state": state})


def presence(event: N.Presence) -> Translated:
    body = {"From": jid_str(event.From), "Unavailable": event.Unavailable, "LastSeen": rfc3339(event.LastSeen)}
    return Translated("Presence", body, {"state": "offline" if event.Unavailable else "online"})


def chat_presence(event: N.ChatPresence) -> Translated:
    state = {N.ChatPresence.COMPOSING: "composing", N.ChatPresence.PAUSED: "paused"}.get(event.State, "")
    media = "audio" if event.Media == N.ChatPresence.AUDIO else ""
    return Translated("ChatPresence", {**_source(event.MessageSource), "State": state, "Media": media}, {})


def _call_meta(meta: N.BasicCallMeta) -> dict[str, Any]:
    return {
        "From": jid_str(getattr(meta, "from")),
        "Timestamp": rfc3339(meta.timestamp),
        "CallCreator": jid_str(meta.callCreator),
        "CallCreatorAlt": jid_str(meta.callCreatorAlt),
        "CallID": meta.callID,
        "GroupJID": "",
    }


def _node(node: N.Node) -> dict[str, Any]:
    """whatsmeow's binary Node as JSON: {Tag, Attrs, Content}."""
    attrs: dict[str, Any] = {}
    for attr in node.Attrs:
        kind = attr.WhichOneof("Value")
        value = getattr(attr, kind) if kind else ""
        attrs[attr.name] = jid_str(value) if kind == "jid" else value
    if node.Nodes:
        content: Any = [_node(child) for child in node.Nodes]
    else:
        content = base64.b64encode(node.Bytes).decode() if node.Bytes else None
    return {"Tag": node.Tag, "Attrs": attrs, "Content": content}


def call(kind: str) -> Callable[[Proto], Translated]:
    """Call offers, accepts, terminations...: WaGo's `Call` type; which one it is goes beside `event`."""

    def translate(event: Proto) -> Translated:
        fields = event.DESCRIPTOR.fields_by_name
        body = _call_meta(event.basicCallMeta)
        if "callRemoteMeta" in fields:
            body["RemotePlatform"] = event.callRemoteMeta.remotePlatform
            body["RemoteVersion"] = event.callRemoteMeta.remoteVersion
        if "reason" in fields:
            body["Reason"] = event.reason
        if "media" in fields:
            body["Media"] = event.media
            body["Type"] = event.type
        if event.HasField("data"):
            body["Data"] = _node(event.data)
        return Translated("Call", body, {"callEvent": kind})

    return translate


#: neonize's ConnectFailureReason -> WhatsApp's numeric code, which whatsmeow (and so WaGo) reports.
LOGOUT_CODES = {
    N.GENERIC: 400, N.LOGGED_OUT: 401, N.TEMP_BANNED: 402, N.MAIN_DEVICE_GONE: 403, N.UNKNOWN_LOGOUT: 406,
    N.CLIENT_OUTDATED: 405, N.BAD_USER_AGENT: 409, N.INTERNAL_SERVER_ERROR: 500, N.EXPERIMENTAL: 501,
    N.SERVICE_UNAVAILABLE: 503,
}


def logged_out(event: N.LoggedOut) -> Translated:
    return Translated("LoggedOut", {"OnConnect": event.OnConnect, "Reason": LOGOUT_CODES.get(event.Reason, 0)}, {})


def history_sync(event: N.HistorySync) -> Translated:
    return Translated("HistorySync", {"Data": proto_json(event.Data), "Notification": None}, {})


def newsletter(name: str) -> Callable[[Proto], Translated]:
    def translate(event: Proto) -> Translated:
        return Translated("Newsletter", proto_json(event), {"newsletterEvent": name})

    return translate


def pair_status(event: N.PairStatus) -> Translated:
    body = {"ID": jid_str(event.ID), "BusinessName": event.BusinessName, "Platform": event.Platform}
    if event.Status == N.PairStatus.SUCCESS:
        return Translated("PairSuccess", body, {})
    return Translated("PairError", {**body, "Error": event.Error}, {})


def plain(name: str) -> Callable[[Proto], Translated]:
    """Events WaGo forwards only under `All`: whatsmeow's type name, the struct's own fields."""

    def translate(event: Proto) -> Translated:
        return Translated(name, proto_json(event), {})

    return translate


TRANSLATORS: dict[type[Proto], Callable[[Any], Translated | None]] = {
    ev.MessageEv: message,
    ev.ReceiptEv: receipt,
    ev.PresenceEv: presence,
    ev.ChatPresenceEv: chat_presence,
    ev.HistorySyncEv: history_sync,
    ev.LoggedOutEv: logged_out,
    ev.PairStatusEv: pair_status,
    ev.CallOfferEv: call("CallOffer"),
    ev.CallAcceptEv: call("CallAccept"),
    ev.CallPreAcceptEv: call("CallPreAccept"),
    ev.CallTransportEv: call("CallTransport"),
    ev.CallOfferNoticeEv: call("CallOfferNotice"),
    ev.CallRelayLatencyEV: call("CallRelayLatency"),
    ev.CallTerminateEv: call("CallTerminate"),
    ev.UnknownCallEventEV: plain("UnknownCallEvent"),
    ev.NewsletterJoinEv: newsletter("NewsletterJoin"),
    ev.NewsletterLeaveEv: newsletter("NewsletterLeave"),
    ev.NewsletterMuteChangeEv: newsletter("NewsletterMuteChange"),
    ev.NewsletterLiveUpdateEV: newsletter("NewsletterLiveUpdate"),
    ev.ConnectedEv: lambda _: Translated("Connected", {}, {}),
    ev.DisconnectedEv: lambda _: Translated("Disconnected", {}, {}),
    ev.StreamReplacedEv: lambda _: Translated("StreamReplaced", {}, {}),
    ev.ClientOutdatedEv: lambda _: Translated("ClientOutdated", {}, {}),
    ev.KeepAliveTimeoutEv: plain("KeepAliveTimeout"),
    ev.KeepAliveRestoredEv: plain("KeepAliveRestored"),
    ev.TemporaryBanEv: plain("TemporaryBan"),
    ev.ConnectFailureEv: plain("ConnectFailure"),
    ev.StreamErrorEv: plain("StreamError"),
    ev.UndecryptableMessageEv: plain("UndecryptableMessage"),
    ev.JoinedGroupEv: plain("JoinedGroup"),
    ev.GroupInfoEv: plain("GroupInfo"),
    ev.PictureEv: plain("Picture"),
    ev.IdentityChangeEv: plain("IdentityChange"),
    ev.PrivacySettingsEv: plain("PrivacySettings"),
    ev.OfflineSyncPreviewEv: plain("OfflineSyncPreview"),
    ev.OfflineSyncCompletedEv: plain("OfflineSyncCompleted"),
    ev.BlocklistEv: plain("Blocklist"),
    ev.BlocklistChangeEv: plain("BlocklistChange"),
}


def translate(event: Proto) -> Translated | None:
    """WaGo's envelope for one neonize event, or None for events WaGo does not forward."""
    translator = TRANSLATORS.get(type(event))
    return translator(event) if translator is not None else None


# Group events in whatsmeow's shapes (GroupInfo's changed parts, JoinedGroup with the group flattened).
from session_host.drivers.neonize_group_events import EVENT_TRANSLATORS as _GROUP_EVENTS  # noqa: E402

TRANSLATORS.update(_GROUP_EVENTS)
