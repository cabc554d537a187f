"""Addresses (chalicelib/core/jid.py's `Jid`) as neonize's JID protobuf: the one conversion, used by the
worker (session_host/drivers/neonize_worker.py) and its user/group calls (neonize_groups.py).

neonize is imported inside `to_neonize`, not here at the top: importing any neonize module loads its Go
core, and the host process imports the worker module without ever loading Go (only worker processes
call these, after `load_neonize`).
"""

from __future__ import annotations

from typing import Any

from chalicelib.core import jid


def to_neonize(address: jid.Jid) -> Any:
    """The one conversion of an address (chalicelib/core/jid.py) to neonize's JID protobuf (`neonize.JID`)."""
    from neonize.proto.Neonize_pb2 import JID

    return JID(User=address.user, RawAgent=address.agent, Device=address.device, Integrator=0,
               Server=address.server, IsEmpty=False)


def parse_jid(value: str) -> Any:
    """A JID kept whole, device part included (this client's own device, from the session row);
    DomainError 400 for text that is not a JID (chalicelib/core/jid.py)."""
    return to_neonize(jid.parse(value))


def recipient_jid(value: str) -> Any:
    """WaGo's `Phone`/`Chat`/`Participant`: a phone number or a JID, normalised by chalicelib/core/jid.py
    (a user's device part dropped: whatsmeow refuses device JIDs as recipients)."""
    return to_neonize(jid.parse(jid.chat(value)))
