"""neonize, offline: a session whose device store exists comes back when a host starts (connectstartup).

The store is a real whatsmeow SQLite store (schema written by neonize itself) holding a linked device
for the session's stored JID. The host adopts the session at start (not one heartbeat later), the
driver opens that store for the stored JID and dials WhatsApp through a SOCKS proxy on 127.0.0.1 that
refuses every connection (nothing leaves this machine). The restore ends with the dial error in
`LastError`, and no QR code is ever shown: not in the session row, not as a webhook event.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time

import boto3

from tests.conftest import wait_for
from tests.host.test_neonize_driver import Recorder, _closed_port, _neonize_settings

JID = "15550002222:9@s.whatsapp.net"


def _linked_device_store(data_dir: str, token: str) -> str:
    """Create the session's store through neonize (a dial that fails writes the schema), then record a
    linked device in it, as pairing would have."""
    from session_host.drivers.neonize_worker import NeonizeWorker, WorkerConfig, sqlite_path

    worker = NeonizeWorker(WorkerConfig(data_dir=data_dir, proxy=f"socks5://127.0.0.1:{_closed_port()}",
                                        connect_wait=5, start_spacing=0.01), Recorder())
    try:
        worker.connect(token)
    except Exception:
        pass  # refused: expected, the schema is there now
    finally:
        worker.shutdown(time.monotonic() + 5)
    path = sqlite_path(data_dir, token)
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO whatsmeow_device (jid, registration_id, noise_key, identity_key, signed_pre_key, "
            "signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details, adv_account_sig, adv_account_sig_key, "
            "adv_device_sig, platform, push_name) VALUES (?, 1234, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, 'chrome', 'Stored')",
            (JID, os.urandom(32), os.urandom(32), os.urandom(32), os.urandom(64), os.urandom(32), os.urandom(16),
             os.urandom(64), os.urandom(32), os.urandom(64)))
    return str(path)


def test_a_session_with_a_device_store_is_restored_at_start_without_a_qr(aws, tmp_path):
    from chalicelib import sessions
    from chalicelib.core.models import HostModel, SessionModel
    from chalicelib.core.settings import get_settings
    from session_host.host import SessionHost

    token = "tok-restore"
    store = _linked_device_store(str(tmp_path), token)
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT jid FROM whatsmeow_device").fetchall() == [(JID,)]
    sessions.create_session("restore", token, "Chrome")
    # What the previous run left: linked (JID kept), marked to connect, owned by a host that is gone (its
    # row says it stopped heartbeating long ago; hosts find orphans from dead hosts' rows).
    HostModel("gone-host", command_queue_url="", capacity=10, load=1, heartbeat_at=time.time() - 3600,
              started_at=0, status="up").save()
    SessionModel(token).update(actions=[SessionModel.jid.set(JID), SessionModel.auto_connect.set(True),
                                        SessionModel.logged_in.set(True), SessionModel.owner_host.set("gone-host")])
    settings = _neonize_settings(tmp_path, f"socks5://127.0.0.1:{_closed_port()}", host_heartbeat_seconds=60)

    seen_qr: list[str] = []
    watching = threading.Event()

    def watch() -> None:  # the row never carries a QR, at any moment
        while not watching.is_set():
            row = SessionModel.get(token, consistent_read=True)
            if row.qr_code or row.pair_code:
                seen_qr.append(row.qr_code or row.pair_code)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    host = SessionHost(settings, host_id="host-restore")
    started = time.monotonic()
    host.start()
    try:
        row = wait_for(lambda: (r := SessionModel.get(token, consistent_read=True)).last_error and r,
                       timeout=30, what="the restore to end")
        elapsed = time.monotonic() - started
        assert elapsed < 20, elapsed  # at start, not after the first 60 s heartbeat
        assert row.last_error.startswith("Failed to connect: failed to dial whatsapp web websocket"), row.last_error
        assert "connection refused" in row.last_error
        assert (row.connected, row.logged_in, row.jid) == (False, False, JID)  # still linked: the JID is kept
        assert host.driver.tokens() == []
    finally:
        watching.set()
        watcher.join(timeout=5)
        host.stop(grace_seconds=5)
    assert seen_qr == []
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.get_queue_url(QueueName=get_settings().events_queue_name)["QueueUrl"]
    types = []
    for _ in range(10):
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            break
        types += [json.loads(m["Body"])["type"] for m in batch if json.loads(m["Body"])["token"] == token]
    assert "QR" not in types and "PairSuccess" not in types
    with sqlite3.connect(store) as db:  # the device store is untouched: the next start tries it again
        assert db.execute("SELECT jid, push_name FROM whatsmeow_device").fetchall() == [(JID, "Stored")]
