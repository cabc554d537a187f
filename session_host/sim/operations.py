"""The simulator's phone side on a session host: what a sim account's phone does (scan a QR, remove a
linked device, send, read, type, go online), each bound to its `sim.*` operation in
chalicelib/core/ops.py.

`sim.scan` and `sim.logout` go to the host holding the session (its client logs in or out);
`sim.unlink` (the session is held by no host), `sim.message`, `sim.read`, `sim.chatpresence` and
`sim.presence` go to any live sim host (`Bus.run_anywhere`), which runs them on the shared sim network.
A host running another driver answers 400 (it has no sim network).
"""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.core import contract, ops
from chalicelib.core.errors import DomainError
from chalicelib.core.models import SessionModel
from session_host.dispatch import handles
from session_host.drivers.base import Driver
from session_host.sim.driver import SimDriver
from session_host.sim.network import SimNetwork


class SimOps:
    def __init__(self, driver: Driver):
        self.driver = driver

    def _sim(self) -> SimDriver:
        if not isinstance(self.driver, SimDriver):
            raise DomainError(400, f"the {self.driver.name} driver has no simulator controls")
        return self.driver

    @property
    def network(self) -> SimNetwork:
        return self._sim().network

    @handles(ops.SIM_SCAN)
    def scan(self, token: str, args: ops.SimScan) -> ops.Scanned:
        return ops.Scanned(jid=self._sim().scan(token, args.phone, args.code, args.push_name))

    @handles(ops.SIM_LOGOUT)
    def logout(self, token: str, args: ops.NoArgs) -> ops.Details:
        self._sim().phone_logout(token)
        return ops.Details(details="Logged out")

    @handles(ops.SIM_UNLINK)
    def unlink(self, token: str, args: ops.NoArgs) -> ops.Details:
        """The phone removes the device of a session no host holds: nothing is connected to tell."""
        if not self.network.unlink_device(token):
            raise DomainError(500, contract.NOT_LOGGED_IN_LOGOUT)
        SessionModel(token).update(
            actions=[SessionModel.jid.remove(), SessionModel.logged_in.set(False),
                     SessionModel.updated_at.set(datetime.now(UTC))],
            condition=SessionModel.token.exists(),
        )
        return ops.Details(details="Logged out")

    @handles(ops.SIM_MESSAGE)
    def message(self, token: str, args: ops.SimPhoneMessage) -> ops.Sent:
        network = self.network
        sender = network.account(args.phone, args.push_name, create=True)
        sent = network.send_text(sender.phone, args.to, args.body)
        return ops.Sent(id=sent["Id"], timestamp=sent["Timestamp"])

    @handles(ops.SIM_READ)
    def read(self, token: str, args: ops.SimPhoneRead) -> ops.Details:
        count = self.network.mark_read(args.phone, list(args.ids))
        return ops.Details(details=f"{count} message(s) marked as read")

    @handles(ops.SIM_CHAT_PRESENCE)
    def chat_presence(self, token: str, args: ops.SimPhoneChatPresence) -> ops.Details:
        self.network.chat_presence(args.phone, args.to, args.state, args.media)
        return ops.Details(details="Chat presence set")

    @handles(ops.SIM_PRESENCE)
    def presence(self, token: str, args: ops.SimPhonePresence) -> ops.Details:
        told = self.network.presence(args.phone, args.available)
        return ops.Details(details=f"Presence sent to {told} session(s)")
