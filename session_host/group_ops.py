"""The host's user and group operations (/user/check, /group/create, ...): the running client does them.

Each answers WaGo's `data` for its route (chalicelib/routes/users.py, groups.py); the driver returns
whatsmeow's shapes. `No session` when this host has no client for the token; the driver answers
`not logged in` for a client that is not logged in.

Batches answer per item: every phone of /user/check, /user/info, /group/create and /group/participants
is parsed first (`Driver.parse_user`); the parseable ones go to WhatsApp in one call, and each one that
is not gets its own error, in order where the answer is a list (`Error` on its entry) and under an
additive `Errors: [{Query, Error}]` where it is not. A batch with no parseable item makes no call.
"""

from __future__ import annotations

from typing import Any

from chalicelib.core import ops
from chalicelib.core.errors import DomainError
from chalicelib.core.media import MediaStore
from session_host.dispatch import handles
from session_host.drivers.base import Driver
from session_host.lifecycle import SessionLifecycle


class GroupOps:
    def __init__(self, lifecycle: SessionLifecycle, driver: Driver, media: MediaStore):
        self.lifecycle = lifecycle
        self.driver = driver
        self.media = media

    def _client(self, token: str) -> Driver:
        self.lifecycle.running(token)
        return self.driver

    def _split(self, values: list[str]) -> tuple[list[str], dict[int, str]]:
        """(the parseable items, in order; index -> error text of each one that is not)."""
        good: list[str] = []
        bad: dict[int, str] = {}
        for index, value in enumerate(values):
            try:
                self.driver.parse_user(value)
            except DomainError as exc:
                bad[index] = f"{exc.message}: {value!r}"
                continue
            good.append(value)
        return good, bad

    # -- users -------------------------------------------------------------------------------------

    @handles(ops.USER_CHECK)
    def check(self, token: str, args: ops.Phones) -> ops.Users:
        client = self._client(token)
        good, bad = self._split(list(args.phones))
        answers = client.check_users(token, good) if good else []
        return ops.Users(users=_merge(args.phones, bad, answers, lambda query, error: {
            "Query": query, "IsInWhatsapp": False, "JID": "", "VerifiedName": "", "Error": error}))

    @handles(ops.USER_INFO)
    def info(self, token: str, args: ops.Phones) -> ops.Users:
        client = self._client(token)
        good, bad = self._split(list(args.phones))
        users = ops.Users(users=client.user_info(token, good) if good else {})
        return _with_errors(users, args.phones, bad)

    @handles(ops.USER_AVATAR)
    def avatar(self, token: str, args: ops.Avatar) -> Any:
        return self._client(token).user_avatar(token, args.phone, args.preview)

    @handles(ops.USER_CONTACTS)
    def contacts(self, token: str, args: ops.NoArgs) -> Any:
        return self._client(token).contacts(token)

    # -- groups ------------------------------------------------------------------------------------

    @handles(ops.GROUP_LIST)
    def list_groups(self, token: str, args: ops.NoArgs) -> ops.Groups:
        return ops.Groups(groups=self._client(token).list_groups(token))

    @handles(ops.GROUP_INFO)
    def group_info(self, token: str, args: ops.Group) -> Any:
        return self._client(token).group_info(token, args.group)

    @handles(ops.GROUP_CREATE)
    def create(self, token: str, args: ops.GroupCreate) -> Any:
        client = self._client(token)
        good, bad = self._split(list(args.participants))
        info = client.create_group(token, args.name, good)
        if bad:
            info = {**info, "Errors": [{"Query": args.participants[i], "Error": bad[i]} for i in sorted(bad)]}
        return info

    @handles(ops.GROUP_PARTICIPANTS)
    def participants(self, token: str, args: ops.GroupParticipants) -> ops.Participants:
        client = self._client(token)
        good, bad = self._split(list(args.phones))
        changed = client.update_group_participants(token, args.group, good, args.action) if good else []
        return ops.Participants(details="Group Participants updated successfully",
                                participants=_merge(args.phones, bad, changed, _unparsed_participant))

    @handles(ops.GROUP_INVITELINK)
    def invite_link(self, token: str, args: ops.GroupInviteLink) -> ops.InviteLink:
        return ops.InviteLink(invite_link=self._client(token).group_invite_link(token, args.group, args.reset))

    @handles(ops.GROUP_JOIN)
    def join(self, token: str, args: ops.GroupJoin) -> ops.Joined:
        group = self._client(token).join_group(token, args.code)
        return ops.Joined(details="Group joined successfully", group_jid=group)

    @handles(ops.GROUP_LEAVE)
    def leave(self, token: str, args: ops.Group) -> ops.Details:
        self._client(token).leave_group(token, args.group)
        return ops.Details(details="Left group successfully")

    @handles(ops.GROUP_NAME)
    def name(self, token: str, args: ops.GroupName) -> ops.Details:
        self._client(token).set_group_name(token, args.group, args.name)
        return ops.Details(details="Group Name set successfully")

    @handles(ops.GROUP_TOPIC)
    def topic(self, token: str, args: ops.GroupTopic) -> ops.Details:
        self._client(token).set_group_topic(token, args.group, args.topic)
        return ops.Details(details="Group Topic set successfully")

    @handles(ops.GROUP_PHOTO)
    def photo(self, token: str, args: ops.GroupPhoto) -> ops.PhotoSet:
        client = self._client(token)
        data, _ = self.media.get(args.media_key)
        picture_id = client.set_group_photo(token, args.group, data, args.media_key, args.sha256)
        return ops.PhotoSet(details="Group Photo set successfully", picture_id=picture_id)

    @handles(ops.GROUP_ANNOUNCE)
    def announce(self, token: str, args: ops.GroupFlag) -> ops.Details:
        self._client(token).set_group_announce(token, args.group, args.value)
        return ops.Details(details="Group Announce set successfully")

    @handles(ops.GROUP_LOCKED)
    def locked(self, token: str, args: ops.GroupFlag) -> ops.Details:
        self._client(token).set_group_locked(token, args.group, args.value)
        return ops.Details(details="Group Locked set successfully")


def _merge(queries: list[str], bad: dict[int, str], answers: list[dict[str, Any]],
           failed: Any) -> list[dict[str, Any]]:
    """The driver's answers (for the parseable items, in its order) with `failed(query, error)` entries
    at the positions of the unparseable ones; answers beyond the count (none expected) are kept."""
    rest = iter(answers)
    merged = []
    for index, query in enumerate(queries):
        if index in bad:
            merged.append(failed(query, bad[index]))
        else:
            answer = next(rest, None)
            if answer is not None:
                merged.append(answer)
    merged.extend(rest)
    return merged


def _with_errors(users: ops.Users, queries: list[str], bad: dict[int, str]) -> ops.Users:
    if bad:
        return ops.Users.model_validate({"Users": users.users,
                                         "Errors": [{"Query": queries[i], "Error": bad[i]} for i in sorted(bad)]})
    return users


def _unparsed_participant(query: str, error: str) -> dict[str, Any]:
    """whatsmeow's GroupParticipant for an item WhatsApp never saw: `Error` 400, the query and why."""
    return {"JID": "", "PhoneNumber": "", "LID": "", "IsAdmin": False, "IsSuperAdmin": False, "DisplayName": "",
            "Error": 400, "Query": query, "Reason": error}
