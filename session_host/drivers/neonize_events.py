"""neonize events (whatsmeow's, as protobuf) -> WaGo's webhook envelope `{type, event, ...extra}`.

WaGo posts whatsmeow's event structs as Go's encoding/json writes them (research/wago-api.md §3.5):
JIDs as `user[:device]@server` strings, times as RFC 3339, byte slices as base64, protobuf enums as
integers, WhatsApp message protobufs under their proto field names. This module reads neonize's
protobufs and builds the events with chalicelib/core/shapes.py, the builder the sim uses too, so a WaGo
webhook receiver parses our events unchanged whichever driver runs.

Runs in the neonize worker processes; imports neonize's generated protobufs only (no FFI calls).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message as Proto
from neonize import events as ev
from neonize.proto import Neonize_pb2 as N

from chalicelib.core import shapes
from chalicelib.core.shapes import ZERO_TIME, rfc3339
from session_host.drivers.neonize_group_events import EVENT_TRANSLATORS as _GROUP_EVENTS
from session_host.drivers.neonize_json import Translated, jid_str, optional, proto_json

__all__ = ["ZERO_TIME", "Translated", "jid_str", "proto_json", "rfc3339", "translate"]


#: neonize's AddressingMode enum -> whatsmeow's types.AddressingMode string (`pn`, `lid`; unset is "").
ADDRESSING_MODES = {1: "pn", 2: "lid"}


def _source(source: N.MessageSource) -> dict[str, Any]:
    addressing = ADDRESSING_MODES.get(source.AddressingMode, "") if source.HasField("AddressingMode") else ""
    return shapes.message_source(
        jid_str(source.Chat), jid_str(source.Sender), is_from_me=source.IsFromMe, is_group=source.IsGroup,
        addressing_mode=addressing, sender_alt=jid_str(source.SenderAlt),
        recipient_alt=jid_str(source.RecipientAlt), broadcast_list_owner=jid_str(source.BroadcastListOwner))


def message(event: N.Message) -> Translated:
    info = event.Info
    body = shapes.message(
        shapes.message_info(
            _source(info.MessageSource), info.ID, rfc3339(info.Timestamp / 1000),  # neonize: ms
            server_id=info.ServerID, type=info.Type, push_name=info.Pushname, category=info.Category,
            multicast=info.Multicast, media_type=info.MediaType, edit=info.Edit,
            verified_name=optional(info, "VerifiedName"), device_sent_meta=optional(info, "DeviceSentMeta")),
        proto_json(event.Message), raw=proto_json(event.Raw),
        is_ephemeral=event.IsEphemeral, is_view_once=event.IsViewOnce, is_view_once_v2=event.IsViewOnceV2,
        is_view_once_v2_extension=event.IsViewOnceV2Extension, is_document_with_caption=event.IsDocumentWithCaption,
        is_lottie_sticker=event.IsLottieSticker, is_edit=event.IsEdit,
        source_web_msg=optional(event, "SourceWebMsg"), unavailable_request_id=event.UnavailableRequestID,
        retry_count=event.RetryCount, newsletter_meta=optional(event, "NewsLetterMeta"))
    # WaGo's `Newsletter` subscription is for channel messages: give them that type so it filters.
    kind = "Newsletter" if info.MessageSource.Chat.Server == "newsletter" else "Message"
    return Translated(kind, body, {})


#: Receipt types WaGo forwards, as whatsmeow's wire string (wuzapi drops the rest).
RECEIPT_TYPES = {N.Receipt.DELIVERED: "", N.Receipt.READ: "read", N.Receipt.READ_SELF: "read-self"}


def receipt(event: N.Receipt) -> Translated | None:
    if not event.HasField("Type"):  # an unset proto2 enum reads as DELIVERED: do not invent one
        return None
    wire = RECEIPT_TYPES.get(event.Type)
    if wire is None:
        return None
    body, extra = shapes.receipt(_source(event.MessageSource), list(event.MessageIDs), rfc3339(event.Timestamp), wire)
    return Translated("ReadReceipt", body, extra)


def presence(event: N.Presence) -> Translated:
    return Translated("Presence", *shapes.presence(jid_str(event.From), event.Unavailable, rfc3339(event.LastSeen)))


def chat_presence(event: N.ChatPresence) -> Translated:
    state = {N.ChatPresence.COMPOSING: "composing", N.ChatPresence.PAUSED: "paused"}.get(event.State, "")
    media = "audio" if event.Media == N.ChatPresence.AUDIO else ""
    return Translated("ChatPresence", shapes.chat_presence(_source(event.MessageSource), state, media), {})


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
    return shapes.node(node.Tag, attrs, content)


def call(kind: str) -> Callable[[Proto], Translated]:
    """Call offers, accepts, terminations...: WaGo's `Call` type; which one it is goes beside `event`."""

    def translate(event: Proto) -> Translated:
        fields = event.DESCRIPTOR.fields_by_name
        meta = event.basicCallMeta
        remote = (event.callRemoteMeta.remotePlatform, event.callRemoteMeta.remoteVersion) \
            if "callRemoteMeta" in fields else None
        body = shapes.call(
            jid_str(getattr(meta, "from")), rfc3339(meta.timestamp), jid_str(meta.callCreator), meta.callID,
            call_creator_alt=jid_str(meta.callCreatorAlt), remote=remote,
            reason=event.reason if "reason" in fields else None, media=event.media if "media" in fields else None,
            type=event.type if "media" in fields else None, data=_node(event.data) if event.HasField("data") else None)
        return Translated("Call", body, {"callEvent": kind})

    return translate


#: neonize's ConnectFailureReason -> WhatsApp's numeric code, which whatsmeow (and so WaGo) reports.
LOGOUT_CODES = {
    N.GENERIC: 400, N.LOGGED_OUT: 401, N.TEMP_BANNED: 402, N.MAIN_DEVICE_GONE: 403, N.UNKNOWN_LOGOUT: 406,
    N.CLIENT_OUTDATED: 405, N.BAD_USER_AGENT: 409, N.INTERNAL_SERVER_ERROR: 500, N.EXPERIMENTAL: 501,
    N.SERVICE_UNAVAILABLE: 503,
}


def logged_out(event: N.LoggedOut) -> Translated:
    return Translated("LoggedOut", shapes.logged_out(event.OnConnect, LOGOUT_CODES.get(event.Reason, 0)), {})


def history_sync(event: N.HistorySync) -> Translated:
    return Translated("HistorySync", {"Data": proto_json(event.Data), "Notification": None}, {})


def newsletter(name: str) -> Callable[[Proto], Translated]:
    def translate(event: Proto) -> Translated:
        return Translated("Newsletter", proto_json(event), {"newsletterEvent": name})

    return translate


def pair_status(event: N.PairStatus) -> Translated:
    body = shapes.pair_success(jid_str(event.ID), event.BusinessName, event.Platform)
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
TRANSLATORS.update(_GROUP_EVENTS)
