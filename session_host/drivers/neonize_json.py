"""neonize's protobufs as Go's encoding/json writes whatsmeow's structs: JIDs as strings, protobuf messages
under their proto field names with bytes as base64 and enums as integers (research/wago-api.md §3.5).
Shared by the event translators (neonize_events, neonize_group_events) and the group calls (neonize_groups).
"""

from __future__ import annotations

import base64
from typing import Any, NamedTuple

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message as Proto
from neonize.proto import Neonize_pb2 as N

from chalicelib.core.jid import Jid


class Translated(NamedTuple):
    type: str
    event: dict[str, Any]
    extra: dict[str, Any]


def jid_str(jid: N.JID | None) -> str:
    """whatsmeow's JID.String(): `user[.agent][:device]@server` (chalicelib/core/jid.py); empty is ``""``."""
    if jid is None or not (jid.User or jid.Server):
        return ""
    return str(Jid(jid.User, jid.RawAgent, jid.Device, jid.Server))


def proto_json(message: Proto) -> dict[str, Any]:
    """A protobuf as Go's encoding/json writes the generated struct: set fields only, proto names,
    bytes as base64, enums and 64-bit integers as numbers (not protobuf-JSON's strings), JIDs as strings."""
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        if field.is_repeated:
            out[field.name] = [_value(field, item) for item in value]
        else:
            out[field.name] = _value(field, value)
    return out


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name == "neonize.JID":
            return jid_str(value)
        return proto_json(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode()
    return value


def optional(message: Proto, name: str) -> dict[str, Any] | None:
    """A message field as JSON, or None (Go's nil pointer) when unset."""
    return proto_json(getattr(message, name)) if message.HasField(name) else None
