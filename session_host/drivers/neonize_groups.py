"""Users and groups with neonize (runs in the worker processes): the calls, and their answers as WaGo's JSON.

Every function takes a logged-in neonize client (NeonizeWorker.user_group checks that first: some of
these calls abort the process on an unregistered client, research/neonize.md §12) and returns
whatsmeow's structs as Go's encoding/json writes them, as WaGo answers: GroupInfo with its embedded
structs flattened (`Name`, `Topic`, `IsLocked`, ... at the top level), JIDs as strings, times as
RFC 3339. neonize's GroupInfo protobuf lacks a few of whatsmeow's fields (IsJoinApprovalRequired,
AddressingMode, CreatorCountryCode, MemberAddMode): they are given their zero values.

Errors: whatsmeow's error text is kept (`Failed to <what>: <error>`); the status says what kind it is
(404 unknown group / bad invite link, 403 not a participant / not allowed, 500 otherwise).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from neonize.proto import Neonize_pb2 as N

from chalicelib.core import jid
from chalicelib.core.errors import DomainError
from session_host.drivers.neonize_group_events import group_json, participant_json
from session_host.drivers.neonize_jid import recipient_jid, to_neonize
from session_host.drivers.neonize_json import jid_str, proto_json

NO_AVATAR = "No avatar found"
INVITE_PREFIX = "https://chat.whatsapp.com/"

_NOT_FOUND = ("item-not-found", "not found", "group not found", "invite link is not valid", "has been revoked", "404")
_FORBIDDEN = ("not participating", "not-authorized", "forbidden", "401", "403")


def _error_text(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else None
    return str(getattr(arg, "Error", None) or exc) or type(exc).__name__  # GetProfilePictureError carries the model


def failed(what: str, exc: Exception) -> DomainError:
    text = _error_text(exc)
    lowered = text.lower()
    status = 404 if any(k in lowered for k in _NOT_FOUND) else 403 if any(k in lowered for k in _FORBIDDEN) else 500
    return DomainError(status, f"Failed to {what}: {text}")


def _call(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except DomainError:
        raise
    except Exception as exc:  # neonize's typed errors (whatsmeow's error text)
        raise failed(what, exc) from None


def group_jid(value: str) -> N.JID:
    """A group JID (chalicelib/core/jid.py's rules; `Could not parse Group JID` otherwise) as neonize's."""
    return to_neonize(jid.parse(jid.group(value)))


def _verified_name(message: Any) -> str:
    return message.VerifiedName.Details.verifiedName if message.HasField("VerifiedName") else ""


# -- users -----------------------------------------------------------------------------------------


def check_users(client: Any, phones: list[str]) -> list[dict[str, Any]]:
    """whatsmeow queries `+<digits>` (research/neonize.md §6.4); answers come back in that form."""
    numbers = ["+" + jid.phone(p) for p in phones]
    answers = _call("check users", lambda: client.is_on_whatsapp(*numbers))
    return [{"Query": a.Query, "IsInWhatsapp": a.IsIn, "JID": jid_str(a.JID), "VerifiedName": _verified_name(a)}
            for a in answers]


def user_info(client: Any, phones: list[str]) -> dict[str, dict[str, Any]]:
    jids = [recipient_jid(p) for p in phones]
    infos = _call("get user info", lambda: client.get_user_info(*jids))
    return {jid_str(i.JID): {
        "VerifiedName": proto_json(i.UserInfo.VerifiedName) if i.UserInfo.HasField("VerifiedName") else None,
        "Status": i.UserInfo.Status, "PictureID": i.UserInfo.PictureID,
        "Devices": [jid_str(d) for d in i.UserInfo.Devices], "LID": ""} for i in infos}


def user_avatar(client: Any, phone: str, preview: bool) -> dict[str, Any]:
    params = N.GetProfilePictureParams(Preview=preview)
    try:
        picture = client.get_profile_picture(recipient_jid(phone), params)
    except DomainError:
        raise
    except Exception as exc:  # whatsmeow: "the user doesn't have a profile picture" / no permission
        text = _error_text(exc).lower()
        if "profile picture" in text or "item-not-found" in text or "not-authorized" in text:
            raise DomainError(404, NO_AVATAR) from None
        raise failed("get avatar", exc) from None
    if not (picture.URL or picture.ID):
        raise DomainError(404, NO_AVATAR)
    return {"url": picture.URL, "id": picture.ID, "type": picture.Type, "direct_path": picture.DirectPath,
            "hash": base64.b64encode(picture.Hash).decode() if picture.Hash else None}


def contacts(client: Any) -> dict[str, dict[str, Any]]:
    """The local contact store (aborts the process on an unregistered client: logged-in sessions only)."""
    found = _call("get contacts", lambda: client.contact.get_all_contacts())
    return {jid_str(c.JID): {"Found": c.Info.Found, "FirstName": c.Info.FirstName, "FullName": c.Info.FullName,
                             "PushName": c.Info.PushName, "BusinessName": c.Info.BusinessName} for c in found}


# -- groups ----------------------------------------------------------------------------------------


def list_groups(client: Any) -> list[dict[str, Any]]:
    return [group_json(g) for g in _call("get joined groups", lambda: client.get_joined_groups())]


def group_info(client: Any, group: str) -> dict[str, Any]:
    jid = group_jid(group)
    return group_json(_call("get group info", lambda: client.get_group_info(jid)))


def create_group(client: Any, name: str, participants: list[str]) -> dict[str, Any]:
    jids = [recipient_jid(p) for p in participants]
    return group_json(_call("create group", lambda: client.create_group(name, jids)))


def update_group_participants(client: Any, group: str, phones: list[str], action: str) -> list[dict[str, Any]]:
    from neonize.utils.enum import ParticipantChange

    try:
        change = ParticipantChange(action)
    except ValueError:
        raise DomainError(400, "Invalid Action in Payload: use one of add, remove, promote, demote") from None
    jid = group_jid(group)
    jids = [recipient_jid(p) for p in phones]
    changed = _call("update group participants", lambda: client.update_group_participants(jid, jids, change))
    return [participant_json(p) for p in changed]


def group_invite_link(client: Any, group: str, reset: bool) -> str:
    jid = group_jid(group)
    return _call("get group invite link", lambda: client.get_group_invite_link(jid, revoke=reset))


def join_group(client: Any, code: str) -> str:
    code = code.strip().removeprefix(INVITE_PREFIX).split("?", 1)[0].strip("/")
    if not code:
        raise DomainError(400, "Missing Code in Payload")
    return jid_str(_call("join group", lambda: client.join_group_with_link(code)))


def leave_group(client: Any, group: str) -> None:
    jid = group_jid(group)
    _call("leave group", lambda: client.leave_group(jid))


def set_group_name(client: Any, group: str, name: str) -> None:
    jid = group_jid(group)
    _call("set group name", lambda: client.set_group_name(jid, name))


def set_group_topic(client: Any, group: str, topic: str) -> None:
    """Empty ids: whatsmeow looks up the current topic id and makes a new one."""
    jid = group_jid(group)
    _call("set group topic", lambda: client.set_group_topic(jid, "", "", topic))


def set_group_photo(client: Any, group: str, data: bytes) -> str:
    jid = group_jid(group)
    return _call("set group photo", lambda: client.set_group_photo(jid, data))


def set_group_announce(client: Any, group: str, value: bool) -> None:
    jid = group_jid(group)
    _call("set group announce", lambda: client.set_group_announce(jid, value))


def set_group_locked(client: Any, group: str, value: bool) -> None:
    jid = group_jid(group)
    _call("set group locked", lambda: client.set_group_locked(jid, value))


#: What NeonizeWorker.user_group may run (op name -> function(client, **kwargs)).
OPS: dict[str, Callable[..., Any]] = {fn.__name__: fn for fn in (
    check_users, user_info, user_avatar, contacts, list_groups, group_info, create_group,
    update_group_participants, group_invite_link, join_group, leave_group, set_group_name, set_group_topic,
    set_group_photo, set_group_announce, set_group_locked)}
