"""Sessions at start (WaGo's `-connectstartup`): what the launcher does before and after its host runs.

Before any child starts, with the restored state: nothing is connected yet, so every session's live
state is reset (connected, logged in, QR and pair code cleared: the hosts of the previous run are
gone). Sessions marked to connect (`auto_connect`) keep that mark when CONNECT_ON_STARTUP is on (the
default) and are handed over to owner RELEASED, the way a draining host releases them: hosts find
orphans only through the sessions table's owner index, which an unowned session is not in, so the
session host adopts them at once from there and restores each from its device store (neonize) or the
sim table (sim), with no new QR. Every other session's owner is removed. With CONNECT_ON_STARTUP off,
the mark is cleared too: they stay disconnected until `/session/connect`, which restores them the
same way.

After start, `report` waits (bounded) for each of those sessions to come back or fail, and prints
one line naming what came back and what failed with its `LastError`. Names, never tokens.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True)
class Expected:
    token: str
    name: str


def prepare_sessions(connect_on_startup: bool) -> tuple[list[Expected], int]:
    """Reset live state for a fresh start; returns (sessions that will be restored, sessions reset)."""
    from pynamodb.expressions.update import Action

    from chalicelib.core.models import SessionModel
    from chalicelib.core.models.sessions import RELEASED

    expected: list[Expected] = []
    stale: list[SessionModel] = []
    for session in SessionModel.scan(consistent_read=True):
        restore = bool(session.auto_connect) and connect_on_startup
        if ((session.owner_host != RELEASED if restore else session.owner_host) or session.connected
                or session.logged_in or session.qr_code or session.pair_code
                or (session.auto_connect and not connect_on_startup)):
            stale.append(session)
        if restore:
            expected.append(Expected(session.token, session.name))

    def reset_one(session: SessionModel) -> int:
        # A session to restore must stay in the owner index (hosts find orphans only there): RELEASED.
        owner = (SessionModel.owner_host.set(RELEASED) if session.auto_connect and connect_on_startup
                 else SessionModel.owner_host.remove())
        actions: list[Action] = [SessionModel.connected.set(False), SessionModel.logged_in.set(False),
                   owner, SessionModel.qr_code.remove(),
                   SessionModel.qr_expires_at.remove(), SessionModel.pair_code.remove()]
        if not connect_on_startup:
            actions.append(SessionModel.auto_connect.set(False))
        try:
            session.update(actions=actions, condition=SessionModel.token.exists())
        except Exception:
            return 0  # deleted meanwhile
        return 1

    with ThreadPoolExecutor(max_workers=8) as pool:  # after a crash, every session of the old host is stale
        reset = sum(pool.map(reset_one, stale))
    return expected, reset


def outcome(token: str) -> tuple[str, str] | None:
    """('back', state) once the session's client runs, ('failed', LastError) once it failed, else None."""
    from chalicelib.core.models import SessionModel

    try:
        session = SessionModel.get(token, consistent_read=True)
    except SessionModel.DoesNotExist:
        return "failed", "session deleted"
    if session.logged_in:
        return "back", "LoggedIn"
    if session.last_error and not session.connected:
        return "failed", session.last_error
    if not session.auto_connect:
        return "failed", session.last_error or "disconnected"
    if session.connected or session.qr_code:
        return "back", "Connected, not logged in (QR)" if session.qr_code else "Connected"
    return None


def report(expected: list[Expected], timeout: float, interval: float = 0.5) -> str:
    """Wait up to `timeout` s for every expected session to come back or fail; the start-up log line."""
    pending = {item.token: item for item in expected}
    back: list[str] = []
    failed: list[str] = []
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for token, item in list(pending.items()):
            try:
                result = outcome(token)
            except Exception:
                result = None  # the endpoint is busy or restarting: ask again
            if result is None:
                continue
            del pending[token]
            kind, detail = result
            (back if kind == "back" else failed).append(f"{item.name} ({detail})")
        if pending:
            time.sleep(interval)
    parts = [f"{len(back)} back" + (f": {', '.join(back)}" if back else "")]
    if failed:
        parts.append(f"{len(failed)} failed: {', '.join(failed)}")
    if pending:
        parts.append(f"{len(pending)} still connecting after {timeout:.0f} s: "
                     + ", ".join(item.name for item in pending.values()))
    return f"sessions at start (connectstartup): {len(expected)} to restore; " + "; ".join(parts)
