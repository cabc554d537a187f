"""Groups: list, info, create, participants, invite links, join, leave, name, topic, photo, announce, locked.

Bodies follow WaGo's and wuzapi's (research/wago-api.md §2.7): `GroupJID` names the group
(`120363...@g.us`); answers are whatsmeow's GroupInfo as Go's encoding/json writes it. `/group/info`
and `/group/invitelink` answer GET (fields in the query or body) and POST. Each is a command to the
session's host (chalicelib/bus.py); a group photo is checked and stored in S3 here, like /send/image.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from chalicelib.bus import get_bus
from chalicelib.core import ops
from chalicelib.core.errors import DomainError
from chalicelib.core.media import MediaStore, decode_data_url
from chalicelib.core.settings import get_settings
from chalicelib.routes.fields import BatchItem, GroupAddress, Text, _printable
from chalicelib.routes.users import MAX_PHONES, PhoneList, query_body
from chalicelib.routing import Auth, Call, Router
from chalicelib.validation import WagoModel

router = Router(__name__, tag="Groups")

GroupName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
                      AfterValidator(_printable)]
Topic = Annotated[str, StringConstraints(max_length=2048)]


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


class GroupRequest(WagoModel):
    group_jid: GroupAddress = Field(alias="GroupJID", description="The group, e.g. 120363012345678901@g.us.")


class InviteLinkRequest(GroupRequest):
    reset: bool = Field(False, alias="Reset", description="Revoke the current link and make a new one.")


class CreateRequest(WagoModel):
    name: GroupName = Field(alias="Name", description="The group's name (up to 100 characters).")
    participants: Annotated[list[BatchItem], Field(min_length=1, max_length=MAX_PHONES)] = Field(
        alias="Participants", description="Phone numbers (or JIDs) to add besides you; unparseable ones are listed "
                                          "in the answer's `Errors` (addition), the group is made with the others.")


class ParticipantsRequest(GroupRequest):
    phone: PhoneList = Field(alias="Phone", description="Phone numbers (or JIDs) to change.")
    action: Annotated[Literal["add", "remove", "promote", "demote"], BeforeValidator(_lower)] = Field(
        alias="Action", description="add, remove, promote (to admin) or demote.")


class JoinRequest(WagoModel):
    code: Text = Field(alias="Code", description="An invite link (https://chat.whatsapp.com/...) or its code.")


class NameRequest(GroupRequest):
    name: GroupName = Field(alias="Name")


class TopicRequest(GroupRequest):
    topic: Topic = Field(alias="Topic", description="The group's description; empty removes it.")


class PhotoRequest(GroupRequest):
    image: Annotated[str, StringConstraints(min_length=1)] = Field(alias="Image",
                                                                   description="data:image/jpeg;base64,...")


class ValueRequest(GroupRequest):
    value: bool = Field(alias="Value")


class DetailsResponse(WagoModel):
    details: str = Field(alias="Details")


def _command(call: Call, op: ops.Operation, args: ops.Args | None = None) -> dict:
    return get_bus().command(call.session, op, args)


@router.route("GET", "/group/list", auth=Auth.SESSION, sends=(ops.GROUP_LIST,),
              summary="The groups this account is in: {Groups: [GroupInfo]}.")
def list_groups(call: Call) -> dict:
    return _command(call, ops.GROUP_LIST)


def _info(call: Call, body: GroupRequest) -> dict:
    return _command(call, ops.GROUP_INFO, ops.Group(group=body.group_jid))


@router.route("GET", "/group/info", auth=Auth.SESSION, sends=(ops.GROUP_INFO,),
              summary="A group's GroupInfo (name, topic, settings, participants); GroupJID in the query or body.")
def group_info(call: Call) -> dict:
    return _info(call, query_body(call, GroupRequest))


@router.route("POST", "/group/info", auth=Auth.SESSION, sends=(ops.GROUP_INFO,),
              body=GroupRequest, summary="As GET /group/info.")
def group_info_post(call: Call) -> dict:
    return _info(call, call.body)


@router.route("POST", "/group/create", auth=Auth.SESSION, sends=(ops.GROUP_CREATE,), body=CreateRequest,
              summary="Create a group with you as its admin; answers its GroupInfo.")
def create_group(call: Call) -> dict:
    body: CreateRequest = call.body
    return _command(call, ops.GROUP_CREATE, ops.GroupCreate(name=body.name, participants=body.participants))


@router.route("POST", "/group/participants", auth=Auth.SESSION, sends=(ops.GROUP_PARTICIPANTS,),
              body=ParticipantsRequest,
              summary="Add, remove, promote or demote participants (admins only); one result per participant, "
                      "`Error` set (403, 404, 409) where it failed.")
def update_participants(call: Call) -> dict:
    body: ParticipantsRequest = call.body
    return _command(call, ops.GROUP_PARTICIPANTS, ops.GroupParticipants(
        group=body.group_jid, phones=body.phone, action=body.action))


def _invite(call: Call, body: InviteLinkRequest) -> dict:
    return _command(call, ops.GROUP_INVITELINK, ops.GroupInviteLink(group=body.group_jid, reset=body.reset))


@router.route("GET", "/group/invitelink", auth=Auth.SESSION, sends=(ops.GROUP_INVITELINK,),
              summary="The group's invite link (admins only): {InviteLink}; `Reset` revokes the old one.")
def invite_link(call: Call) -> dict:
    return _invite(call, query_body(call, InviteLinkRequest, bools=("reset",)))


@router.route("POST", "/group/invitelink", auth=Auth.SESSION, sends=(ops.GROUP_INVITELINK,), body=InviteLinkRequest,
              summary="As GET /group/invitelink.")
def invite_link_post(call: Call) -> dict:
    return _invite(call, call.body)


@router.route("POST", "/group/join", auth=Auth.SESSION, sends=(ops.GROUP_JOIN,), body=JoinRequest,
              summary="Join a group with an invite link or code: {Details, GroupJID}.")
def join_group(call: Call) -> dict:
    return _command(call, ops.GROUP_JOIN, ops.GroupJoin(code=call.body.code))


@router.route("POST", "/group/leave", auth=Auth.SESSION, sends=(ops.GROUP_LEAVE,),
              body=GroupRequest, response=DetailsResponse,
              summary="Leave a group.")
def leave_group(call: Call) -> dict:
    return _command(call, ops.GROUP_LEAVE, ops.Group(group=call.body.group_jid))


@router.route("POST", "/group/name", auth=Auth.SESSION, sends=(ops.GROUP_NAME,),
              body=NameRequest, response=DetailsResponse,
              summary="Rename a group (admins only when the group is locked).")
def set_name(call: Call) -> dict:
    return _command(call, ops.GROUP_NAME, ops.GroupName(group=call.body.group_jid, name=call.body.name))


@router.route("POST", "/group/topic", auth=Auth.SESSION, sends=(ops.GROUP_TOPIC,),
              body=TopicRequest, response=DetailsResponse,
              summary="Set a group's description; empty removes it (admins only when locked).")
def set_topic(call: Call) -> dict:
    return _command(call, ops.GROUP_TOPIC, ops.GroupTopic(group=call.body.group_jid, topic=call.body.topic))


def _photo_body_limit() -> int:
    return get_settings().data_url_max_bytes * 4 // 3 + (64 << 10)


@router.route("POST", "/group/photo", auth=Auth.SESSION, sends=(ops.GROUP_PHOTO,),
              body=PhotoRequest, max_body_bytes=_photo_body_limit(),
              summary="Set a group's photo from a JPEG data URL: {Details, PictureID}.")
def set_photo(call: Call) -> dict:
    body: PhotoRequest = call.body
    jid = body.group_jid
    settings = get_settings()
    data, mimetype = decode_data_url("image", body.image, settings.data_url_max_bytes)
    if mimetype != "image/jpeg":
        raise DomainError(400, f"Image must be a JPEG (data:image/jpeg;base64,...), not {mimetype}")
    stored = MediaStore(settings).put_outbound(call.session.token, data, mimetype)
    return _command(call, ops.GROUP_PHOTO, ops.GroupPhoto(group=jid, media_key=stored.key, sha256=stored.sha256))


@router.route("POST", "/group/announce", auth=Auth.SESSION, sends=(ops.GROUP_ANNOUNCE,),
              body=ValueRequest, response=DetailsResponse,
              summary="Only admins may send messages (`Value: true`) or everyone (admins only).")
def set_announce(call: Call) -> dict:
    return _command(call, ops.GROUP_ANNOUNCE, ops.GroupFlag(group=call.body.group_jid, value=call.body.value))


@router.route("POST", "/group/locked", auth=Auth.SESSION, sends=(ops.GROUP_LOCKED,),
              body=ValueRequest, response=DetailsResponse,
              summary="Only admins may edit the group's info (`Value: true`) or everyone (admins only).")
def set_locked(call: Call) -> dict:
    return _command(call, ops.GROUP_LOCKED, ops.GroupFlag(group=call.body.group_jid, value=call.body.value))
