from __future__ import annotations

from typing import Any

from pynamodb.attributes import ListAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.core.models.base import table_meta
from chalicelib.core.settings import get_settings

_settings = get_settings()


class CallModel(Model):
    """One call as one session sees it (chalicelib/core/calls/states.py has the state machine).

    Keyed by session token and WhatsApp call id: `/call/status` is one query, and a token can only
    ever see its own calls. Written by the session host that tracks the call.
    """

    Meta = table_meta(_settings.calls_table_name)

    token = UnicodeAttribute(hash_key=True)
    call_id = UnicodeAttribute(range_key=True)
    peer = UnicodeAttribute(default="")  # the other party's JID
    direction = UnicodeAttribute(default="incoming")  # incoming | outgoing
    state = UnicodeAttribute(default="ringing")  # ringing | active | ended | rejected | failed
    reason = UnicodeAttribute(null=True)  # why it ended, rejected or failed
    created_at = NumberAttribute(default=0)  # epoch seconds
    updated_at = NumberAttribute(default=0)
    answered_at = NumberAttribute(null=True)
    ended_at = NumberAttribute(null=True)
    link_token = UnicodeAttribute(null=True)  # sim driver: the session on the other end
    # sim driver: sessions an outgoing call rang (str; pynamodb types the elements as the attribute class)
    ring_tokens: ListAttribute[str] = ListAttribute(of=UnicodeAttribute, default=list)  # type: ignore[arg-type]
    webrtc = UnicodeAttribute(default="none")  # browser leg: none | connecting | connected | closed | failed
    webrtc_updated_at = NumberAttribute(null=True)
    host_id = UnicodeAttribute(null=True)  # host holding the browser leg
    expires_at = TTLAttribute(null=True)

    def public(self) -> dict[str, Any]:
        """The call as /call/status and webhooks show it (WaGo-style capitalised keys)."""
        return {
            "CallID": self.call_id, "Peer": self.peer, "Direction": self.direction, "State": self.state,
            "Reason": self.reason or "", "CreatedAt": self.created_at, "UpdatedAt": self.updated_at,
            "AnsweredAt": self.answered_at, "EndedAt": self.ended_at, "WebRTC": self.webrtc,
        }
