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
    held session, and its Command's `token` is only its FIFO message group."""

    name: str
    args: type[A]
    reply: type[R]
    sessionless: bool = False

    def parse_args(self, raw: dict[str, Any]) -> A:
        """The argument model from a Command's `args`; pydantic's ValidationError when they do not fit."""
        return self.args.model_validate(raw)

    def reply_data(self, data: Any) -> Any:
        """A handler's answer, checked against the reply model, as the JSON the Reply carries."""
        model = data if isinstance(data, self.reply) else self.reply.model_validate(data)
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)


OPERATIONS: dict[str, Operation[Any, Any]] = {}


def declare(name: str, args: type[A], reply: type[R], *, sessionless: bool = False) -> Operation[A, R]:
    """Register an operation; a name is declared once (ValueError otherwise)."""
    if name in OPERATIONS:
        raise ValueError(f"operation {name!r} declared twice")
    op = Operation(name, args, reply, sessionless)
    OPERATIONS[name] = op
    return op


def lookup(name: str) -> Operation[Any, Any] | None:
    return OPERATIONS.get(name)


# -- argument models -----------------------------------------------------------------------------------


class NoArgs(Args):
    pass


class Subscribe(Args):
    events: list[str] | None = Field(None, description="WaGo event types to deliver; None keeps the stored ones.")


class Connect(Subscribe):
    immediate: bool = False


class Pair(Subscribe):
    phone: str


class Send(Args):
    """What every send shares: the recipient chat JID and the client's `Id` (idempotency key)."""

    to: str
    id: str | None = None


class SendText(Send):
    body: str


class SendContent(Send):
    content: dict[str, Any] = Field(description="WhatsApp's Message protobuf as JSON (message_content.py).")


class SendMedia(Send):
    kind: Literal["image", "audio", "video", "document", "sticker"]
    media_key: str = Field(description="S3 key of the file in the media bucket.")
    mimetype: str = ""
    sha256: str = ""
    caption: str = ""
    file_name: str = ""


class SendMediaUrl(Send):
    url: str
    kind: str | None = None
    caption: str = ""
    file_name: str = ""


class Download(Args):
    kind: str
    ref: dict[str, Any] = Field(description="whatsmeow's downloadable-message fields (URL, directPath, mediaKey...).")


class MarkRead(Args):
    ids: list[str]
    chat: str
    sender: str | None = None


class ChatPresence(Args):
    to: str
    state: str
    media: str = ""


class Presence(Args):
    available: bool


class SubscribePresence(Args):
    jid: str


class SimScan(Args):
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
    phones: list[str]


class Avatar(Args):
    phone: str
    preview: bool = False


class Group(Args):
    group: str = Field(description="A group JID, 120363...@g.us.")


class GroupCreate(Args):
    name: str
    participants: list[str]


class GroupParticipants(Group):
    phones: list[str]
    action: Literal["add", "remove", "promote", "demote"]


class GroupInviteLink(Group):
    reset: bool = False


class GroupJoin(Args):
    code: str


class GroupName(Group):
    name: str


class GroupTopic(Group):
    topic: str = ""


class GroupPhoto(Group):
    media_key: str
    sha256: str = ""


class GroupFlag(Group):
    value: bool


class CallTo(Args):
    to: str


class CallRef(Args):
    call_id: str


class CallOffer(CallRef):
    sdp: str


class CallPlay(CallRef):
    """One source: `path` inside the host's CALL_AUDIO_DIR, or `media_key`, this session's upload."""

    path: str = ""
    media_key: str = ""


# -- reply models --------------------------------------------------------------------------------------


class Details(Result):
    details: str = Field(alias="Details")


class Sent(Result):
    id: str = Field(alias="Id")
    timestamp: str = Field(alias="Timestamp")


class Connected(Result):
    jid: str = ""
    connected: bool = False
    logged_in: bool = False


class LinkingCode(Result):
    linking_code: str = Field(alias="LinkingCode")


class Scanned(Result):
    jid: str


class Downloaded(Result):
    key: str = Field(description="S3 key of the downloaded file.")
    mimetype: str
    size: int


class Users(Result):
    users: Any = Field(alias="Users")


class Groups(Result):
    groups: list[dict[str, Any]] = Field(alias="Groups")


class Participants(Details):
    participants: list[dict[str, Any]] = Field(alias="Participants")


class InviteLink(Result):
    invite_link: str = Field(alias="InviteLink")


class Joined(Details):
    group_jid: str = Field(alias="GroupJID")


class PhotoSet(Details):
    picture_id: str = Field(alias="PictureID")


class CallState(Details):
    call_id: str = Field(alias="CallID")
    state: str = Field(alias="State")


class CallPlaced(CallState):
    peer: str = Field(alias="Peer")


class Answer(Result):
    sdp: str


class Playing(Details):
    call_id: str = Field(alias="CallID")
    audio_file: str | None = Field(None, alias="AudioFile")
    media_key: str | None = Field(None, alias="MediaKey")


class Stopped(Details):
    call_id: str = Field(alias="CallID")


# -- the operations ------------------------------------------------------------------------------------

CONNECT = declare("connect", Connect, Connected)
PAIR = declare("pair", Pair, LinkingCode)
DISCONNECT = declare("disconnect", NoArgs, Details)
LOGOUT = declare("logout", NoArgs, Details)
FORGET = declare("forget", NoArgs, Details)

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
