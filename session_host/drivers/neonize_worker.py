"""A neonize worker process: holds real neonize clients for a shard of sessions.

Why a separate process (research/neonize.md §0, §12): a Go panic inside neonize aborts the whole
interpreter, so the host keeps its sessions in a few of these workers and restarts a crashed one.

Inside a worker:
- one thread per session runs neonize's blocking `connect()`; its callbacks (QR, login status, events)
  run on that session's Go thread, translate, and send one message to the host;
- client starts and stops go through one lifecycle thread, spaced apart (Go's client registry has
  no lock: simultaneous starts crash the process);
- a session whose `connect()` returns without our asking (dial error, logged out, stream replaced,
  QR timeout) is over: the host is told once, with the reason.

The host talks to the worker over a `multiprocessing` pipe (see neonize.py for the protocol). This
module must not import neonize at module level: NEONIZE_BOT_TAG has to be in the environment before
Go loads.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import itertools
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chalicelib.core import jid
from chalicelib.core.errors import DomainError
from chalicelib.core.shapes import rfc3339
from session_host.drivers.base import ClientState, OutboundMedia
from session_host.drivers.neonize_jid import parse_jid, recipient_jid

NOT_CONNECTED_FOR_PAIRING = "Not connected: no QR code yet to pair with"
QR_TIMED_OUT = "QR code timed out"
LOGGED_OUT = "logged out from the phone"
STREAM_REPLACED = "stream replaced: the same device connected somewhere else"
CONNECTION_ENDED = "connection ended"
QR_FIRST_SECONDS = 60.0  # whatsmeow: the first code lives 60 s, each later one 20 s
QR_NEXT_SECONDS = 20.0
PLATFORMS = {"chrome": "CHROME", "firefox": "FIREFOX", "safari": "SAFARI", "edge": "EDGE", "opera": "OPERA",
             "desktop": "DESKTOP", "ipad": "IPAD", "android": "ANDROID_PHONE"}

log = logging.getLogger("session_host.neonize_worker")
Emit = Callable[..., None]


@dataclasses.dataclass
class WorkerConfig:
    store: str = ""  # "" -> one SQLite file per session under data_dir; postgres://... -> shared
    data_dir: str = ".data/neonize"
    proxy: str = ""
    connect_wait: float = 10.0
    start_spacing: float = 0.1
    stop_wait: float = 5.0


def store_key(token: str) -> str:
    """Session stores are named by a hash of the token: tokens are secrets and may hold any character."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def sqlite_path(data_dir: str, token: str) -> Path:
    return Path(data_dir) / f"{store_key(token)}.db"


class Lifecycle:
    """One thread that runs client starts and stops in order, with a gap between starts."""

    def __init__(self, spacing: float):
        self.spacing = spacing
        self._queue: queue.Queue[tuple[Callable[[], Any], Future, bool] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="neonize-lifecycle", daemon=True)
        self._thread.start()

    def submit(self, task: Callable[[], Any], start: bool = False) -> Future:
        future: Future = Future()
        self._queue.put((task, future, start))
        return future

    def _run(self) -> None:
        last_start = 0.0
        while (item := self._queue.get()) is not None:
            task, future, start = item
            if start:
                gap = last_start + self.spacing - time.monotonic()
                if gap > 0:
                    time.sleep(gap)
                last_start = time.monotonic()
            try:
                future.set_result(task())
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                future.set_exception(exc)

    def close(self) -> None:
        self._queue.put(None)


class Session:
    """One session's neonize client and what the host has been told about it."""

    def __init__(self, token: str, client: Any):
        self.token = token
        self.client = client
        self.state = ClientState()
        self.lock = threading.Lock()
        self.first_outcome = threading.Event()  # a QR code, a login, or the end
        self.qr_shown = threading.Event()
        self.ended = threading.Event()
        self.thread: threading.Thread | None = None
        self.qr_count = 0
        self.asked_to_stop = False
        self.end_reason: str | None = None
        self.logged_out = False


def load_neonize() -> None:
    """Import neonize (which loads its Go library) without leaving `[sh] <defunct>` children.

    neonize's import runs `os.popen("uname -a").read()` twice (neonize/utils/platform.py) and never
    closes the pipes, so each `sh` stays a zombie until some later subprocess call happens to reap it:
    for the whole life of a worker. Closing the pipes waits for the children (os.popen's close)."""
    real_popen = os.popen
    opened: list[Any] = []

    def popen(cmd: str, mode: str = "r", buffering: int = -1) -> Any:
        stream = real_popen(cmd, mode, buffering)
        opened.append(stream)
        return stream

    os.environ.setdefault("NEONIZE_BOT_TAG", "off")
    os.popen = popen
    try:
        from neonize import events as neonize_events  # noqa: F401 - loads Go with the environment above
    finally:
        os.popen = real_popen
        for stream in opened:
            stream.close()


class NeonizeWorker:
    """The sessions of one worker process; every method may be called from the RPC threads."""

    def __init__(self, config: WorkerConfig, emit: Emit):
        load_neonize()

        self.config = config
        self.emit = emit
        self.sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._attempt = itertools.count(1)
        self.lifecycle = Lifecycle(config.start_spacing)
        if not config.store:
            Path(config.data_dir).mkdir(parents=True, exist_ok=True)

    # -- building clients --------------------------------------------------------------------------

    def _new_client(self, token: str, jid: str | None, os_name: str | None):
        from neonize.client import NewClient
        from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps

        worker = self

        class HostClient(NewClient):
            def _NewClient__onLoginStatus(self, uuid: int, status: int) -> None:  # noqa: N802 - neonize's hook
                worker._on_login_status(token, ctypes.string_at(status).decode(errors="replace"))

        platform = PLATFORMS.get((os_name or "").strip().lower(), "CHROME")
        props = DeviceProps(os=(os_name or "WaGo gateway")[:64], platformType=getattr(DeviceProps, platform))
        uuid = f"{store_key(token)}-{next(self._attempt)}"  # unique per attempt: a stale finalizer stops nothing
        if not self.config.store:
            # One SQLite file per session: no JID needed, the store holds at most this session's device.
            return HostClient(str(sqlite_path(self.config.data_dir, token)), props=props, uuid=uuid)
        if jid and self._device_in_store(jid):
            return HostClient(self.config.store, jid=parse_jid(jid), props=props)
        # Shared store and no known device: always a fresh pairing, never "the first device" of the store.
        return HostClient(self.config.store, props=props, uuid=uuid, new_device=True)

    def _device_in_store(self, jid: str) -> bool:
        """Connecting a shared store with a JID it does not hold is a Go panic: look first."""
        from neonize.client import ClientFactory

        from session_host.drivers.neonize_events import jid_str

        try:
            return jid in {jid_str(device.JID) for device in ClientFactory.get_all_devices_from_db(self.config.store)}
        except Exception as exc:  # unreachable database: neonize's parser raises ValueError
            raise DomainError(500, f"device store unreachable: {exc}") from None

    def _register_handlers(self, session: Session) -> None:
        from neonize.events import EVENT_TO_INT, Device

        for event_class in EVENT_TO_INT:
            if event_class is not Device:
                session.client.event(event_class)(self._handler(session))
        session.client.qr(lambda _client, data: self._on_qr(session, data))

    # -- callbacks (on the session's Go thread) ----------------------------------------------------

    def _publish(self, session: Session) -> None:
        self.emit("state", session.token, dataclasses.asdict(session.state))

    def _on_qr(self, session: Session, data: bytes) -> None:
        with session.lock:
            if session.state.logged_in:
                return
            session.qr_count += 1
            lifetime = QR_FIRST_SECONDS if session.qr_count == 1 else QR_NEXT_SECONDS
            code = data.decode(errors="replace")
            session.state.connected = True
            session.state.qr = code
            session.state.qr_expires_at = time.time() + lifetime
            self._publish(session)
        self.emit("event", session.token, "QR", {"Codes": [code]}, {})
        session.qr_shown.set()
        session.first_outcome.set()

    def _on_login_status(self, token: str, status: str) -> None:
        session = self.sessions.get(token)
        if session is None or status == "success":
            return
        self._end(session, QR_TIMED_OUT if status == "timeout" else f"pairing failed: {status}")

    def _handler(self, session: Session) -> Callable[[Any, Any], None]:
        from session_host.drivers.neonize_events import translate

        def handle(client: Any, event: Any) -> None:
            try:
                self._apply(session, client, event)
                translated = translate(event)
                if translated is not None:
                    self.emit("event", session.token, translated.type, translated.event, translated.extra)
            except Exception:  # neonize swallows handler errors; log them with the session
                log.exception("event handler failed", extra={"event": type(event).__name__})

        return handle

    def _apply(self, session: Session, client: Any, event: Any) -> None:
        """State changes an event implies (the webhook copy is sent separately)."""
        from neonize import events as E
        from neonize.proto import Neonize_pb2 as N

        from session_host.drivers.neonize_events import jid_str

        if isinstance(event, E.PairStatusEv) and event.Status == N.PairStatus.SUCCESS:
            with session.lock:
                session.state = ClientState(connected=True, logged_in=True, jid=jid_str(event.ID),
                                            push_name=session.state.push_name)
                self._publish(session)
        elif isinstance(event, E.ConnectedEv):
            me = getattr(client, "me", None)
            with session.lock:
                session.state.connected = True
                session.state.logged_in = True
                session.state.qr = session.state.qr_expires_at = session.state.pair_code = None
                session.state.last_error = None
                if me is not None and me.JID.User:
                    session.state.jid = jid_str(me.JID)
                    session.state.push_name = me.PushName or session.state.push_name
                self._publish(session)
            session.first_outcome.set()
        elif isinstance(event, E.DisconnectedEv):
            with session.lock:  # whatsmeow reconnects by itself; Connected follows
                session.state.connected = False
                self._publish(session)
        elif isinstance(event, E.LoggedOutEv):
            session.logged_out = True
            self._end(session, LOGGED_OUT)
        elif isinstance(event, E.StreamReplacedEv):
            self._end(session, STREAM_REPLACED)
        elif isinstance(event, E.TemporaryBanEv):
            self._end(session, f"temporarily banned for {event.Expire} s")
        elif isinstance(event, E.ClientOutdatedEv):
            self._end(session, "client outdated: WhatsApp rejected this client version")
        elif isinstance(event, E.ConnectFailureEv):
            self._end(session, f"connect failure: {event.Message or N.ConnectFailureReason.Name(event.Reason)}")

    def _end(self, session: Session, reason: str) -> None:
        """Whatsmeow will not reconnect after this: stop the client (not on its own Go thread)."""
        if session.end_reason is None:
            session.end_reason = reason
        self.lifecycle.submit(session.client.stop)

    # -- the session thread ------------------------------------------------------------------------

    def _run(self, session: Session) -> None:
        from neonize.client import ProxySettings

        proxy = ProxySettings(proxy_address=self.config.proxy) if self.config.proxy else None
        error: str | None = None
        try:
            session.client.connect(proxy)
        except Exception as exc:  # NeonizeError: dial failure, store error...
            error = str(exc) or type(exc).__name__
        finally:
            session.client._stop_finalizer.detach()
        with self._lock:
            current = self.sessions.get(session.token) is session
            if current:
                del self.sessions[session.token]
        session.ended.set()
        if session.asked_to_stop or not current:
            session.first_outcome.set()
            return
        reason = session.end_reason or (f"Failed to connect: {error}" if error else CONNECTION_ENDED)
        with session.lock:
            session.state = ClientState(last_error=reason)
        session.first_outcome.set()
        self.emit("closed", session.token, reason, session.logged_out)

    def _start(self, session: Session) -> None:
        session.thread = threading.Thread(target=self._run, args=(session,),
                                          name=f"session-{store_key(session.token)[:8]}", daemon=True)
        session.thread.start()

    # -- the driver operations (RPC) ---------------------------------------------------------------

    def connect(self, token: str, jid: str | None = None, os_name: str | None = None) -> dict:
        with self._lock:
            if token in self.sessions:
                raise DomainError(500, "Already Connected")
        client = self._new_client(token, jid, os_name)
        session = Session(token, client)
        self._register_handlers(session)
        with self._lock:
            if token in self.sessions:
                raise DomainError(500, "Already Connected")
            self.sessions[token] = session
        self.lifecycle.submit(lambda: self._start(session), start=True)
        session.first_outcome.wait(self.config.connect_wait)
        if session.ended.is_set() and session.state.last_error:
            raise DomainError(500, session.state.last_error)
        with session.lock:
            return dataclasses.asdict(session.state)

    def _session(self, token: str) -> Session:
        session = self.sessions.get(token)
        if session is None:
            raise DomainError(500, "No session")
        return session

    def pair_phone(self, token: str, phone: str) -> str:
        session = self._session(token)
        if session.state.logged_in:
            raise DomainError(500, "Already paired")
        digits = jid.phone(phone)
        if not session.qr_shown.wait(self.config.connect_wait):  # PairPhone before the first QR: "client is nil"
            raise DomainError(500, NOT_CONNECTED_FOR_PAIRING)
        try:
            code = session.client.PairPhone(digits, True)
        except Exception as exc:
            raise DomainError(500, f"Failed to pair: {exc}") from None
        with session.lock:
            session.state.pair_code = code
            self._publish(session)
        return code

    def _stop(self, session: Session) -> None:
        session.asked_to_stop = True
        with self._lock:
            if self.sessions.get(session.token) is session:
                del self.sessions[session.token]
        done = self.lifecycle.submit(session.client.stop)
        try:  # stop() can block ~60 s on a pending dial: do not hold the caller that long
            done.result(timeout=self.config.stop_wait)
        except Exception:
            log.warning("client stop still pending", extra={"store": store_key(session.token)})

    def disconnect(self, token: str) -> None:
        self._stop(self._session(token))

    def logout(self, token: str) -> None:
        session = self._session(token)
        if not session.state.logged_in:
            raise DomainError(500, "Could not logout as it was not logged in")
        try:
            session.client.logout()
        except Exception as exc:
            raise DomainError(500, f"Failed to logout: {exc}") from None
        self._stop(session)

    def forget(self, token: str) -> None:
        """Session deleted: unlink a logged-in device (best effort), stop, remove a per-session store."""
        session = self.sessions.get(token)
        if session is not None:
            if session.state.logged_in:
                try:
                    session.client.logout()
                except Exception as exc:
                    log.warning("logout before forget failed", extra={"error": str(exc)})
            self._stop(session)
        if not self.config.store:
            path = sqlite_path(self.config.data_dir, token)
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

    # -- messaging (logged-in clients only; neonize raises typed errors, never a Go panic, for these) ---

    def _logged_in(self, token: str) -> Session:
        session = self._session(token)
        if not session.state.logged_in:
            raise DomainError(500, "not logged in")
        return session

    @staticmethod
    def _failed(what: str, exc: Exception) -> DomainError:
        return DomainError(500, f"Failed to {what}: {exc}")

    def send_text(self, token: str, to: str, body: str, message_id: str | None = None) -> dict:
        """neonize's SendMessage takes no message id (whatsmeow picks it): `message_id` is not used."""
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

        # a Message, not a str: a str goes through neonize's mention parsing and group lookups
        return self._send(self._logged_in(token), to, Message(conversation=body))

    def send_media(self, token: str, to: str, media: OutboundMedia, message_id: str | None = None) -> dict:
        from session_host.drivers.neonize_messages import UPLOAD_TYPES, media_message

        session = self._logged_in(token)
        jid = recipient_jid(to)
        try:
            upload = session.client.upload(media.data, UPLOAD_TYPES[media.kind])
        except Exception as exc:
            raise self._failed("upload media", exc) from None
        return self._send(session, jid, media_message(media, upload))

    def send_content(self, token: str, to: str, content: dict, message_id: str | None = None) -> dict:
        from google.protobuf import json_format
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message
        from neonize.utils.enum import VoteType

        session = self._logged_in(token)
        poll = content.get("pollCreationMessage")
        if poll is not None:  # Go builds polls: they need a message secret for the votes' encryption
            options = [o["optionName"] for o in poll["options"]]
            kind = VoteType.SINGLE if poll.get("selectableOptionsCount") == 1 else VoteType.MULTIPLE
            try:
                message = session.client.build_poll_vote_creation(poll["name"], options, kind)
            except Exception as exc:
                raise self._failed("build the poll", exc) from None
        else:
            try:
                message = json_format.ParseDict(content, Message())
            except json_format.ParseError as exc:  # e.g. a client's QuotedMessage that is not WhatsApp JSON
                raise DomainError(400, f"Invalid message content: {exc}") from None
        return self._send(session, to, message)

    def download_media(self, token: str, kind: str, ref: dict) -> bytes:
        import base64

        from session_host.drivers.neonize_messages import UPLOAD_TYPES

        session = self._logged_in(token)
        media_type = UPLOAD_TYPES[kind]
        try:
            return session.client.download_media_with_path(
                str(ref["directPath"]), base64.b64decode(ref["fileEncSHA256"]), base64.b64decode(ref["fileSHA256"]),
                base64.b64decode(ref["mediaKey"]), int(ref["fileLength"]), media_type, media_type.to_mms())
        except Exception as exc:
            raise self._failed("download media", exc) from None

    def _send(self, session: Session, to: Any, message: Any) -> dict:
        try:
            sent = session.client.send_message(recipient_jid(to) if isinstance(to, str) else to, message)
        except Exception as exc:
            raise self._failed("send message", exc) from None
        return {"Id": sent.ID, "Timestamp": rfc3339(sent.Timestamp)}

    def mark_read(self, token: str, ids: list[str], chat: str, sender: str | None = None) -> None:
        from neonize.utils.enum import ReceiptType

        session = self._logged_in(token)
        chat_jid = recipient_jid(chat)
        try:
            session.client.mark_read(*ids, chat=chat_jid, sender=recipient_jid(sender) if sender else chat_jid,
                                     receipt=ReceiptType.READ)
        except Exception as exc:
            raise self._failed("mark messages as read", exc) from None

    def send_chat_presence(self, token: str, to: str, state: str, media: str = "") -> None:
        from neonize.utils.enum import ChatPresence, ChatPresenceMedia

        session = self._logged_in(token)
        presence = ChatPresence.CHAT_PRESENCE_PAUSED if state == "paused" else ChatPresence.CHAT_PRESENCE_COMPOSING
        kind = (ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO if media == "audio"
                else ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT)
        try:
            session.client.send_chat_presence(recipient_jid(to), presence, kind)
        except Exception as exc:
            raise self._failed("set chat presence", exc) from None

    def send_presence(self, token: str, available: bool) -> None:
        from neonize.utils.enum import Presence

        session = self._logged_in(token)
        try:
            session.client.send_presence(Presence.AVAILABLE if available else Presence.UNAVAILABLE)
        except Exception as exc:
            raise self._failed("set presence", exc) from None

    def subscribe_presence(self, token: str, jid: str) -> None:
        session = self._logged_in(token)
        try:
            session.client.subscribe_presence(recipient_jid(jid))
        except Exception as exc:
            raise self._failed("subscribe to presence", exc) from None

    def reject_call(self, token: str, call_id: str, peer: str) -> None:
        session = self._logged_in(token)
        try:
            session.client.reject_call(recipient_jid(peer), call_id)
        except Exception as exc:
            raise self._failed("reject call", exc) from None

    def shutdown(self, deadline: float) -> int:
        """Stop every client; returns how many threads were still running at the deadline."""
        with self._lock:
            sessions = list(self.sessions.values())
        for session in sessions:
            session.asked_to_stop = True
            self.lifecycle.submit(session.client.stop)
        self.lifecycle.close()
        stuck = 0
        for session in sessions:
            if session.thread is not None:
                session.thread.join(max(0.0, deadline - time.monotonic()))
                stuck += session.thread.is_alive()
        return stuck

    # -- users and groups (session_host/drivers/neonize_groups.py; logged-in clients only) ------------

    def user_group(self, token: str, op: str, **kwargs: Any) -> Any:
        from session_host.drivers.neonize_groups import OPS  # imports neonize (Go): workers only, never the host

        session = self._logged_in(token)  # contact.get_all_contacts aborts the process on an unregistered client
        if op not in OPS:
            raise DomainError(400, f"unknown user/group operation {op!r}")
        return OPS[op](session.client, **kwargs)


# -- the process ---------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """If the host is SIGKILLed, its workers must not keep driving devices another host adopts."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def worker_main(conn: Any, config: dict) -> None:
    """Entry point of a worker process: serve the host's calls until the pipe closes or shutdown."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host decides when workers stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ["NEONIZE_BOT_TAG"] = "off"
    send_lock = threading.Lock()

    def emit(*message: Any) -> None:
        with send_lock:
            try:
                conn.send(message)
            except (OSError, EOFError, BrokenPipeError):
                pass  # the host is gone; the pipe reader below ends the process

    worker = NeonizeWorker(WorkerConfig(**config), emit)
    logging.basicConfig(level=logging.WARNING, force=True)  # neonize's import set INFO on the root logger
    pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="rpc")

    def serve(request_id: int, method: str, kwargs: dict) -> None:
        try:
            result = getattr(worker, method)(**kwargs)
            emit("reply", request_id, True, result)
        except DomainError as exc:
            emit("reply", request_id, False, (exc.status, exc.message))
        except Exception as exc:  # a bug here must not kill the worker's other sessions
            log.exception("worker call failed", extra={"method": method})
            emit("reply", request_id, False, (500, f"session worker error: {exc}"))

    stuck = 0
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message[0] == "call":
                _, request_id, method, kwargs = message
                pool.submit(serve, request_id, method, kwargs)
            elif message[0] == "shutdown":
                stuck = worker.shutdown(time.monotonic() + float(message[1]))
                emit("bye", stuck)
                break
    finally:
        # Go's session threads are non-daemon and a pending stop() can block ~60 s: exit regardless.
        os._exit(0 if not stuck else 3)
