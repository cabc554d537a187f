"""The sim driver: a simulated WhatsApp network for local runs, demos and tests.

Clients live in this host process; the network itself (accounts by phone number, linked devices by
session token) lives in DynamoDB (chalicelib/core/models/sim.py), so every host sees the same network
and a session restored on another host finds its linked device and needs no new QR.

Pairing behaves like whatsmeow's: connecting an unpaired session shows a QR whose payload has
whatsmeow's shape (`ref,noiseKey,identityKey,advSecret`); the first code lives `sim_qr_first_seconds`,
then `sim_qr_rotations` more codes live `sim_qr_next_seconds` each, after which pairing times out
and the client stops. A pairing code (`/session/pair`) works on a running, unpaired client. The
"phone" side is driven by `scan` (the QR or the code was accepted) and `phone_logout` (the device
was removed on the phone, which produces a LoggedOut event). Messages, receipts and presence travel
through the sim network (session_host/sim/network.py); the phone-side controls run here too
(session_host/sim/operations.py).
"""

from __future__ import annotations

import base64
import dataclasses
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable

from chalicelib.core import contract, shapes
from chalicelib.core.errors import DomainError
from chalicelib.core.media import MediaStore
from session_host.commands import KeyedExecutor
from session_host.drivers.base import ClientState, Driver, DriverCallbacks, OutboundMedia
from session_host.sim import network as sim_network
from session_host.sim.calls import SimCalls
from session_host.sim.groups import SimGroups
from session_host.sim.network import SimNetwork

PAIR_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"  # whatsmeow's linking-code alphabet (no 0, I, O, U)
SERVER = sim_network.SERVER
QR_TIMED_OUT = "QR code timed out"
RECEIPT_DELAY_SECONDS = 0.05
#: Sending sessions whose accepted messages are delivered at once (each session's in order).
DELIVERY_WORKERS = 4
#: How long closing the driver waits for accepted messages still being delivered.
DELIVERY_DRAIN_SECONDS = 5.0
PHONE_LOGGED_OUT = "logged out from the phone"




#: Fault-test hook: a message id; when the sim network has taken a message with this id, the host process
#: kills itself with SIGKILL before the send's outcome is recorded (tests/faults/test_double_send.py).
CRASH_AFTER_SEND_ENV = "SIM_TEST_KILL_AFTER_SEND_ID"


def _crash_point(message_id: str) -> None:
    target = os.environ.get(CRASH_AFTER_SEND_ENV)
    if target and message_id == target:
        os.kill(os.getpid(), signal.SIGKILL)


def parse_phone(phone: str) -> str:
    return sim_network.parse_phone(phone)


def _b64(size: int) -> str:
    return base64.b64encode(os.urandom(size)).decode()


def new_qr_payload() -> str:
    return f"2@{_b64(18)},{_b64(32)},{_b64(32)},{_b64(32)}"


def new_pair_code() -> str:
    chars = "".join(secrets.choice(PAIR_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


@dataclasses.dataclass
class SimClient:
    token: str
    state: ClientState = dataclasses.field(default_factory=ClientState)
    lock: threading.RLock = dataclasses.field(default_factory=threading.RLock)
    timer: threading.Timer | None = None
    generation: int = 0  # bumps on every QR change, so a stale rotation timer does nothing
    qr_left: int = 0
    pair_phone: str | None = None
    phone: str = ""  # the linked account's digits, once logged in
    closed: bool = False

    def cancel_timer(self) -> None:
        self.generation += 1
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class SimDriver(Driver):
    name = "sim"
    reuses_message_ids = True  # the client's Id is the message id on the sim network, as in WaGo

    def __init__(self, callbacks: DriverCallbacks, settings, clock: Callable[[], float] = time.time):
        super().__init__(callbacks)
        self.settings = settings
        self.clock = clock
        self._clients: dict[str, SimClient] = {}
        self._lock = threading.Lock()
        # Accepted sends are delivered in the background, in order per sending session (see SimNetwork).
        self._deliveries = KeyedExecutor(DELIVERY_WORKERS, name="sim-delivery")
        self.network = SimNetwork(
            lambda token, type, event, extra, media_key=None: callbacks.on_event(token, type, event, extra, media_key),
            clock, later=self._later, background=self._deliveries.submit)

    def close(self) -> None:
        """Finish delivering accepted messages (bounded), then close."""
        self._deliveries.wait_idle(DELIVERY_DRAIN_SECONDS)
        self._deliveries.shutdown()
        super().close()

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _later(task) -> None:
        """The network's latency: a receipt reaches the sender after its send call returned."""
        timer = threading.Timer(RECEIPT_DELAY_SECONDS, task)
        timer.daemon = True
        timer.start()

    def _client(self, token: str) -> SimClient:
        with self._lock:
            client = self._clients.get(token)
        if client is None or client.closed:
            raise DomainError(500, contract.NO_SESSION)
        return client

    def _remove(self, client: SimClient) -> None:
        client.cancel_timer()
        client.closed = True
        with self._lock:
            if self._clients.get(client.token) is client:
                del self._clients[client.token]

    def _publish_state(self, client: SimClient) -> None:
        self.callbacks.on_state(client.token, dataclasses.replace(client.state))

    def _show_qr(self, client: SimClient, lifetime: float) -> None:
        client.cancel_timer()
        code = new_qr_payload()
        client.state.qr = code
        client.state.qr_expires_at = self.clock() + lifetime
        generation = client.generation
        client.timer = threading.Timer(lifetime, self._rotate, args=(client, generation))
        client.timer.daemon = True
        client.timer.start()
        self._publish_state(client)
        self.callbacks.on_event(client.token, "QR", {"Codes": [code]})

    def _rotate(self, client: SimClient, generation: int) -> None:
        with client.lock:
            if client.closed or generation != client.generation or client.state.logged_in:
                return
            if client.qr_left <= 0:
                self._remove(client)
                client.state = ClientState(last_error=QR_TIMED_OUT)
                self.callbacks.on_closed(client.token, QR_TIMED_OUT, logged_out=False)  # one write: state + release
                return
            client.qr_left -= 1
            self._show_qr(client, self.settings.sim_qr_next_seconds)

    # -- Driver ----------------------------------------------------------------------------------

    def connect(self, token: str, jid: str | None = None, os_name: str | None = None) -> ClientState:
        client = SimClient(token)
        with self._lock:
            if token in self._clients:
                raise DomainError(500, contract.ALREADY_CONNECTED)
            self._clients[token] = client
        with client.lock:
            device = self.network.device_of(token)
            if device is not None:
                client.state = ClientState(connected=True, logged_in=True, jid=device.jid, push_name=device.push_name)
                client.phone = device.phone
                self._publish_state(client)
                self.callbacks.on_event(token, "Connected", {})
                self.network.flush_inbox(token)
            else:
                client.state = ClientState(connected=True)
                client.qr_left = self.settings.sim_qr_rotations
                self._show_qr(client, self.settings.sim_qr_first_seconds)
            return dataclasses.replace(client.state)

    def pair_phone(self, token: str, phone: str) -> str:
        client = self._client(token)
        with client.lock:
            if client.state.logged_in:
                raise DomainError(500, contract.ALREADY_PAIRED)
            client.pair_phone = parse_phone(phone)
            client.state.pair_code = new_pair_code()
            self._publish_state(client)
            return client.state.pair_code

    def disconnect(self, token: str) -> None:
        client = self._client(token)
        with client.lock:
            self._remove(client)

    def logout(self, token: str) -> None:
        """Unlink the device and stop the client (this session logs out)."""
        self._unlink(token)

    def _unlink(self, token: str) -> SimClient:
        """Unlink the device (from this session, or from the phone: see phone_logout)."""
        client = self._client(token)
        with client.lock:
            if not client.state.logged_in:
                raise DomainError(500, contract.NOT_LOGGED_IN_LOGOUT)
            self.network.unlink_device(token)
            self._remove(client)
        return client

    def forget(self, token: str) -> None:
        with self._lock:
            client = self._clients.get(token)
        if client is not None:
            with client.lock:
                self._remove(client)
        self.network.unlink_device(token)

    def state(self, token: str) -> ClientState | None:
        with self._lock:
            client = self._clients.get(token)
        return None if client is None else dataclasses.replace(client.state)

    def tokens(self) -> list[str]:
        with self._lock:
            return list(self._clients)

    # -- the phone side --------------------------------------------------------------------------

    def scan(self, token: str, phone: str, code: str = "", push_name: str = "") -> str:
        """The phone accepted this session's QR (or its pairing code): link a device, log in."""
        client = self._client(token)
        digits = parse_phone(phone)
        with client.lock:
            if client.state.logged_in:
                raise DomainError(500, contract.ALREADY_LOGGED_IN)
            if code:
                if not client.state.pair_code or code.strip().upper() != client.state.pair_code:
                    raise DomainError(400, "pairing code does not match")
                if client.pair_phone != digits:
                    raise DomainError(400, "pairing code was requested for another phone number")
            elif not client.state.qr:
                raise DomainError(500, "no QR code to scan")
            account = self.network.account(digits, push_name, create=True)
            jid = f"{digits}:{secrets.randbelow(60) + 1}@{SERVER}"
            self.network.link_device(token, account, jid)
            client.cancel_timer()
            client.state = ClientState(connected=True, logged_in=True, jid=jid, push_name=account.push_name)
            client.phone = digits
            self._publish_state(client)
            self.callbacks.on_event(token, "PairSuccess", shapes.pair_success(jid, platform="sim"))
            self.callbacks.on_event(token, "Connected", {})
            return jid

    def phone_logout(self, token: str) -> None:
        """The phone removed this session's linked device: WhatsApp logs the client out."""
        client = self._unlink(token)
        with client.lock:
            client.state = ClientState(last_error=PHONE_LOGGED_OUT)
            self.callbacks.on_event(token, "LoggedOut", shapes.logged_out(False, 401))
            self.callbacks.on_closed(token, PHONE_LOGGED_OUT, logged_out=True)


    # -- messaging -------------------------------------------------------------------------------

    def _sender(self, token: str) -> SimClient:
        client = self._client(token)
        if not client.state.logged_in or not client.phone:
            raise DomainError(500, contract.NOT_LOGGED_IN)
        return client

    def send_text(self, token: str, to: str, body: str, message_id: str | None = None) -> dict:
        client = self._sender(token)
        sent = self.network.send_text(client.phone, to, body, sender_token=token, message_id=message_id)
        _crash_point(sent["Id"])
        return {"Id": sent["Id"], "Timestamp": sent["Timestamp"]}

    def send_media(self, token: str, to: str, media: OutboundMedia, message_id: str | None = None) -> dict:
        client = self._sender(token)
        sent = self.network.send_media(client.phone, to, media.kind, media.media_key, media.mimetype,
                                       len(media.data), media.sha256, media.caption, media.file_name,
                                       sender_token=token, message_id=message_id, context_info=media.context_info)
        _crash_point(sent["Id"])
        return {"Id": sent["Id"], "Timestamp": sent["Timestamp"]}

    def send_content(self, token: str, to: str, content: dict, message_id: str | None = None) -> dict:
        client = self._sender(token)
        sent = self.network.send_message(client.phone, to, content, sender_token=token, message_id=message_id)
        _crash_point(sent["Id"])
        return {"Id": sent["Id"], "Timestamp": sent["Timestamp"]}

    def download_media(self, token: str, kind: str, ref: dict) -> bytes:
        """Sim media lives in S3: its directPath is the object's key (see SimNetwork.send_media); only a
        message's sender and recipient may fetch it."""
        phone = self._sender(token).phone or ""
        return self.network.download(str(ref.get("directPath") or ""), phone)

    def mark_read(self, token: str, ids: list[str], chat: str, sender: str | None = None) -> None:
        client = self._sender(token)
        self.network.mark_read(client.phone, ids, reader_token=token)

    def send_chat_presence(self, token: str, to: str, state: str, media: str = "") -> None:
        client = self._sender(token)
        self.network.chat_presence(client.phone, to, state, media, sender_token=token)

    def send_presence(self, token: str, available: bool) -> None:
        self.network.presence(self._sender(token).phone, available)

    def subscribe_presence(self, token: str, jid: str) -> None:
        self._sender(token)
        self.network.subscribe_presence(token, jid)

    # -- calls (session_host/sim/calls.py; audio through the host's media bridge) -----------------

    carries_call_media = True

    @property
    def calls(self) -> SimCalls:
        if getattr(self, "_calls", None) is None:
            self._calls = SimCalls(self.network)
        return self._calls

    def place_call(self, token: str, to: str) -> dict:
        client = self._sender(token)
        return self.calls.place(client.phone, token, to)

    def accept_call(self, token: str, call_id: str, peer: str, link_token: str | None) -> None:
        client = self._sender(token)
        if link_token:
            self.calls.accept(client.phone, token, call_id, link_token)

    def reject_call(self, token: str, call_id: str, peer: str, link_token: str | None) -> None:
        client = self._sender(token)
        if link_token:
            self.calls.reject(client.phone, token, call_id, link_token)

    def end_call(self, token: str, call_id: str, peer: str, link_token: str | None, ring_tokens: list[str],
                 reason: str) -> None:
        client = self._sender(token)
        self.calls.end(client.phone, call_id, [link_token] if link_token else list(ring_tokens), reason)

    # -- users and groups (session_host/sim/groups.py) ---------------------------------------------------

    @property
    def groups(self) -> SimGroups:
        if getattr(self, "_groups", None) is None:
            store = MediaStore(self.settings)

            def url(key: str) -> str:
                return store.s3.generate_presigned_url(
                    "get_object", Params={"Bucket": store.settings.media_bucket_name, "Key": key}, ExpiresIn=3600)

            self._groups = SimGroups(self.network, media_url=url)
        return self._groups

    def _group_call(self, token: str, method: str, *args, with_token: bool = False):
        client = self._sender(token)
        call = getattr(self.groups, method)
        return call(client.phone, token, *args) if with_token else call(client.phone, *args)

    def check_users(self, token: str, phones: list[str]) -> list[dict]:
        self._sender(token)
        return self.groups.check(phones)

    def user_info(self, token: str, phones: list[str]) -> dict:
        self._sender(token)
        return self.groups.info(phones)

    def user_avatar(self, token: str, phone: str, preview: bool) -> dict:
        return self._group_call(token, "avatar", phone, preview)

    def contacts(self, token: str) -> dict:
        return self._group_call(token, "contacts")

    def list_groups(self, token: str) -> list[dict]:
        return self._group_call(token, "list")

    def group_info(self, token: str, group: str) -> dict:
        return self._group_call(token, "get", group)

    def create_group(self, token: str, name: str, participants: list[str]) -> dict:
        return self._group_call(token, "create", name, participants, with_token=True)

    def update_group_participants(self, token: str, group: str, phones: list[str], action: str) -> list[dict]:
        return self._group_call(token, "update_participants", group, phones, action, with_token=True)

    def group_invite_link(self, token: str, group: str, reset: bool) -> str:
        return self._group_call(token, "invite_link", group, reset)

    def join_group(self, token: str, code: str) -> str:
        return self._group_call(token, "join", code, with_token=True)

    def leave_group(self, token: str, group: str) -> None:
        self._group_call(token, "leave", group, with_token=True)

    def set_group_name(self, token: str, group: str, name: str) -> None:
        self._group_call(token, "set_name", group, name, with_token=True)

    def set_group_topic(self, token: str, group: str, topic: str) -> None:
        self._group_call(token, "set_topic", group, topic, with_token=True)

    def set_group_photo(self, token: str, group: str, data: bytes, media_key: str, sha256: str) -> str:
        return self._group_call(token, "set_photo", group, media_key, sha256, with_token=True)

    def set_group_announce(self, token: str, group: str, value: bool) -> None:
        self._group_call(token, "set_announce", group, value, with_token=True)

    def set_group_locked(self, token: str, group: str, value: bool) -> None:
        self._group_call(token, "set_locked", group, value, with_token=True)
