"""Wire contract between session hosts and the Lambda side (imported by both).

Versioned so a host and a Lambda of different releases can tell when they disagree.
Events: host -> events queue -> fan-out. Commands and replies are added by the session-host work.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CONTRACT_VERSION = 1

#: WaGo's event types, as subscription names and as the `type` of a webhook's jsonData.
EVENT_TYPES = ("Message", "ReadReceipt", "Presence", "HistorySync", "ChatPresence", "Call", "LoggedOut", "Newsletter")
ALL_EVENTS = "All"


class WireEvent(BaseModel):
    """One WhatsApp event as published by a session host."""

    model_config = ConfigDict(extra="forbid")

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
