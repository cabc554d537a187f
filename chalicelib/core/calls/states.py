"""The call state machine: our own documented state set (WaGo documents no state names).

    ringing ──accept──> active ──end──> ended
       │                   └────fail──> failed
       ├──reject──> rejected
       ├──end─────> ended      (cancelled by the caller, missed, answered on another device)
       └──fail────> failed

`ended`, `rejected` and `failed` are terminal. A call enters `ringing` when it is placed
(outgoing) or offered (incoming, from the driver's CallOffer event).
"""

from __future__ import annotations

RINGING = "ringing"
ACTIVE = "active"
ENDED = "ended"
REJECTED = "rejected"
FAILED = "failed"

STATES = (RINGING, ACTIVE, ENDED, REJECTED, FAILED)
TERMINAL = frozenset({ENDED, REJECTED, FAILED})
ACTIONS = ("accept", "reject", "end", "fail")

TRANSITIONS: dict[tuple[str, str], str] = {
    (RINGING, "accept"): ACTIVE,
    (RINGING, "reject"): REJECTED,
    (RINGING, "end"): ENDED,
    (RINGING, "fail"): FAILED,
    (ACTIVE, "end"): ENDED,
    (ACTIVE, "fail"): FAILED,
}

#: whatsmeow's call events (the `callEvent` beside a Call webhook's event) -> the action they mean.
DRIVER_EVENT_ACTIONS = {
    "CallAccept": "accept",
    "CallReject": "reject",
    "CallTerminate": "end",
}
#: Events that open an incoming call.
OFFER_EVENTS = ("CallOffer", "CallOfferNotice")

#: WebRTC leg states of the browser leg, as /call/status reports them.
LEG_STATES = ("none", "connecting", "connected", "closed", "failed")


class InvalidTransition(ValueError):
    """`action` is not allowed in `state`; call commands answer 409 with the message, e.g.
    "a rejected call cannot be accepted"."""

    def __init__(self, state: str, action: str):
        super().__init__(f"a {state} call cannot be {_PAST.get(action, action)}")
        self.state = state
        self.action = action


_PAST = {"accept": "accepted", "reject": "rejected", "end": "ended", "fail": "failed"}


def next_state(state: str, action: str) -> str:
    """The state after `action`, or InvalidTransition."""
    if action not in ACTIONS:
        raise ValueError(f"unknown call action {action!r}")
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise InvalidTransition(state, action) from None


def is_terminal(state: str) -> bool:
    """True for ended, rejected and failed: no action moves such a call again."""
    return state in TERMINAL
