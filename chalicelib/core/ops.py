"""The operations a session host performs, each declared once: name, argument model, reply model.

A route sends one (`Bus.command(session, ops.GROUP_TOPIC, ops.GroupTopic(group=..., topic=...))`), the
bus puts it on the owning host's FIFO queue as a `Command` whose `args` is the argument model's JSON,
the host validates `args` against the same model before its handler runs (`session_host/dispatch.py`),
and the handler's answer is checked against the reply model on both sides. Adding an operation means
one entry here, its handler on the host (bound with `@handles(ops.X)`), and its route: nothing else.

Names are WaGo's routes and whatsmeow's terms; a reply model's aliases are WaGo's `data` keys.
`sim.*` operations are the simulator's phone side; only hosts running the sim driver carry them out
(session_host/sim/operations.py). Those that act for a sim account rather than a session
(`sim.message`, `sim.read`, `sim.chatpresence`, `sim.presence`, `sim.unlink`) go to any live sim host
(`Bus.run_anywhere`); their Command's `token` is `sim_phone_key(phone)` (or the session's token for
`sim.unlink`), which keeps one phone's actions in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel


class Args(BaseModel):
    """Base of every argument model: unknown keys are refused (a host and an API of different releases
    disagree loudly, not silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built on first use (cold start)


class Result(BaseModel):
    """Base of every reply model: WaGo's keys as aliases; extra keys are kept (additive fields)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


class Json(RootModel[dict[str, Any]]):
    """A reply whose shape is whatsmeow's own (GroupInfo, user info, ...), passed through as Go's JSON."""


A = TypeVar("A", bound=Args)
R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class Operation(Generic[A, R]):
    """One operation: its wire `name`, its `args` model and its `reply` model. A `sessionless` one acts
    on no session held by the host that runs it (the sim's phone side): it needs a valid lease, not a
    held session, and its Command's `token` is only its FIFO message group. A `claiming` one takes its
    session (the API's placement already recorded this host as owner): it may run on a session the host
    does not hold yet, reads the row and holds its epoch (session_host/lifecycle.py); every other
    operation needs the session held already."""

    name: str
    args: type[A]
    reply: type[R]
    sessionless: bool = False
    claiming: bool = False

    def parse_args(self, raw: dict[str, Any]) -> A:
        """The argument model from a Command's `args`; pydantic's ValidationError when they do not fit."""
        return self.args.model_validate(raw)

    def reply_data(self, data: Any) -> Any:
        """A handler's answer, checked against the reply model, as the JSON the Reply carries."""
        model = data if isinstance(data, self.reply) else self.reply.model_validate(data)
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)


OPERATIONS: dict[str, Operation[Any, Any]] = {}


def declare(name: str, args: type[A], reply: type[R], *, sessionless: bool = False,
            claiming: bool = False) -> Operation[A, R]:
    """Register an operation; a name is declared once, and an operation that holds no session cannot
    claim one (ValueError otherwise)."""
    if name in OPERATIONS:
        raise ValueError(f"operation {name!r} declared twice")
    if sessionless and claiming:
        raise ValueError(f"operation {name!r} cannot be both sessionless and claiming")
    op = Operation(name, args, reply, sessionless, claiming)
    OPERATIONS[name] = op
    return op


def lookup(name: str) -> Operation[Any, Any] | None:
    """The operation declared under `name` (a Command's `op`), or None for a name this release does not know."""
    return OPERATIONS.get(name)


# -- argument models -----------------------------------------------------------------------------------


class NoArgs(Args):
    """No arguments (disconnect, logout, forget, sim.logout, user.contacts, group.list)."""


class Subscribe(Args):
    """The WaGo event types a session delivers to its webhook (`Subscribe` of /session/connect)."""

    events: list[str] | None = Field(None, description="WaGo event types to deliver; None keeps the stored ones.")


class Connect(Subscribe):
    """/session/connect: start the session's WhatsApp client; `immediate` answers without waiting for
    the connection (WaGo's `Immediate`)."""

    immediate: bool = False


class Pair(Subscribe):
    """/session/pair: link by phone number instead of a QR code (whatsmeow's PairPhone); `phone`
    in international digits."""

    phone: str


class Send(Args):
    """What every send shares: the recipient chat JID, the client's `Id` (idempotency key) and the
    fingerprint of the request that sent it, so a different message reusing the Id is refused (409)."""

    to: str
    id: str | None = None
    fingerprint: str | None = Field(
        None, description="Hex digest of the client's request without its Id (chalicelib/routes/send.py "
                          "`Send.fingerprint`), stored on the Id's record; None (an older API, a host-internal "
                          "send) matches any record.")


class SendText(Send):
    """/send/text without context: WhatsApp's `conversation` text to the chat `to`."""

    body: str


class SendContent(Send):
    """A message given as WhatsApp's protobuf JSON (a reply, location, contact, poll, reaction,
    edit, revoke, preview, invite: chalicelib/core/message_content.py builds them)."""

    content: dict[str, Any] = Field(description="WhatsApp's Message protobuf as JSON (message_content.py).")


#: The media kinds WhatsApp sends (waE2E ImageMessage, AudioMessage, VideoMessage, DocumentMessage, StickerMessage).
SendMediaKind = Literal["image", "audio", "video", "document", "sticker"]


class SendMedia(Send):
    """/send/image|audio|video|document|sticker: a file already in the media bucket (`media_key`),
    its MIME type and SHA-256 (hex), uploaded to WhatsApp by the host."""

    kind: SendMediaKind
    media_key: str = Field(description="S3 key of the file in the media bucket.")
    mimetype: str = ""
    sha256: str = ""
    caption: str = ""
    file_name: str = ""
    context_info: dict[str, Any] | None = Field(None, description="waE2E.ContextInfo JSON (reply, mentions, forward).")


class SendMediaUrl(Send):
    """/send/mediaurl: the host downloads `url` (SSRF-guarded, size-capped) and sends it; `kind`
    None or "" takes it from the downloaded bytes' type."""

    url: str
    kind: str | None = None
    caption: str = ""
    file_name: str = ""
    context_info: dict[str, Any] | None = None


class Download(Args):
    """/message/download/{kind} and /message/downloadimage: fetch and decrypt a received file; `kind` is
    the media kind (image, ...), `ref` the message's URL/directPath/mediaKey/fileSHA256/fileEncSHA256/
    fileLength/mimetype."""

    kind: str
    ref: dict[str, Any] = Field(description="whatsmeow's downloadable-message fields (URL, directPath, mediaKey...).")


class MarkRead(Args):
    """/message/markread: read receipts for message `ids` in `chat` (`sender` for group messages)."""

    ids: list[str]
    chat: str
    sender: str | None = None


class ChatPresence(Args):
    """/message/presence: typing state `state` (composing or paused) in chat `to`; `media` "audio" for
    recording (whatsmeow's SendChatPresence)."""

    to: str
    state: str
    media: str = ""


class Presence(Args):
    """/user/presence: the account is available (online) or unavailable."""

    available: bool


class SubscribePresence(Args):
    """/user/presence/subscribe: receive the Presence events of `jid` (whatsmeow's
    SubscribePresence)."""

    jid: str


class SimScan(Args):
    """sim only: the simulated phone of account `phone` (named `push_name`) accepts the session's QR,
    or its pairing `code` when given."""

    phone: str = ""
    code: str = ""
    push_name: str = ""


class SimPhone(Args):
    """What a sim account's phone does: `phone` is the account's digits (chalicelib/core/jid.py)."""

    phone: str


class SimPhoneMessage(SimPhone):
    to: str = Field(description="The recipient: a user JID (chalicelib/core/jid.py).")
    body: str
    push_name: str = Field("", description="Display name of the sender's account if it is created now.")


class SimPhoneRead(SimPhone):
    ids: list[str]


class SimPhoneChatPresence(SimPhone):
    to: str = Field(description="The chat JID it types in.")
    state: str
    media: str = ""


class SimPhonePresence(SimPhone):
    available: bool


def sim_phone_key(phone: str) -> str:
    """The Command `token` (FIFO message group) of a sim account's phone-side operations."""
    return f"sim-phone#{phone}"


class Phones(Args):
    """/user/check and /user/info: phone numbers or JIDs."""

    phones: list[str]


class Avatar(Args):
    """/user/avatar: the profile picture of `phone`; `preview` asks for the small thumbnail."""

    phone: str
    preview: bool = False


class Group(Args):
    """Operations on one group (group.info, group.leave), and the base of the other group models."""

    group: str = Field(description="A group JID, 120363...@g.us.")


class GroupCreate(Args):
    """/group/create: a group named `name` with `participants` (phone numbers), the caller its
    owner and admin."""

    name: str
    participants: list[str]


class GroupParticipants(Group):
    """/group/participants: add, remove, promote or demote `phones`."""

    phones: list[str]
    action: Literal["add", "remove", "promote", "demote"]


class GroupInviteLink(Group):
    """/group/invitelink: the group's invite link; `reset` revokes the old one first."""

    reset: bool = False


class GroupJoin(Args):
    """/group/join: join by invite `code` (the part after chat.whatsapp.com/)."""

    code: str


class GroupName(Group):
    """/group/name: rename the group (whatsmeow's SetGroupName)."""

    name: str


class GroupTopic(Group):
    """/group/topic: set the description; "" deletes it."""

    topic: str = ""


class GroupPhoto(Group):
    """/group/photo: the JPEG in the media bucket under `media_key` becomes the group's picture."""

    media_key: str
    sha256: str = ""


class GroupFlag(Group):
    """/group/announce and /group/locked: switch the setting on (`value` true) or off."""

    value: bool


class CallTo(Args):
    """/call/make: call `to` (phone number or JID)."""

    to: str


class CallRef(Args):
    """One tracked call of this session (/call/accept, /call/reject, /call/end, /call/audio/stop)."""

    call_id: str


class CallOffer(CallRef):
    """/call/webrtc/offer: the browser's SDP offer for the call's audio leg; answered with SDP."""

    sdp: str


class CallPlay(CallRef):
    """/call/audio/play, one source: `path` inside the host's CALL_AUDIO_DIR, or `media_key`, this session's upload."""

    path: str = ""
    media_key: str = ""


# -- reply models --------------------------------------------------------------------------------------


class Details(Result):
    """WaGo's plain answer: {"Details": text}."""

    details: str = Field(alias="Details")


class Sent(Result):
    """A send's answer as WaGo gives it: the WhatsApp message `Id` and its `Timestamp`."""

    id: str = Field(alias="Id")
    timestamp: str = Field(alias="Timestamp")


class Connected(Result):
    """/session/connect's answer: the account JID once logged in, and the client's state."""

    jid: str = ""
    connected: bool = False
    logged_in: bool = False
    already_connected: bool = False  # the client was running: its subscription was updated, nothing started


class LinkingCode(Result):
    """/session/pair's answer: the code to type on the phone (whatsmeow: XXXX-XXXX)."""

    linking_code: str = Field(alias="LinkingCode")


class Scanned(Result):
    """sim.scan's answer: the JID the session is now logged in as."""

    jid: str


class Downloaded(Result):
    """download's answer: where the decrypted file went (the reply stays small), its type and size
    in bytes."""

    key: str = Field(description="S3 key of the downloaded file.")
    mimetype: str
    size: int


class Users(Result):
    """/user/check and /user/info: whatsmeow's answer under WaGo's `Users` key."""

    users: Any = Field(alias="Users")


class Groups(Result):
    """/group/list: whatsmeow's GroupInfo JSON per joined group, under WaGo's `Groups`."""

    groups: list[dict[str, Any]] = Field(alias="Groups")


class Participants(Details):
    """/group/participants: one whatsmeow GroupParticipant per requested phone (with `Error`
    set where that one failed)."""

    participants: list[dict[str, Any]] = Field(alias="Participants")


class InviteLink(Result):
    """/group/invitelink: https://chat.whatsapp.com/<code>."""

    invite_link: str = Field(alias="InviteLink")


class Joined(Details):
    """/group/join: the JID of the group joined."""

    group_jid: str = Field(alias="GroupJID")


class PhotoSet(Details):
    """/group/photo: WhatsApp's id of the new picture."""

    picture_id: str = Field(alias="PictureID")


class CallState(Details):
    """A call command's answer: the call and its state after the command (calls/states.py)."""

    call_id: str = Field(alias="CallID")
    state: str = Field(alias="State")


class CallPlaced(CallState):
    """/call/make: the new call (ringing) and the peer's JID."""

    peer: str = Field(alias="Peer")


class Answer(Result):
    """/call/webrtc/offer: the host's SDP answer."""

    sdp: str


class Playing(Details):
    """/call/audio/play: the call and what now plays (the file's path or the upload's MediaKey)."""

    call_id: str = Field(alias="CallID")
    audio_file: str | None = Field(None, alias="AudioFile")
    media_key: str | None = Field(None, alias="MediaKey")


class Stopped(Details):
    """/call/audio/stop: the call whose playback stopped."""

    call_id: str = Field(alias="CallID")


# -- the operations ------------------------------------------------------------------------------------

CONNECT = declare("connect", Connect, Connected, claiming=True)
PAIR = declare("pair", Pair, LinkingCode, claiming=True)
DISCONNECT = declare("disconnect", NoArgs, Details)
LOGOUT = declare("logout", NoArgs, Details)
FORGET = declare("forget", NoArgs, Details, claiming=True)

SEND_TEXT = declare("send_text", SendText, Sent)
SEND_CONTENT = declare("send_content", SendContent, Sent)
SEND_MEDIA = declare("send_media", SendMedia, Sent)
SEND_MEDIAURL = declare("send_mediaurl", SendMediaUrl, Sent)
DOWNLOAD = declare("download", Download, Downloaded)
MARK_READ = declare("mark_read", MarkRead, Details)
CHAT_PRESENCE = declare("chat_presence", ChatPresence, Details)
PRESENCE = declare("presence", Presence, Details)
SUBSCRIBE_PRESENCE = declare("subscribe_presence", SubscribePresence, Details)

SIM_SCAN = declare("sim.scan", SimScan, Scanned)
SIM_LOGOUT = declare("sim.logout", NoArgs, Details)
SIM_UNLINK = declare("sim.unlink", NoArgs, Details, sessionless=True)
SIM_MESSAGE = declare("sim.message", SimPhoneMessage, Sent, sessionless=True)
SIM_READ = declare("sim.read", SimPhoneRead, Details, sessionless=True)
SIM_CHAT_PRESENCE = declare("sim.chatpresence", SimPhoneChatPresence, Details, sessionless=True)
SIM_PRESENCE = declare("sim.presence", SimPhonePresence, Details, sessionless=True)

CALL_MAKE = declare("call.make", CallTo, CallPlaced)
CALL_ACCEPT = declare("call.accept", CallRef, CallState)
CALL_REJECT = declare("call.reject", CallRef, CallState)
CALL_END = declare("call.end", CallRef, CallState)
CALL_OFFER = declare("call.offer", CallOffer, Answer)
CALL_PLAY = declare("call.play", CallPlay, Playing)
CALL_STOP = declare("call.stop", CallRef, Stopped)

USER_CHECK = declare("user.check", Phones, Users)
USER_INFO = declare("user.info", Phones, Users)
USER_AVATAR = declare("user.avatar", Avatar, Json)
USER_CONTACTS = declare("user.contacts", NoArgs, Json)

GROUP_LIST = declare("group.list", NoArgs, Groups)
GROUP_INFO = declare("group.info", Group, Json)
GROUP_CREATE = declare("group.create", GroupCreate, Json)
GROUP_PARTICIPANTS = declare("group.participants", GroupParticipants, Participants)
GROUP_INVITELINK = declare("group.invitelink", GroupInviteLink, InviteLink)
GROUP_JOIN = declare("group.join", GroupJoin, Joined)
GROUP_LEAVE = declare("group.leave", Group, Details)
GROUP_NAME = declare("group.name", GroupName, Details)
GROUP_TOPIC = declare("group.topic", GroupTopic, Details)
GROUP_PHOTO = declare("group.photo", GroupPhoto, PhotoSet)
GROUP_ANNOUNCE = declare("group.announce", GroupFlag, Details)
GROUP_LOCKED = declare("group.locked", GroupFlag, Details)
