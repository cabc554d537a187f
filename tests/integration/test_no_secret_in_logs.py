"""No secret in the local stack's own output: the launcher, the API, the session host and the events
poller all write to the launcher's output, and after a run that uses every secret (session tokens, the
admin token, a webhook secret that signs real deliveries, a TURN credential, the AWS credentials) with
the gateway's logger at every level (LOG_LEVEL=DEBUG) and the API's access log on, none of them appears
in it, nor after a restart on the same state (the launcher's restore line); the sender's fingerprint
does, so the lines grepped are about these sessions.
The fault clusters' logs get the same grep in tests/faults/test_fencing.py."""

from __future__ import annotations

import hashlib
import hmac
import signal
import uuid

import httpx
import pytest

from chalicelib.core.redact import fingerprint
from tests.conftest import wait_for
from tests.integration.test_local_stack import Launcher
from tests.unit.webhook_helpers import Receiver, fail_first

pytestmark = pytest.mark.integration


def _ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()["data"]


def test_no_secret_in_the_local_stacks_output():
    run = uuid.uuid4().hex
    secrets = {
        "sender token": f"tok-a-{run}", "recipient token": f"tok-b-{run}", "admin token": f"admin-{run}",
        "webhook secret": f"whsec-{run}", "TURN credential": f"turncred-{run}",
        "AWS access key": f"AKIA{run[:16].upper()}", "AWS secret key": f"awssecret-{run}",
    }
    env = {
        "WHATSAPP_DRIVER": "sim", "LOG_LEVEL": "DEBUG", "WAGO_ACCESS_LOG": "1",
        "ADMIN_TOKEN": secrets["admin token"], "AWS_ACCESS_KEY_ID": secrets["AWS access key"],
        "AWS_SECRET_ACCESS_KEY": secrets["AWS secret key"], "TURN_URLS": "turn:127.0.0.1:3478",
        "TURN_USERNAME": "wago", "TURN_CREDENTIAL": secrets["TURN credential"],
    }
    launcher = Launcher(env)
    sender, recipient = secrets["sender token"], secrets["recipient token"]
    admin = {"admintoken": secrets["admin token"]}
    try:
        launcher.wait_ready()
        # The first delivery fails: the poller's retry path writes its lines too.
        with httpx.Client(base_url=launcher.base, timeout=30) as api, Receiver(fail_first(1)) as receiver:
            for token, phone in ((sender, "15550009001"), (recipient, "15550009002")):
                _ok(api.post("/session/init", headers=admin, json={"Name": f"n{token[4]}", "Token": token,
                                                                      "Os": "Chrome"}))
                _ok(api.post("/webhook", headers={"token": token},
                             json={"WebhookURL": receiver.url, "Secret": secrets["webhook secret"]}))
                _ok(api.post("/session/connect", headers={"token": token}, json={"Subscribe": ["All"]}))
                _ok(api.post("/sim/scan", headers=admin, json={"Token": token, "Phone": phone}))
            sent = _ok(api.post("/send/text", headers={"token": sender}, json={"Phone": "15550009002", "Body": "hi"}))
            _ok(api.post("/send/text?async=true", headers={"token": sender},
                         json={"Phone": "15550009002", "Body": "later"}), 202)
            assert api.post("/send/text", headers={"token": sender}, json={"Body": "no phone"}).status_code == 400
            assert api.get("/session/all", headers={"admintoken": "not-" + secrets["admin token"]}).status_code == 401
            config = _ok(api.get("/call/webrtc/config", headers={"token": sender}))
            assert secrets["TURN credential"] in str(config)  # in use, and must still stay out of the output

            def signed_message():
                return [r for r in receiver.received if r.status == 200 and r.form().get("token") == recipient
                        and r.event()["type"] == "Message" and r.event()["event"]["Info"]["ID"] == sent["Id"]]

            (delivery,) = wait_for(signed_message, 45, "the recipient's signed Message webhook")
            event_id, stamp = delivery.headers["x-webhook-event-id"], delivery.headers["x-webhook-timestamp"]
            digest = hmac.new(secrets["webhook secret"].encode(), f"{event_id}.{stamp}.".encode() + delivery.body,
                              hashlib.sha256).hexdigest()
            assert delivery.headers["x-webhook-signature"] == f"v2={digest}"  # the poller signed with the secret
            wait_for(lambda: [r for r in receiver.received if r.status == 200
                              and r.event()["type"] == "MessageStatus"], 45, "the async send's MessageStatus webhook")
        code, output = launcher.stop(signal.SIGINT)
        assert code == 0, output[-3000:]
        # A restart on the same state: the launcher's restore line and the sessions coming back.
        again = Launcher(env, state_dir=launcher.state_dir)
        try:
            again.wait_ready()
            wait_for(lambda: "sessions at start" in again.output(), 30, "the launcher's restore line")
            code, restarted = again.stop(signal.SIGINT)
        finally:
            again.close()
        assert code == 0, restarted[-3000:]
        output += restarted
    finally:
        launcher.close()

    leaks = {name: [line for line in output.splitlines() if value in line][:3]
             for name, value in secrets.items() if value in output}
    assert leaks == {}
    assert fingerprint(sender) in output  # the lines about the sessions are there, fingerprinted
