"""WhatsApp addresses: the one parser for every field that names a chat or a user, on the API and in
both drivers (WaGo's `Phone`, `Chat`, `Participant`, `GroupJID`, `Participants`, ...).

A JID is whatsmeow's `types.JID`, written `user[.agent][:device]@server` (whatsmeow types/jid.go).
What a field accepts, and what it becomes:

- a phone number with country code: digits, an optional leading `+`, separators (space, `-`, `.`,
  `(`, `)`); 7 to 15 digits (ITU-T E.164 caps a number at 15), never starting with 0 (no country code
  does) -> `<digits>@s.whatsapp.net`;
- a user JID, `15550002222[.0][:12]@s.whatsapp.net` (or `@lid`) -> without its agent and device part
  (whatsmeow's `ToNonAD`): whatsmeow refuses device JIDs as message recipients, so no driver is ever
  handed one;
- a group JID, `120363012345678901@g.us` (or the legacy `<creator>-<timestamp>@g.us`);
- a newsletter (`...@newsletter`) or broadcast (`status@broadcast`) JID, as chats.

Errors are `JidError` (a `DomainError`, status 400) with WaGo's texts: `Could not parse Phone` (the
field's name in place of `Phone`), `Could not parse Group JID`; a JID of the wrong kind for the field
is `Invalid <Field> in Payload: <value> is not a ...`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from chalicelib.core.errors import DomainError

USER_SERVER = "s.whatsapp.net"
LID_SERVER = "lid"
GROUP_SERVER = "g.us"
NEWSLETTER_SERVER = "newsletter"
BROADCAST_SERVER = "broadcast"
#: Servers a user (a person's account) lives on.
USER_SERVERS = frozenset({USER_SERVER, LID_SERVER})
#: Servers a chat can be on (whatsmeow's message recipients).
CHAT_SERVERS = USER_SERVERS | {GROUP_SERVER, NEWSLETTER_SERVER, BROADCAST_SERVER}

MIN_DIGITS, MAX_DIGITS = 7, 15
_SEPARATORS = re.compile(r"[\s\-.()]")
_GROUP_USER = re.compile(r"^[0-9]+(-[0-9]+)?$")
_JID_USER = re.compile(r"^[0-9A-Za-z_\-]+$")

#: WaGo's field names where its error text spells them apart (`Could not parse Group JID`).
_SPOKEN = {"GroupJID": "Group JID"}


class JidError(DomainError):
    """A value that is not the address a field asks for (status 400, WaGo's text).

    `detail` is None when the value could not be parsed at all (`Could not parse <Field>`), else why a
    parsed JID does not fit (`Invalid <Field> in Payload: <detail>`).
    """

    def __init__(self, field: str, detail: str | None = None):
        super().__init__(400, could_not_parse(field) if detail is None else f"Invalid {field} in Payload: {detail}")
        self.field = field
        self.detail = detail


def could_not_parse(field: str) -> str:
    """WaGo's text for an unparseable address field: `Could not parse Phone`, `Could not parse Group JID`."""
    return f"Could not parse {_SPOKEN.get(field, field)}"


class Jid(NamedTuple):
    """whatsmeow's types.JID: `user`, `agent` (0 = none), `device` (0 = the phone itself), `server`."""

    user: str
    agent: int
    device: int
    server: str

    def __str__(self) -> str:
        """whatsmeow's JID.String(): `user[.agent][:device]@server`."""
        user = self.user + (f".{self.agent}" if self.agent else "") + (f":{self.device}" if self.device else "")
        return f"{user}@{self.server}" if user else self.server

    def non_ad(self) -> Jid:
        """whatsmeow's ToNonAD(): the account, without agent and device (what a recipient must be)."""
        return Jid(self.user, 0, 0, self.server)


def parse(value: str, field: str = "Phone") -> Jid:
    """`user[.agent][:device]@server` -> Jid, as whatsmeow's ParseJID splits it (a group's `-` kept).

    Raises JidError (`Could not parse <field>`) for anything else, including a bare phone number.
    """
    text = (value or "").strip()
    user, at, server = text.partition("@")
    if not at or not user or not server or "@" in server or any(ch.isspace() for ch in text):
        raise JidError(field)
    agent = device = 0
    if ":" in user:
        user, _, raw_device = user.partition(":")
        device = _unsigned(raw_device, 16, field)
    if "." in user and server in USER_SERVERS:
        user, _, raw_agent = user.partition(".")
        agent = _unsigned(raw_agent, 8, field)
    if not user or not _JID_USER.match(user):
        raise JidError(field)
    return Jid(user, agent, device, server)


def _unsigned(raw: str, bits: int, field: str) -> int:
    """A JID's device (uint16) or agent (uint8) part, as whatsmeow's ParseJID reads them
    (strconv.ParseUint(part, 10, bits)): ASCII digits only, in range; else JidError."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 5 or int(raw) >= 1 << bits:
        raise JidError(field)
    return int(raw)


def phone(value: str, field: str = "Phone") -> str:
    """A phone number (`+1 555-000 2222`) or a user JID (`15550002222:12@s.whatsapp.net`) -> its digits
    (`15550002222`). JidError: `Could not parse <field>`, or `... is not a user JID` for another JID."""
    text = (value or "").strip()
    if "@" in text:
        jid = parse(text, field)
        if jid.server != USER_SERVER:
            raise JidError(field, f"{text} is not a user JID")
        text = jid.user
    digits = _SEPARATORS.sub("", text).removeprefix("+")
    if not digits.isascii() or not digits.isdigit() or not MIN_DIGITS <= len(digits) <= MAX_DIGITS \
            or digits.startswith("0"):
        raise JidError(field)
    return digits


def user(value: str, field: str = "Phone") -> str:
    """A person: a phone number or a user JID (`@s.whatsapp.net`, `@lid`) -> the non-AD user JID string
    (`15550002222@s.whatsapp.net`). JidError as `phone`; a group or other JID is not a user."""
    text = (value or "").strip()
    if "@" in text:
        jid = parse(text, field)
        if jid.server not in USER_SERVERS:
            raise JidError(field, f"{text} is not a user JID")
        if jid.server == USER_SERVER:
            return f"{phone(jid.user, field)}@{USER_SERVER}"
        return str(jid.non_ad())
    return f"{phone(text, field)}@{USER_SERVER}"


def group(value: str, field: str = "GroupJID") -> str:
    """`120363012345678901@g.us` (or `<creator>-<timestamp>@g.us`) -> the same, trimmed.
    JidError `Could not parse Group JID` otherwise (a bare id or a user JID too)."""
    text = (value or "").strip()
    user_part, at, server = text.partition("@")
    if not at or server != GROUP_SERVER or not _GROUP_USER.match(user_part):
        raise JidError(field)
    return text


def chat(value: str, field: str = "Phone") -> str:
    """A chat: a phone number, a user, group, newsletter or broadcast JID -> its JID string, users
    without a device part (`15550002222:12@s.whatsapp.net` -> `15550002222@s.whatsapp.net`).
    JidError: `Could not parse <field>`, `Could not parse Group JID`-style for a bad group id, or
    `... is not a chat JID` for another server."""
    text = (value or "").strip()
    if "@" not in text:
        return user(text, field)
    jid = parse(text, field)
    if jid.server in USER_SERVERS:
        return user(text, field)
    if jid.server == GROUP_SERVER:
        return group(text, field)
    if jid.server not in CHAT_SERVERS:
        raise JidError(field, f"{text} is not a chat JID")
    return str(jid.non_ad())


def is_group(jid: str) -> bool:
    """True for a group chat JID (`...@g.us`)."""
    return jid.endswith("@" + GROUP_SERVER)


__all__ = ["Jid", "JidError", "chat", "could_not_parse", "group", "is_group", "parse", "phone", "user"]
