"""A session's live state in DynamoDB (connected, logged in, QR, pair code, JID), written by its owner only.

Every write is conditional on `owner_host == this host AND epoch == the epoch this host holds it under`
(session_host/fencing.py), and is not even attempted once the host's lease deadline has passed: a host
that lost a session (its lease lapsed and another host took it) cannot overwrite the new owner's state.
A failed condition raises `OwnershipLost`; the caller fences (stops its local client without touching
shared state).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.core.models import SessionModel
from chalicelib.core.models.base import condition_failed
from chalicelib.core.models.sessions import RELEASED
from session_host.drivers.base import ClientState
from session_host.fencing import Fenced, Holdings
from session_host.qr import qr_data_url


class OwnershipLost(Exception):
    """The session's row no longer names this host as its owner (or is gone)."""


class LiveState:
    def __init__(self, host_id: str, holdings: Holdings):
        self.host_id = host_id
        self.holdings = holdings

    def write(self, token: str, actions: list[Any], release: bool = False, hand_over: bool = False) -> None:
        """Apply `actions` to the session row if this host owns it; `release` also clears the owner,
        `hand_over` sets it to RELEASED (another host finds it through the owner index and restores it).
        OwnershipLost when it does not."""
        actions = [*actions, SessionModel.updated_at.set(datetime.now(UTC))]
        if hand_over:
            actions.append(SessionModel.owner_host.set(RELEASED))
        elif release:
            actions.append(SessionModel.owner_host.remove())
        try:
            condition = self.holdings.condition(token)
        except Fenced:
            raise OwnershipLost(token) from None
        try:
            SessionModel(token).update(actions=actions, condition=condition)
        except UpdateError as exc:
            if condition_failed(exc):
                raise OwnershipLost(token) from None
            raise
        if release:
            self.holdings.drop(token)

    def mirror(self, token: str, state: ClientState) -> None:
        """The driver's whole client state, as the row's live-state attributes."""
        self.write(token, state_actions(state))

    def stopped(self, token: str, logged_out: bool = False, reason: str | None = None,
                keep_auto_connect: bool = False) -> None:
        """The client is gone: not connected, no QR or pair code; the row is released for placement
        (`keep_auto_connect`: handed over to RELEASED, for another host to restore). `logged_out` also
        forgets the device's JID and push name."""
        actions = [SessionModel.connected.set(False), SessionModel.logged_in.set(False),
                   SessionModel.qr_code.remove(), SessionModel.qr_expires_at.remove(),
                   SessionModel.pair_code.remove()]
        if not keep_auto_connect:
            actions.append(SessionModel.auto_connect.set(False))
        if reason is not None:
            actions.append(SessionModel.last_error.set(reason))
        if logged_out:
            actions += [SessionModel.jid.remove(), SessionModel.push_name.remove()]
        self.write(token, actions, release=True, hand_over=keep_auto_connect)


def state_actions(state: ClientState) -> list[Any]:
    """The update actions that mirror a ClientState onto SessionModel."""
    actions: list[Any] = [
        SessionModel.connected.set(state.connected),
        SessionModel.logged_in.set(state.logged_in),
    ]
    if state.qr:
        actions += [SessionModel.qr_code.set(qr_data_url(state.qr)),
                    SessionModel.qr_expires_at.set(state.qr_expires_at or 0)]
    else:
        actions += [SessionModel.qr_code.remove(), SessionModel.qr_expires_at.remove()]
    actions.append(SessionModel.pair_code.set(state.pair_code) if state.pair_code
                   else SessionModel.pair_code.remove())
    if state.jid:
        actions.append(SessionModel.jid.set(state.jid))
    if state.push_name:
        actions.append(SessionModel.push_name.set(state.push_name))
    if state.last_error:
        actions.append(SessionModel.last_error.set(state.last_error))
    return actions
