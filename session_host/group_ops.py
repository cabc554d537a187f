"""The host's user and group operations (/user/check, /group/create, ...): the running client does them.

Each op answers WaGo's `data` for its route (chalicelib/routes/users.py, groups.py); the driver
returns whatsmeow's shapes. `No session` when this host has no client for the token; the driver
answers `not logged in` for a client that is not logged in.
"""

from __future__ import annotations

from typing import Any, Callable

Op = Callable[[str, dict], Any]

#: Operation names, as in chalicelib/core/contract.py OPS.
USER_OPS = ("user.check", "user.info", "user.avatar", "user.contacts")
GROUP_OPS = ("group.list", "group.info", "group.create", "group.participants", "group.invitelink", "group.join",
             "group.leave", "group.name", "group.topic", "group.photo", "group.announce", "group.locked")


def group_ops(manager) -> dict[str, Op]:
    """op name -> handler(token, args) for SessionManager.handle."""
    driver = lambda: manager.driver  # noqa: E731 - the host sets the driver after the manager exists

    def running(fn: Op) -> Op:
        def op(token: str, args: dict) -> Any:
            manager._running(token)
            return fn(token, args)

        return op

    def photo(token: str, args: dict) -> dict:
        data, _ = manager.media.get(args["media_key"])
        picture_id = driver().set_group_photo(token, str(args["group"]), data, str(args["media_key"]),
                                              str(args.get("sha256") or ""))
        return {"Details": "Group Photo set successfully", "PictureID": picture_id}

    def done(details: str, action: Callable[[str, dict], Any]) -> Op:
        def op(token: str, args: dict) -> dict:
            action(token, args)
            return {"Details": details}

        return op

    ops: dict[str, Op] = {
        "user.check": lambda t, a: {"Users": driver().check_users(t, [str(p) for p in a["phones"]])},
        "user.info": lambda t, a: {"Users": driver().user_info(t, [str(p) for p in a["phones"]])},
        "user.avatar": lambda t, a: driver().user_avatar(t, str(a["phone"]), bool(a.get("preview"))),
        "user.contacts": lambda t, a: driver().contacts(t),
        "group.list": lambda t, a: {"Groups": driver().list_groups(t)},
        "group.info": lambda t, a: driver().group_info(t, str(a["group"])),
        "group.create": lambda t, a: driver().create_group(t, str(a["name"]), [str(p) for p in a["participants"]]),
        "group.participants": lambda t, a: {
            "Details": "Group Participants updated successfully",
            "Participants": driver().update_group_participants(t, str(a["group"]), [str(p) for p in a["phones"]],
                                                               str(a["action"]))},
        "group.invitelink": lambda t, a: {"InviteLink": driver().group_invite_link(t, str(a["group"]),
                                                                                  bool(a.get("reset")))},
        "group.join": lambda t, a: {"Details": "Group joined successfully",
                                    "GroupJID": driver().join_group(t, str(a["code"]))},
        "group.leave": done("Left group successfully", lambda t, a: driver().leave_group(t, str(a["group"]))),
        "group.name": done("Group Name set successfully",
                           lambda t, a: driver().set_group_name(t, str(a["group"]), str(a["name"]))),
        "group.topic": done("Group Topic set successfully",
                            lambda t, a: driver().set_group_topic(t, str(a["group"]), str(a.get("topic") or ""))),
        "group.photo": photo,
        "group.announce": done("Group Announce set successfully",
                               lambda t, a: driver().set_group_announce(t, str(a["group"]), bool(a["value"]))),
        "group.locked": done("Group Locked set successfully",
                             lambda t, a: driver().set_group_locked(t, str(a["group"]), bool(a["value"]))),
    }
    assert set(ops) == set(USER_OPS + GROUP_OPS)
    return {name: running(fn) for name, fn in ops.items()}
