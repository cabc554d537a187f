"""A session's client on this host: start (connect, pair, restore), stop (disconnect, logout, forget,
release on shutdown), capacity, and fencing of clients whose session another host owns now.

Every start is of a session whose row names this host as owner (`claimed`, which also holds the row's
epoch: session_host/fencing.py); every stop writes the row back released (owner cleared) so the next
connect can place it anywhere. `may_run` is the check every command passes before it runs: a valid
lease, and the session held under the current lease term.

Every state has a way out: connect on a running client (waiting for its QR or pair code, dialling, or
logged in) answers its state and updates the subscription instead of failing; disconnect and logout
stop a client that is not logged in yet (there is no device to unlink); logged in, they do what WaGo
says. A start with no subscription given or stored gets the default (chalicelib/core/subscriptions.py).
"""

from __future__ import annotations

import threading
from typing import Any

from chalicelib.core import contract, ops
from chalicelib.core.contract import Command
from chalicelib.core.errors import DomainError
from chalicelib.core.models import SessionModel
from chalicelib.core.observability import logger
from chalicelib.core.subscriptions import DEFAULT as DEFAULT_SUBSCRIPTION
from session_host.callbacks import Fences
from session_host.drivers.base import ClientState, Driver
from session_host.fencing import Fenced, Holdings
from session_host.live_state import LiveState, OwnershipLost

HOST_FULL = "session host is full"
FENCE_POLL_SECONDS = 1.0


def _set_events(events: list[str]) -> Any:
    """The update action storing a subscription."""
    return SessionModel.events.set([str(e) for e in events])


class SessionLifecycle:
    def __init__(self, host_id: str, settings: Any, driver: Driver, live_state: LiveState, fences: Fences,
                 holdings: Holdings):
        self.host_id = host_id
        self.holdings = holdings
        self.settings = settings
        self.driver = driver
        self.live_state = live_state
        self.fences = fences
        self._closing = threading.Event()
        self._fencer = threading.Thread(target=self._fence_loop, name="fencer", daemon=True)
        self._fencer.start()

    # -- bookkeeping -------------------------------------------------------------------------------

    def load(self) -> int:
        """Clients this host runs."""
        return len(self.driver.tokens())

    def running(self, token: str) -> ClientState:
        """The running client's state; WaGo's `No session` when this host has none for the token. Called
        right before a driver operation starts: Fenced unless the session is held under a valid lease."""
        state = self.driver.state(token)
        if state is None:
            raise DomainError(500, contract.NO_SESSION)
        self.holdings.check(token)
        return state

    def may_run(self, command: Command) -> int | None:
        """Before anything runs: the lease must be valid (Fenced) and a session with a client here must be
        held under the current term (Fenced; OwnershipLost for a client not held at all). Returns the held
        epoch, or None for a claiming op (connect, pair, forget: `Operation.claiming`) on a session not
        held yet, and for a sessionless op (the sim's phone side: `Operation.sessionless`, both in
        chalicelib/core/ops.py); any other op on a session not held here answers WaGo's `No session`
        without running."""
        if not self.holdings.lease.valid():
            raise Fenced(command.token)
        operation = ops.lookup(command.op)
        if operation is not None and operation.sessionless:
            return None
        if self.holdings.held(command.token):
            return self.holdings.check(command.token)
        if operation is not None and operation.claiming:
            return None
        if self.driver.state(command.token) is not None:
            raise OwnershipLost(command.token)  # a client we do not hold: the dispatcher fences it
        raise DomainError(500, contract.NO_SESSION)

    def claimed(self, token: str) -> SessionModel:
        """The session row, if this host owns it; OwnershipLost otherwise (the dispatcher fences)."""
        try:
            session = SessionModel.get(token, consistent_read=True)
        except SessionModel.DoesNotExist:
            raise DomainError(401, "invalid token") from None
        if session.owner_host != self.host_id:
            raise OwnershipLost(token)
        if self.holdings.epoch(token) != int(session.epoch or 0):
            self.holdings.hold(token, int(session.epoch or 0))  # placed here by the API (epoch raised there)
        return session

    # -- fencing -----------------------------------------------------------------------------------

    def fence(self, token: str) -> None:
        """Another host owns this session now: drop our client without touching shared state."""
        self.holdings.drop(token)
        if self.driver.state(token) is None:
            return
        logger.warning("session owned elsewhere; stopping local client", extra={"token": token})
        try:
            self.driver.disconnect(token)
        except DomainError:
            pass

    def _fence_loop(self) -> None:
        while not self._closing.is_set():
            token = self.fences.take(FENCE_POLL_SECONDS)
            if token is not None:
                self.fence(token)

    def close(self) -> None:
        self._closing.set()

    # -- start -------------------------------------------------------------------------------------

    def start(self, session: SessionModel, events: list[str] | None = None) -> ClientState:
        """Start the client of a session this host owns (connect, pair, restore)."""
        token = session.token
        if self.driver.state(token) is not None:
            raise DomainError(500, contract.ALREADY_CONNECTED)
        if self.load() >= self.settings.host_capacity:
            self.live_state.write(token, [], release=True)
            raise DomainError(503, HOST_FULL)
        actions = [SessionModel.auto_connect.set(True), SessionModel.last_error.remove()]
        if events is None and not session.events:
            events = list(DEFAULT_SUBSCRIPTION)  # a restore of a row stored without one: never no webhooks
        if events is not None:
            actions.append(_set_events(events))
        self.live_state.write(token, actions)
        self.holdings.check(token)  # the driver operation starts only under a valid lease
        return self.driver.connect(token, jid=session.jid, os_name=session.os_name)

    def connect(self, token: str, events: list[str] | None) -> tuple[ClientState, bool]:
        """(the client's state, whether it was running already). A running client is not started again:
        its subscription is updated and its state answered (WaGo answered 500 `Already Connected`, which
        left a session waiting for its QR, or paired without webhooks, with no way to fix it)."""
        session = self.claimed(token)
        current = self.driver.state(token)
        if current is None:
            return self.start(session, events), False
        if events is not None:
            self.live_state.write(token, [_set_events(events)])
        return current, True

    def pair(self, token: str, phone: str, events: list[str] | None) -> str:
        session = self.claimed(token)
        current = self.driver.state(token)
        if current is None:
            current = self.start(session, events)
        elif events is not None:
            self.live_state.write(token, [_set_events(events)])
        if current.logged_in:
            raise DomainError(500, contract.ALREADY_PAIRED)
        return self.driver.pair_phone(token, phone)

    def restore(self, token: str) -> None:
        """Start a session this host just adopted (failover or start-up); the device store decides QR."""
        if self.driver.state(token) is not None:
            return
        try:
            self.start(SessionModel.get(token, consistent_read=True))
            logger.info("session restored", extra={"token": token, "epoch": self.holdings.epoch(token)})
        except SessionModel.DoesNotExist:
            self.holdings.drop(token)  # deleted meanwhile
        except (DomainError, OwnershipLost, Fenced) as exc:
            if not isinstance(exc, DomainError):
                self.fence(token)
            logger.warning("session restore failed", extra={"token": token, "error": str(exc)})

    # -- stop --------------------------------------------------------------------------------------

    def disconnect(self, token: str) -> None:
        """Stop the client; a logged-in device stays linked (connect restores it), a pending one (QR or pair
        code not used yet, a dial in progress) simply stops."""
        self.running(token)
        self.driver.disconnect(token)
        self.live_state.stopped(token)

    def logout(self, token: str) -> None:
        """Unlink the device; a client that is not logged in has none to unlink and is stopped."""
        if not self.running(token).logged_in:
            self.driver.disconnect(token)
        else:
            self.driver.logout(token)
        self.live_state.stopped(token, logged_out=True)

    def forget(self, token: str) -> None:
        self.driver.forget(token)
        try:
            self.live_state.stopped(token, logged_out=True)
        except OwnershipLost:
            pass  # never placed here, or the row is already gone

    def release_all(self) -> int:
        """Shutdown: stop every client, keep devices linked and `auto_connect` so another host restores them."""
        released = 0
        for token in self.driver.tokens():
            try:
                self.driver.disconnect(token)
            except DomainError:
                continue
            try:
                self.live_state.stopped(token, keep_auto_connect=True)
                released += 1
            except OwnershipLost:
                self.holdings.drop(token)
            except Exception as exc:
                logger.warning("session release failed", extra={"token": token, "error": str(exc)})
        return released
