"""Users and groups on the simulated WhatsApp network (the sim driver's /user/* and /group/*).

Users: a sim account is on WhatsApp iff it exists (chalicelib/core/models/sim.py). A session's contacts are
every other sim account: the sim network is one shared address book (WhatsApp fills whatsmeow's
contact store from the phone's address book and from push names; the sim has no address book of
its own). Profile pictures exist for groups only (set with /group/photo); a user has none, so
/user/avatar answers `No avatar found` for users, as WaGo does for a user without a picture.

Groups live in the sim table (`grp#<jid>`, chalicelib/core/models/sim_groups.py). Rules follow WhatsApp:
only participants see a group; only admins add, remove, promote and demote, get or reset the invite
link; when a group is locked only admins change its name, topic and photo; announce and locked are
admin settings; the creator is the super admin and cannot be removed or demoted. Every change reaches
the other participants' sessions as whatsmeow's events (WaGo forwards them under `All`):
`JoinedGroup` for whoever just joined (created, added, or joined by link), `GroupInfo` for everyone
else (Join / Leave / Promote / Demote lists, Name, Topic, Locked, Announce), queued in the inbox of
sessions that are offline. The session that made a change gets no GroupInfo for it (as with messages
it sends); JoinedGroup reaches it too, as whatsmeow's does (Type `new` with the CreateKey for the
creator, Reason `invite` for a join by link).

JSON shapes are whatsmeow's structs through Go's encoding/json, built by chalicelib/core/shapes.py as the
neonize driver's are: GroupInfo with its embedded structs flattened (`Name`, `Topic`, `IsLocked`,
`IsAnnounce`, ... at the top level), JIDs as strings, times as RFC 3339.
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.core import jid, shapes
from chalicelib.core.errors import DomainError
from chalicelib.core.models import SimAccountModel
from chalicelib.core.models.base import condition_failed
from chalicelib.core.models.sim_groups import GROUP_PREFIX, SimGroupModel
from chalicelib.core.shapes import rfc3339
from session_host.sim.network import SimNetwork, parse_phone, user_jid

GROUP_SERVER = "g.us"
INVITE_PREFIX = "https://chat.whatsapp.com/"
INVITE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
MAX_RETRIES = 8
MAX_PARTICIPANTS = 1024
ACTIONS = ("add", "remove", "promote", "demote")

NO_AVATAR = "No avatar found"
NOT_PARTICIPANT = "you are not a participant of this group"
NOT_ADMIN = "only group admins can do this"
LOCKED = "the group is locked: only admins can change its name, topic and photo"
INVALID_INVITE = "invalid invite link or code"

# whatsmeow's per-participant error codes (GroupParticipant.Error)
ERR_NOT_ALLOWED = 403
ERR_NOT_FOUND = 404
ERR_CONFLICT = 409


def parse_group_jid(value: str) -> str:
    """`120363...@g.us` -> the group JID (chalicelib/core/jid.py); `Could not parse Group JID` otherwise."""
    return jid.group(value)


def invite_code_of(value: str) -> str:
    """An invite link (`https://chat.whatsapp.com/CODE`) or the bare code -> the code."""
    value = (value or "").strip()
    if value.startswith(INVITE_PREFIX):
        value = value[len(INVITE_PREFIX):]
    value = value.split("?", 1)[0].strip("/")
    if not value or not all(ch in INVITE_ALPHABET for ch in value):
        raise DomainError(400, INVALID_INVITE)
    return value


def _new_group_jid() -> str:
    return f"120363{secrets.randbelow(10**12):012d}@{GROUP_SERVER}"


def _new_invite_code() -> str:
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(22))


def participant_json(phone: str, admin: bool = False, super_admin: bool = False, error: int = 0) -> dict[str, Any]:
    return shapes.group_participant(user_jid(phone), is_admin=admin, is_super_admin=super_admin, error=error)


def _by(phone: str) -> str:
    return user_jid(phone) if phone else ""


def group_json(group: SimGroupModel) -> dict[str, Any]:
    """whatsmeow's types.GroupInfo as Go's encoding/json writes it (embedded structs flattened)."""
    admins = group.admins or set()
    participants = [participant_json(p, p in admins, p == group.owner) for p in sorted(group.participants or ())]
    return shapes.group_info(
        group.jid, user_jid(group.owner),
        shapes.group_name(group.name, rfc3339(group.name_set_at), _by(group.name_set_by)),
        shapes.group_topic(group.topic, group.topic_id, rfc3339(group.topic_set_at), _by(group.topic_set_by)),
        participants, locked=bool(group.locked), announce=bool(group.announce), addressing_mode="pn",
        created=rfc3339(group.created_at), participant_version_id=str(group.participant_version or ""),
        member_add_mode="admin_add")


def _group_info_event(group: SimGroupModel, actor: str, at: float, join_reason: str = "",
                      **changes: Any) -> dict[str, Any]:
    """whatsmeow's events.GroupInfo: only the changed parts are set (nil pointers and slices are null)."""
    return shapes.group_info_event(group.jid, rfc3339(at), user_jid(actor), join_reason=join_reason,
                                   participant_version_id=str(group.participant_version or ""), **changes)


class SimGroups:
    """User queries and group operations of one sim account (`phone`), on behalf of session `token`."""

    def __init__(self, network: SimNetwork, media_url: Callable[[str], str] | None = None):
        self.network = network
        self.media_url = media_url  # S3 key -> a URL the client can fetch (avatar `url`)

    # -- users ------------------------------------------------------------------------------------

    def _account(self, phone: str) -> SimAccountModel | None:
        try:
            return SimAccountModel.get(SimAccountModel.key(phone), consistent_read=True)
        except DoesNotExist:
            return None

    def check(self, phones: list[str]) -> list[dict[str, Any]]:
        """whatsmeow's IsOnWhatsApp: one answer per query, in order."""
        users = []
        for query in phones:
            digits = parse_phone(query)
            account = self._account(digits)
            users.append({"Query": query, "IsInWhatsapp": account is not None,
                          "JID": user_jid(digits) if account is not None else "", "VerifiedName": ""})
        return users

    def info(self, phones: list[str]) -> dict[str, dict[str, Any]]:
        """whatsmeow's GetUserInfo: JID -> {VerifiedName, Status, PictureID, Devices, LID}; unknown
        accounts are left out (WhatsApp answers nothing for them)."""
        users: dict[str, dict[str, Any]] = {}
        for query in phones:
            account = self._account(parse_phone(query))
            if account is None:
                continue
            companions = sorted(d.jid for d in self.network.devices_of(account.phone))
            users[account.jid] = {"VerifiedName": None, "Status": "", "PictureID": "",
                                  "Devices": [account.jid, *companions], "LID": ""}
        return users

    def avatar(self, phone: str, target: str, preview: bool) -> dict[str, Any]:
        """A group's photo (users have none on the sim): whatsmeow's ProfilePictureInfo."""
        if jid.is_group(target.strip()):
            group = self._visible(phone, parse_group_jid(target))
            if group.picture_id:
                kind = "preview" if preview else "image"
                return {"url": self.media_url(group.picture_key) if self.media_url else "",
                        "id": group.picture_id, "type": kind,
                        "direct_path": f"/v/sim/{group.picture_id}?type={kind}", "hash": None}
            raise DomainError(404, NO_AVATAR)
        if self._account(parse_phone(target)) is None:
            raise DomainError(404, f"{parse_phone(target)} is not on WhatsApp")
        raise DomainError(404, NO_AVATAR)

    def contacts(self, phone: str) -> dict[str, dict[str, Any]]:
        """Every other sim account, as whatsmeow's contact store reports it (JID -> ContactInfo)."""
        accounts = SimAccountModel.scan(SimAccountModel.pk.startswith(SimAccountModel.key("")), consistent_read=True)
        return {a.jid: {"Found": True, "FirstName": "", "FullName": "", "PushName": a.push_name,
                        "BusinessName": ""}
                for a in sorted(accounts, key=lambda a: a.phone) if a.phone != phone}

    # -- group storage ----------------------------------------------------------------------------

    @staticmethod
    def _load(jid: str) -> SimGroupModel:
        try:
            return SimGroupModel.get(SimGroupModel.key(jid), consistent_read=True)
        except DoesNotExist:
            raise DomainError(404, f"group {jid} not found") from None

    def _visible(self, phone: str, jid: str) -> SimGroupModel:
        group = self._load(jid)
        if phone not in (group.participants or set()):
            raise DomainError(403, NOT_PARTICIPANT)
        return group

    def _change(self, phone: str, jid: str, apply: Callable[[SimGroupModel], Any]) -> tuple[SimGroupModel, Any]:
        """Read, check and change a group, written only if nobody changed it meanwhile (bounded retries)."""
        for _ in range(MAX_RETRIES):
            group = self._load(jid)
            result = apply(group)
            try:
                group.save()
            except PutError as exc:
                if condition_failed(exc):
                    continue
                raise
            return group, result
        raise DomainError(409, "the group is being changed concurrently; try again")

    @staticmethod
    def _require_member(group: SimGroupModel, phone: str) -> None:
        if phone not in (group.participants or set()):
            raise DomainError(403, NOT_PARTICIPANT)

    @classmethod
    def _require_admin(cls, group: SimGroupModel, phone: str) -> None:
        cls._require_member(group, phone)
        if phone not in (group.admins or set()):
            raise DomainError(403, NOT_ADMIN)

    # -- events -----------------------------------------------------------------------------------

    def _tell(self, phones: set[str], type: str, event: dict[str, Any], skip_token: str | None) -> None:
        for phone in sorted(phones):
            for device in self.network.devices_of(phone):
                if device.token != skip_token:
                    self.network._deliver(device.token, type, event, {})

    def _joined(self, group: SimGroupModel, phones: set[str], actor: str, reason: str, kind: str,
                skip_token: str | None, create_key: str = "") -> None:
        """whatsmeow's events.JoinedGroup: the group's info, flattened, plus how it happened."""
        event = shapes.joined_group(group_json(group), reason=reason, type=kind, create_key=create_key,
                                    sender=user_jid(actor))
        self._tell(phones, "JoinedGroup", event, skip_token)

    def _info(self, group: SimGroupModel, phones: set[str], actor: str, skip_token: str | None, **changes) -> None:
        self._tell(phones, "GroupInfo", _group_info_event(group, actor, self.network.clock(), **changes), skip_token)

    # -- groups -----------------------------------------------------------------------------------

    def list(self, phone: str) -> list[dict[str, Any]]:
        groups = SimGroupModel.scan(SimGroupModel.pk.startswith(GROUP_PREFIX)
                                    & SimGroupModel.participants.contains(phone), consistent_read=True)
        return [group_json(g) for g in sorted(groups, key=lambda g: (g.created_at, g.jid))]

    def get(self, phone: str, jid: str) -> dict[str, Any]:
        return group_json(self._visible(phone, parse_group_jid(jid)))

    def _members(self, phones: builtins.list[str], own: str) -> builtins.list[str]:
        members: builtins.list[str] = []
        for value in phones:
            digits = parse_phone(value)
            if digits != own and digits not in members:
                members.append(digits)
        return members

    def create(self, phone: str, token: str | None, name: str, participants: builtins.list[str]) -> dict[str, Any]:
        """whatsmeow's CreateGroup: the group is created with the participants who are on WhatsApp; one
        who is not is listed in the answer's Participants with `Error` 404 and is not a member (as
        WhatsApp answers a create, and as `update_participants` answers an add)."""
        requested = self._members(participants, phone)
        if len(requested) + 1 > MAX_PARTICIPANTS:
            raise DomainError(400, f"a group has at most {MAX_PARTICIPANTS} participants")
        missing = [m for m in requested if self._account(m) is None]
        members = [m for m in requested if m not in missing]
        now = self.network.clock()
        for _ in range(MAX_RETRIES):
            group = SimGroupModel(SimGroupModel.key(_new_group_jid()), owner=phone, name=name, name_set_at=now,
                                  name_set_by=phone, participants={phone, *members}, admins={phone},
                                  invite_code=_new_invite_code(), created_at=now, participant_version=1)
            group.jid = group.pk[len(GROUP_PREFIX):]
            try:
                group.save(condition=SimGroupModel.pk.does_not_exist())
                break
            except PutError:
                continue
        else:
            raise DomainError(500, "could not allocate a group id")
        create_key = "3EB0" + secrets.token_hex(9).upper()
        # whatsmeow tells the creator too (Type "new", CreateKey = the id CreateGroup sent)
        self._joined(group, {phone}, phone, "", "new", None, create_key)
        self._joined(group, set(members), phone, "add", "", token)
        info = group_json(group)
        if missing:
            info["Participants"] = [*info["Participants"], *(participant_json(m, error=ERR_NOT_FOUND) for m in missing)]
            info["ParticipantCount"] = len(info["Participants"])
        return info

    def update_participants(self, phone: str, token: str | None, jid: str, phones: builtins.list[str],
                            action: str) -> builtins.list[dict[str, Any]]:
        """Add, remove, promote or demote; whatsmeow's answer: one GroupParticipant per request, with
        `Error` set (403, 404, 409) where that participant could not be changed."""
        if action not in ACTIONS:
            raise DomainError(400, f"Invalid Action in Payload: use one of {', '.join(ACTIONS)}")
        jid = parse_group_jid(jid)
        targets = [parse_phone(p) for p in phones]
        before: set[str] = set()

        def apply(group: SimGroupModel) -> tuple[builtins.list[dict], builtins.list[str]]:
            self._require_admin(group, phone)
            before.clear()
            before.update(group.participants or set())
            members, admins = set(group.participants or set()), set(group.admins or set())
            results, changed = [], []
            for target in dict.fromkeys(targets):
                error = 0
                if action == "add":
                    if target in members:
                        error = ERR_CONFLICT
                    elif self._account(target) is None:
                        error = ERR_NOT_FOUND
                    else:
                        members.add(target)
                elif target not in members:
                    error = ERR_NOT_FOUND
                elif target == group.owner and action in ("remove", "demote"):
                    error = ERR_NOT_ALLOWED  # the creator stays
                elif action == "remove":
                    members.discard(target)
                    admins.discard(target)
                elif action == "promote":
                    admins.add(target)
                else:
                    admins.discard(target)
                if not error:
                    changed.append(target)
                results.append(participant_json(target, target in admins, target == group.owner, error))
            group.participants, group.admins = members, admins
            if changed and action in ("add", "remove"):
                group.participant_version = (group.participant_version or 0) + 1
            return results, changed

        group, (results, changed) = self._change(phone, jid, apply)
        if changed:
            jids = [user_jid(p) for p in changed]
            field = {"add": "Join", "remove": "Leave", "promote": "Promote", "demote": "Demote"}[action]
            others = before if action != "add" else before - set(changed)
            self._info(group, others, phone, token, **{field: jids})
            if action == "add":
                self._joined(group, set(changed), phone, "add", "", token)
        return results

    def invite_link(self, phone: str, jid: str, reset: bool) -> str:
        jid = parse_group_jid(jid)

        def apply(group: SimGroupModel) -> None:
            self._require_admin(group, phone)
            if reset or not group.invite_code:
                group.invite_code = _new_invite_code()

        group, _ = self._change(phone, jid, apply)
        return INVITE_PREFIX + group.invite_code

    def join(self, phone: str, token: str | None, code: str) -> str:
        code = invite_code_of(code)
        found = list(SimGroupModel.scan(SimGroupModel.pk.startswith(GROUP_PREFIX)
                                        & (SimGroupModel.invite_code == code), consistent_read=True))
        if not found:
            raise DomainError(404, INVALID_INVITE)
        before: set[str] = set()

        def apply(group: SimGroupModel) -> bool:
            if group.invite_code != code:
                raise DomainError(404, INVALID_INVITE)  # reset meanwhile
            before.clear()
            before.update(group.participants or set())
            if phone in before:
                return False  # already in: WhatsApp answers the group's JID
            group.participants = before | {phone}
            group.participant_version = (group.participant_version or 0) + 1
            return True

        group, joined = self._change(phone, found[0].jid, apply)
        if joined:
            self._info(group, before, phone, token, Join=[user_jid(phone)], join_reason="invite")
            self._joined(group, {phone}, phone, "invite", "", None)  # whatsmeow: Reason "invite", to you too
        return group.jid

    def leave(self, phone: str, token: str | None, jid: str) -> None:
        jid = parse_group_jid(jid)

        def apply(group: SimGroupModel) -> None:
            self._require_member(group, phone)
            group.participants = set(group.participants or set()) - {phone}
            group.admins = set(group.admins or set()) - {phone}
            if group.participants and not group.admins:
                # WhatsApp never leaves a group without an admin: the longest-known member is promoted
                group.admins = {sorted(group.participants)[0]}
            group.participant_version = (group.participant_version or 0) + 1

        group, _ = self._change(phone, jid, apply)
        self._info(group, set(group.participants or set()) | {phone}, phone, token, Leave=[user_jid(phone)])

    def _setting(self, phone: str, jid: str, info_change: bool,
                 apply: Callable[[SimGroupModel], None]) -> SimGroupModel:
        """A group setting: admins only, or (name/topic/photo) anyone unless the group is locked."""

        def checked(group: SimGroupModel) -> None:
            self._require_member(group, phone)
            if phone not in (group.admins or set()):
                if not info_change:
                    raise DomainError(403, NOT_ADMIN)
                if group.locked:
                    raise DomainError(403, LOCKED)
            apply(group)

        group, _ = self._change(phone, parse_group_jid(jid), checked)
        return group

    def set_name(self, phone: str, token: str | None, jid: str, name: str) -> None:
        now = self.network.clock()

        def apply(group: SimGroupModel) -> None:
            group.name, group.name_set_at, group.name_set_by = name, now, phone

        group = self._setting(phone, jid, True, apply)
        self._info(group, set(group.participants), phone, token,
                   Name=shapes.group_name(name, rfc3339(now), user_jid(phone)))

    def set_topic(self, phone: str, token: str | None, jid: str, topic: str) -> None:
        now = self.network.clock()
        topic_id = secrets.token_hex(8).upper()

        def apply(group: SimGroupModel) -> None:
            group.topic, group.topic_id, group.topic_set_at, group.topic_set_by = topic, topic_id, now, phone

        group = self._setting(phone, jid, True, apply)
        self._info(group, set(group.participants), phone, token,
                   Topic=shapes.group_topic(topic, topic_id, rfc3339(now), user_jid(phone), deleted=not topic))

    def set_photo(self, phone: str, token: str | None, jid: str, media_key: str, sha256_hex: str) -> str:
        picture_id = str(int(hashlib.sha256(f"{media_key}{sha256_hex}".encode()).hexdigest()[:15], 16))

        def apply(group: SimGroupModel) -> None:
            group.picture_id, group.picture_key = picture_id, media_key

        group = self._setting(phone, jid, True, apply)
        # whatsmeow reports a group photo change as events.Picture
        self._tell(set(group.participants), "Picture",
                   shapes.picture(group.jid, user_jid(phone), rfc3339(self.network.clock()), picture_id), token)
        return picture_id

    def set_announce(self, phone: str, token: str | None, jid: str, value: bool) -> None:
        group = self._setting(phone, jid, False, lambda g: setattr(g, "announce", value))
        self._info(group, set(group.participants), phone, token,
                   Announce={"IsAnnounce": value, "AnnounceVersionID": ""})

    def set_locked(self, phone: str, token: str | None, jid: str, value: bool) -> None:
        group = self._setting(phone, jid, False, lambda g: setattr(g, "locked", value))
        self._info(group, set(group.participants), phone, token, Locked={"IsLocked": value})


__all__ = ["SimGroups", "group_json", "invite_code_of", "parse_group_jid"]
