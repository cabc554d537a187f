"""The neonize driver: real WhatsApp clients, kept in a few supervised worker processes.

The host process never loads neonize's Go library itself. Sessions are spread over
`NEONIZE_WORKERS` worker processes (neonize_worker.py); a Go panic kills one worker, whose sessions
are then restarted on its replacement (a capped number of times), instead of the whole host.

Protocol over each worker's pipe (tuples, pickled by multiprocessing):
- host -> worker: ("call", id, method, kwargs), ("shutdown", seconds)
- worker -> host: ("reply", id, ok, result | (status, error)), ("state", token, ClientState fields),
  ("event", token, type, event, extra), ("closed", token, reason, logged_out), ("bye", stuck)
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from chalicelib.core import contract
from chalicelib.core.errors import DomainError
from chalicelib.core.observability import logger
from session_host.drivers.base import ClientState, Driver, DriverCallbacks, OutboundMedia
from session_host.drivers.neonize_worker import WorkerConfig, sqlite_path, worker_main

WORKER_CRASHED = "session worker crashed; restarting the session"
WORKER_GAVE_UP = "session worker crashed repeatedly while running this session"
WORKER_TIMEOUT = "the WhatsApp client did not answer in time"
MAX_CRASHES_PER_SESSION = 3
MAX_RESTARTS_PER_MINUTE = 5


class WorkerHandle:
    """One worker process and its pipe: calls with futures, a reader thread for everything else."""

    _ids = itertools.count(1)

    def __init__(self, index: int, config: WorkerConfig, on_message: Callable[[WorkerHandle, tuple], None],
                 on_exit: Callable[[WorkerHandle], None]):
        self.index = index
        self.config = config
        self.on_message = on_message
        self.on_exit = on_exit
        self.restarts: list[float] = []
        self.closing = False
        self.start()

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded host
        self.conn, child = context.Pipe()
        self.process = context.Process(target=worker_main, args=(child, dataclasses.asdict(self.config)),
                                       name=f"neonize-worker-{self.index}", daemon=True)
        self.process.start()
        child.close()
        self.pending: dict[int, Future] = {}
        self._send_lock = threading.Lock()
        self.alive = True
        self.reader = threading.Thread(target=self._read, name=f"neonize-worker-{self.index}-reader", daemon=True)
        self.reader.start()

    def call(self, method: str, timeout: float, **kwargs: Any) -> Any:
        if not self.alive:
            raise DomainError(503, WORKER_CRASHED)
        request_id = next(self._ids)
        future: Future = Future()
        self.pending[request_id] = future
        try:
            with self._send_lock:
                self.conn.send(("call", request_id, method, kwargs))
            ok, payload = future.result(timeout=timeout)
        except FutureTimeout:
            raise DomainError(504, WORKER_TIMEOUT) from None
        except (OSError, EOFError, BrokenPipeError):
            raise DomainError(503, WORKER_CRASHED) from None
        finally:
            self.pending.pop(request_id, None)
        if not ok:
            status, message = payload
            raise DomainError(status, message)
        return payload

    def _read(self) -> None:
        conn = self.conn
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message[0] == "reply":
                future = self.pending.get(message[1])
                if future is not None and not future.done():
                    future.set_result((message[2], message[3]))
            elif message[0] == "bye":
                break
            else:
                try:
                    self.on_message(self, message)
                except Exception:
                    logger.exception("neonize worker message failed", extra={"kind": message[0]})
        self.alive = False
        for future in list(self.pending.values()):
            if not future.done():
                future.set_result((False, (503, WORKER_CRASHED)))
        if not self.closing:
            self.on_exit(self)

    def shutdown(self, grace: float) -> None:
        self.closing = True
        try:
            with self._send_lock:
                self.conn.send(("shutdown", grace))
        except (OSError, BrokenPipeError):
            pass
        self.process.join(grace + 2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


class NeonizeDriver(Driver):
    name = "neonize"

    def __init__(self, callbacks: DriverCallbacks, settings):
        super().__init__(callbacks)
        self.settings = settings
        self.config = WorkerConfig(
            store=settings.neonize_store,
            data_dir=str(Path(settings.neonize_data_dir).resolve()),
            proxy=settings.neonize_proxy,
            connect_wait=settings.connect_wait_seconds,
            start_spacing=settings.neonize_start_spacing_seconds,
        )
        self._lock = threading.Lock()
        self._where: dict[str, WorkerHandle] = {}
        self._states: dict[str, ClientState] = {}
        self._args: dict[str, dict] = {}
        self._crashes: dict[str, int] = {}
        self.workers = [WorkerHandle(i, self.config, self._on_message, self._on_exit)
                        for i in range(settings.neonize_workers)]

    # -- worker messages ---------------------------------------------------------------------------

    def _owned_by(self, token: str, worker: WorkerHandle) -> bool:
        with self._lock:
            return self._where.get(token) is worker

    def _on_message(self, worker: WorkerHandle, message: tuple) -> None:
        kind, token = message[0], message[1]
        if kind == "state":
            state = ClientState(**message[2])
            with self._lock:
                if self._where.get(token) is not worker:
                    return
                self._states[token] = state
            self.callbacks.on_state(token, dataclasses.replace(state))
        elif kind == "event":
            self.callbacks.on_event(token, message[2], message[3], message[4])
        elif kind == "closed":
            if self._forget_local(token, worker):
                self.callbacks.on_closed(token, message[2], message[3])

    def _forget_local(self, token: str, worker: WorkerHandle | None = None) -> bool:
        with self._lock:
            if token not in self._where or (worker is not None and self._where[token] is not worker):
                return False
            del self._where[token]
            self._states.pop(token, None)
            self._args.pop(token, None)
            return True

    def _on_exit(self, worker: WorkerHandle) -> None:
        """A worker died (Go panic, OOM kill): restart it and its sessions, within limits."""
        with self._lock:
            lost = {t: self._args.get(t, {}) for t, w in self._where.items() if w is worker}
            for token in lost:
                del self._where[token]
                self._states.pop(token, None)
        logger.error("neonize worker exited", extra={"worker": worker.index, "exitcode": worker.process.exitcode,
                                                    "sessions": len(lost)})
        now = time.monotonic()
        worker.restarts = [t for t in worker.restarts if t > now - 60] + [now]
        if len(worker.restarts) <= MAX_RESTARTS_PER_MINUTE:
            worker.start()
        for token, args in lost.items():
            self._crashes[token] = self._crashes.get(token, 0) + 1
            if self._crashes[token] > MAX_CRASHES_PER_SESSION or not worker.alive:
                self.callbacks.on_closed(token, WORKER_GAVE_UP, False)
                continue
            self.callbacks.on_state(token, ClientState(last_error=WORKER_CRASHED))
            threading.Thread(target=self._restart, args=(token, args), daemon=True).start()

    def _restart(self, token: str, args: dict) -> None:
        try:
            self.connect(token, **args)
        except DomainError as exc:
            self.callbacks.on_closed(token, exc.message, False)

    # -- Driver ------------------------------------------------------------------------------------

    def _pick(self) -> WorkerHandle:
        alive = [w for w in self.workers if w.alive]
        if not alive:
            raise DomainError(503, WORKER_CRASHED)
        counts = {w.index: 0 for w in alive}
        for worker in self._where.values():
            if worker.index in counts:
                counts[worker.index] += 1
        return min(alive, key=lambda w: counts[w.index])

    def _worker_of(self, token: str) -> WorkerHandle:
        with self._lock:
            worker = self._where.get(token)
        if worker is None:
            raise DomainError(500, contract.NO_SESSION)
        return worker

    def connect(self, token: str, jid: str | None = None, os_name: str | None = None) -> ClientState:
        with self._lock:
            if token in self._where:
                raise DomainError(500, contract.ALREADY_CONNECTED)
            worker = self._pick()
            self._where[token] = worker
            self._states[token] = ClientState()
            self._args[token] = {"jid": jid, "os_name": os_name}
        try:
            state = worker.call("connect", timeout=self.config.connect_wait + 15, token=token, jid=jid,
                                os_name=os_name)
        except DomainError:
            self._forget_local(token, worker)
            raise
        return ClientState(**state)

    def pair_phone(self, token: str, phone: str) -> str:
        # PairPhone is a network round trip (whatsmeow's own timeout is 75 s); the command deadline bounds it.
        return self._worker_of(token).call("pair_phone", timeout=self.config.connect_wait + 30, token=token,
                                           phone=phone)

    def disconnect(self, token: str) -> None:
        worker = self._worker_of(token)
        try:
            worker.call("disconnect", timeout=self.config.stop_wait + 5, token=token)
        finally:
            self._forget_local(token, worker)

    def logout(self, token: str) -> None:
        worker = self._worker_of(token)
        worker.call("logout", timeout=self.config.connect_wait + 20, token=token)
        self._forget_local(token, worker)

    def forget(self, token: str) -> None:
        with self._lock:
            worker = self._where.get(token)
        if worker is not None:
            try:
                worker.call("forget", timeout=self.config.connect_wait + 20, token=token)
            finally:
                self._forget_local(token, worker)
        elif not self.config.store:
            path = sqlite_path(self.config.data_dir, token)
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

    # -- messaging: one call into the session's worker; WhatsApp's own request timeout is 75 s -------

    def _client_call(self, method: str, token: str, **kwargs: Any) -> Any:
        return self._worker_of(token).call(method, timeout=self.settings.command_timeout_seconds, token=token,
                                           **kwargs)

    def send_text(self, token: str, to: str, body: str, message_id: str | None = None) -> dict:
        return self._client_call("send_text", token, to=to, body=body, message_id=message_id)

    def send_media(self, token: str, to: str, media: OutboundMedia, message_id: str | None = None) -> dict:
        return self._client_call("send_media", token, to=to, media=media, message_id=message_id)

    def send_content(self, token: str, to: str, content: dict, message_id: str | None = None) -> dict:
        return self._client_call("send_content", token, to=to, content=content, message_id=message_id)

    def download_media(self, token: str, kind: str, ref: dict) -> bytes:
        return self._client_call("download_media", token, kind=kind, ref=ref)

    def mark_read(self, token: str, ids: list[str], chat: str, sender: str | None = None) -> None:
        self._client_call("mark_read", token, ids=ids, chat=chat, sender=sender)

    def send_chat_presence(self, token: str, to: str, state: str, media: str = "") -> None:
        self._client_call("send_chat_presence", token, to=to, state=state, media=media)

    def send_presence(self, token: str, available: bool) -> None:
        self._client_call("send_presence", token, available=available)

    def subscribe_presence(self, token: str, jid: str) -> None:
        self._client_call("subscribe_presence", token, jid=jid)

    def state(self, token: str) -> ClientState | None:
        with self._lock:
            state = self._states.get(token)
        return None if state is None else dataclasses.replace(state)

    def tokens(self) -> list[str]:
        with self._lock:
            return list(self._where)

    def close(self, grace: float = 10.0) -> None:
        """Stop the workers (their clients first); kill any that outlive the grace period."""
        threads = [threading.Thread(target=w.shutdown, args=(grace,)) for w in self.workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(grace + 10)

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.alive and w.process.pid]

    # -- calls: neonize sees call events and can reject; it cannot place, accept, end or carry audio ---

    def reject_call(self, token: str, call_id: str, peer: str, link_token: str | None) -> None:
        self._client_call("reject_call", token, call_id=call_id, peer=peer)

    # -- users and groups: one call into the session's worker (neonize_groups.py) ---------------------

    def _user_group(self, token: str, op: str, **kwargs: Any) -> Any:
        return self._client_call("user_group", token, op=op, **kwargs)

    def check_users(self, token: str, phones: list[str]) -> list[dict]:
        return self._user_group(token, "check_users", phones=phones)

    def user_info(self, token: str, phones: list[str]) -> dict:
        return self._user_group(token, "user_info", phones=phones)

    def user_avatar(self, token: str, phone: str, preview: bool) -> dict:
        return self._user_group(token, "user_avatar", phone=phone, preview=preview)

    def contacts(self, token: str) -> dict:
        return self._user_group(token, "contacts")

    def list_groups(self, token: str) -> list[dict]:
        return self._user_group(token, "list_groups")

    def group_info(self, token: str, group: str) -> dict:
        return self._user_group(token, "group_info", group=group)

    def create_group(self, token: str, name: str, participants: list[str]) -> dict:
        return self._user_group(token, "create_group", name=name, participants=participants)

    def update_group_participants(self, token: str, group: str, phones: list[str], action: str) -> list[dict]:
        return self._user_group(token, "update_group_participants", group=group, phones=phones, action=action)

    def group_invite_link(self, token: str, group: str, reset: bool) -> str:
        return self._user_group(token, "group_invite_link", group=group, reset=reset)

    def join_group(self, token: str, code: str) -> str:
        return self._user_group(token, "join_group", code=code)

    def leave_group(self, token: str, group: str) -> None:
        self._user_group(token, "leave_group", group=group)

    def set_group_name(self, token: str, group: str, name: str) -> None:
        self._user_group(token, "set_group_name", group=group, name=name)

    def set_group_topic(self, token: str, group: str, topic: str) -> None:
        self._user_group(token, "set_group_topic", group=group, topic=topic)

    def set_group_photo(self, token: str, group: str, data: bytes, media_key: str, sha256: str) -> str:
        return self._user_group(token, "set_group_photo", group=group, data=data)

    def set_group_announce(self, token: str, group: str, value: bool) -> None:
        self._user_group(token, "set_group_announce", group=group, value=value)

    def set_group_locked(self, token: str, group: str, value: bool) -> None:
        self._user_group(token, "set_group_locked", group=group, value=value)


if importlib.util.find_spec("neonize") is None:  # the workers import it; fail at host start, not later
    raise ImportError("the neonize package is not installed (requirements-host.txt)")
os.environ.setdefault("NEONIZE_BOT_TAG", "off")  # inherited by the spawned workers before Go loads
