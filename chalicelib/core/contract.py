"""Wire contract between session hosts and the Lambda side (imported by both).

Versioned so a host and a Lambda of different releases can tell when they disagree.
Events: host -> events queue -> fan-out. Commands: Lambda -> the owning host's FIFO queue (message
group = session token, deduplication id = command id). Replies: host -> replies table item keyed by
command id, read by the waiting Lambda (consistent reads).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

CONTRACT_VERSION: Final = 1

#: WaGo's event types, as subscription names and as the `type` of a webhook's jsonData.
EVENT_TYPES = ("Message", "ReadReceipt", "Presence", "HistorySync", "ChatPresence", "Call", "LoggedOut", "Newsletter")
ALL_EVENTS = "All"


class WireEvent(BaseModel):
    """One WhatsApp event as published by a session host."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    v: Literal[1] = CONTRACT_VERSION
    event_id: str = Field(min_length=1, description="Unique id; receivers may de-duplicate on it.")
    token: str = Field(min_length=1, description="Session token that produced the event.")
    seq: int = Field(ge=0, description="Per-session sequence number.")
    ts: float = Field(description="Epoch seconds when the host saw the event.")
    type: str = Field(description="WaGo event type (Message, ReadReceipt, ...).")
    event: dict[str, Any] = Field(description="The event body, as WaGo puts it under `event`.")
    extra: dict[str, Any] = Field(default_factory=dict, description="WaGo's keys beside `event`, e.g. state.")
    media_key: str | None = Field(None, description="S3 key of inbound media to attach as `file`.")

    def wago_json(self) -> dict[str, Any]:
        """The jsonData document a WaGo webhook receiver expects: {type, event, ...extra}."""
        return {"type": self.type, "event": self.event, **self.extra}



#: WaGo's wording where it has one (wuzapi lineage, research/wago-api.md §1.3 and §2.1).
NO_SESSION = "No session"
NOT_CONNECTED = "Not connected"
ALREADY_CONNECTED = "Already Connected"
ALREADY_LOGGED_IN = "Already Logged in"
ALREADY_PAIRED = "Already paired"
NOT_LOGGED_IN = "not logged in"
NOT_LOGGED_IN_DISCONNECT = "Cannot disconnect because it is not logged in"
NOT_LOGGED_IN_LOGOUT = "Could not logout as it was not logged in"
HOST_TIMEOUT = "timed out waiting for the session host"
COMMAND_EXPIRED = "command expired before the session host ran it"


class Command(BaseModel):
    """One request to the session host that owns `token`; ordered per token, answered by a Reply."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    v: Literal[1] = CONTRACT_VERSION
    command_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=128)
    token: str = Field(min_length=1, description="Session token; also the FIFO message group.")
    op: str = Field(min_length=1, description="An operation name declared in chalicelib/core/ops.py.")
    args: dict[str, Any] = Field(default_factory=dict, description="The operation's argument model as JSON; the host "
                                 "validates it against that model before running the handler.")
    deadline: float = Field(description="Epoch seconds after which nobody waits: the host skips it.")
    reply_to: str | None = Field(None, description='"discard": nobody waits for the reply (async sends).')

    def expired(self, now: float | None = None) -> bool:
        """True once `now` (epoch seconds, default the current time) is past `deadline`: the host
        skips the command and nobody waits for its reply."""
        return (time.time() if now is None else now) > self.deadline


class Reply(BaseModel):
    """A host's answer to one Command: WaGo's `data` on success, WaGo's error text and status otherwise."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    v: Literal[1] = CONTRACT_VERSION
    command_id: str = Field(min_length=1)
    ok: bool
    data: Any = None
    error: str | None = None
    status: int = Field(200, ge=100, le=599, description="HTTP status the API answers with.")

    @classmethod
    def success(cls, command_id: str, data: Any = None, status: int = 200) -> Reply:
        """An ok Reply carrying WaGo's `data` and the HTTP status the API answers with (default 200)."""
        return cls(command_id=command_id, ok=True, data=data, status=status)

    @classmethod
    def failure(cls, command_id: str, error: str, status: int = 500) -> Reply:
        """A failed Reply carrying WaGo's error text and the HTTP status (default 500, WaGo's status for
        a failed WhatsApp call)."""
        return cls(command_id=command_id, ok=False, error=error, status=status)
